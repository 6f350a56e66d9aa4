/**
 * Measures each KUnit suite of a built kernel in real time and in UML's time-travel mode, and
 * records the decision in kernel-images/kunit-time-modes.json (which the worker reads):
 *
 *   npx tsx bench/kunit-time-modes.ts --build DIR --kernel mmu|nommu --config NAME [--idle-s 60]
 *
 * DIR is a build directory with a `linux` built with CONFIG_UML_TIME_TRAVEL_SUPPORT=y (a worker
 * base build under $NOMMU_CI_CACHE/builds). Every suite runs alone in a kernel (kunit.py
 * --run_isolated=suite), once per mode, one kernel at a time; a suite that goes silent for
 * --idle-s is killed (time-travel hangs show up that way). A suite runs time-travel when, on every
 * kernel measured, its results were the same test by test and it was not slower; else real time.
 * Earlier measurements of other kernels/configs in the file are kept and count too.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalog, type TestNode, type TimeMode } from '@nommu-ci/shared';
import { ownedDir } from '../worker/src/stages/build.js';
import { runSharded } from '../worker/src/kunit/sharded.js';
import { loadTimeModes, TIME_MODES_FILE, type SuiteDecision, type SuiteMeasurement, type TimeModes } from '../worker/src/kunit/time-modes.js';

const { values } = parseArgs({
  options: { build: { type: 'string' }, kernel: { type: 'string' }, config: { type: 'string' }, 'idle-s': { type: 'string' }, out: { type: 'string' } },
});
if (!values.build || !existsSync(path.join(values.build, 'linux')) || !values.kernel || !values.config) {
  process.stderr.write('usage: npx tsx bench/kunit-time-modes.ts --build DIR --kernel mmu|nommu --config NAME [--idle-s 60] [--out FILE]\n');
  process.exit(64);
}
const buildDir = values.build;
const idleMs = Number(values['idle-s'] ?? 60) * 1000;
const out = values.out ?? TIME_MODES_FILE;

type Shape = { name: string; status: string; children: Shape[] };
const shape = (ts: readonly TestNode[]): Shape[] => ts.map((x) => ({ name: x.name, status: x.status, children: shape(x.children) }));

async function measure(mode: TimeMode): Promise<{ tests: Map<string, TestNode>; ms: Map<string, number> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-time-modes-'));
  // mkdtemp makes it 0700: the sandbox uid must get through it to its own tmp.
  chmodSync(dir, 0o755);
  const tmp = path.join(dir, 'tmp');
  ownedDir(tmp);
  try {
    const r = await runSharded({
      kernelDir: buildDir,
      tmpDir: tmp,
      consoleLog: path.join(dir, 'console.log'),
      signal: new AbortController().signal,
      deadline: Date.now() + 4 * 3600_000,
      name: `time-modes-${process.pid}`,
      sink: { appendTap: async () => undefined, event: async () => undefined },
      selection: {},
      shards: 1,
      isolate: 'suite',
      timeTravel: true,
      modeOf: () => mode,
      history: new Map(),
      idleMs,
      onProgress: (done, total) => process.stderr.write(`\r${mode}: ${done}/${total} suites`),
    });
    process.stderr.write('\n');
    return { tests: new Map(r.tests.map((t) => [t.name, t])), ms: r.durations };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const real = await measure('real');
const tt = await measure('time-travel');
const data: TimeModes = loadTimeModes(out);
data.kernel = loadCatalog()[0]!.version;
data.command = 'npx tsx bench/kunit-time-modes.ts --build <base build dir> --kernel mmu|nommu --config <name>';
const now = new Date().toISOString();
for (const [name, r] of real.tests) {
  // A suite without tests never boots (sharded.ts reports it as a serial run does): nothing to decide.
  if (r.planned === 0 && r.children.length === 0) continue;
  const t = tt.tests.get(name);
  const m: SuiteMeasurement = {
    kernel: values.kernel,
    config: values.config,
    real_ms: r.status === 'crash' ? null : (real.ms.get(name) ?? null),
    time_travel_ms: !t || t.status === 'crash' ? null : (tt.ms.get(name) ?? null),
    same_results: !!t && JSON.stringify(shape([r])) === JSON.stringify(shape([t])),
    measured_at: now,
  };
  const prev: SuiteDecision = data.suites[name] ?? { mode: 'real', why: '', measurements: [] };
  const measurements = [...prev.measurements.filter((x) => !(x.kernel === m.kernel && x.config === m.config)), m];
  data.suites[name] = decide(measurements);
}
data.suites = Object.fromEntries(Object.entries(data.suites).sort(([a], [b]) => (a < b ? -1 : 1)));
writeFileSync(out, JSON.stringify(data, null, 2) + '\n');
const tt_ = Object.values(data.suites).filter((s) => s.mode === 'time-travel').length;
console.log(`${out}: ${Object.keys(data.suites).length} suites, ${tt_} time-travel`);
console.log('\n| suite | mode | real time (ms) | time-travel (ms) | why |\n| --- | --- | ---: | ---: | --- |');
for (const [name, d] of Object.entries(data.suites)) {
  const cell = (f: (m: SuiteMeasurement) => number | null) => d.measurements.map((m) => `${m.kernel}: ${f(m) ?? 'did not end'}`).join(', ');
  console.log(`| ${name} | ${d.mode} | ${cell((m) => m.real_ms)} | ${cell((m) => m.time_travel_ms)} | ${d.why} |`);
}

function decide(ms: SuiteMeasurement[]): SuiteDecision {
  const differ = ms.find((m) => !m.same_results);
  if (differ) {
    const why = differ.time_travel_ms === null ? `did not end under time-travel (${differ.kernel}, ${differ.config})` : `results differ under time-travel (${differ.kernel}, ${differ.config})`;
    return { mode: 'real', why, measurements: ms };
  }
  const slower = ms.find((m) => m.real_ms !== null && m.time_travel_ms !== null && m.time_travel_ms > m.real_ms * 1.25 + 250);
  if (slower) return { mode: 'real', why: `slower under time-travel (${slower.time_travel_ms} ms against ${slower.real_ms} ms, ${slower.kernel})`, measurements: ms };
  const gain = Math.max(...ms.map((m) => (m.real_ms ?? 0) - (m.time_travel_ms ?? 0)));
  return { mode: 'time-travel', why: gain > 1000 ? `same results, ${Math.round(gain / 1000)} s faster` : 'same results, no slower', measurements: ms };
}

export {};
