// Per-scenario pass/fail table for a conformance run, computed the way the suite's baseline check does:
// a scenario fails when any of its checks is FAILURE or WARNING.
// Usage: node summarize.mjs OUTPUT_DIR EXPECTED_FAILURES_YAML
// Exit code: 1 when a scenario failed unexpectedly, passed while listed as expected to fail, or left no result.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const [outDir, baselinePath] = process.argv.slice(2);
if (!outDir || !baselinePath) {
  console.error("usage: node summarize.mjs OUTPUT_DIR EXPECTED_FAILURES_YAML");
  process.exit(2);
}

// Only the flat `server:` list is read; a full YAML parser is not worth a dependency for that shape.
function readBaseline(path) {
  const names = new Set();
  let inServer = false;
  for (const raw of readFileSync(path, "utf8").split("\n")) {
    const line = raw.replace(/#.*$/, "").trimEnd();
    if (!line.trim()) continue;
    if (/^\S/.test(line)) {
      inServer = /^server:\s*(\[\s*\])?$/.test(line);
      continue;
    }
    const item = inServer && line.match(/^\s+-\s+["']?([^"'\s]+)["']?$/);
    if (item) names.add(item[1]);
  }
  return names;
}

const timestamp = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
const results = new Map();
for (const entry of readdirSync(outDir, { withFileTypes: true })) {
  if (!entry.isDirectory() || !entry.name.startsWith("server-")) continue;
  const file = join(outDir, entry.name, "checks.json");
  if (!existsSync(file)) continue;
  const scenario = entry.name.slice("server-".length).replace(timestamp, "");
  const checks = JSON.parse(readFileSync(file, "utf8"));
  const count = (s) => checks.filter((c) => c.status === s).length;
  results.set(scenario, {
    ok: count("SUCCESS"),
    fail: count("FAILURE"),
    warn: count("WARNING"),
    problems: checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING")
      .map((c) => `${c.status} ${c.id}: ${c.errorMessage ?? c.description}`),
  });
}

// Scenarios that threw before saving checks still show up in the suite's own summary lines.
const suiteOutput = join(outDir, "suite-output.txt");
if (existsSync(suiteOutput)) {
  const text = readFileSync(suiteOutput, "utf8");
  const summary = text.slice(text.lastIndexOf("=== SUMMARY ==="));
  for (const m of summary.matchAll(/^[✓✗] (\S+): /gmu)) {
    if (!results.has(m[1])) results.set(m[1], { missing: true, ok: 0, fail: 0, warn: 0, problems: ["no checks.json saved"] });
  }
}

// Report in the suite's own order where it printed one.
const order = [];
if (existsSync(suiteOutput)) {
  const text = readFileSync(suiteOutput, "utf8");
  for (const m of text.matchAll(/^=== Running scenario: (\S+) ===/gm)) order.push(m[1]);
}
const rank = (s) => (order.indexOf(s) + 1) || Number.MAX_SAFE_INTEGER;
const sorted = [...results].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));

const expected = readBaseline(baselinePath);
const rows = [];
let passed = 0, xfail = 0;
const unexpected = [], stale = [];
for (const [scenario, r] of sorted) {
  const failed = r.missing || r.fail > 0 || r.warn > 0;
  let verdict;
  if (failed && expected.has(scenario)) { verdict = "XFAIL"; xfail++; }
  else if (failed) { verdict = "FAIL"; unexpected.push(scenario); }
  else if (expected.has(scenario)) { verdict = "XPASS"; stale.push(scenario); }
  else { verdict = "PASS"; passed++; }
  rows.push({ scenario, verdict, r });
}

const width = Math.max(...rows.map((x) => x.scenario.length), 8);
console.log(`\n${"scenario".padEnd(width)}  result  checks ok/fail/warn`);
for (const { scenario, verdict, r } of rows) {
  console.log(`${scenario.padEnd(width)}  ${verdict.padEnd(6)}  ${r.ok}/${r.fail}/${r.warn}`);
  if (verdict !== "PASS") for (const p of r.problems) console.log(`${" ".repeat(width + 10)}${p}`);
}
console.log(`\n${rows.length} scenarios: ${passed} passed, ${xfail} expected failures, ` +
  `${unexpected.length} unexpected failures, ${stale.length} expected failures that now pass`);
if (unexpected.length) console.log(`Unexpected failures: ${unexpected.join(", ")}`);
if (stale.length) console.log(`Now passing, remove from ${baselinePath}: ${stale.join(", ")}`);
process.exit(unexpected.length || stale.length || rows.length === 0 ? 1 : 0);
