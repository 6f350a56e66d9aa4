/**
 * Fair scheduling with a real worker: one token's run (four kernel jobs) is queued, then another
 * token's single KUnit job; the worker (one job at a time) starts the single job right after the
 * run's first job, not after the whole run. The kernels use the small kunitconfig the pipeline
 * test caches; the rest of the run is canceled once the single job has ended.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { FINAL_STATES, loadBootSelftests, loadCatalog, loadSeries, REPO_DIR, runQueueNames, type JobRecord, type QueueJobData } from '@nommu-ci/shared';
import { buildApp } from '@nommu-ci/api';
import { startWorker, type RunningWorker } from '../src/index.js';
import { freshQueueName, startTestRedis, type TestRedis } from './helpers.js';

const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';
const HARMLESS = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/harmless.patch'), 'utf8');
const ADMIN = 'fair-test-admin';
const kernel = loadCatalog()[0]!;
const series = loadSeries();

describe.skipIf(!kernel.available || series === null)('fair scheduling between tokens', () => {
  let t: TestRedis;
  let queue: Queue<QueueJobData>;
  let app: FastifyInstance;
  let worker: RunningWorker | null = null;

  beforeAll(async () => {
    t = await startTestRedis('fair');
    queue = new Queue<QueueJobData>(freshQueueName('nci-fair'), { connection: t.redis.duplicate() });
    app = await buildApp({
      redis: t.redis, store: t.store, queue, catalog: () => loadCatalog(), series: () => loadSeries(), bootSelftests: () => loadBootSelftests(),
      auth: { adminToken: ADMIN, anonymousReads: true, maxConcurrent: 40, maxPerHour: 400, requestsPerMinute: 600 },
    });
  });
  afterAll(async () => {
    await worker?.close(0);
    await app?.close();
    for (const n of queue ? [queue.name, runQueueNames(queue.name).runs] : []) {
      const q = new Queue(n, { connection: t.redis.duplicate() });
      await q.obliterate({ force: true });
      await q.close();
    }
    await queue?.close();
    await t?.stop();
  });

  const token = async (name: string) =>
    (await app.inject({ method: 'POST', url: '/v1/admin/tokens', headers: { authorization: `Bearer ${ADMIN}` }, payload: { name, role: 'submit' } })).json().token as string;

  it(
    "starts another token's single KUnit job after one job of a queued bulk run, not after the run",
    async () => {
      const bulk = await token('bulk-bot');
      const human = await token('maintainer');
      const run = await app.inject({ method: 'POST', url: '/v1/runs', headers: { authorization: `Bearer ${bulk}` }, payload: { patch: HARMLESS, kunitconfig: SMALL } });
      expect(run.statusCode, run.body).toBe(202);
      const { id: runId, jobs: cells } = run.json() as { id: string; jobs: string[] };
      const single = await app.inject({ method: 'POST', url: '/v1/jobs', headers: { authorization: `Bearer ${human}` }, payload: { kind: 'kunit', kunitconfig: SMALL, mmu: true } });
      const { id } = single.json() as { id: string };

      // One worker, one job at a time, started with all five queued.
      worker = await startWorker({ redisUrl: t.url, queueName: queue.name, concurrency: 1, log: () => undefined });
      const deadline = Date.now() + 50 * 60_000;
      let mine: JobRecord | null = null;
      for (;;) {
        mine = await t.store.get(id);
        if (mine && FINAL_STATES.has(mine.state)) break;
        if (Date.now() > deadline) throw new Error(`job ${id} did not end: ${JSON.stringify(mine)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(mine.state, JSON.stringify(mine)).toBe('passed');
      const started = Date.parse(mine.timings.started_at!);
      const bulkRecords = await Promise.all(cells.map((c) => t.store.get(c)));
      const before = bulkRecords.filter((r) => r?.timings.started_at && Date.parse(r.timings.started_at) < started);
      // exactly the run's first job (queued with the same priority, before it) ran first
      expect(before.map((r) => r!.id)).toEqual([cells[0]]);
      expect(before[0]!.timings.finished_at && Date.parse(before[0]!.timings.finished_at) <= started).toBeTruthy();
      // the rest of the run is not needed
      await app.inject({ method: 'DELETE', url: `/v1/runs/${runId}`, headers: { authorization: `Bearer ${bulk}` } });
    },
    55 * 60_000,
  );
});
