/**
 * A run's extra cells (extras.ts): which series get them, what their jobs ask for, and how their
 * results reach the verdict: through the store (a real redis-server) as loadCells reads them,
 * into computeVerdict, as the run processor and the report routes do.
 */
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMbox } from '../mbox.js';
import { REPO_DIR } from '../paths.js';
import { startRedisServer, type RedisServer } from '../redis-server.js';
import type { TestNode } from '../result.js';
import { JobStore } from '../store.js';
import { extraCells, extraRequest, MM_TARGET, touchesMm, type ExtraCell } from './extras.js';
import { narrowTargets } from './blame.js';
import { loadCells } from './live.js';
import { finishSampleJob, listSuite, sampleRun } from './samples.js';
import { runSeries } from './series.js';
import { computeVerdict } from './verdict.js';
import { newJobRecord } from '../job.js';

const fixture = parseMbox(readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8'));
const mmSeries = { ...runSeries(fixture), patches: runSeries(fixture).patches.map((p, i) => (i === 0 ? { ...p, files: ['mm/nommu.c'] } : p)) };

/** nommu-ci/mm's tree as the worker stores it: mappings with the given case statuses. */
const mmTree = (...cases: TestNode['status'][]): TestNode[] => [
  {
    name: MM_TARGET,
    status: cases.includes('fail') ? 'fail' : 'pass',
    diagnostics: [],
    children: [{ name: 'mappings', status: cases.includes('fail') ? 'fail' : 'pass', diagnostics: [], children: cases.map((status, i) => ({ name: `case ${i + 1}`, status, diagnostics: [], children: [] })) }],
  },
];

let server: RedisServer;
let redis: Redis;
let store: JobStore;
const dir = path.join(os.tmpdir(), `nci-extras-redis-${process.pid}`);

beforeAll(async () => {
  server = await startRedisServer({ dir });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  store = new JobStore(redis);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('extra cells of a run', () => {
  it('only a series that touches mm/ gets them: nommu-ci/mm, base and series, on both kernels', () => {
    expect(touchesMm(runSeries(fixture))).toBe(runSeries(fixture).patches.some((p) => p.files.some((f) => f.startsWith('mm/'))));
    expect(extraCells({ ...mmSeries, patches: mmSeries.patches.map((p) => ({ ...p, files: ['lib/list_sort.c', 'mmx/a.c'] })) }, () => 'x')).toEqual([]);
    let n = 0;
    const cells = extraCells(mmSeries, () => `job-${++n}`);
    expect(cells.map((c) => [c.key, c.series, c.mmu, c.job, c.target])).toEqual([
      ['base-nommu', false, false, 'job-1', MM_TARGET],
      ['base-mmu', false, true, 'job-2', MM_TARGET],
      ['series-nommu', true, false, 'job-3', MM_TARGET],
      ['series-mmu', true, true, 'job-4', MM_TARGET],
    ]);
    const run = { kernel: 'debian-7.2', options: { per_patch: false, kconfig_add: ['CONFIG_DEBUG_VM=y'], timeout_s: 600, kunitconfig: 'CONFIG_KUNIT=y\n' } };
    expect(extraRequest(run, cells[2]!, 'PATCH')).toEqual({ kind: 'kselftest', kernel: 'debian-7.2', mmu: false, targets: [MM_TARGET], patch: 'PATCH', kconfig_add: ['CONFIG_DEBUG_VM=y'], timeout_s: 600 });
    expect(extraRequest(run, cells[1]!, undefined)).not.toHaveProperty('patch');
    expect(extraRequest(run, cells[1]!, undefined)).not.toHaveProperty('coverage');
    // A coverage run measures the exerciser too: its lines count with the KUnit job's.
    expect(extraRequest({ ...run, options: { ...run.options, coverage: true } }, cells[2]!, 'PATCH')).toMatchObject({ targets: [MM_TARGET], coverage: true });
  });

  it('their results join the KUnit cells in the verdict: a case the series breaks is a new failure, a bug on both sides still failing', async () => {
    const { run } = sampleRun(fixture, { 'base-nommu': { kind: 'passed' }, 'base-mmu': { kind: 'passed' }, 'series-nommu': { kind: 'passed' }, 'series-mmu': { kind: 'passed' } });
    let n = 0;
    const extras: ExtraCell[] = extraCells(mmSeries, () => `00000000-0000-4000-9000-00000000000${++n}`);
    const outcome = { 'base-nommu': mmTree('pass', 'fail'), 'base-mmu': mmTree('pass', 'pass'), 'series-nommu': mmTree('fail', 'fail'), 'series-mmu': mmTree('pass', 'pass') };
    for (const c of [...run.cells, ...extras]) await store.create(newJobRecord(c.job, 'kunit'), { kind: 'kunit' });
    for (const c of run.cells) await finishSampleJob(store, c.job, c.mmu, { kind: 'passed', tests: [listSuite()] });
    // The series' no-MMU extra job still runs: the cell is not final, so no verdict yet.
    for (const c of extras.filter((e) => e.key !== 'series-nommu')) {
      const tests = outcome[c.key];
      await finishSampleJob(store, c.job, c.mmu, tests.some((t) => t.status === 'fail') ? { kind: 'test-failed', tests } : { kind: 'passed', tests });
    }
    await store.update(extras[2]!.job, { state: 'running' });
    const withExtras = { ...run, extras };
    const pending = await loadCells(store, withExtras);
    expect(pending.map((d) => d.record?.state)).toEqual(['passed', 'passed', 'running', 'passed']);

    await finishSampleJob(store, extras[2]!.job, false, { kind: 'test-failed', tests: outcome['series-nommu'] });
    const cells = await loadCells(store, withExtras);
    expect(cells.map((d) => d.results!.map((r) => r.name))).toEqual(Array(4).fill([listSuite().name, MM_TARGET]));
    const v = computeVerdict(cells);
    const nommu = v.kernels[0]!;
    expect(nommu.tests.map((t) => [t.path, t.kind])).toEqual([
      [`${MM_TARGET}.mappings.case 1`, 'new-failure'],
      [`${MM_TARGET}.mappings.case 2`, 'still-failing'],
    ]);
    expect(v.kernels[1]!.tests).toEqual([]);
    expect(v.outcome).toBe('regression');
    expect(v.headline).toBe('1 new test failure on no-MMU');
    // per_patch narrows with KUnit prefix jobs, which cannot show it: nothing to narrow.
    expect(narrowTargets(v)).toEqual([]);
    // Without extras the same run is what it was.
    expect(computeVerdict(await loadCells(store, run)).outcome).toBe('pass');
  });

  it('an extra job that ended without results is one failed leaf naming why', async () => {
    const { run } = sampleRun(fixture, { 'base-nommu': { kind: 'passed' }, 'base-mmu': { kind: 'passed' }, 'series-nommu': { kind: 'passed' }, 'series-mmu': { kind: 'passed' } });
    let n = 0;
    const extras = extraCells(mmSeries, () => `00000000-0000-4000-a000-00000000000${++n}`);
    for (const c of [...run.cells, ...extras]) await store.create(newJobRecord(c.job, 'kunit'), { kind: 'kunit' });
    for (const c of run.cells) await finishSampleJob(store, c.job, c.mmu, { kind: 'passed', tests: [listSuite()] });
    for (const c of extras) await finishSampleJob(store, c.job, c.mmu, c.key === 'series-mmu' ? { kind: 'boot-failed', message: 'the kernel printed no KTAP' } : { kind: 'passed', tests: mmTree('pass') });
    const v = computeVerdict(await loadCells(store, { ...run, extras }));
    const mmu = v.kernels[1]!;
    expect(mmu.tests.map((t) => [t.path, t.kind, t.reason])).toEqual([
      [`${MM_TARGET}.mappings.case 1`, 'missing', undefined],
      [MM_TARGET, 'new-test', `${MM_TARGET} did not run: failed at boot: the kernel printed no KTAP`],
    ]);
    expect(v.outcome).toBe('regression');
  });
});
