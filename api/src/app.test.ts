/** The API against a real redis-server, a fresh queue name per test (as bullmq's own tests do). */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { JobStore, loadBootSelftests, loadCatalog, loadSeries, MAX_PATCH_BYTES, type QueueJobData, type SeriesInfo } from '@nommu-ci/shared';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { buildApp } from './app.js';

let server: RedisServer;
let redis: Redis;
let queue: Queue<QueueJobData>;
let app: FastifyInstance;
let store: JobStore;
let series: SeriesInfo | null;

beforeAll(async () => {
  server = await startRedisServer({ dir: path.join(os.tmpdir(), `nci-api-test-${process.pid}`) });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});
beforeEach(async () => {
  queue = new Queue<QueueJobData>(`test-${randomUUID()}`, { connection: redis.duplicate() });
  store = new JobStore(redis);
  series = loadSeries();
  app = await buildApp({ redis, store, queue, catalog: () => loadCatalog(), series: () => series, bootSelftests: () => loadBootSelftests() });
});
afterEach(async () => {
  await app.close();
  await queue.obliterate({ force: true });
  await queue.close();
});

const post = (payload: unknown) =>
  app.inject({ method: 'POST', url: '/v1/jobs', payload: payload as object });

describe('POST /v1/jobs', () => {
  it('queues a KUnit job and stores the resolved request', async () => {
    const res = await post({ kind: 'kunit', kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n', mmu: true });
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };
    expect(res.headers.location).toBe(`/v1/jobs/${id}`);
    const job = await queue.getJob(id);
    expect(job?.data).toEqual({ id });
    const rec = (await app.inject(`/v1/jobs/${id}`)).json();
    expect(rec).toMatchObject({ id, state: 'queued', stage: null, summary: { passed: 0, failed: 0, skipped: 0, crashed: 0 } });
    expect(await store.request(id)).toMatchObject({ kernel: 'debian-7.2', mmu: true });
  });

  it('defaults mmu to the no-MMU kernel once the series exists', async () => {
    const { id } = (await post({ kind: 'kunit' })).json() as { id: string };
    expect((await store.request(id))?.mmu).toBe(series === null);
  });

  it.each([
    [{ kind: 'kunit', mmu: 'yes' }, 400, 'body.mmu'],
    [{ kind: 'kunit', colour: 'red' }, 400, 'body.colour: unknown field'],
    [{}, 400, 'body.kind: is required'],
    [{ kind: 'kselftest-nope' }, 400, 'body.kind'],
    [{ kind: 'kunit', kernel: 'nope' }, 400, 'unknown kernel "nope"'],
    [{ kind: 'kunit', kernel: '../etc' }, 400, 'body.kernel: is not well-formed'],
    [{ kind: 'kunit', kconfig_add: ['CONFIG_KASAN=y', 'KASAN=y'] }, 400, 'body.kconfig_add.1: is not well-formed'],
    [{ kind: 'kunit', kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_FOO=y bar\n' }, 400, 'body.kunitconfig line 2'],
    [{ kind: 'kunit', filter_glob: 'list* init=/bin/sh' }, 400, 'body.filter_glob: is not well-formed'],
    [{ kind: 'kunit', timeout_s: 10 ** 6 }, 400, 'body.timeout_s'],
    [{ kind: 'kunit', patch: 'hello, this is not a patch' }, 400, 'body.patch: not a patch'],
    [{ kind: 'kunit', patch: '--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n' }, 400, 'body.patch: the diff: refused: path outside the tree'],
    [{ kind: 'kunit', patch: '--- a/lib/x.c\n+++ b/lib/x.c\n@@ -1,2 +1,2 @@\n-a\n+b\n' }, 400, 'body.patch: the diff is malformed: lib/x.c: hunk 1'],
  ])('rejects %j with %i naming the field', async (body, status, text) => {
    const res = await post(body);
    expect(res.statusCode).toBe(status);
    expect(res.json().message).toContain(text);
    expect(await queue.count()).toBe(0);
  });

  it('rejects malformed JSON', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', payload: '{"kind": "kunit",', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/JSON/);
  });

  it('rejects a body over the size limit with 413', async () => {
    const patch = 'diff --git a/x b/x\n' + 'x'.repeat(MAX_PATCH_BYTES + 2 * 1024 * 1024);
    const res = await post({ kind: 'kunit', patch });
    expect(res.statusCode).toBe(413);
  });
});

describe('reading jobs', () => {
  it('404s an unknown job and 400s a malformed id', async () => {
    expect((await app.inject(`/v1/jobs/${randomUUID()}`)).statusCode).toBe(404);
    const bad = await app.inject('/v1/jobs/..%2f..%2fetc');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('params.id');
  });

  it('lists recent jobs newest first', async () => {
    const a = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    const b = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    const list = (await app.inject('/v1/jobs?limit=2')).json() as { id: string }[];
    expect(list.map((j) => j.id)).toEqual([b, a]);
  });

  it('serves stored artifacts and names missing ones', async () => {
    const id = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    expect((await app.inject(`/v1/jobs/${id}/artifacts/build.log`)).statusCode).toBe(404);
    await store.putArtifact(id, 'build.log', Buffer.from('  CC      init/main.o\n'));
    const res = await app.inject(`/v1/jobs/${id}/artifacts/build.log`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('  CC      init/main.o\n');
    expect((await app.inject(`/v1/jobs/${id}/artifacts/shadow`)).statusCode).toBe(400);
  });
});

describe('DELETE /v1/jobs/:id', () => {
  it('drops a queued job and ends its streams', async () => {
    const id = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    const res = await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    expect(res.json()).toEqual({ id, state: 'canceled' });
    expect(await queue.getJob(id)).toBeUndefined();
    expect((await store.get(id))?.state).toBe('canceled');
    const tap = await app.inject(`/v1/jobs/${id}/tap`);
    expect(tap.body).toBe('');
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` })).statusCode).toBe(409);
  });
});

describe('live streams', () => {
  it('gives a late client everything so far, then the rest live, across a retried attempt', async () => {
    const id = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    await store.appendTap(id, 1, ['KTAP version 1', '1..1']);
    await store.endTap(id, 1, true, 'test');
    await store.appendTap(id, 2, ['KTAP version 1', '1..1']);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${url}/v1/jobs/${id}/tap`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (s: string) => {
      while (!text.includes(s)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil('attempt 2 starts over from source\nKTAP version 1\n1..1\n');
    // The client is still connected; the kernel prints on.
    await store.appendTap(id, 2, ['    KTAP version 1', '    # Subtest: list-kunit-test', 'ok 1 list-kunit-test']);
    await store.endTap(id, 2, false);
    await readUntil('ok 1 list-kunit-test\n');
    const rest = await reader.read();
    expect(rest.done).toBe(true);
    expect(text).toBe(
      'KTAP version 1\n1..1\n# nommu-ci: attempt 1 was lost during test (worker stopped); attempt 2 starts over from source\nKTAP version 1\n1..1\n' +
        '    KTAP version 1\n    # Subtest: list-kunit-test\nok 1 list-kunit-test\n',
    );
  });

  it('answers a follower of a job that has printed nothing yet at once, with the headers', async () => {
    const id = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const ac = new AbortController();
    // fetch resolves when the headers arrive; no line will come, as for a job still building.
    const res = await fetch(`${url}/v1/jobs/${id}/tap`, { signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    ac.abort();
  });

  it('sends server-sent events and resumes after Last-Event-ID', async () => {
    const id = (await post({ kind: 'kunit', mmu: true })).json().id as string;
    await store.appendEvent(id, { type: 'state', state: 'building', stage: 'build', message: null });
    await store.appendEvent(id, { type: 'test', path: ['list-kunit-test', 'list_test_list_init'], status: 'pass' });
    await store.endEvents(id);
    const all = await app.inject({ url: `/v1/jobs/${id}/events`, headers: { accept: 'text/event-stream' } });
    expect(all.headers['content-type']).toContain('text/event-stream');
    const ids = [...all.body.matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
    expect(all.body).toMatch(/event: state\n/);
    expect(all.body).toMatch(/event: test\ndata: \{"type":"test","path":\["list-kunit-test","list_test_list_init"\],"status":"pass"\}/);
    expect(all.body).toMatch(/event: end\n/);
    const resumed = await app.inject({ url: `/v1/jobs/${id}/events`, headers: { accept: 'text/event-stream', 'last-event-id': ids[0]! } });
    expect(resumed.body).not.toMatch(/event: state/);
    expect(resumed.body).toMatch(/event: test/);
  });
});

describe('service endpoints', () => {
  it('lists kernels with their version and series', async () => {
    const kernels = (await app.inject('/v1/kernels')).json() as { name: string; version: string; series: string | null }[];
    expect(kernels[0]).toMatchObject({ name: 'debian-7.2', version: expect.stringMatching(/^7\.2\./) });
    expect(kernels[0]!.series).toBe(series ? `nommu@${series.hash}` : null);
  });

  it('reports health, metrics and the OpenAPI document', async () => {
    expect((await app.inject('/healthz')).json()).toMatchObject({ status: 'ok', redis: 'ok' });
    await post({ kind: 'kunit', mmu: true });
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/nommu_ci_jobs_submitted_total\{kind="kunit",mmu="true"\} 1/);
    expect(metrics).toMatch(/nommu_ci_queue_jobs\{state="waiting"\} 1/);
    const doc = (await app.inject('/openapi.json')).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/tap', '/v1/kernels']));
  });
});

describe('boot-selftest jobs', () => {
  it('lists the catalogue with Kconfig symbols, read against the tree', async () => {
    const list = (await app.inject('/v1/boot-selftests')).json() as { name: string; symbol: string; offered: boolean; nommu: boolean }[];
    expect(list.find((t) => t.name === 'maple_tree')).toEqual(
      expect.objectContaining({ symbol: 'TEST_MAPLE_TREE', offered: true, nommu: true }),
    );
  });

  it('queues known selftests and names unknown ones', async () => {
    expect((await post({ kind: 'boot-selftest', selftests: ['maple_tree', 'xarray'], mmu: true })).statusCode).toBe(202);
    const bad = await post({ kind: 'boot-selftest', selftests: ['maple_tree', 'nope'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('body.selftests: unknown "nope"');
    const kunitField = await post({ kind: 'boot-selftest', selftests: ['xarray'], filter_glob: 'x' });
    expect(kunitField.json().message).toContain('body.filter_glob: unknown field');
  });
});

describe('kselftest jobs', () => {
  it('are served by GET /v1/kselftests on the app', async () => {
    const r = await app.inject('/v1/kselftests?target=timers');
    expect(r.statusCode).toBe(200);
    expect((r.json() as { name: string }[])[0]!.name).toBe('timers');
  });

  it('default to the no-MMU kernel like every kind, take "mmu": true; bad names are 400s', async () => {
    const ok = await post({ kind: 'kselftest', targets: ['timers'], tests: ['timers:nanosleep'] });
    expect(ok.statusCode).toBe(202);
    expect(await store.request((ok.json() as { id: string }).id)).toMatchObject({ kind: 'kselftest', mmu: false, targets: ['timers'] });
    const mmu = await post({ kind: 'kselftest', targets: ['timers'], mmu: true });
    expect(mmu.statusCode).toBe(202);
    expect(await store.request((mmu.json() as { id: string }).id)).toMatchObject({ kind: 'kselftest', mmu: true });
    const traversal = await post({ kind: 'kselftest', targets: ['../etc'] });
    expect(traversal.statusCode).toBe(400);
    expect(traversal.json().message).toContain('body.targets.0');
    const noTargets = await post({ kind: 'kselftest', tests: ['mm:merge'] });
    expect(noTargets.statusCode).toBe(400);
    expect(noTargets.json().message).toContain('targets');
  });
});
