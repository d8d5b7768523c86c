#!/usr/bin/env python3
"""Summarize one bench/load run directory: the Warden-vs-peers table, the ratio checks, start-up and memory.
Usage: summarize.py RESULTS_DIR   (reads mcp_all.jsonl, meta.json, startup.txt; prints Markdown)"""
import json, sys, statistics as st, os
from collections import OrderedDict

d = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(d, 'mcp_all.jsonl')) if l.strip()]
meta = json.load(open(os.path.join(d, 'meta.json')))
starts = [tuple(map(int, l.split())) for l in open(os.path.join(d, 'startup.txt')) if l.strip()]

NAMES = {'http-direct': 'server-everything over HTTP, direct', 'mcp-proxy': 'through mcp-proxy (proxy + its node child)',
         'stdio-direct': 'stdio, direct', 'gateway': 'through Warden (HTTP, anonymous agent)',
         'gateway-token': 'through Warden (HTTP, bearer token; run after the others)',
         'sdk-floor': 'bare SDK proxy, the floor (no identity, policy or audit; interleaved with the token row)',
         'stage-noaudit': 'Warden without its per-call audit records (bench/Warden.StageHost; bearer token; interleaved with the token row)'}
def name(lab):
    for k in sorted(NAMES, key=len, reverse=True):
        if lab.startswith(k): return NAMES[k] + (f' [{lab[len(k):]}]' if lab[len(k):] else '')
    return lab

by = OrderedDict()
for r in rows: by.setdefault(r['label'], []).append(r)
def med(rs, ph, k):
    v = [r[ph][k] for r in rs if r.get(ph) and r[ph].get(k) is not None]
    return st.median(v) if v else None
def f(x, nd=2): return 'n/a' if x is None else f'{x:,.{nd}f}'

S = {}
for lab, rs in by.items():
    S[lab] = {'reps': len(rs), **{'seq_' + k: med(rs, 'seq', k) for k in ('p50', 'p90', 'p99', 'calls_per_s', 'server_cpu_ms_per_call', 'client_cpu_ms_per_call')},
              **{'conc_' + k: med(rs, 'conc', k) for k in ('p50', 'p99', 'calls_per_s', 'server_cpu_ms_per_call')}}
conc = next((r['conc']['concurrency'] for r in rows if r.get('conc')), 16)

# mcp-proxy's PIDs are the proxy and its server-everything child; stdio-direct's PID is server-everything
# alone doing the same stdio work, so proxy-only CPU is estimated by the difference.
px, sd = S.get('mcp-proxy'), S.get('stdio-direct')
def sub(a, b): return None if a is None or b is None else a - b
px_only = {ph: sub(px and px[ph], sd and sd[ph]) for ph in ('seq_server_cpu_ms_per_call', 'conc_server_cpu_ms_per_call')} if px and sd else {}

print(f"### MCP `tools/call` (echo), medians of {meta['reps']} interleaved repetitions\n")
print(f"| target | reps | seq p50 ms | seq p99 ms | seq calls/s | {conc} in flight p50 ms | {conc} in flight p99 ms | {conc} in flight calls/s | server-side CPU-ms/call seq | server-side CPU-ms/call {conc} in flight |")
print('|---|---|---|---|---|---|---|---|---|---|')
for lab, s in S.items():
    print(f"| {name(lab)} | {s['reps']} | {f(s['seq_p50'])} | {f(s['seq_p99'])} | {f(s['seq_calls_per_s'],0)} | {f(s['conc_p50'])} | {f(s['conc_p99'])} | {f(s['conc_calls_per_s'],0)} | {f(s['seq_server_cpu_ms_per_call'],3)} | {f(s['conc_server_cpu_ms_per_call'],3)} |")
if px_only:
    print(f"| mcp-proxy process alone (estimate: row above minus stdio-direct's server CPU) | | | | | | | | {f(px_only['seq_server_cpu_ms_per_call'],3)} | {f(px_only['conc_server_cpu_ms_per_call'],3)} |")
print('\nServer-side CPU is utime+stime from /proc of the PIDs given to the client: http-direct = server-everything; '
      'mcp-proxy = proxy + node child; stdio-direct = the spawned server; Warden = the warden process only (its node child is not counted).')
rc = meta.get('run_cpu_ticks', {})
if rc.get('gateway_calls'):
    w = rc['warden'] * 1000 / rc['hz'] / rc['gateway_calls']; c = rc['child'] * 1000 / rc['hz'] / rc['gateway_calls']
    print(f"Whole-run average over all {rc['gateway_calls']:,} calls Warden served in run_mcp_all.sh (warm-up, sequential and concurrent mixed): "
          f"warden {w:.3f} CPU-ms/call, its node child {c:.3f} CPU-ms/call.")

print('\n### Targets from the issue (Warden vs mcp-proxy, same run)\n')
print('| check | Warden | mcp-proxy | ratio | target | result |')
print('|---|---|---|---|---|---|')
def check(title, lab, key, pxv, op, tgt, nd=2):
    g = S.get(lab)
    if not g or g[key] is None or pxv is None:
        return
    ratio = g[key] / pxv
    ok = ratio <= tgt if op == '<=' else ratio >= tgt
    print(f"| {title} | {f(g[key],nd)} | {f(pxv,nd)} | {ratio:.2f}x | {op} {tgt}x | {'met' if ok else '**not met**'} |")
for lab in [l for l in S if l.startswith('gateway')]:
    tag = '' if lab == 'gateway' else f' ({lab})'
    check('seq p50 ms' + tag, lab, 'seq_p50', px['seq_p50'], '<=', 0.5)
    check('seq p99 ms' + tag, lab, 'seq_p99', px['seq_p99'], '<=', 0.5)
    check('process CPU-ms/call, seq, vs proxy alone (est.)' + tag, lab, 'seq_server_cpu_ms_per_call', px_only.get('seq_server_cpu_ms_per_call'), '<=', 0.5, 3)
    check('process CPU-ms/call, seq, vs proxy + child (as measured)' + tag, lab, 'seq_server_cpu_ms_per_call', px['seq_server_cpu_ms_per_call'], '<=', 0.5, 3)
    check(f'process CPU-ms/call, {conc} in flight, vs proxy alone (est.)' + tag, lab, 'conc_server_cpu_ms_per_call', px_only.get('conc_server_cpu_ms_per_call'), '<=', 0.5, 3)
    check(f'calls/s at {conc} in flight' + tag, lab, 'conc_calls_per_s', px['conc_calls_per_s'], '>=', 1.0, 0)

def checks_for(label, heading):
    # The same target checks for an extra row (the SDK floor, Warden without its call audit).
    r = S.get(label)
    if not r:
        return
    print(f'\n### {heading}\n')
    print('| check | this row | mcp-proxy | ratio | target | result |')
    print('|---|---|---|---|---|---|')
    def one(title, key, pxv, op, tgt, nd=2):
        if r[key] is None or pxv is None:
            return
        ratio = r[key] / pxv
        ok = ratio <= tgt if op == '<=' else ratio >= tgt
        print(f"| {title} | {f(r[key],nd)} | {f(pxv,nd)} | {ratio:.2f}x | {op} {tgt}x | {'met' if ok else '**not met**'} |")
    one('seq p50 ms', 'seq_p50', px['seq_p50'], '<=', 0.5)
    one('seq p99 ms', 'seq_p99', px['seq_p99'], '<=', 0.5)
    one('process CPU-ms/call, seq, vs proxy alone (est.)', 'seq_server_cpu_ms_per_call', px_only.get('seq_server_cpu_ms_per_call'), '<=', 0.5, 3)
    one(f'process CPU-ms/call, {conc} in flight, vs proxy alone (est.)', 'conc_server_cpu_ms_per_call', px_only.get('conc_server_cpu_ms_per_call'), '<=', 0.5, 3)
    one(f'calls/s at {conc} in flight', 'conc_calls_per_s', px['conc_calls_per_s'], '>=', 1.0, 0)

checks_for('stage-noaudit', "Warden without its per-call audit records against the same targets (the gateway's own stages; the audit stage's share is the difference to the token row)")
# The floor is what the official SDK costs a gateway that only forwards: the part of each figure no gateway built on
# it can go below. Warden's own pipeline (identity, policy, stops, limits, audit) is the difference.
checks_for('sdk-floor', 'The SDK floor against the same targets (what any gateway built on the official SDK starts from; "not met" here means no such gateway can meet it)')
fl = S.get('sdk-floor')
if fl:
    g = S.get('gateway-token') or S.get('gateway')
    if g:
        lab = 'gateway-token' if S.get('gateway-token') else 'gateway'
        print(f"\nWarden's pipeline on top of the floor ({lab}, CPU-ms per call): sequential "
              f"{f(sub(g['seq_server_cpu_ms_per_call'], fl['seq_server_cpu_ms_per_call']),3)}, {conc} in flight "
              f"{f(sub(g['conc_server_cpu_ms_per_call'], fl['conc_server_cpu_ms_per_call']),3)}; budget the targets leave it: "
              f"sequential {f(sub(px_only.get('seq_server_cpu_ms_per_call') and 0.5 * px_only['seq_server_cpu_ms_per_call'], fl['seq_server_cpu_ms_per_call']),3)}, "
              f"{conc} in flight {f(sub(px_only.get('conc_server_cpu_ms_per_call') and 0.5 * px_only['conc_server_cpu_ms_per_call'], fl['conc_server_cpu_ms_per_call']),3)}.")

print('\n### Start-up and memory (Warden fronting server-everything over stdio)\n')
ports = [p for p, _ in starts]; ups = [u for _, u in starts]
print('| measure | value |')
print('|---|---|')
print(f"| exec to port open, ms (median of {len(starts)} starts; all: {', '.join(map(str, ports))}) | {st.median(ports):.0f} |")
print(f"| exec to upstream up in /api/v1/status, ms (median; all: {', '.join(map(str, ups))}) | {st.median(ups):.0f} |")
mb = lambda kb: f'{kb/1024:.0f} MB' if kb else 'n/a'
r0, r1, pk = meta['rss_rest_kb'], meta['rss_after_load_kb'], meta['rss_peak_kb']
print(f"| RSS at rest: warden / node child | {mb(r0['warden'])} / {mb(r0['child'])} |")
print(f"| RSS after run_mcp_all.sh: warden / node child | {mb(r1['warden'])} / {mb(r1['child'])} |")
print(f"| peak RSS (VmHWM): warden / node child | {mb(pk['warden'])} / {mb(pk['child'])} |")
if meta.get('rss_after_token_row_kb'):
    print(f"| RSS after the token row: warden | {mb(meta['rss_after_token_row_kb'])} |")
print(f"\nMachine: {meta['nproc']} x {meta['host_cpu']}, {meta['mem_total_kb']//1024} MB, kernel {meta['kernel']}, Node {meta['node']}, .NET SDK {meta['dotnet']}, Warden {meta['git']}; "
      f"REPS={meta['reps']} N={meta['n']} WARMUP={meta['warmup']} CONC={meta['conc']} CONC_N={meta['conc_n']}.")
la = os.path.join(d, 'loadavg.txt')
if os.path.exists(la):
    l1 = [float(l.split()[1]) for l in open(la) if l.strip()]
    if l1: print(f"Load average (1 min) during the run: min {min(l1):.2f}, median {st.median(l1):.2f}, max {max(l1):.2f} ({len(l1)} samples, 10 s apart).")
