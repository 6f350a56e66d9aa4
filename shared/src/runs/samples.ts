/**
 * Sample cell outcomes as the worker records them (job record, result tree, build log), for the
 * verdict and report tests and for the API/webhook tests that finish a run's jobs by writing
 * into the store what a worker would. They mirror the fixture series in shared/fixtures/series:
 * patch 2/3 breaks list_test_list_empty, patch 3/3 breaks mm/nommu.c (no-MMU only). Test code only:
 * exported as `@nommu-ci/shared/testing`, not from the package index.
 */
import type { JobRecord } from '../job.js';
import { summarize, type TestNode, type TestStatus } from '../result.js';
import type { JobStore } from '../store.js';
import { computeVerdict, runStateOf } from './verdict.js';
import { runSeries } from './series.js';

const LIST_CASES = ['list_test_list_init', 'list_test_list_add', 'list_test_list_empty', 'list_test_list_del'];

export function listSuite(statuses: Partial<Record<string, TestStatus>> = {}, omit: string[] = []): TestNode {
  return {
    name: 'list-kunit-test',
    status: Object.values(statuses).some((s) => s === 'fail' || s === 'crash') ? 'fail' : 'pass',
    diagnostics: [],
    planned: LIST_CASES.length,
    children: LIST_CASES.filter((c) => !omit.includes(c)).map((name) => {
      const status = statuses[name] ?? 'pass';
      return {
        name,
        status,
        diagnostics:
          status === 'fail'
            ? [
                `    # ${name}: EXPECTATION FAILED at lib/tests/list-test.c:312`,
                '    Expected list_empty(&list1) to be true, but is false',
              ]
            : [],
        children: [],
        ...(status === 'crash' ? { reason: 'kernel panic' } : {}),
      };
    }),
  };
}

export const NOMMU_BUILD_ERROR_MESSAGE = [
  'build failed (exit status 2):',
  "/src/mm/nommu.c:95:32: error: implicit declaration of function 'vma_span_bytes' [-Wimplicit-function-declaration]",
  'make[4]: *** [/src/scripts/Makefile.build:287: mm/nommu.o] Error 1',
  'make[3]: *** [/src/scripts/Makefile.build:556: mm] Error 2',
].join('\n');

export const NOMMU_BUILD_LOG = [
  '  CC      mm/filemap.o',
  "/src/mm/nommu.c: In function 'kobjsize':",
  "/src/mm/nommu.c:95:32: error: implicit declaration of function 'vma_span_bytes' [-Wimplicit-function-declaration]",
  '   95 |                         return vma_span_bytes(vma);',
  '      |                                ^~~~~~~~~~~~~~',
  'make[4]: *** [/src/scripts/Makefile.build:287: mm/nommu.o] Error 1',
  '',
].join('\n');

export type SampleOutcome =
  | { kind: 'passed'; tests?: TestNode[] }
  | { kind: 'test-failed'; tests: TestNode[] }
  | { kind: 'build-failed'; message?: string; log?: string }
  | { kind: 'patch-failed'; message: string }
  | { kind: 'boot-failed'; message: string }
  | { kind: 'error'; message: string };

/** The record (and results, build log) a worker leaves for an outcome. */
export function sampleCell(id: string, mmu: boolean, o: SampleOutcome): { record: JobRecord; results: TestNode[] | null; buildLog: string | null } {
  const t0 = '2026-11-29T05:00:00.000Z';
  const base: JobRecord = {
    id,
    kind: 'kunit',
    state: 'passed',
    stage: null,
    message: null,
    summary: { passed: 0, failed: 0, skipped: 0, crashed: 0 },
    timings: { queued_at: t0, started_at: t0, finished_at: '2026-11-29T05:03:00.000Z', stages: { source: 100, config: 2000, build: 60000, boot: 5000 } },
    kernel: { name: 'debian-7.2', version: '7.2.12-1', series: mmu ? null : 'nommu@0123456789ab' },
    config: { hash: 'ab'.repeat(32), mmu },
    attempt: 1,
  };
  switch (o.kind) {
    case 'passed': {
      const tests = o.tests ?? [listSuite()];
      const s = summarize(tests);
      return { record: { ...base, summary: s, message: `${s.passed} passed, ${s.skipped} skipped` }, results: tests, buildLog: null };
    }
    case 'test-failed': {
      const s = summarize(o.tests);
      return { record: { ...base, state: 'failed', stage: 'test', summary: s, message: `${s.failed} failed, ${s.crashed} crashed` }, results: o.tests, buildLog: null };
    }
    case 'build-failed':
      return {
        record: { ...base, state: 'failed', stage: 'build', config: null, message: o.message ?? NOMMU_BUILD_ERROR_MESSAGE, timings: { ...base.timings, stages: { source: 100, config: 2000, build: 30000 } } },
        results: null,
        buildLog: o.log ?? NOMMU_BUILD_LOG,
      };
    case 'patch-failed':
      return { record: { ...base, state: 'failed', stage: 'patch', config: null, message: o.message, timings: { ...base.timings, stages: { source: 100, patch: 50 } } }, results: null, buildLog: null };
    case 'boot-failed':
      return { record: { ...base, state: 'failed', stage: 'boot', message: o.message }, results: null, buildLog: null };
    case 'error':
      return { record: { ...base, state: 'error', stage: 'infra', message: o.message, config: null }, results: null, buildLog: null };
  }
}

/** Finishes a job in the store as the worker's processor does (record, results, build log, streams ended). */
export async function finishSampleJob(store: JobStore, id: string, mmu: boolean, o: SampleOutcome): Promise<void> {
  const c = sampleCell(id, mmu, o);
  if (c.results) await store.setResults(id, c.results);
  if (c.buildLog) await store.putArtifact(id, 'build.log', Buffer.from(c.buildLog));
  await store.update(id, { ...c.record, id, timings: { ...c.record.timings } });
  await store.endTap(id, 1, false);
  await store.endEvents(id);
}

/** A finished run over `mbox` whose four cells ended as `outcomes` say, with its verdict computed. */
export function sampleRun(
  mbox: import('../mbox.js').ParsedMbox,
  outcomes: Record<import('./model.js').CellKey, SampleOutcome>,
  options: Partial<import('./model.js').RunRecord['options']> = {},
): { run: import('./model.js').RunRecord; cells: import('./model.js').CellData[] } {
  const cells: import('./model.js').CellData[] = (['base-nommu', 'base-mmu', 'series-nommu', 'series-mmu'] as const).map((key, i) => {
    const mmu = key.endsWith('-mmu');
    const job = `00000000-0000-4000-8000-00000000000${i + 1}`;
    const c = sampleCell(job, mmu, outcomes[key]);
    return { cell: { key, series: key.startsWith('series'), mmu, job }, ...c };
  });
  const verdict = computeVerdict(cells);
  const run: import('./model.js').RunRecord = {
    id: '11111111-2222-4333-8444-555555555555',
    state: runStateOf(verdict),
    created_at: '2026-11-29T05:00:00.000Z',
    finished_at: '2026-11-29T05:04:00.000Z',
    kernel: 'debian-7.2',
    options: { per_patch: false, ...options },
    series: runSeries(mbox),
    cells: cells.map((c) => c.cell as import('./model.js').Cell),
    prefixes: [],
    verdict,
    blame: null,
    environment: { compiler: 'gcc (Debian 14.2.0-19) 14.2.0' },
    webhook: null,
  };
  return { run, cells };
}
