#!/usr/bin/env bash
# Warden load benchmark against its peers, in the same run (see docs/benchmarks.md).
#   bench/load/run.sh                 # full run: REPS=3 N=2000 WARMUP=300 CONC=16 CONC_N=4000
#   REPS=1 N=500 CONC_N=1000 bench/load/run.sh   # quick smoke run
# Steps: copy ../shared/bench-peers to a temp dir + npm install; build Warden (Release); write a temp
# warden.yaml (allow-all policy, temp data dir) fronting the same server-everything over stdio with
# prefix: false; warden init (operator) ; start warden serve, measure start-up and RSS at rest; add an agent;
# run the peers' run_mcp_all.sh with Warden as the gateway; one extra row with the agent's bearer token;
# RSS after load; summarize into bench/load/results/<date>/.
# Knobs (environment): REPS N WARMUP CONC CONC_N (as run_mcp_all.sh), STARTS (3 extra cold starts for the
# start-up median), TOKEN_ROW (1: extra row with the bearer token), SKIP_BUILD=1, PEERS (path to
# bench-peers), WORK (reuse a prepared temp dir), WARDEN_PORT/SE_PORT/PROXY_PORT (default: free ports),
# PROFILE=1 (perf record the warden process during one extra bench pass; needs perf),
# FLOOR=1 (default: also measure bench/Warden.SdkFloor, the official SDK forwarding calls and doing nothing else,
# interleaved with the token row: the least any gateway built on the SDK costs, to read Warden's figures against),
# STAGE_ROW=1 (default: also measure bench/Warden.StageHost, Warden on the same config and store without its per-call
# audit records, with the bearer token, interleaved with the token row: the audit stage's share),
# LABEL_SUFFIX (appended to the Warden row labels, e.g. "+audit" when later stages are switched on),
# WARDEN_EXTRA_YAML (file whose contents are appended to the temp warden.yaml, for those stages),
# WARDEN_EXTRA_POLICY (a policy file copied into the temp policy folder, e.g. bench/load/data-guard.yaml).
# All traffic stays on 127.0.0.1; every loop is bounded.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$REPO/../shared/bench-peers}
export REPS=${REPS:-3} N=${N:-2000} WARMUP=${WARMUP:-300} CONC=${CONC:-16} CONC_N=${CONC_N:-4000}
STARTS=${STARTS:-3}; TOKEN_ROW=${TOKEN_ROW:-1}; FLOOR=${FLOOR:-1}; STAGE_ROW=${STAGE_ROW:-1}; PROFILE=${PROFILE:-0}; LABEL_SUFFIX=${LABEL_SUFFIX:-}
STAMP=$(date +%Y%m%d_%H%M%S)
RES=${RES:-$HERE/results/$(date +%Y-%m-%d)/$STAMP}; mkdir -p "$RES"
exec > >(tee "$RES/run.log") 2>&1
log() { echo "[$(date +%H:%M:%S)] $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
WARDEN_PORT=${WARDEN_PORT:-$(free_port)}; export SE_PORT=${SE_PORT:-$(free_port)} PROXY_PORT=${PROXY_PORT:-$(free_port)}
now_ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { [ -r "/proc/$1/stat" ] && awk '{sub(/.*\) /,""); print $12+$13}' "/proc/$1/stat" || echo 0; }

WPID=""; LOADPID=""; DOGPID=""; FPID=""; SPID=""
cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
  [ -n "$WPID" ] && kill "$WPID" 2>/dev/null || true
  [ -n "$FPID" ] && kill "$FPID" 2>/dev/null || true
  [ -n "$LOADPID" ] && kill "$LOADPID" 2>/dev/null || true
  [ -n "$DOGPID" ] && kill "$DOGPID" 2>/dev/null || true
}
trap cleanup EXIT

log "results: $RES; load: $(cat /proc/loadavg)"
# 1. peers
if [ -z "${WORK:-}" ]; then
  WORK=$(mktemp -d /tmp/warden-bench.XXXXXX)
  cp -r "$PEERS/." "$WORK/peers"
  log "npm install in $WORK/peers"
  (cd "$WORK/peers" && npm install --no-audit --no-fund --loglevel=error)
fi
SE_JS=$WORK/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js
[ -f "$SE_JS" ] || { echo "missing $SE_JS" >&2; exit 1; }

# 2. build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "dotnet build src/Warden.Cli -c Release"
  (cd "$REPO" && dotnet build src/Warden.Cli -c Release -nologo -v q)
  [ "$FLOOR" = 1 ] && (cd "$REPO" && dotnet build bench/Warden.SdkFloor -c Release -nologo -v q)
  [ "$STAGE_ROW" = 1 ] && (cd "$REPO" && dotnet build bench/Warden.StageHost -c Release -nologo -v q)
fi
DLL=$REPO/src/Warden.Cli/bin/Release/net10.0/warden.dll
WARDEN=(dotnet "$DLL")

# 3. config: allow-all policy, temp data dir, server-everything over stdio, unprefixed.
# run_mcp_all.sh has no way to pass a header for GATEWAY_URL, so the gateway row uses mcp.anonymous_agent
# (loopback only); the extra "token" row below sends the agent's real bearer token.
CFG=$WORK/warden; rm -rf "$CFG"; mkdir -p "$CFG/policy"
printf 'version: 1\ndefault: allow\n' > "$CFG/policy/policy.yaml"
# WARDEN_EXTRA_POLICY: a policy file added to the folder (merged with the allow-all file), e.g. a data_guard section.
[ -n "${WARDEN_EXTRA_POLICY:-}" ] && cp "$WARDEN_EXTRA_POLICY" "$CFG/policy/extra.yaml"
cat > "$CFG/warden.yaml" <<YAML
listen: 127.0.0.1:$WARDEN_PORT
data_dir: $CFG/data
store: sqlite
policy: $CFG/policy/
mcp:
  anonymous_agent: bench
servers:
  everything:
    command: [node, $SE_JS, stdio]
    prefix: false
YAML
[ -n "${WARDEN_EXTRA_YAML:-}" ] && cat "$WARDEN_EXTRA_YAML" >> "$CFG/warden.yaml"
cp "$CFG/warden.yaml" "$RES/warden.yaml"

# 4a. operator
OP_TOKEN=$("${WARDEN[@]}" init --config "$CFG/warden.yaml" --no-save --no-color | grep -E '^wdn_op_' | head -1)
[ -n "$OP_TOKEN" ] || { echo "warden init printed no operator token" >&2; exit 1; }
URL=http://127.0.0.1:$WARDEN_PORT

# 5. start, with start-up timing: exec -> port open, exec -> upstream "up" in /api/v1/status.
start_warden() {
  local t0 t1 t2 i
  t0=$(now_ms)
  ${PROFILE_ENV:-} "${WARDEN[@]}" serve --config "$CFG/warden.yaml" >> "$WORK/serve.log" 2>&1 & WPID=$!
  for i in $(seq 1 1000); do (echo > /dev/tcp/127.0.0.1/$WARDEN_PORT) 2>/dev/null && break; sleep 0.01; done
  t1=$(now_ms)
  for i in $(seq 1 600); do
    curl -sf -H "Authorization: Bearer $OP_TOKEN" "$URL/api/v1/status" 2>/dev/null | grep -q '"state":"up"' && break; sleep 0.02
  done
  t2=$(now_ms)
  curl -sf "$URL/api/v1/health" > /dev/null || { echo "warden not healthy; log:" >&2; tail -20 "$WORK/serve.log" >&2; exit 1; }
  PORT_MS=$((t1 - t0)); UP_MS=$((t2 - t0))
}
stop_warden() { kill "$WPID" 2>/dev/null || true; for i in $(seq 1 100); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.05; done; WPID=""; }
child_of() { pgrep -P "$1" | head -1; }

: > "$WORK/serve.log"; : > "$RES/startup.txt"
PROFILE_ENV=""; [ "$PROFILE" = 1 ] && PROFILE_ENV="env DOTNET_PerfMapEnabled=1"
for s in $(seq 1 "$STARTS"); do
  start_warden
  echo "$PORT_MS $UP_MS" >> "$RES/startup.txt"; log "cold start $s: port open ${PORT_MS} ms, upstream up ${UP_MS} ms"
  stop_warden; sleep 0.5
done
start_warden
echo "$PORT_MS $UP_MS" >> "$RES/startup.txt"; log "bench instance: pid $WPID; port open ${PORT_MS} ms, upstream up ${UP_MS} ms"

# 4b. agent (through the running gateway)
AGENT_TOKEN=$(WARDEN_URL=$URL WARDEN_TOKEN=$OP_TOKEN "${WARDEN[@]}" agents add bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
sleep 2
WCHILD=$(child_of "$WPID"); log "warden pid $WPID, upstream child pid ${WCHILD:-?} ($(tr '\0' ' ' < /proc/$WCHILD/cmdline 2>/dev/null | cut -c1-80))"
RSS_REST_W=$(rss_kb "$WPID"); RSS_REST_C=$(rss_kb "$WCHILD")
log "RSS at rest: warden ${RSS_REST_W} kB, node child ${RSS_REST_C} kB"

# 6. the peers' run, Warden included; load average sampled every 10 s meanwhile (bounded: 720 samples).
( for i in $(seq 1 720); do echo "$(date +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done ) > "$RES/loadavg.txt" & LOADPID=$!
OUT=$RES/mcp_all.jsonl
CW0=$(cpu_ticks "$WPID"); CC0=$(cpu_ticks "$WCHILD")
log "run_mcp_all.sh REPS=$REPS N=$N WARMUP=$WARMUP CONC=$CONC CONC_N=$CONC_N; ports se=$SE_PORT proxy=$PROXY_PORT warden=$WARDEN_PORT"
# A watchdog notes when the warden process goes away (it must live through the whole run).
( for i in $(seq 1 7200); do kill -0 "$WPID" 2>/dev/null || { echo "[$(date +%H:%M:%S)] WARDEN $WPID EXITED"; tail -12 "$WORK/serve.log"; exit 0; }; sleep 0.5; done ) & DOGPID=$!
(cd "$WORK/peers" && OUT=$OUT GATEWAY_URL=$URL/mcp GATEWAY_PIDS=$WPID ./run_mcp_all.sh)
CW1=$(cpu_ticks "$WPID"); CC1=$(cpu_ticks "$WCHILD")
# 7. memory after load
RSS_LOAD_W=$(rss_kb "$WPID"); RSS_LOAD_C=$(rss_kb "$WCHILD"); HWM_W=$(hwm_kb "$WPID"); HWM_C=$(hwm_kb "$WCHILD")
log "RSS after load: warden ${RSS_LOAD_W} kB (peak ${HWM_W}), node child ${RSS_LOAD_C} kB (peak ${HWM_C})"

# Extra rows, run after the others and interleaved with each other: the same calls with the agent's bearer token,
# and the SDK floor (its own process and node child; the floor's PID alone is measured, as Warden's is).
if [ "$FLOOR" = 1 ]; then
  FLOOR_PORT=$(free_port)
  dotnet "$REPO/bench/Warden.SdkFloor/bin/Release/net10.0/Warden.SdkFloor.dll" "$FLOOR_PORT" node "$SE_JS" stdio > "$WORK/floor.log" 2>&1 & FPID=$!
  for i in $(seq 1 300); do (echo > /dev/tcp/127.0.0.1/$FLOOR_PORT) 2>/dev/null && break; sleep 0.05; done
  (echo > /dev/tcp/127.0.0.1/$FLOOR_PORT) 2>/dev/null || { echo "the SDK floor did not start; log:" >&2; tail -20 "$WORK/floor.log" >&2; exit 1; }
  log "sdk floor: pid $FPID on $FLOOR_PORT"
fi
if [ "$STAGE_ROW" = 1 ]; then
  # Same warden.yaml, so the same store (two processes on one SQLite store are supported) and the same agent token.
  STAGE_PORT=$(free_port)
  dotnet "$REPO/bench/Warden.StageHost/bin/Release/net10.0/Warden.StageHost.dll" "$CFG/warden.yaml" "127.0.0.1:$STAGE_PORT" > "$WORK/stage.log" 2>&1 & SPID=$!
  for i in $(seq 1 600); do curl -sf "http://127.0.0.1:$STAGE_PORT/api/v1/health" > /dev/null 2>&1 && break; sleep 0.05; done
  for i in $(seq 1 600); do
    curl -sf -H "Authorization: Bearer $OP_TOKEN" "http://127.0.0.1:$STAGE_PORT/api/v1/status" 2>/dev/null | grep -q '"state":"up"' && break; sleep 0.05
  done
  curl -sf -H "Authorization: Bearer $OP_TOKEN" "http://127.0.0.1:$STAGE_PORT/api/v1/status" 2>/dev/null | grep -q '"state":"up"' \
    || { echo "the stage host did not come up; log:" >&2; tail -20 "$WORK/stage.log" >&2; exit 1; }
  log "stage host (no call audit): pid $SPID on $STAGE_PORT"
fi
# The gateway under test has served the whole peer run by now: one unrecorded pass brings the two fresh processes
# past their JIT warm-up too, so the interleaved rows compare warm processes only.
for pair in "${FPID:+$FLOOR_PORT}" "${SPID:+$STAGE_PORT}"; do
  [ -n "$pair" ] || continue
  (cd "$WORK/peers" && timeout 600 node lib/bench_mcp.mjs --n "$N" --warmup "$WARMUP" --concurrency "$CONC" --conc-n "$CONC_N" \
    --label warm-up --header "Authorization: Bearer $AGENT_TOKEN" "http://127.0.0.1:$pair/mcp" > /dev/null) || true
done
RSS_TOKEN_W=""
if [ "$TOKEN_ROW" = 1 ] || [ "$FLOOR" = 1 ] || [ "$STAGE_ROW" = 1 ]; then
  for r in $(seq 1 "$REPS"); do
    if [ "$TOKEN_ROW" = 1 ]; then
      log "token row rep $r/$REPS"
      (cd "$WORK/peers" && timeout 600 node lib/bench_mcp.mjs --n "$N" --warmup "$WARMUP" --concurrency "$CONC" --conc-n "$CONC_N" \
        --label "gateway-token" --json "$OUT" --pids "$WPID" --header "Authorization: Bearer $AGENT_TOKEN" "$URL/mcp")
    fi
    if [ "$STAGE_ROW" = 1 ]; then
      log "stage row (no call audit) rep $r/$REPS"
      (cd "$WORK/peers" && timeout 600 node lib/bench_mcp.mjs --n "$N" --warmup "$WARMUP" --concurrency "$CONC" --conc-n "$CONC_N" \
        --label "stage-noaudit" --json "$OUT" --pids "$SPID" --header "Authorization: Bearer $AGENT_TOKEN" "http://127.0.0.1:$STAGE_PORT/mcp")
    fi
    if [ "$FLOOR" = 1 ]; then
      log "sdk floor rep $r/$REPS"
      (cd "$WORK/peers" && timeout 600 node lib/bench_mcp.mjs --n "$N" --warmup "$WARMUP" --concurrency "$CONC" --conc-n "$CONC_N" \
        --label "sdk-floor" --json "$OUT" --pids "$FPID" "http://127.0.0.1:$FLOOR_PORT/mcp")
    fi
  done
  [ "$TOKEN_ROW" = 1 ] && RSS_TOKEN_W=$(rss_kb "$WPID")
fi
[ -n "$FPID" ] && { kill "$FPID" 2>/dev/null || true; FPID=""; }
[ -n "$SPID" ] && { kill "$SPID" 2>/dev/null || true; SPID=""; }
if [ -n "$LABEL_SUFFIX" ]; then sed -i "s/\"label\":\"gateway\([^\"]*\)\"/\"label\":\"gateway\1$LABEL_SUFFIX\"/" "$OUT"; fi

if [ "$PROFILE" = 1 ] && command -v perf > /dev/null; then
  log "perf record on warden during one sequential+concurrent pass"
  perf record -F 499 -g -p "$WPID" -o "$WORK/perf.data" -- sleep 25 > /dev/null 2>&1 &
  PERFPID=$!
  (cd "$WORK/peers" && timeout 120 node lib/bench_mcp.mjs --n "$N" --warmup 100 --concurrency "$CONC" --conc-n "$CONC_N" \
     --label profile --pids "$WPID" --header "Authorization: Bearer $AGENT_TOKEN" "$URL/mcp") || true
  wait "$PERFPID" || true
  perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 > "$RES/perf_top.txt" || true
  log "perf summary in $RES/perf_top.txt (raw: $WORK/perf.data)"
fi
kill "$LOADPID" "$DOGPID" 2>/dev/null || true; LOADPID=""; DOGPID=""
stop_warden

CALLS=$(( REPS * (1 + WARMUP + N + CONC + CONC_N) ))
cat > "$RES/meta.json" <<JSON
{"date":"$(date -Iseconds)","host_cpu":"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)","nproc":$(nproc),
 "mem_total_kb":$(awk '/MemTotal/{print $2}' /proc/meminfo),"kernel":"$(uname -r)","node":"$(node --version)","dotnet":"$(dotnet --version)",
 "git":"$(cd "$REPO" && git rev-parse --short HEAD)","reps":$REPS,"n":$N,"warmup":$WARMUP,"conc":$CONC,"conc_n":$CONC_N,
 "label_suffix":"$LABEL_SUFFIX","anonymous_agent":true,"token_row":$TOKEN_ROW,
 "rss_rest_kb":{"warden":$RSS_REST_W,"child":$RSS_REST_C},"rss_after_load_kb":{"warden":$RSS_LOAD_W,"child":$RSS_LOAD_C},
 "rss_peak_kb":{"warden":$HWM_W,"child":$HWM_C},"rss_after_token_row_kb":${RSS_TOKEN_W:-null},
 "run_cpu_ticks":{"warden":$((CW1 - CW0)),"child":$((CC1 - CC0)),"gateway_calls":$CALLS,"hz":100},
 "load_end":"$(cat /proc/loadavg)"}
JSON
tail -5 "$WORK/serve.log" > "$RES/serve_tail.log"

# 8. summary
echo; log "peer summary (lib/summarize_mcp.py --base=http-direct)"
(cd "$WORK/peers" && python3 lib/summarize_mcp.py "$OUT" --base=http-direct) | tee "$RES/summarize_mcp.txt"
echo; python3 "$HERE/summarize.py" "$RES" | tee "$RES/summary.md"
log "done: $RES (peers copy: $WORK)"
