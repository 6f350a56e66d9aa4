/**
 * Benchmark (run by hand): time from POST to the first KTAP line and to the final result, next
 * to `kunit.py run` on the same config, in one run, side by side:
 *
 *   npx tsx bench/kunit-latency.ts [--small] [--kernels mmu,nommu] [--shards N] [--skip-kunit-py] [--warm-only]
 *
 * Per kernel (MMU, and no-MMU with our series applied): the service cold (an empty cache root:
 * no build directories, no ccache), sharded and then serial (a serial job's kernel lacks the
 * sharded one's time-travel support, so it has a base build of its own), then the same config with a one-line
 * change to a test file (lib/tests/list-test.c) as a patch job, serial (`shards: 1`, one kernel
 * running every suite in turn, as kunit.py does) and sharded (`shards: N`, default the worker's
 * cores). kunit.py cold (an empty build directory) and after the same edit in its tree; for
 * no-MMU, kunit.py runs on the series-applied tree with CONFIG_MMU=n. Then, test by test on the
 * one-line patch, the sharded run against the serial one and the serial one against kunit.py:
 * every test whose status differs. The service runs as
 * `npm start` runs it (private redis-server, API, one worker process). Prints `uptime` before and
 * after: on a shared machine, say how loaded it was. `--warm-only` skips the cold rows and uses the
 * machine's cache (NOMMU_CI_CACHE), whose base builds an earlier job made.
 */
import { startService } from './service.js';
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CACHE_DIR, flattenTests, loadCatalog, loadSeries, REPO_DIR, type TestNode } from '@nommu-ci/shared';
import { seriesTree } from '../worker/src/stages/source.js';

const { values } = parseArgs({
  options: { small: { type: 'boolean' }, kernels: { type: 'string' }, shards: { type: 'string' }, 'skip-kunit-py': { type: 'boolean' }, 'warm-only': { type: 'boolean' } },
});
const SOURCE = path.join(CACHE_DIR, 'src/linux-source-7.2');
const TEST_FILE = 'lib/tests/list-test.c';
const KUNITCONFIG = values.small ? 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\nCONFIG_RATELIMIT_KUNIT_TEST=y\n' : undefined;
const KERNELS = (values.kernels ?? 'mmu,nommu').split(',') as ('mmu' | 'nommu')[];
const SHARDS = Number(values.shards ?? execFileSync('nproc').toString().trim());
const root = path.join(CACHE_DIR, 'bench', String(Date.now()));

/** A one-line change: a different message in one KUNIT_EXPECT of the list test. */
function oneLineChange(text: string): string {
  const i = text.indexOf('KUNIT_EXPECT_TRUE(test, list_empty(&list));');
  if (i < 0) throw new Error(`${TEST_FILE}: the line to change is gone`);
  return text.slice(0, i) + 'KUNIT_EXPECT_TRUE_MSG(test, list_empty(&list), "bench");' + text.slice(i + 'KUNIT_EXPECT_TRUE(test, list_empty(&list));'.length);
}

function patchFor(): string {
  const scratch = path.join(root, 'patch');
  mkdirSync(path.join(scratch, 'a', path.dirname(TEST_FILE)), { recursive: true });
  mkdirSync(path.join(scratch, 'b', path.dirname(TEST_FILE)), { recursive: true });
  const orig = readFileSync(path.join(SOURCE, TEST_FILE), 'utf8');
  writeFileSync(path.join(scratch, 'a', TEST_FILE), orig);
  writeFileSync(path.join(scratch, 'b', TEST_FILE), oneLineChange(orig));
  try {
    execFileSync('git', ['diff', '--no-index', '--no-prefix', `a/${TEST_FILE}`, `b/${TEST_FILE}`], { cwd: scratch });
    throw new Error('no difference');
  } catch (e) {
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? '';
    if (!out.includes('+++')) throw e;
    return out;
  }
}

interface Timing {
  firstKtapS: number;
  totalS: number;
  detail: string;
  /** Each test's status by dotted path (suite.test[.param]). */
  tests: Map<string, string>;
}

/** kunit.py's JSON group tree (kunit_json.py) as dotted path -> our status word. */
function kunitJsonStatuses(g: KunitJsonGroup, prefix = '', out = new Map<string, string>()): Map<string, string> {
  const word: Record<string, string> = { PASS: 'pass', FAIL: 'fail', SKIP: 'skip', ERROR: 'crash' };
  for (const sub of g.sub_groups ?? []) kunitJsonStatuses(sub, prefix ? `${prefix}.${sub.name}` : sub.name, out);
  for (const c of g.test_cases ?? []) out.set(prefix ? `${prefix}.${c.name}` : c.name, word[c.status] ?? c.status);
  return out;
}
interface KunitJsonGroup {
  name: string;
  sub_groups?: KunitJsonGroup[];
  test_cases?: { name: string; status: string }[];
}

/** The tests whose status differs between two runs (or that only one ran), one line each. */
function differences(a: Timing, b: Timing): string[] {
  const out: string[] = [];
  for (const name of [...new Set([...a.tests.keys(), ...b.tests.keys()])].sort()) {
    const x = a.tests.get(name) ?? 'not run';
    const y = b.tests.get(name) ?? 'not run';
    if (x !== y) out.push(`${name}: ${x} / ${y}`);
  }
  return out;
}

async function serviceJob(base: string, body: object): Promise<Timing> {
  const t0 = Date.now();
  const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 202) throw new Error(`POST: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  let first = 0;
  for (;;) {
    try {
      const tap = await fetch(`${base}/v1/jobs/${id}/tap`);
      for await (const _chunk of tap.body!) if (!first) first = Date.now();
      break;
    } catch {
      // fetch gives up on a body silent for 300 s, and a cold build is silent longer: follow again
      // (the stream replays from its start; the first line's time is already taken).
    }
  }
  const total = Date.now();
  const rec = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as {
    state: string;
    stage: string | null;
    message: string | null;
    summary: Record<string, number>;
    timings: { stages: Record<string, number> };
  };
  const results = (await (await fetch(`${base}/v1/jobs/${id}/results`)).json()) as TestNode[];
  const tests = new Map([...flattenTests(results)].map(([k, v]) => [k, v.status as string]));
  const st = Object.entries(rec.timings.stages).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ');
  const s = rec.summary;
  return {
    firstKtapS: (first - t0) / 1000,
    totalS: (total - t0) / 1000,
    detail: `${rec.state}${rec.state === 'passed' ? '' : ` at ${rec.stage}`}: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped, ${s.crashed} crashed; ${st}; ${rec.message ?? ''}`,
    tests,
  };
}

async function kunitPy(tree: string, buildDir: string, nommu: boolean): Promise<Timing> {
  const args = ['tools/testing/kunit/kunit.py', 'run', `--build_dir=${buildDir}`, `--jobs=${execFileSync('nproc').toString().trim()}`];
  if (KUNITCONFIG) {
    writeFileSync(path.join(root, 'kunitconfig'), KUNITCONFIG);
    args.push(`--kunitconfig=${path.join(root, 'kunitconfig')}`);
  }
  if (nommu) args.push('--kconfig_add', 'CONFIG_MMU=n');
  const t0 = Date.now();
  let first = 0;
  let out = '';
  const p = spawn('python3', [...args, '--raw_output=all'], { cwd: tree });
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!first && /^\s*K?TAP version/m.test(out)) first = Date.now();
  });
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => p.once('exit', r));
  const total = Date.now();
  const counts = execFileSync('python3', [path.join(REPO_DIR, 'shared/fixtures/ktap/kunit-tool-counts.py'), tree, '/dev/stdin'], { input: out }).toString();
  const c = (JSON.parse(counts) as Record<string, Record<string, number | string>>)['/dev/stdin']!;
  const json = execFileSync('python3', [path.join(REPO_DIR, 'shared/fixtures/ktap/kunit-tool-json.py'), tree, '/dev/stdin'], { input: out, maxBuffer: 256 << 20 }).toString();
  const tests = kunitJsonStatuses((JSON.parse(json) as Record<string, KunitJsonGroup>)['/dev/stdin']!);
  return { firstKtapS: (first - t0) / 1000, totalS: (total - t0) / 1000, detail: `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${c.crashed} crashed; exit ${p.exitCode}`, tests };
}

async function main(): Promise<void> {
  console.log(`uptime before: ${execFileSync('uptime').toString().trim()}`);
  const warmOnly = values['warm-only'] === true;
  if (!warmOnly) {
    mkdirSync(path.join(root, 'cache/src'), { recursive: true });
    symlinkSync(SOURCE, path.join(root, 'cache/src/linux-source-7.2'));
    cpSync(SOURCE + '.version', path.join(root, 'cache/src/linux-source-7.2.version'));
  }
  const svc = await startService({ cache: warmOnly ? CACHE_DIR : path.join(root, 'cache') });
  const base = svc.base;
  const rows: [string, Timing][] = [];
  const patch = patchFor();
  try {
    for (const k of KERNELS) {
      const job = { kind: 'kunit', mmu: k === 'mmu', ...(KUNITCONFIG ? { kunitconfig: KUNITCONFIG } : {}), timeout_s: 3600 };
      const cold = warmOnly ? 'base' : 'cold';
      rows.push([`${k}: service ${cold}, sharded (shards ${SHARDS})`, await serviceJob(base, { ...job, shards: SHARDS })]);
      // A serial job's kernel has no time-travel support: another config, so another base build.
      rows.push([`${k}: service ${cold}, serial (shards 1)`, await serviceJob(base, { ...job, shards: 1 })]);
      rows.push([`${k}: service warm, serial (shards 1)`, await serviceJob(base, { ...job, patch, shards: 1 })]);
      rows.push([`${k}: service warm, sharded (shards ${SHARDS})`, await serviceJob(base, { ...job, patch, shards: SHARDS })]);
    }
  } finally {
    await svc.stop();
  }
  if (!values['skip-kunit-py']) {
    for (const k of KERNELS) {
      const tree = path.join(root, `kunit-tree-${k}`);
      const kernel = loadCatalog()[0]!;
      const from = k === 'mmu' ? SOURCE : await seriesTree(kernel, loadSeries()!);
      execFileSync('cp', ['-al', from, tree]);
      const buildDir = path.join(root, `kunit-build-${k}`);
      rows.push([`${k}: kunit.py cold`, await kunitPy(tree, buildDir, k === 'nommu')]);
      const f = path.join(tree, TEST_FILE);
      const text = oneLineChange(readFileSync(f, 'utf8'));
      unlinkSync(f); // a hardlink to the pristine tree: replace, never write through
      writeFileSync(f, text);
      rows.push([`${k}: kunit.py warm (one-line edit)`, await kunitPy(tree, buildDir, k === 'nommu')]);
    }
  }
  console.log(`\nconfig: ${values.small ? 'list and ratelimit tests only' : "the tree's default KUnit config"}; ${execFileSync('nproc').toString().trim()} cores`);
  console.log(`uptime after: ${execFileSync('uptime').toString().trim()}`);
  console.log('| run | first KTAP line (s) | final result (s) | detail |\n| --- | --- | --- | --- |');
  for (const [name, t] of rows) console.log(`| ${name} | ${t.firstKtapS.toFixed(1)} | ${t.totalS.toFixed(1)} | ${t.detail} |`);
  // Test by test, on the one-line patch: sharded against serial, and the serial service run against kunit.py.
  const row = (name: string): Timing | undefined => rows.find(([n]) => n === name)?.[1];
  for (const k of KERNELS) {
    const pairs: [string, string][] = [
      [`${k}: service warm, sharded (shards ${SHARDS})`, `${k}: service warm, serial (shards 1)`],
      [`${k}: service warm, serial (shards 1)`, `${k}: kunit.py warm (one-line edit)`],
    ];
    for (const [x, y] of pairs) {
      const a = row(x);
      const b = row(y);
      if (!a || !b) continue;
      const d = differences(a, b);
      console.log(`\n${x} vs ${y}: ${a.tests.size} and ${b.tests.size} tests, ${d.length === 0 ? 'the same status for every test' : `${d.length} differ (status here / there):`}`);
      for (const line of d) console.log(`  ${line}`);
    }
  }
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
}

await main();
