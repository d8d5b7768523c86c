#!/usr/bin/env bash
# Runs every test of Warden on a fresh machine: installs the Node packages the tests use (MCP servers from npm,
# the TypeScript SDK client, the MCP conformance suite), builds, runs the .NET test projects, then the MCP
# conformance suite against the fixture directly and through Warden.
#
#   ./test.sh                 everything
#   ./test.sh --filter X      only .NET tests matching the dotnet test filter X (no conformance)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
repo="$(pwd)"
config="${CONFIGURATION:-Release}"
export CONFIGURATION="$config"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The dashboard tests (tests/Warden.Web.Tests) drive /usr/bin/chromium (Debian's; .ci/run installs it):
# Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

step() { printf '\n== %s\n' "$*"; }

step "Node packages for the tests"
for dir in tests/conformance tests/node-client; do
  if [[ -f "$dir/package.json" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

step "Build ($config)"
dotnet build Warden.slnx -c "$config" --nologo -v quiet

results="$repo/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
filter=()
if [[ "${1:-}" == "--filter" ]]; then filter=(--filter "$2"); fi

step "dotnet test"
set +e
# One test project at a time: the end-to-end suites start gateways, upstreams and SQLite writers, and on two
# cores running them side by side starves their timing.
dotnet test Warden.slnx -c "$config" --no-build --nologo -m:1 \
  --logger "trx" --results-directory "$results" "${filter[@]}"
dotnet_status=$?
set -e

conformance_status=0
if [[ ${#filter[@]} -eq 0 ]]; then
  step "MCP conformance: the fixture directly"
  tests/conformance/run-fixture.sh || conformance_status=1
  step "MCP conformance: through Warden"
  tests/conformance/run-gateway.sh || conformance_status=1
fi

step "Summary"
python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
failures = []
for f in glob.glob(sys.argv[1] + "/**/*.trx", recursive=True):
    c = ET.parse(f).getroot().find("t:ResultSummary/t:Counters", ns)
    if c is None:
        continue
    passed += int(c.get("passed", 0)); failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0) or 0)
    skipped += int(c.get("notExecuted", 0))
    # Failed tests last, so that the tail of a CI log names them and their first error line.
    for r in ET.parse(f).getroot().iterfind(".//t:UnitTestResult", ns):
        if r.get("outcome") in ("Failed", "Error", "Timeout"):
            msg = r.find("t:Output/t:ErrorInfo/t:Message", ns)
            first = (msg.text or "").strip().splitlines()[:3] if msg is not None else []
            failures.append((r.get("testName"), r.get("duration"), first))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
for name, duration, first in failures:
    print(f"FAILED {name} ({duration})")
    for line in first:
        print(f"    {line[:300]}")
PY
if [[ $dotnet_status -ne 0 || $conformance_status -ne 0 ]]; then
  echo "FAILED (dotnet test exit $dotnet_status, conformance $conformance_status)"
  exit 1
fi
