/**
 * The job kinds other than KUnit through the real worker (real redis-server, real UML builds in
 * the sandbox): boot-time selftests on the MMU and the no-MMU kernel, their counts checked
 * against the kernel's own summary lines in the console log; the same kselftest job on the MMU and
 * the no-MMU kernel, with comparable results.
 *
 * Cold, each kernel here is a build of a few minutes; later runs reuse the base builds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBootSelftests, loadCatalog, loadSeries, type JobRequest, type TestNode } from '@nommu-ci/shared';
import { runJobOn, startTestRedis, tapLines, type TestRedis } from './helpers.js';
import { child, named } from './tree.js';

const kernel = loadCatalog()[0]!;
const SELFTESTS = loadBootSelftests().map((s) => s.name);

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('worker-kinds');
});
afterAll(async () => {
  await t?.stop();
});

/** The summary lines the kernel printed, by selftest, as the catalogue's patterns read them. */
function summaryCounts(consoleLog: string): Map<string, { passed?: number; failed?: number; total?: number }> {
  const out = new Map<string, { passed?: number; failed?: number; total?: number }>();
  const lines = consoleLog.split('\n').map((l) => l.replace(/^(<\d>)?(\[\s*\d+\.\d+\]\s?)?/, '').trimEnd());
  for (const s of loadBootSelftests()) {
    for (const re of s.summary.map((p) => new RegExp(p))) {
      for (const l of lines) {
        const g = re.exec(l)?.groups;
        if (!g) continue;
        const num = (k: string) => (g[k] === undefined ? undefined : Number(g[k]));
        out.set(s.name, { passed: num('passed'), failed: num('failed'), total: num('total') });
      }
    }
  }
  return out;
}

async function bootSelftestJob(mmu: boolean) {
  const run = await runJobOn(t, { kind: 'boot-selftest', kernel: kernel.name, mmu, selftests: SELFTESTS }, { timeoutMs: 1_500_000 });
  const r = run.record;
  const results = (await t.store.results(run.id)) ?? [];
  console.log(`boot-selftest mmu=${mmu}: ${r.state} ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}: ${r.message}`);
  for (const x of results) console.log(`  ${x.name}: ${x.status} ${x.children[0]?.diagnostics.find((d) => d.includes(': passed ')) ?? ''}`);
  const consoleLog = (await t.store.artifact(run.id, 'console.log'))?.toString() ?? '';
  const tap = await tapLines(t, run.id);
  return { run, r, results, consoleLog, tap };
}

/** Each selftest's counts diagnostic matches the kernel's summary line; pass iff nothing failed. */
function checkAgainstConsole(results: TestNode[], consoleLog: string): void {
  const printed = summaryCounts(consoleLog);
  expect(results.map((x) => x.name)).toEqual(expect.arrayContaining(SELFTESTS));
  for (const test of results) {
    const c = printed.get(test.name);
    expect(c, `${test.name}: no summary line in console.log`).toBeDefined();
    const total = c!.total ?? (c!.passed ?? 0) + (c!.failed ?? 0);
    const failed = c!.failed ?? (c!.passed !== undefined ? total - c!.passed : 0);
    const diag = test.children[0]!.diagnostics;
    expect(diag, test.name).toContain(`# ${test.name}: passed ${total - failed}, failed ${failed}, total ${total}`);
    if (failed > 0) expect(test.status, test.name).toBe('fail');
  }
}

describe.skipIf(!kernel.available).sequential('boot-selftest and kselftest jobs (real worker)', () => {
  it(
    'boot-selftest on the MMU kernel: every catalogued selftest runs; counts are the kernel summary lines',
    async () => {
      const { r, results, consoleLog, tap } = await bootSelftestJob(true);
      expect(r.config?.mmu).toBe(true);
      checkAgainstConsole(results, consoleLog);
      // The maple tree: its own line, e.g. "maple_tree: 3809321 of 3809321 tests passed".
      expect(consoleLog).toMatch(/maple_tree: (\d+) of \1 tests passed/);
      expect(results.find((x) => x.name === 'maple_tree')!.status).toBe('pass');
      expect(tap[0]).toBe('KTAP version 1');
      expect(tap[1]).toBe(`1..${SELFTESTS.length}`);
      expect(r.summary.passed + r.summary.failed).toBe(SELFTESTS.length);
      expect(r.state).toBe(r.summary.failed > 0 ? 'failed' : 'passed');
    },
    1_800_000,
  );

  it.runIf(loadSeries() !== null)(
    'boot-selftest on the no-MMU kernel: the same selftests, counts from its console',
    async () => {
      const { r, results, consoleLog } = await bootSelftestJob(false);
      expect(r.config?.mmu).toBe(false);
      expect(r.kernel?.series).not.toBeNull();
      checkAgainstConsole(results, consoleLog);
      expect(consoleLog).toMatch(/maple_tree: \d+ of \d+ tests passed/);
      expect(r.summary.crashed).toBe(0);
    },
    1_800_000,
  );

  const KSELFTESTS = ['timers:nanosleep', 'timers:rtcpie', 'mm:map_fixed_noreplace', 'mm:mlock-random-test'];
  const kselftestStatus = new Map<boolean, Map<string, string>>();

  async function kselftestJob(mmu: boolean) {
    const request: JobRequest = { kind: 'kselftest', kernel: kernel.name, mmu, targets: ['timers', 'mm'], tests: KSELFTESTS, test_timeout_s: 60 };
    const run = await runJobOn(t, request, { timeoutMs: 1_500_000 });
    const r = run.record;
    console.log(`kselftest mmu=${mmu}: ${r.state} ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}: ${r.message}`);
    const results = (await t.store.results(run.id))!;
    const test = (target: string, name: string): TestNode => child(named(results, target), name);
    expect(results.map((x) => x.name)).toEqual(['timers', 'mm']);
    kselftestStatus.set(mmu, new Map(KSELFTESTS.map((s) => [s, test(...(s.split(':') as [string, string])).status])));
    // live: the stream carried the init's KTAP; the build log has the programs' build
    expect(run.live.map((x) => x[1])).toEqual(await tapLines(t, run.id));
    return { run, r, test };
  }

  it(
    'kselftest on the MMU kernel: programs built from the tree run under our init, results nested per target',
    async () => {
      const { run, r, test } = await kselftestJob(true);
      expect(test('timers', 'nanosleep').status).toBe('pass');
      expect(test('timers', 'rtcpie').status).toBe('skip'); // UML has no RTC
      expect(test('mm', 'map_fixed_noreplace').status).toBe('pass');
      // needs libcap, which has no static library here: skipped with the compiler's reason
      expect(test('mm', 'mlock-random-test').status).toBe('skip');
      expect(test('mm', 'mlock-random-test').reason).toMatch(/build failed: .*sys\/capability\.h/);
      expect(r.state).toBe('passed');
      expect(r.config?.mmu).toBe(true);
      expect((await t.store.artifact(run.id, 'build.log'))!.toString()).toMatch(/kselftest: timers \(2\), mm \(2\)/);
    },
    1_800_000,
  );

  it(
    'the same kselftest job on the no-MMU kernel: static-pie programs run; MMU-only tests skipped saying why',
    async () => {
      const { run, r, test } = await kselftestJob(false);
      expect(r.state).toBe('passed');
      expect(r.config?.mmu).toBe(false);
      expect(test('timers', 'nanosleep').status).toBe('pass');
      expect(test('timers', 'rtcpie').status).toBe('skip');
      expect(test('mm', 'map_fixed_noreplace').reason).toBe('needs an MMU: maps at fixed addresses (MAP_FIXED)');
      // mlock() does not keep a program from running on no-MMU (MMU_FEATURES): it is built, and
      // fails to build here as on MMU.
      expect(test('mm', 'mlock-random-test').reason).toMatch(/build failed: .*sys\/capability\.h/);
      // Everything but the MAP_FIXED program was built, static-pie.
      expect((await t.store.artifact(run.id, 'build.log'))!.toString()).toMatch(/kselftest: timers \(2\), mm \(1\)\n/);
      // Comparable: what passes with an MMU and is skipped without one is the difference.
      const differ = KSELFTESTS.filter((s) => kselftestStatus.get(true)?.get(s) !== kselftestStatus.get(false)?.get(s));
      expect(differ).toEqual(['mm:map_fixed_noreplace']);
    },
    1_800_000,
  );
});
