#!/usr/bin/env bash
# Runs every server scenario of the pinned MCP conformance suite against an MCP server URL (Streamable HTTP),
# baseline-checked against expected-failures.yaml, and prints a per-scenario pass/fail table.
#
#   tests/conformance/run.sh URL [extra conformance args, e.g. --scenario tools-list]
#
# Environment: EXPECTED_FAILURES (baseline file, default expected-failures.yaml next to this script),
# CONFORMANCE_OUT (directory for the suite's per-scenario checks.json, default a fresh temp directory).
# Exit status: 0 when every failure is listed as expected and every listed one still fails; 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 URL [extra conformance args]" >&2
  exit 2
fi
url="$1"
shift

baseline="${EXPECTED_FAILURES:-$here/expected-failures.yaml}"
suite="$here/node_modules/.bin/conformance"
if [[ ! -x "$suite" ]]; then
  # npm ci installs exactly what package-lock.json pins.
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

out="${CONFORMANCE_OUT:-$(mktemp -d -t warden-conformance-XXXXXX)}"
mkdir -p "$out"

# --suite all: the default "active" suite leaves out the pending scenarios (json-schema-2020-12,
# server-sse-polling); we want all 32 measured.
set +e
"$suite" server --url "$url" --suite all --expected-failures "$baseline" -o "$out" "$@" 2>&1 | tee "$out/suite-output.txt"
suite_status=${PIPESTATUS[0]}
set -e

summary_status=0
node "$here/summarize.mjs" "$out" "$baseline" || summary_status=$?
echo "Per-scenario checks: $out"

if [[ $suite_status -ne 0 || $summary_status -ne 0 ]]; then
  echo "Conformance: FAILED (suite exit $suite_status, summary exit $summary_status)" >&2
  exit 1
fi
echo "Conformance: OK"
