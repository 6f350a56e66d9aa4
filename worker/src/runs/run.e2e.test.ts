/**
 * A real run end to end: the API queues the fixture series (shared/fixtures/series: 1/3 harmless,
 * 2/3 breaks list-kunit-test.list_test_list_empty, 3/3 breaks only the no-MMU build) as a flow of
 * four jobs, the real job worker builds and boots the four User-Mode Linux kernels in its sandbox,
 * and the run worker computes the verdict. Checked: the verdict names the KUnit regression on the
 * MMU kernel and the no-MMU-only build break with its file, and every report renders. 3/3
 * touches mm/, so the run also runs nommu-ci/mm on the four kernels (kselftest jobs): its results
 * join the cells', and on MMU, where both sides build, they compare without a change.
 *
 * Builds share two cores: the base builds are cached between runs (the same small kunitconfig as
 * the pipeline test), the series builds are incremental copies of them.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { loadBootSelftests, loadCatalog, loadCells, loadSeries, REPO_DIR, runQueueNames, RunStore, type QueueJobData, type RunRecord } from '@nommu-ci/shared';
import { buildApp } from '@nommu-ci/api';
import { freshQueueName, startTestRedis, type TestRedis } from '../../test/helpers.js';
import { startWorker, type RunningWorker } from '../index.js';
import { startRunWorker, type RunningRunWorker } from './index.js';

const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';
const FIXTURE = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8');
const kernel = loadCatalog()[0]!;
const series = loadSeries();
const RUN_TIMEOUT_MS = 75 * 60_000;

describe.skipIf(!kernel.available || series === null)('a real run of the fixture series', () => {
  let t: TestRedis;
  let queue: Queue<QueueJobData>;
  let worker: RunningWorker;
  let runWorker: RunningRunWorker;
  let app: Awaited<ReturnType<typeof buildApp>>;

  beforeAll(async () => {
    t = await startTestRedis('run-e2e');
    const name = freshQueueName('nci-run-e2e');
    queue = new Queue<QueueJobData>(name, { connection: t.redis.duplicate() });
    app = await buildApp({ redis: t.redis, store: t.store, queue, catalog: () => loadCatalog(), series: () => loadSeries(), bootSelftests: () => loadBootSelftests() });
    worker = await startWorker({ redisUrl: t.url, queueName: name, concurrency: 1, log: () => undefined });
    runWorker = await startRunWorker({ redisUrl: t.url, jobsQueueName: name, log: () => undefined });
  });
  afterAll(async () => {
    await runWorker?.close();
    await worker?.close(0);
    await app?.close();
    if (queue) {
      for (const n of [queue.name, runQueueNames(queue.name).runs, runQueueNames(queue.name).webhooks]) {
        const q = new Queue(n, { connection: t.redis.duplicate() });
        await q.obliterate({ force: true });
        await q.close();
      }
      await queue.close();
    }
    await t?.stop();
  });

  it(
    'names the KUnit regression on the MMU kernel and the build break only the no-MMU kernel has',
    async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/runs', payload: { patch: FIXTURE, kunitconfig: SMALL } });
      expect(res.statusCode).toBe(202);
      const { id } = res.json() as { id: string };
      const runs = new RunStore(t.redis);
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      let run: RunRecord | null = null;
      for (;;) {
        run = await runs.get(id);
        if (run?.finished_at) break;
        if (Date.now() > deadline) throw new Error(`run ${id} did not finish: ${JSON.stringify((await app.inject(`/v1/runs/${id}`)).json())}`);
        await new Promise((r) => setTimeout(r, 2000));
      }
      const v = run.verdict!;
      const detail = JSON.stringify(v, null, 2);
      expect(run.state, detail).toBe('failed');
      expect(v.outcome, detail).toBe('regression');
      const [nommu, mmu] = v.kernels;
      // the base kernels build and pass the list test
      expect(nommu!.base.state, detail).toBe('passed');
      expect(mmu!.base.state, detail).toBe('passed');
      // 3/3 breaks only the no-MMU build, at mm/nommu.c
      expect(v.breaksOnlyNoMmu, detail).toBe(true);
      expect(nommu!.build?.locations[0]?.file, detail).toBe('mm/nommu.c');
      expect(nommu!.build?.errors.join('\n'), detail).toContain('vma_span_bytes');
      // 2/3 breaks list_test_list_empty on the MMU kernel (the no-MMU series kernel does not build)
      expect(mmu!.tests.filter((x) => x.regression).map((x) => [x.path, x.kind]), detail).toEqual([['list-kunit-test.list_test_list_empty', 'new-failure']]);
      expect(v.headline).toBe('breaks only the no-MMU build; 1 new test failure on MMU');
      // nommu-ci/mm ran on the base kernels and the series' MMU kernel; the series' no-MMU kernel does not build.
      expect(run.extras?.map((c) => c.key)).toEqual(['base-nommu', 'base-mmu', 'series-nommu', 'series-mmu']);
      const cells = await loadCells(t.store, run);
      const mm = (i: number) => cells[i]!.results?.find((r) => r.name === 'nommu-ci/mm');
      expect(mm(0)?.children.map((c) => c.name), detail).toEqual(['mappings', 'sysmem']);
      expect(mm(1)?.status, detail).toBe('pass');
      expect(mm(3)?.status, detail).toBe('pass');
      expect(mmu!.tests.filter((x) => x.path.startsWith('nommu-ci/mm')), detail).toEqual([]);
      // the reports
      for (const format of ['markdown', 'email', 'patchwork', 'kcidb', 'json']) {
        const r = await app.inject(`/v1/runs/${id}/report?format=${format}`);
        expect(r.statusCode, format).toBe(200);
      }
      const mail = (await app.inject(`/v1/runs/${id}/report?format=email`)).body;
      expect(mail).toContain('In-Reply-To: <cover.1795928078.git.fixtures@nommu-ci.invalid>');
      expect(mail).toMatch(/^>> mm\/nommu\.c:\d+:\d+: error: .*vma_span_bytes/m);
    },
    RUN_TIMEOUT_MS + 60_000,
  );
});
