/** POST /v1/runs and reading runs, against a real redis-server; cell jobs are finished by writing the store as the worker does. */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { JobStore, loadBootSelftests, loadCatalog, MAX_PATCH_BYTES, parseMbox, REPO_DIR, runQueueNames, RunStore, type QueueJobData, type RunRecord, type SeriesInfo, type TestNode } from '@nommu-ci/shared';
import { finishSampleJob, listSuite } from '@nommu-ci/shared/testing';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { buildApp } from '../app.js';

const FIXTURE = readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8');
const FAKE_SERIES: SeriesInfo = { name: 'nommu', dir: '/nonexistent', patches: ['0001-x.patch'], hash: '0123456789ab' };

let server: RedisServer;
let redis: Redis;
let queue: Queue<QueueJobData>;
let runsQueue: Queue;
let app: FastifyInstance;
let store: JobStore;
let series: SeriesInfo | null;

beforeAll(async () => {
  server = await startRedisServer({ dir: path.join(os.tmpdir(), `nci-runs-test-${process.pid}`) });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});
beforeEach(async () => {
  await redis.flushdb();
  queue = new Queue<QueueJobData>(`test-${randomUUID()}`, { connection: redis.duplicate() });
  runsQueue = new Queue(runQueueNames(queue.name).runs, { connection: redis.duplicate() });
  store = new JobStore(redis);
  series = FAKE_SERIES;
  app = await buildApp({ redis, store, queue, catalog: () => loadCatalog(), series: () => series, bootSelftests: () => loadBootSelftests() });
});
afterEach(async () => {
  await app.close();
  for (const q of [queue, runsQueue]) {
    await q.obliterate({ force: true });
    await q.close();
  }
});

const post = (payload: unknown) => app.inject({ method: 'POST', url: '/v1/runs', payload: payload as object });
const getRun = async (id: string) => (await app.inject(`/v1/runs/${id}`)).json() as Omit<RunRecord, 'cells'> & { cells: (RunRecord['cells'][number] & { state: string })[] };

describe('POST /v1/runs', () => {
  it('queues the matrix {base, series} x {no-MMU, MMU} as four ordinary jobs under one flow, four more for nommu-ci/mm (the series touches mm/)', async () => {
    const res = await post({ patch: FIXTURE, kconfig_add: ['CONFIG_KASAN=y'], filter_glob: 'list-kunit-test' });
    expect(res.statusCode).toBe(202);
    const { id, jobs } = res.json() as { id: string; jobs: string[] };
    expect(res.headers.location).toBe(`/v1/runs/${id}`);
    expect(jobs).toHaveLength(8);
    // visible as ordinary jobs
    const listed = ((await app.inject('/v1/jobs?limit=10')).json() as { id: string; state: string }[]).map((j) => j.id);
    expect(listed.sort()).toEqual([...jobs].sort());
    const run = await getRun(id);
    expect(run.state).toBe('queued');
    expect(run.cells.map((c) => [c.key, c.series, c.mmu, c.state])).toEqual([
      ['base-nommu', false, false, 'queued'],
      ['base-mmu', false, true, 'queued'],
      ['series-nommu', true, false, 'queued'],
      ['series-mmu', true, true, 'queued'],
    ]);
    expect(run.series.cover?.messageId).toBe('cover.1795928078.git.fixtures@nommu-ci.invalid');
    expect(run.series.patches.map((p) => p.index)).toEqual([1, 2, 3]);
    // the stored job requests: resolved kernel, mmu per cell, the series only on series cells, options on all
    for (const c of run.cells) {
      const r = await store.request(c.job);
      expect(r).toMatchObject({ kind: 'kunit', kernel: 'debian-7.2', mmu: c.mmu, kconfig_add: ['CONFIG_KASAN=y'], filter_glob: 'list-kunit-test' });
      if (c.series) {
        const applied = parseMbox(r!.patch!);
        expect(applied.cover).toBeNull();
        expect(applied.patches.map((p) => p.diff)).toEqual(parseMbox(FIXTURE).patches.map((p) => p.diff));
      } else expect(r!.patch).toBeUndefined();
      // The base half may take a base result measured before; the series half never.
      expect((r as { reuse_base_result?: boolean }).reuse_base_result).toBe(c.series ? undefined : true);
    }
    // mm/nommu.c is in the series: the mm exerciser runs on the same matrix, with the run's options that apply.
    const stored = (await new RunStore(redis).get(id))!;
    expect(stored.extras!.map((c) => [c.key, c.series, c.mmu, c.target])).toEqual([
      ['base-nommu', false, false, 'nommu-ci/mm'],
      ['base-mmu', false, true, 'nommu-ci/mm'],
      ['series-nommu', true, false, 'nommu-ci/mm'],
      ['series-mmu', true, true, 'nommu-ci/mm'],
    ]);
    expect(jobs).toEqual([...run.cells, ...stored.extras!].map((c) => c.job));
    for (const c of stored.extras!) {
      const r = await store.request(c.job);
      expect(r).toEqual({ kind: 'kselftest', kernel: 'debian-7.2', mmu: c.mmu, targets: ['nommu-ci/mm'], kconfig_add: ['CONFIG_KASAN=y'], ...(c.series ? { patch: expect.any(String) } : {}) });
      expect((await store.get(c.job))?.kind).toBe('kselftest');
    }
    // BullMQ: the parent waits for its eight children in the jobs queue
    const parent = await runsQueue.getJob(id);
    expect(await parent!.getState()).toBe('waiting-children');
    expect((await parent!.getDependenciesCount()).unprocessed).toBe(8);
    for (const j of jobs) {
      const child = await queue.getJob(j);
      expect(child?.data).toEqual({ id: j });
      expect(child?.opts.ignoreDependencyOnFailure).toBe(true);
      expect(child?.parent?.id).toBe(id);
    }
  });

  const fixtureParts = FIXTURE.split(/(?=^From [0-9a-f]{40} )/m);
  const brokenMiddle = FIXTURE.replace(/@@ -(\d+),7 \+(\d+),7 @@ static void list_test_list_empty/, '@@ -$1,9 +$2,9 @@ static void list_test_list_empty');
  it.each([
    ['an empty patch', { patch: '' }, 400, 'body.patch: the patch is empty'],
    ['a non-patch', { patch: 'hello, this is not a patch' }, 400, 'body.patch: not a patch'],
    ['a cover letter alone', { patch: fixtureParts[0] }, 400, 'body.patch: not a patch series: no diff in 1 message(s) (cover letter'],
    ['a broken patch in the middle', { patch: brokenMiddle }, 400, 'body.patch: patch 2/3 "[PATCH 2/3] list: test: check list_empty() after list_add_tail()" is malformed: lib/tests/list-test.c: hunk 1'],
    ['a series with a patch missing', { patch: fixtureParts[0]! + fixtureParts[1]! + fixtureParts[3]! }, 400, 'body.patch: patch 2/3 is missing'],
    ['no patch field', {}, 400, 'body.patch: is required'],
    ['an unknown field', { patch: FIXTURE, colour: 'red' }, 400, 'body.colour: unknown field'],
    ['an unknown kernel', { patch: FIXTURE, kernel: 'nope' }, 400, 'body.kernel: unknown kernel "nope"'],
    ['a bad kunitconfig', { patch: FIXTURE, kunitconfig: 'CONFIG_KUNIT=y\nKUNIT\n' }, 400, 'body.kunitconfig line 2'],
    ['a bad kconfig_add', { patch: FIXTURE, kconfig_add: ['KASAN=y'] }, 400, 'body.kconfig_add.0: is not well-formed'],
    ['a string for per_patch', { patch: FIXTURE, per_patch: 'yes' }, 400, 'body.per_patch'],
    ['a non-http callback', { patch: FIXTURE, callback_url: 'file:///etc/passwd' }, 400, 'body.callback_url: is not well-formed'],
    ['an mbox over the size limit', { patch: FIXTURE + '\n' + 'x'.repeat(MAX_PATCH_BYTES) }, 413, `the limit is ${MAX_PATCH_BYTES}`],
  ])('refuses %s with a clear 4xx and queues nothing', async (_what, body, status, text) => {
    const res = await post(body);
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toContain(text);
    expect(await queue.count()).toBe(0);
    expect(await runsQueue.count()).toBe(0);
    expect((await app.inject('/v1/jobs')).json()).toEqual([]);
    expect((await app.inject('/v1/runs')).json()).toEqual([]);
  });

  it('refuses a body over the server limit with 413', async () => {
    const res = await post({ patch: 'x'.repeat(MAX_PATCH_BYTES + 2 * 1024 * 1024) });
    expect(res.statusCode).toBe(413);
    expect(await queue.count()).toBe(0);
  });

  it('keeps callbacks to the prefixes the operator allows', async () => {
    process.env.NOMMU_CI_WEBHOOK_ALLOW = 'https://ci.example.org/hooks/';
    try {
      const res = await post({ patch: FIXTURE, callback_url: 'http://169.254.169.254/latest/meta-data' });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toBe('body.callback_url: not allowed by this server (allowed prefixes: https://ci.example.org/hooks/)');
      expect(await queue.count()).toBe(0);
      expect((await post({ patch: FIXTURE, callback_url: 'https://ci.example.org/hooks/42' })).statusCode).toBe(202);
    } finally {
      delete process.env.NOMMU_CI_WEBHOOK_ALLOW;
    }
  });

  it('needs the no-MMU series: 422 without it', async () => {
    series = null;
    const res = await post({ patch: FIXTURE });
    expect(res.statusCode).toBe(422);
    expect(res.json().message).toContain('no no-MMU series');
    expect(await queue.count()).toBe(0);
  });
});

/** A passing nommu-ci/mm result tree, as a kselftest job stores it. */
const mmTree = (): TestNode => ({
  name: 'nommu-ci/mm',
  status: 'pass',
  diagnostics: [],
  children: [{ name: 'mappings', status: 'pass', diagnostics: [], children: [{ name: 'anonymous private mapping', status: 'pass', diagnostics: [], children: [] }] }],
});

describe('reading a run', () => {
  async function finishedRun(): Promise<{ id: string; run: Awaited<ReturnType<typeof getRun>> }> {
    const { id } = (await post({ patch: FIXTURE })).json() as { id: string };
    const run = await getRun(id);
    const job = (k: string) => run.cells.find((c) => c.key === k)!.job;
    await finishSampleJob(store, job('base-nommu'), false, { kind: 'passed' });
    expect((await getRun(id)).state).toBe('running');
    await finishSampleJob(store, job('base-mmu'), true, { kind: 'passed' });
    await finishSampleJob(store, job('series-nommu'), false, { kind: 'build-failed' });
    await finishSampleJob(store, job('series-mmu'), true, { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'fail' })] });
    // The KUnit cells have ended, the mm exerciser's have not: no verdict yet.
    expect((await getRun(id)).state).toBe('running');
    const extras = (await new RunStore(redis).get(id))!.extras!;
    for (const c of extras) {
      await finishSampleJob(store, c.job, c.mmu, c.key === 'series-nommu' ? { kind: 'build-failed' } : { kind: 'passed', tests: [mmTree()] });
    }
    return { id, run: await getRun(id) };
  }

  it('gives state and cells while running, and the verdict once every cell has ended', async () => {
    const { run } = await finishedRun();
    expect(run.state).toBe('failed');
    expect(run.cells.map((c) => c.state)).toEqual(['passed', 'passed', 'failed', 'failed']);
    expect(run.verdict?.breaksOnlyNoMmu).toBe(true);
    expect(run.verdict?.headline).toBe('breaks only the no-MMU build; 1 new test failure on MMU');
    expect(run.verdict?.kernels[0]?.build?.locations[0]).toMatchObject({ file: 'mm/nommu.c', line: 95 });
  });

  it('serves every report format, and names the formats on a bad one', async () => {
    const { id } = await finishedRun();
    const md = await app.inject(`/v1/runs/${id}/report?format=markdown`);
    expect(md.headers['content-type']).toContain('text/markdown');
    expect(md.body).toContain('| kernel | base | with the series | change |');
    expect(md.body).toContain(`http://localhost:80/v1/runs/${id}`);
    const mail = await app.inject(`/v1/runs/${id}/report?format=email`);
    expect(mail.body).toMatch(/^From: /);
    expect(mail.body).toContain('Subject: Re: [PATCH 0/3] nommu-ci fixture series');
    expect(mail.body).toContain('In-Reply-To: <cover.1795928078.git.fixtures@nommu-ci.invalid>');
    const pw = (await app.inject(`/v1/runs/${id}/report?format=patchwork`)).json();
    expect(pw).toMatchObject({ state: 'fail', context: 'nommu-ci' });
    expect((await app.inject(`/v1/runs/${id}/report?format=patchwork&patch=1`)).json()).toMatchObject({ state: 'fail' });
    expect((await app.inject(`/v1/runs/${id}/report?format=patchwork&patch=4`)).statusCode).toBe(400);
    const kcidb = (await app.inject(`/v1/runs/${id}/report?format=kcidb`)).json() as { version: unknown; builds: unknown[]; tests: unknown[] };
    expect(kcidb.version).toEqual({ major: 5, minor: 3 });
    expect(kcidb.builds).toHaveLength(4);
    const json = (await app.inject(`/v1/runs/${id}/report?format=json`)).json() as { verdict: { outcome: string }; jobs: object };
    expect(json.verdict.outcome).toBe('regression');
    expect(Object.keys(json.jobs)).toHaveLength(4);
    const bad = await app.inject(`/v1/runs/${id}/report?format=pdf`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('querystring.format: unknown report format "pdf"; one of markdown, email, patchwork, kcidb, json');
  });

  it('a pending run reports pending', async () => {
    const { id } = (await post({ patch: FIXTURE })).json() as { id: string };
    expect((await app.inject(`/v1/runs/${id}/report?format=patchwork`)).json()).toMatchObject({ state: 'pending' });
  });

  it('serves the patches as applied, lists runs, and 404s unknown runs', async () => {
    const { id } = (await post({ patch: FIXTURE })).json() as { id: string };
    const p3 = await app.inject(`/v1/runs/${id}/patches/3`);
    expect(p3.body.startsWith('diff --git a/mm/nommu.c b/mm/nommu.c\n')).toBe(true);
    expect((await app.inject(`/v1/runs/${id}/patches/4`)).statusCode).toBe(404);
    const list = (await app.inject('/v1/runs')).json() as { id: string; title: string }[];
    expect(list[0]).toMatchObject({ id, state: 'queued' });
    expect(list[0]!.title).toMatch(/^nommu-ci fixture series/);
    expect((await app.inject(`/v1/runs/${randomUUID()}`)).statusCode).toBe(404);
    expect((await app.inject(`/v1/runs/${randomUUID()}/report`)).statusCode).toBe(404);
    expect((await app.inject('/v1/runs/..%2fx')).statusCode).toBe(400);
    expect(await new RunStore(redis).get(id)).not.toBeNull();
  });

  it('cancels a run: its queued jobs are dropped, the parent is released, the run ends as an error', async () => {
    const { id, jobs } = (await post({ patch: FIXTURE })).json() as { id: string; jobs: string[] };
    const res = await app.inject({ method: 'DELETE', url: `/v1/runs/${id}` });
    expect(res.statusCode).toBe(202);
    expect((res.json() as { jobs: { id: string; state: string }[] }).jobs.map((j) => j.state)).toEqual(Array(8).fill('canceled'));
    for (const j of jobs) {
      expect((await store.get(j))?.state).toBe('canceled');
      expect(await queue.getJob(j)).toBeUndefined();
    }
    // no child left: BullMQ hands the parent to the run worker
    expect(await (await runsQueue.getJob(id))!.getState()).toBe('waiting');
    const run = await getRun(id);
    expect(run.state).toBe('error');
    expect(run.verdict?.outcome).toBe('error');
  });
});
