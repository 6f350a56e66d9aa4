/**
 * Benchmark (run by hand): time from POST to the first KTAP line and to the final result, cold
 * and warm, next to `kunit.py run` on the same config, in one run.
 *
 *   npx tsx bench/kunit-latency.ts [--small] [--nommu] [--skip-kunit-py]
 *
 * Cold: an empty cache root (build directories and ccache) for the service, an empty build
 * directory for kunit.py. Warm: the same job again after a one-line change to a test file
 * (lib/tests/list-test.c) — a patch job for the service, an edit of the tree for kunit.py.
 * The service runs as `npm start` does (private redis-server, API, one worker process).
 */
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CACHE_DIR, REPO_DIR } from '@nommu-ci/shared';
import { freePort } from '@nommu-ci/shared/redis-server';

const { values } = parseArgs({ options: { small: { type: 'boolean' }, nommu: { type: 'boolean' }, 'skip-kunit-py': { type: 'boolean' } } });
const SOURCE = path.join(CACHE_DIR, 'src/linux-source-7.2');
const TEST_FILE = 'lib/tests/list-test.c';
const KUNITCONFIG = values.small ? 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n' : undefined;
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
}

async function serviceJob(base: string, body: object): Promise<Timing> {
  const t0 = Date.now();
  const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 202) throw new Error(`POST: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const tap = await fetch(`${base}/v1/jobs/${id}/tap`);
  let first = 0;
  for await (const _chunk of tap.body!) if (!first) first = Date.now();
  const total = Date.now();
  const rec = (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as {
    state: string;
    stage: string | null;
    message: string | null;
    summary: Record<string, number>;
    timings: { stages: Record<string, number> };
  };
  const st = Object.entries(rec.timings.stages).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ');
  return { firstKtapS: (first - t0) / 1000, totalS: (total - t0) / 1000, detail: `${rec.state}${rec.state === 'passed' ? '' : ` at ${rec.stage}: ${rec.message}`}; ${JSON.stringify(rec.summary)}; ${st}` };
}

async function kunitPy(tree: string, buildDir: string): Promise<Timing> {
  const args = ['tools/testing/kunit/kunit.py', 'run', `--build_dir=${buildDir}`, '--jobs=2', '--raw_output=all'];
  if (KUNITCONFIG) {
    writeFileSync(path.join(root, 'kunitconfig'), KUNITCONFIG);
    args.push(`--kunitconfig=${path.join(root, 'kunitconfig')}`);
  }
  if (values.nommu) args.push('--kconfig_add', 'CONFIG_MMU=n');
  const t0 = Date.now();
  let first = 0;
  let out = '';
  const p = spawn('python3', args, { cwd: tree });
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!first && /^\s*K?TAP version/m.test(out)) first = Date.now();
  });
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => p.once('exit', r));
  const total = Date.now();
  const elapsed = /Elapsed time: .*/.exec(out)?.[0] ?? `exit ${p.exitCode}`;
  return { firstKtapS: (first - t0) / 1000, totalS: (total - t0) / 1000, detail: elapsed };
}

async function main(): Promise<void> {
  mkdirSync(path.join(root, 'cache/src'), { recursive: true });
  symlinkSync(SOURCE, path.join(root, 'cache/src/linux-source-7.2'));
  cpSync(SOURCE + '.version', path.join(root, 'cache/src/linux-source-7.2.version'));
  const port = await freePort();
  const env = { ...process.env, NOMMU_CI_CACHE: path.join(root, 'cache'), PORT: String(port), NOMMU_CI_REDIS_PORT: String(await freePort()), LOG_LEVEL: 'warn' };
  const svc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'infra/start.ts')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      if (i > 200) throw new Error('service did not start');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const job = { kind: 'kunit', mmu: !values.nommu, ...(KUNITCONFIG ? { kunitconfig: KUNITCONFIG } : {}), timeout_s: 3600 };
  const rows: [string, Timing][] = [];
  try {
    rows.push(['service cold', await serviceJob(base, job)]);
    rows.push(['service warm (one-line patch)', await serviceJob(base, { ...job, patch: patchFor() })]);
  } finally {
    svc.kill('SIGTERM');
    await new Promise((r) => svc.once('exit', r));
  }
  if (!values['skip-kunit-py']) {
    const tree = path.join(root, 'kunit-tree');
    execFileSync('cp', ['-al', SOURCE, tree]);
    if (values.nommu) throw new Error('--nommu with kunit.py needs the series applied to the tree: use kernel-images/bin/try-nommu');
    rows.push(['kunit.py cold', await kunitPy(tree, path.join(root, 'kunit-build'))]);
    const f = path.join(tree, TEST_FILE);
    const text = oneLineChange(readFileSync(f, 'utf8'));
    unlinkSync(f); // a hardlink to the pristine tree: replace, never write through
    writeFileSync(f, text);
    rows.push(['kunit.py warm (one-line edit)', await kunitPy(tree, path.join(root, 'kunit-build'))]);
  }
  console.log(`\nconfig: ${values.small ? 'CONFIG_LIST_KUNIT_TEST only' : "the tree's default KUnit config"}; ${values.nommu ? 'no-MMU' : 'MMU'}; ${execFileSync('nproc').toString().trim()} cores`);
  console.log('| run | first KTAP line (s) | final result (s) | detail |\n| --- | --- | --- | --- |');
  for (const [name, t] of rows) console.log(`| ${name} | ${t.firstKtapS.toFixed(1)} | ${t.totalS.toFixed(1)} | ${t.detail} |`);
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
}

await main();
