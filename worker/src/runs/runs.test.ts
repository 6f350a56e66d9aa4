/**
 * Run completion through real BullMQ flows on a real redis-server: the API queues a run, a stand-in
 * for the job worker finishes each cell job by writing the store as the real worker does (no
 * kernels are built here; run.e2e.test.ts builds them), and the run worker computes the verdict,
 * narrows per patch, and delivers the signed webhook to a local receiver, retrying a failing one.
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue, Worker, type Job } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { COVERAGE_ARTIFACT, loadBootSelftests, loadCatalog, REPO_DIR, runQueueNames, RunStore, type JobRequest, type QueueJobData, type RunRecord, type SeriesInfo } from '@nommu-ci/shared';
import { finishSampleJob, listSuite, type SampleOutcome } from '@nommu-ci/shared/testing';
import { buildApp } from '@nommu-ci/api';
import { startTestRedis, type TestRedis } from '../../test/helpers.js';
import { startRunWorker, type RunningRunWorker } from './index.js';

const FIXTURE = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8');
const SERIES: SeriesInfo = { name: 'nommu', dir: '/nonexistent', patches: ['0001-x.patch'], hash: '0123456789ab' };
const SECRET = 'test-secret-' + randomUUID();

let r: TestRedis;
let queue: Queue<QueueJobData>;
let app: FastifyInstance;
let runWorker: RunningRunWorker;
let cellWorker: Worker<QueueJobData> | null;
let runs: RunStore;

beforeAll(async () => {
  r = await startTestRedis('runs');
});
afterAll(async () => {
  await r.stop();
});
beforeEach(async () => {
  queue = new Queue<QueueJobData>(`test-${randomUUID()}`, { connection: r.redis.duplicate() });
  app = await buildApp({ redis: r.redis, store: r.store, queue, catalog: () => loadCatalog(), series: () => SERIES, bootSelftests: () => loadBootSelftests() });
  runWorker = await startRunWorker({ redisUrl: r.url, jobsQueueName: queue.name, webhookSecret: SECRET, baseUrl: 'http://127.0.0.1:8080', webhookAttempts: 4, webhookBackoffMs: 50, log: () => undefined });
  runs = new RunStore(r.redis);
  cellWorker = null;
});
afterEach(async () => {
  await cellWorker?.close();
  await runWorker.close();
  await app.close();
  const names = runQueueNames(queue.name);
  for (const n of [queue.name, names.runs, names.webhooks]) {
    const q = new Queue(n, { connection: r.redis.duplicate() });
    await q.obliterate({ force: true });
    await q.close();
  }
  await queue.close();
  delete process.env.NOMMU_CI_ATTEMPTS;
});

/** Stands in for the job worker: decides each cell's outcome from its request and records it. */
function startCellWorker(outcome: (mmu: boolean, patches: number) => SampleOutcome | 'crash') {
  cellWorker = new Worker<QueueJobData>(
    queue.name,
    async (job: Job<QueueJobData>) => {
      const req = (await r.store.request(job.data.id))!;
      const patches = req.patch ? (req.patch.match(/^Subject: \[PATCH /gm) ?? []).length : 0;
      const o = outcome(req.mmu!, patches);
      if (o === 'crash') throw new Error('worker crashed');
      await finishSampleJob(r.store, job.data.id, req.mmu!, o);
    },
    { connection: r.redis.duplicate(), concurrency: 4 },
  );
}

/** The fixture series as the kernels would see it: 2/3 breaks a KUnit test, 3/3 the no-MMU build. */
const fixtureOutcome = (mmu: boolean, patches: number): SampleOutcome => {
  if (!mmu && patches >= 3) return { kind: 'build-failed' };
  if (patches >= 2) return { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'fail' })] };
  return { kind: 'passed' };
};

async function waitForRun(id: string, until: (r: RunRecord) => boolean, ms = 20_000): Promise<RunRecord> {
  const deadline = Date.now() + ms;
  for (;;) {
    const run = await runs.get(id);
    if (run && until(run)) return run;
    if (Date.now() > deadline) throw new Error(`run ${id} did not get there: ${JSON.stringify(run?.state)} ${JSON.stringify(run?.webhook)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

interface Received {
  body: string;
  signature: string | undefined;
  event: string | undefined;
}
async function receiver(fail: number): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      got.push({ body, signature: req.headers['x-nommu-ci-signature'] as string | undefined, event: req.headers['x-nommu-ci-event'] as string | undefined });
      res.statusCode = got.length <= fail ? 503 : 204;
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

const post = (payload: object) => app.inject({ method: 'POST', url: '/v1/runs', payload });
const hmac = (body: string) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;

describe('run completion', () => {
  it('ends the run when its four jobs have ended, stores the verdict, and POSTs the signed report', async () => {
    const rx = await receiver(0);
    try {
      startCellWorker(fixtureOutcome);
      const { id } = (await post({ patch: FIXTURE, callback_url: rx.url })).json() as { id: string };
      const run = await waitForRun(id, (x) => x.webhook?.state === 'delivered');
      expect(run.state).toBe('failed');
      expect(run.finished_at).not.toBeNull();
      expect(run.verdict?.breaksOnlyNoMmu).toBe(true);
      expect(run.verdict?.headline).toBe('breaks only the no-MMU build; 1 new test failure on MMU');
      expect(run.environment).toHaveProperty('compiler');
      expect(rx.got).toHaveLength(1);
      const { body, signature, event } = rx.got[0]!;
      expect(signature).toBe(hmac(body));
      expect(event).toBe('run.finished');
      const report = JSON.parse(body) as RunRecord & { url: string };
      expect(report.id).toBe(id);
      expect(report.verdict?.outcome).toBe('regression');
      expect(report.url).toBe(`http://127.0.0.1:8080/runs/${id}`);
      // the API shows the stored verdict
      const shown = (await app.inject(`/v1/runs/${id}`)).json() as RunRecord;
      expect(shown.state).toBe('failed');
      expect(shown.webhook).toMatchObject({ state: 'delivered', attempts: 1, status: 204 });
    } finally {
      await rx.close();
    }
  });

  it('retries a failing receiver with backoff until it takes the report', async () => {
    const rx = await receiver(2);
    try {
      startCellWorker(() => ({ kind: 'passed' }));
      const { id } = (await post({ patch: FIXTURE, callback_url: rx.url })).json() as { id: string };
      const run = await waitForRun(id, (x) => x.webhook?.state === 'delivered');
      expect(run.state).toBe('passed');
      expect(rx.got).toHaveLength(3);
      for (const g of rx.got) expect(g.signature).toBe(hmac(g.body));
      expect(run.webhook).toMatchObject({ state: 'delivered', attempts: 3, status: 204, last_error: null });
    } finally {
      await rx.close();
    }
  });

  it('gives up after the last attempt and says so', async () => {
    const rx = await receiver(100);
    try {
      startCellWorker(() => ({ kind: 'passed' }));
      const { id } = (await post({ patch: FIXTURE, callback_url: rx.url })).json() as { id: string };
      const run = await waitForRun(id, (x) => x.webhook?.state === 'failed');
      expect(rx.got).toHaveLength(4);
      expect(run.webhook).toMatchObject({ state: 'failed', attempts: 4, status: 503, last_error: 'callback answered HTTP 503' });
    } finally {
      await rx.close();
    }
  });

  it('a cell job that fails for good does not block the run: it ends as an error', async () => {
    process.env.NOMMU_CI_ATTEMPTS = '1';
    startCellWorker((mmu, patches) => (mmu && patches === 0 ? 'crash' : { kind: 'passed' }));
    const { id } = (await post({ patch: FIXTURE })).json() as { id: string };
    const run = await waitForRun(id, (x) => x.finished_at !== null);
    expect(run.state).toBe('error');
    expect(run.verdict?.kernels[1]?.base).toMatchObject({ state: 'error', message: 'the job ended without a result (last state queued)' });
    expect(run.verdict?.outcome).toBe('error');
  });

  it('per_patch: bisects each kernel to the first bad patch with prefix jobs under the same parent', async () => {
    startCellWorker(fixtureOutcome);
    const { id } = (await post({ patch: FIXTURE, per_patch: true })).json() as { id: string };
    const run = await waitForRun(id, (x) => x.finished_at !== null);
    expect(run.state).toBe('failed');
    // bisection, both kernels at once: round 1 tries the first patch, round 2 the first two
    expect(run.prefixes.map((p) => [p.mmu, p.patches])).toEqual([
      [false, 1],
      [true, 1],
      [false, 2],
      [true, 2],
    ]);
    expect(run.blame?.map((b) => [b.mmu, b.patch, b.subject])).toEqual([
      [false, 3, '[PATCH 3/3] mm/nommu: use vma_span_bytes() in kobjsize()'],
      [true, 2, '[PATCH 2/3] list: test: check list_empty() after list_add_tail()'],
    ]);
    // prefix jobs are ordinary jobs too
    const listed = ((await app.inject('/v1/jobs?limit=50')).json() as { id: string }[]).map((j) => j.id);
    for (const p of run.prefixes) expect(listed).toContain(p.job);
    const md = (await app.inject(`/v1/runs/${id}/report?format=markdown`)).body;
    expect(md).toContain('> First bad patch on MMU (list-kunit-test.list_test_list_empty (new-failure)): **2/3 [PATCH 2/3] list: test: check list_empty() after list_add_tail()**');
  });
});

describe('coverage', () => {
  const fixture = (f: string) => readFileSync(path.join(REPO_DIR, 'shared/fixtures/coverage', f), 'utf8');
  const RESERVES = fixture('nommu-reserves.mbox');

  it('every cell job is a coverage job; when the run ends the series jobs\' tracefiles are measured against the series and stored with it', async () => {
    const requests: JobRequest[] = [];
    cellWorker = new Worker<QueueJobData>(
      queue.name,
      async (job: Job<QueueJobData>) => {
        const req = (await r.store.request(job.data.id))!;
        requests.push(req);
        // as a coverage job leaves it: the tracefile of its kernel (the series jobs' are what is
        // measured); the series touches mm/, so nommu-ci/mm runs too, and on no-MMU it reaches
        // line 702, which KUnit does not
        const exerciser = `TN:\nSF:${req.mmu ? 'mm/mmap.c' : 'mm/nommu.c'}\nDA:702,3\nend_of_record\n`;
        const trace = req.kind === 'kselftest' ? exerciser : fixture(req.mmu ? 'mmu.info' : 'nommu.info');
        await r.store.putArtifact(job.data.id, COVERAGE_ARTIFACT, Buffer.from(trace));
        const mm = [{ name: 'nommu-ci/mm', status: 'pass' as const, diagnostics: [], children: [] }];
        await finishSampleJob(r.store, job.data.id, req.mmu!, req.kind === 'kselftest' ? { kind: 'passed', tests: mm } : { kind: 'passed' });
      },
      { connection: r.redis.duplicate(), concurrency: 4 },
    );
    const { id } = (await post({ patch: RESERVES, coverage: true })).json() as { id: string };
    const run = await waitForRun(id, (x) => x.finished_at !== null);
    expect(requests.map((q) => q.kind).sort()).toEqual(['kselftest', 'kselftest', 'kselftest', 'kselftest', 'kunit', 'kunit', 'kunit', 'kunit']);
    for (const q of requests) expect(q).toMatchObject({ coverage: true });
    expect(run.options.coverage).toBe(true);
    expect(run.coverage?.files).toEqual(['mm/nommu.c']);
    expect(run.coverage?.kernels.map((k) => [k.mmu, k.job, k.missing, k.files[0]?.built, k.files[0]?.executed_lines])).toEqual([
      [false, run.cells.find((c) => c.key === 'series-nommu')!.job, null, true, 3],
      [true, run.cells.find((c) => c.key === 'series-mmu')!.job, null, false, 0],
    ]);
    const md = (await app.inject(`/v1/runs/${id}/report?format=markdown`)).body;
    expect(md).toContain('- `mm/nommu.c`: 3 of 3 changed lines executed on no-MMU; not built on MMU');
    expect(md).not.toContain('not executed by any test on no-MMU');
  });

  it('a series job without a tracefile is not measured, and the run says why', async () => {
    startCellWorker((mmu, patches) => (!mmu && patches > 0 ? { kind: 'build-failed' } : { kind: 'passed' }));
    const { id } = (await post({ patch: RESERVES, coverage: true })).json() as { id: string };
    const run = await waitForRun(id, (x) => x.finished_at !== null);
    expect(run.coverage?.kernels.map((k) => k.missing)).toEqual(['no tracefile: the job ended failed at build', 'no tracefile: the job ended passed']);
  });

  it('a run without the option measures nothing', async () => {
    startCellWorker(() => ({ kind: 'passed' }));
    const { id } = (await post({ patch: RESERVES })).json() as { id: string };
    const run = await waitForRun(id, (x) => x.finished_at !== null);
    expect(run.coverage).toBeNull();
  });
});
