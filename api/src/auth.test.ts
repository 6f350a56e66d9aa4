/**
 * Tokens, roles, quotas, rate limits and fair priorities, against a real redis-server and real
 * BullMQ queues (the API only: nothing here needs a worker).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { JobStore, loadBootSelftests, loadCatalog, loadSeries, type QueueJobData } from '@nommu-ci/shared';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { buildApp } from './app.js';
import type { AuthSettings } from './plugins/auth.js';
import { TokenStore } from './tokens.js';

const ADMIN = 'admin-secret-for-tests';
const KUNIT = { kind: 'kunit', kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n', mmu: true };
const SERIES = `From 1 Mon Sep 17 00:00:00 2001
From: Dev <dev@example.org>
Subject: [PATCH] list: a comment

---
diff --git a/lib/list_debug.c b/lib/list_debug.c
--- a/lib/list_debug.c
+++ b/lib/list_debug.c
@@ -1,3 +1,4 @@
+/* a comment */
 /*
  * Copyright 2006, Red Hat, Inc., Dave Jones
  * Released under the General Public License (GPL).
`;

let server: RedisServer;
let redis: Redis;
const open: { app: FastifyInstance; queue: Queue<QueueJobData> }[] = [];

beforeAll(async () => {
  server = await startRedisServer({ dir: path.join(os.tmpdir(), `nci-auth-test-${process.pid}`) });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});
afterEach(async () => {
  for (const { app, queue } of open.splice(0)) {
    await app.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
  await redis.flushall();
});

async function makeApp(auth: Partial<AuthSettings> = {}) {
  const queue = new Queue<QueueJobData>(`auth-${randomUUID()}`, { connection: redis.duplicate() });
  const settings: AuthSettings = { anonymousReads: true, maxConcurrent: 40, maxPerHour: 400, requestsPerMinute: 1000, ...auth };
  const app = await buildApp({ redis, store: new JobStore(redis), queue, catalog: () => loadCatalog(), series: () => loadSeries(), bootSelftests: () => loadBootSelftests(), auth: settings });
  open.push({ app, queue });
  return { app, queue };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function createToken(app: FastifyInstance, body: Record<string, unknown>): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/admin/tokens', headers: bearer(ADMIN), payload: body });
  expect(res.statusCode, res.body).toBe(201);
  return (res.json() as { token: string }).token;
}

describe('open local use', () => {
  it('accepts anonymous jobs while no token exists and NOMMU_CI_ADMIN_TOKEN is unset, and says so', async () => {
    const { app } = await makeApp();
    expect(await app.auth.describe()).toMatch(/^auth: open/);
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', payload: KUNIT });
    expect(res.statusCode).toBe(202);
    const rec = (await app.inject(`/v1/jobs/${(res.json() as { id: string }).id}`)).json();
    expect(rec.submitted_by).toBeNull();
    // token management still needs an admin token
    const admin = await app.inject({ method: 'GET', url: '/v1/admin/tokens' });
    expect(admin.statusCode).toBe(401);
    expect(admin.json().message).toContain('NOMMU_CI_ADMIN_TOKEN');
  });
});

describe('with one token created', () => {
  it('refuses anonymous writes (401), read tokens on POST (403), and records who submitted', async () => {
    const { app } = await makeApp({ adminToken: ADMIN });
    const reader = await createToken(app, { name: 'viewer', role: 'read' });
    const bot = await createToken(app, { name: 'mm-bot', role: 'submit' });
    expect(await app.auth.describe()).toBe('auth: writes need a token (NOMMU_CI_ADMIN_TOKEN set); anonymous reads on');

    const anon = await app.inject({ method: 'POST', url: '/v1/jobs', payload: KUNIT });
    expect(anon.statusCode).toBe(401);
    expect(anon.json().message).toBe('POST /v1/jobs needs a token with role submit: send "Authorization: Bearer <token>" (nommu-ci --token or NOMMU_CI_TOKEN)');

    const read = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(reader), payload: KUNIT });
    expect(read.statusCode).toBe(403);
    expect(read.json().message).toBe('token "viewer" has role read; POST /v1/jobs needs role submit');

    const wrong = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer('nci_not-a-token'), payload: KUNIT });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().message).toContain('not known to this server');

    const ok = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT });
    expect(ok.statusCode).toBe(202);
    const { id } = ok.json() as { id: string };
    await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(ADMIN), payload: KUNIT });
    // anonymous reads are on; the listing filters by submitter
    expect((await app.inject(`/v1/jobs/${id}`)).json().submitted_by).toBe('mm-bot');
    const mine = (await app.inject('/v1/jobs?submitted_by=mm-bot')).json() as { id: string }[];
    expect(mine.map((j) => j.id)).toEqual([id]);
    expect(((await app.inject('/v1/jobs')).json() as unknown[]).length).toBe(2);

    const run = await app.inject({ method: 'POST', url: '/v1/runs', headers: bearer(bot), payload: { patch: SERIES } });
    if (loadSeries() !== null) {
      expect(run.statusCode, run.body).toBe(202);
      const runs = (await app.inject('/v1/runs?submitted_by=mm-bot')).json() as { id: string; submitted_by: string }[];
      expect(runs).toMatchObject([{ id: run.json().id, submitted_by: 'mm-bot' }]);
      expect((await app.inject('/v1/runs?submitted_by=viewer')).json()).toEqual([]);
    }

    // the admin lists tokens without their secrets, and nobody else may
    const list = await app.inject({ method: 'GET', url: '/v1/admin/tokens', headers: bearer(ADMIN) });
    expect((list.json() as { name: string; role: string }[]).map((t) => [t.name, t.role])).toEqual([['mm-bot', 'submit'], ['viewer', 'read']]);
    expect(list.body).not.toContain(bot.slice(4));
    const notAdmin = await app.inject({ method: 'GET', url: '/v1/admin/tokens', headers: bearer(bot) });
    expect(notAdmin.statusCode).toBe(403);
    expect(notAdmin.json().message).toBe('token "mm-bot" has role submit; GET /v1/admin/tokens needs role admin');
    const dup = await app.inject({ method: 'POST', url: '/v1/admin/tokens', headers: bearer(ADMIN), payload: { name: 'mm-bot', role: 'read' } });
    expect(dup.statusCode).toBe(409);
    // another submit token cannot cancel mm-bot's job; mm-bot can
    const other = await createToken(app, { name: 'other', role: 'submit' });
    const cancel = await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: bearer(other) });
    expect(cancel.statusCode).toBe(403);
    expect(cancel.json().message).toBe(`job ${id} was submitted by token "mm-bot"; only it or an admin token may cancel it`);
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: bearer(bot) })).statusCode).toBe(202);
  });

  it('refuses a token over its concurrent-job quota with 429 and Retry-After, naming the limit', async () => {
    const { app } = await makeApp({ adminToken: ADMIN });
    const bot = await createToken(app, { name: 'busy', role: 'submit', max_concurrent: 2 });
    for (let i = 0; i < 2; i++) expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT })).statusCode).toBe(202);
    const over = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT });
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json().message).toBe('token "busy" has 2 jobs queued or running and this request adds 1; its limit is 2 concurrent jobs (max_concurrent)');
    // a job that ends frees its place
    const [first] = (await app.inject('/v1/jobs?submitted_by=busy')).json() as { id: string }[];
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${first!.id}`, headers: bearer(bot) })).json()).toMatchObject({ state: 'canceled' });
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT })).statusCode).toBe(202);
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toContain('nommu_ci_token_quota_rejections_total{token="busy",limit="max_concurrent"} 1');
    expect(metrics).toContain('nommu_ci_token_jobs_submitted_total{token="busy"} 3');
    expect(metrics).toContain('nommu_ci_token_active_jobs{token="busy"} 2');
  });

  it('refuses a token over its jobs per hour with 429 and a Retry-After of when the oldest leaves the hour', async () => {
    const { app } = await makeApp({ adminToken: ADMIN });
    const bot = await createToken(app, { name: 'hourly', role: 'submit', max_per_hour: 1 });
    // a request refused for bad input does not count
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: { ...KUNIT, kernel: 'nope' } })).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT })).statusCode).toBe(202);
    const over = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT });
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(3500);
    expect(Number(over.headers['retry-after'])).toBeLessThanOrEqual(3600);
    expect(over.json().message).toContain('its limit of 1 jobs per hour (max_per_hour)');
  });

  it('lets an admin revoke a token: its next request gets 401', async () => {
    const { app } = await makeApp({ adminToken: ADMIN });
    const bot = await createToken(app, { name: 'gone', role: 'submit' });
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT })).statusCode).toBe(202);
    const del = await app.inject({ method: 'DELETE', url: '/v1/admin/tokens/gone', headers: bearer(ADMIN) });
    expect(del.json()).toEqual({ name: 'gone', revoked: true });
    const after = await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT });
    expect(after.statusCode).toBe(401);
    expect((await app.inject({ method: 'DELETE', url: '/v1/admin/tokens/gone', headers: bearer(ADMIN) })).statusCode).toBe(404);
  });

  it('needs a read token for reads when anonymous reads are off', async () => {
    const { app } = await makeApp({ adminToken: ADMIN, anonymousReads: false });
    const reader = await createToken(app, { name: 'viewer', role: 'read' });
    const anon = await app.inject('/v1/jobs');
    expect(anon.statusCode).toBe(401);
    expect(anon.json().message).toBe('GET /v1/jobs needs a token with role read: send "Authorization: Bearer <token>" (nommu-ci --token or NOMMU_CI_TOKEN)');
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(reader) })).statusCode).toBe(200);
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  });

  it('answers anonymous reads without asking Redis about tokens, and reads a page of jobs with one HGETALL each', async () => {
    // Tokens made by another API process whose NOMMU_CI_ADMIN_TOKEN this one does not have: only
    // Redis could say whether writes need a token, and reads must not ask.
    const { app } = await makeApp();
    const bot = (await new TokenStore(redis).create('mm-bot', 'submit', { max_concurrent: null, max_per_hour: null }))!.token;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bot), payload: KUNIT })).json().id);
    expect((await app.inject({ method: 'POST', url: '/v1/jobs', payload: KUNIT })).statusCode).toBe(401);
    await redis.config('RESETSTAT');
    expect((await app.inject(`/v1/jobs/${ids[0]}`)).statusCode).toBe(200);
    const list = (await app.inject('/v1/jobs')).json() as { id: string }[];
    expect(list.map((j) => j.id)).toEqual([...ids].reverse());
    const stats = Object.fromEntries(
      [...(await redis.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]),
    );
    expect(stats.hlen ?? 0).toBe(0); // tokens.any()
    expect(stats.hget ?? 0).toBe(0); // tokens.verify()
    expect(stats.hgetall).toBe(1 + ids.length);
  });

  it('limits the request rate per token, counted in Redis across API processes', async () => {
    const settings = { adminToken: ADMIN, requestsPerMinute: 3 };
    const a = await makeApp(settings);
    const b = await makeApp(settings); // a second API process on the same Redis
    const reader = await createToken(a.app, { name: 'viewer', role: 'read' });
    const codes = [];
    for (const app of [a.app, b.app, a.app, b.app]) codes.push((await app.inject({ url: '/v1/kernels', headers: bearer(reader) })).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const last = await b.app.inject({ url: '/v1/kernels', headers: bearer(reader) });
    expect(last.headers['retry-after']).toBeDefined();
    expect(last.json().message).toMatch(/^token "viewer" made more than 3 requests per minute \(NOMMU_CI_RATE_LIMIT\)/);
  });
});

describe('fair scheduling', () => {
  it("queues a token's k-th outstanding job in round k: another token's single job goes right after the bulk's first", async () => {
    const { app, queue } = await makeApp({ adminToken: ADMIN });
    const bulk = await createToken(app, { name: 'bulk', role: 'submit' });
    const human = await createToken(app, { name: 'human', role: 'submit' });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(bulk), payload: KUNIT })).json().id);
    const mine = (await app.inject({ method: 'POST', url: '/v1/jobs', headers: bearer(human), payload: KUNIT })).json().id as string;
    const order = (await queue.getPrioritized(0, -1)).map((j) => j.id);
    expect(order).toEqual([ids[0], mine, ids[1], ids[2], ids[3]]);
  });
});
