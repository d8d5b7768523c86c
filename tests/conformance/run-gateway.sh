#!/usr/bin/env bash
# Runs the conformance suite through Warden: the fixture as Warden's only upstream (per_session connection, so
# sampling, elicitation and logging levels route to the right agent session), Warden with an anonymous agent on
# loopback (the suite sends no credentials) and an allow-all policy. Every scenario the fixture passes directly
# must pass through Warden: the same expected-failures file is used for both runs.
#
#   tests/conformance/run-gateway.sh [extra conformance args]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
config="${CONFIGURATION:-Debug}"
dotnet build "$repo/tests/Warden.Conformance.Fixture/Warden.Conformance.Fixture.csproj" -c "$config" --nologo -v quiet
dotnet build "$repo/src/Warden.Cli/Warden.Cli.csproj" -c "$config" --nologo -v quiet
fixture_dll="$repo/tests/Warden.Conformance.Fixture/bin/$config/net10.0/conformance-fixture.dll"
warden_dll="$repo/src/Warden.Cli/bin/$config/net10.0/warden.dll"

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
fixture_port="$(free_port)"
warden_port="$(free_port)"
work="$(mktemp -d -t warden-conformance-XXXXXX)"

cat >"$work/policy.yaml" <<POLICY
# Conformance checks protocol fidelity, not policy: everything is allowed.
version: 1
default: allow
POLICY
cat >"$work/warden.yaml" <<CONFIG
listen: 127.0.0.1:$warden_port
data_dir: ./data
policy: ./policy.yaml
tool_separator: "__"
mcp:
  anonymous_agent: conformance
servers:
  fixture:
    url: http://127.0.0.1:$fixture_port/mcp
    connection: per_session
    prefix: false        # the suite calls the fixture's tools and prompts by their own names
CONFIG

dotnet "$fixture_dll" --urls "http://127.0.0.1:$fixture_port" >"$work/fixture.log" 2>&1 &
fixture_pid=$!
warden_pid=""
cleanup() {
  [[ -n "$warden_pid" ]] && kill "$warden_pid" 2>/dev/null || true
  kill "$fixture_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for() { # url pid log
  for _ in $(seq 1 150); do
    if ! kill -0 "$2" 2>/dev/null; then echo "process exited during start-up; log $3:" >&2; cat "$3" >&2; exit 1; fi
    if node -e "fetch('$1').then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))"; then return 0; fi
    sleep 0.2
  done
  echo "no answer from $1 within 30 s; log $3:" >&2; cat "$3" >&2; exit 1
}
wait_for "http://127.0.0.1:$fixture_port/health" "$fixture_pid" "$work/fixture.log"
dotnet "$warden_dll" serve --config "$work/warden.yaml" ${WARDEN_VERBOSE:+--verbose} >"$work/warden.log" 2>&1 &
warden_pid=$!
wait_for "http://127.0.0.1:$warden_port/api/v1/health" "$warden_pid" "$work/warden.log"

echo "Warden (pid $warden_pid) on http://127.0.0.1:$warden_port/mcp in front of the fixture on $fixture_port; logs in $work"
"$here/run.sh" "http://127.0.0.1:$warden_port/mcp" "$@"
