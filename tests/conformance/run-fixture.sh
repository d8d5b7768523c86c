#!/usr/bin/env bash
# Builds the conformance fixture, starts it on a free loopback port, runs run.sh against it, and stops it.
#
#   tests/conformance/run-fixture.sh [extra conformance args]
#
# Environment: CONFIGURATION (Debug or Release, default Debug). Other variables pass through to run.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
config="${CONFIGURATION:-Debug}"
project="$repo/tests/Warden.Conformance.Fixture/Warden.Conformance.Fixture.csproj"
dll="$repo/tests/Warden.Conformance.Fixture/bin/$config/net10.0/conformance-fixture.dll"

dotnet build "$project" -c "$config" --nologo -v quiet

# Ask the OS for a free port, then hand it to the fixture (a small race, acceptable for a test run).
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
log="$(mktemp -t conformance-fixture-XXXXXX.log)"

dotnet "$dll" --urls "http://127.0.0.1:$port" >"$log" 2>&1 &
fixture_pid=$!
cleanup() {
  kill "$fixture_pid" 2>/dev/null || true
  wait "$fixture_pid" 2>/dev/null || true
}
trap cleanup EXIT

ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$fixture_pid" 2>/dev/null; then
    echo "The fixture exited during start-up; its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  if node -e "fetch('http://127.0.0.1:$port/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ $ready -ne 1 ]]; then
  echo "The fixture did not answer on port $port within 30 s; its log ($log):" >&2
  cat "$log" >&2
  exit 1
fi

echo "Fixture (pid $fixture_pid) on http://127.0.0.1:$port/mcp, log $log"
"$here/run.sh" "http://127.0.0.1:$port/mcp" "$@"
