/** `nommu-ci run` against a real API on 127.0.0.1 and a real redis-server; cell jobs finished as the worker would. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { JobStore, loadBootSelftests, loadCatalog, parseMbox, REPO_DIR, runCoverage, runQueueNames, type QueueJobData } from '@nommu-ci/shared';
import { finishSampleJob, listSuite, sampleRun, type SampleOutcome } from '@nommu-ci/shared/testing';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { buildApp } from '@nommu-ci/api';
import { runCommand, verdictText } from './run.js';

const MBOX = path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox');
let server: RedisServer;
let redis: Redis;
let queue: Queue<QueueJobData>;
let app: FastifyInstance;
let url: string;
let cells: Worker<QueueJobData> | null = null;

beforeAll(async () => {
  server = await startRedisServer({ dir: path.join(os.tmpdir(), `nci-cli-run-test-${process.pid}`) });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});
beforeEach(async () => {
  queue = new Queue<QueueJobData>(`test-${randomUUID()}`, { connection: redis.duplicate() });
  app = await buildApp({
    redis,
    store: new JobStore(redis),
    queue,
    catalog: () => loadCatalog(),
    series: () => ({ name: 'nommu', dir: '/nonexistent', patches: ['0001-x.patch'], hash: '0123456789ab' }),
    bootSelftests: () => loadBootSelftests(),
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await cells?.close();
  cells = null;
  await app.close();
  for (const n of [queue.name, runQueueNames(queue.name).runs]) {
    const q = new Queue(n, { connection: redis.duplicate() });
    await q.obliterate({ force: true });
    await q.close();
  }
  await queue.close();
});

function cellWorker(outcome: (mmu: boolean, patched: boolean) => SampleOutcome) {
  const store = new JobStore(redis);
  cells = new Worker<QueueJobData>(
    queue.name,
    async (job) => {
      const req = (await store.request(job.data.id))!;
      await store.update(job.data.id, { state: 'building', stage: 'build' });
      // Long enough for the CLI's 50 ms poll to see every cell building, whichever runs first.
      await new Promise((r) => setTimeout(r, 400));
      await finishSampleJob(store, job.data.id, req.mmu!, outcome(req.mmu!, req.patch !== undefined));
    },
    { connection: redis.duplicate(), concurrency: 4 },
  );
}

const capture = () => {
  const io = { out: '', err: '' };
  return { io, sink: { out: (s: string) => void (io.out += s), err: (s: string) => void (io.err += s), pollMs: 50 } };
};

describe('nommu-ci run', () => {
  it('submits, follows the four cells, prints the verdict and exits 1 on a regression', async () => {
    cellWorker((mmu, patched) =>
      !patched ? { kind: 'passed' } : mmu ? { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'fail' })] } : { kind: 'build-failed' },
    );
    const { io, sink } = capture();
    const code = await runCommand(['--server', url, '--patch', MBOX, '--follow', '--filter', 'list-kunit-test'], sink);
    expect(code).toBe(1);
    expect(io.err).toMatch(/nommu-ci: run [0-9a-f-]{36} queued/);
    expect(io.err).toMatch(/\[base no-MMU\] building \(build\) after \d+s/);
    expect(io.err).toMatch(/\[series MMU\] failed \(test\) after \d+s/);
    expect(io.out).toContain('failed: breaks only the no-MMU build; 1 new test failure on MMU');
    expect(io.out).toContain("mm/nommu.c:95:32: error: implicit declaration of function 'vma_span_bytes'");
    expect(io.out).toContain('new-failure: list-kunit-test.list_test_list_empty (pass -> fail)');
  });

  it('exits 0 on a clean run and prints a report in the format asked', async () => {
    cellWorker(() => ({ kind: 'passed' }));
    const { io, sink } = capture();
    expect(await runCommand(['--server', url, '--patch', MBOX, '--follow', '--format', 'patchwork'], sink)).toBe(0);
    expect(JSON.parse(io.out)).toMatchObject({ state: 'success', context: 'nommu-ci' });
  });

  it('without --follow prints the run id; with a run id it reports that run', async () => {
    const { io, sink } = capture();
    expect(await runCommand(['--server', url, '--patch', MBOX], sink)).toBe(0);
    const id = io.out.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const again = capture();
    expect(await runCommand(['--server', url, id], again.sink)).toBe(0);
    expect(again.io.out).toBe(`run ${id}: queued\n`);
  });

  it('a bad series is a request error (64) with the server message', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-cli-'));
    const bad = path.join(dir, 'bad.mbox');
    writeFileSync(bad, readFileSync(MBOX, 'utf8').replace(/@@ -(\d+),7 \+(\d+),7 @@ static void list_test_list_empty/, '@@ -$1,9 +$2,9 @@ static void list_test_list_empty'));
    const { io, sink } = capture();
    expect(await runCommand(['--server', url, '--patch', bad], sink)).toBe(64);
    expect(io.err).toContain('400: body.patch: patch 2/3');
    expect(await runCommand(['--server', url], sink)).toBe(64);
  });
});

describe('verdictText', () => {
  it('lists the changed lines executed per kernel and names the ones no test executed', () => {
    const fixture = (f: string) => readFileSync(path.join(REPO_DIR, 'shared/fixtures/coverage', f), 'utf8');
    const reserves = fixture('nommu-reserves.mbox');
    const pass = { kind: 'passed' } as const;
    const { run } = sampleRun(parseMbox(reserves), { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': pass, 'series-mmu': pass }, { coverage: true });
    const coverage = runCoverage(reserves, [
      { mmu: false, job: 'a', tracefile: fixture('nommu.info') },
      { mmu: true, job: 'b', tracefile: fixture('mmu.info') },
    ]);
    expect(verdictText({ ...run, coverage })).toContain(
      [
        '  changed lines executed:',
        '    mm/nommu.c: 2 of 3 changed lines executed on no-MMU; not built on MMU',
        '    mm/nommu.c:702 not executed by any test on no-MMU',
        '',
      ].join('\n'),
    );
    expect(verdictText(run)).not.toContain('changed lines executed');
  });
});
