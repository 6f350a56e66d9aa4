/**
 * Sharded KUnit runs end to end (real redis-server, real UML builds and boots, sandboxed), on a
 * small config of several suites, one of which (lib_ratelimit: ~25 s of sleeping) runs under
 * time-travel once kernel-images/kunit-time-modes.json says so: the sharded result equals the serial one test by test on both kernels, the merged
 * KTAP stream is valid, kunit.py reads the same document from it as the API serves; a patch that
 * kills the kernel in one suite leaves every other suite's results and names the suite; kunit.py's
 * list, attribute filter and isolation options; a base result reused.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globMatch, kunitJson, loadCatalog, loadSeries, parseKtap, REPO_DIR, type KunitJobRequest, type TestNode } from '@nommu-ci/shared';
import { timeModeOf } from '../src/kunit/time-modes.js';
import { runJobOn, startTestRedis, tapLines, type Run, type TestRedis } from './helpers.js';

export const SHARD_KUNITCONFIG = [
  'CONFIG_KUNIT=y',
  'CONFIG_KUNIT_EXAMPLE_TEST=y',
  'CONFIG_LIST_KUNIT_TEST=y',
  'CONFIG_RATELIMIT_KUNIT_TEST=y',
  'CONFIG_BITFIELD_KUNIT=y',
  'CONFIG_HASH_KUNIT_TEST=y',
  'CONFIG_CMDLINE_KUNIT_TEST=y',
  // kunit-test.c: among its suites kunit_fault, which has no test unless CONFIG_KUNIT_FAULT_TEST
  // (a filtered kernel drops it; a serial run reports it skipped).
  'CONFIG_KUNIT_TEST=y',
].join('\n') + '\n';
const kernel = loadCatalog()[0]!;
const series = loadSeries();
const TREE = kernel.path;
const CRASH_PATCH = readFileSync(path.join(REPO_DIR, 'shared/fixtures/ktap/patches/crash.patch'), 'utf8');

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('shards');
});
afterAll(async () => {
  await t?.stop();
});

const runJob = (request: Omit<KunitJobRequest, 'kind'>): Promise<Run> =>
  runJobOn(t, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SHARD_KUNITCONFIG, timeout_s: 7200, shards: 2, ...request }, { timeoutMs: 3_600_000 });

/** What "the same result" means: suites, order, tests, statuses (diagnostics hold addresses and timings). */
type Shape = { name: string; status: string; planned?: number; children: Shape[] };
const shape = (ts: readonly TestNode[]): Shape[] =>
  ts.map((x) => ({ name: x.name, status: x.status, ...(x.planned !== undefined ? { planned: x.planned } : {}), children: shape(x.children) }));

/** kunit.py --json on a job's KTAP stream, by the tree's own kunit_json.py. */
function kunitPyJson(lines: string[]): ReturnType<typeof kunitJson> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-kunit-json-'));
  try {
    const f = path.join(dir, 'tap.txt');
    writeFileSync(f, lines.join('\n') + '\n');
    const out = JSON.parse(execFileSync('python3', [path.join(REPO_DIR, 'shared/fixtures/ktap/kunit-tool-json.py'), TREE, f], { encoding: 'utf8' })) as Record<string, ReturnType<typeof kunitJson>>;
    return out[f]!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const byName = <T extends { name: string }>(xs: T[]): T[] => [...xs].sort((a, b) => (a.name < b.name ? -1 : 1));

async function results(run: Run): Promise<TestNode[]> {
  return (await t.store.results(run.id)) ?? [];
}

describe.sequential('sharded KUnit runs (real redis-server, real UML, sandboxed)', () => {
  const serial: Partial<Record<'mmu' | 'nommu', TestNode[]>> = {};

  for (const mmu of [true, false]) {
    const k = mmu ? 'mmu' : 'nommu';
    it.skipIf(!mmu && !series)(
      `${k}: sharded over 2 kernels equals the serial run test by test; the merged KTAP is valid; lib_ratelimit ran in time-travel`,
      async () => {
        const one = await runJob({ mmu, shards: 1 });
        const two = await runJob({ mmu, shards: 2 });
        for (const [name, run] of [['serial', one], ['sharded', two]] as const) {
          console.log(`${k} ${name}: ${run.record.state} "${run.record.message}" in ${run.ms} ms, stages ${JSON.stringify(run.record.timings.stages)}, first KTAP line at ${run.live[0]?.[0]} ms`);
        }
        expect(one.record.state).toBe('passed');
        expect(two.record.state).toBe('passed');
        const a = await results(one);
        const b = await results(two);
        serial[k] = a;
        expect(a.map((s) => s.name)).toEqual(expect.arrayContaining(['example', 'list-kunit-test', 'lib_ratelimit', 'bitfields', 'hash', 'cmdline', 'kunit_fault']));
        expect(b.find((s) => s.name === 'kunit_fault')).toMatchObject({ status: 'skip', children: [] });
        expect(shape(b)).toEqual(shape(a));
        expect(two.record.summary).toEqual(one.record.summary);
        expect(two.record.message).toMatch(/in \d+ boots on 2 shards/);

        // The stream: one header, every suite once, valid whatever order the shards finished in.
        const tap = await tapLines(t, two.id);
        expect(tap.slice(0, 2)).toEqual(['KTAP version 1', `1..${a.length}`]);
        const parsed = parseKtap(tap);
        expect(parsed.errors).toEqual([]);
        expect(parsed.complete).toBe(true);
        expect(shape(byName(parsed.tests))).toEqual(shape(byName(a)));

        // kunit.py reads from each stream the document the API serves for the stored tree.
        const fromSerial = kunitPyJson(await tapLines(t, one.id));
        expect(kunitJson(a, a.length, { buildEnvironment: '' })).toEqual(fromSerial);
        const fromSharded = kunitPyJson(tap);
        expect(byName(kunitJson(b, b.length, { buildEnvironment: '' }).sub_groups)).toEqual(byName(fromSharded.sub_groups));

        // Each suite's boot ran in the mode kernel-images/kunit-time-modes.json decided for it
        // (lib_ratelimit: time-travel once measured); the serial run had no time-travel boot.
        const consoleText = (await t.store.artifact(two.id, 'console.log'))!.toString();
        const boots = [...consoleText.matchAll(/=== nommu-ci: shard \d+, boot \d+: kunit\.filter_glob=(\S+)( time-travel)?$/gm)];
        expect(boots.length).toBeGreaterThan(0);
        for (const s of a) {
          const bootOf = boots.find((m) => globMatch(m[1]!.split('.')[0]!, s.name));
          expect(bootOf?.[2] ? 'time-travel' : 'real', s.name).toBe(timeModeOf(s.name));
        }
        console.log(`${k}: lib_ratelimit ran in ${timeModeOf('lib_ratelimit')} mode`);
        expect((await t.store.artifact(one.id, 'console.log'))!.toString()).not.toMatch(/ time-travel$/m);

        // Progress: suites done of those planned, ending complete.
        const progress = two.events.filter((e) => e.type === 'progress' && e.stage === 'test');
        expect(progress.at(-1)).toMatchObject({ done: a.length, total: a.length, unit: 'suites' });
      },
      7_500_000,
    );
  }

  it(
    'a patch that kills the kernel in one suite: that suite is crashed and named, every other suite has its results',
    async () => {
      const run = await runJob({ shards: 2, patch: CRASH_PATCH });
      console.log(`crash: ${run.record.state} "${run.record.message}" in ${run.ms} ms`);
      expect(run.record.state).toBe('failed');
      expect(run.record.message).toMatch(/suite list-kunit-test crashed the kernel/);
      const got = await results(run);
      const want = serial.mmu ?? [];
      expect(got.map((s) => s.name)).toEqual(want.map((s) => s.name));
      for (const [i, s] of got.entries()) {
        if (s.name === 'list-kunit-test') {
          expect(s.status).toBe('crash');
          // The cases before the crash reported.
          expect(s.children.filter((c) => c.status === 'pass').length).toBeGreaterThan(0);
        } else {
          expect(shape([s])).toEqual(shape([want[i]!]));
        }
      }
      const tap = await tapLines(t, run.id);
      expect(tap).toContain(`1..${want.length}`);
      expect(tap.some((l) => /^not ok \d+ list-kunit-test$/.test(l))).toBe(true);
    },
    3_600_000,
  );

  it(
    'kunit.py options: list_only, filter with filter_action skip, isolate per suite',
    async () => {
      const want = serial.mmu ?? [];
      const listed = await runJob({ list_only: true });
      expect(listed.record.state).toBe('passed');
      const l = await results(listed);
      expect(l.map((s) => [s.name, s.children.map((c) => c.name)])).toEqual(want.map((s) => [s.name, s.children.map((c) => c.name)]));
      expect(l.every((s) => s.status === 'skip' && s.children.every((c) => c.reason === 'listed, not run'))).toBe(true);
      expect(parseKtap(await tapLines(t, listed.id)).complete).toBe(true);

      // lib_ratelimit's cases are KUNIT_CASE_SLOW: "speed>slow" leaves them out, "skip" shows them skipped.
      const filtered = await runJob({ filter: 'speed>slow', filter_action: 'skip' });
      console.log(`filtered: ${filtered.record.state} "${filtered.record.message}" in ${filtered.ms} ms`);
      const f = await results(filtered);
      const rl = f.find((s) => s.name === 'lib_ratelimit')!;
      expect(rl.children.length).toBeGreaterThan(0);
      expect(rl.children.every((c) => c.status === 'skip')).toBe(true);
      expect(shape(f.filter((s) => s.name === 'list-kunit-test'))).toEqual(shape(want.filter((s) => s.name === 'list-kunit-test')));

      const isolated = await runJob({ isolate: 'suite', filter_glob: '*list*' });
      console.log(`isolated: ${isolated.record.state} "${isolated.record.message}" in ${isolated.ms} ms`);
      const i = await results(isolated);
      expect(shape(i)).toEqual(shape(want.filter((s) => globMatch('*list*', s.name))));
      expect(isolated.record.message).toMatch(new RegExp(`in ${i.length} boots`));
    },
    3_600_000,
  );

  it(
    'an unpatched job may take the suites an identical earlier job passed, and says so',
    async () => {
      const want = serial.mmu ?? [];
      const reused = await runJob({ reuse_base_result: true });
      console.log(`reused: ${reused.record.state} "${reused.record.message}" in ${reused.ms} ms`);
      expect(reused.record.state).toBe('passed');
      expect(reused.record.message).toMatch(new RegExp(`${want.length} of ${want.length} suites taken from base job`));
      expect(shape(await results(reused))).toEqual(shape(want));
      expect(parseKtap(await tapLines(t, reused.id)).complete).toBe(true);
    },
    3_600_000,
  );
});
