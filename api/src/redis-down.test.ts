/**
 * The API as `npm start` runs it (startApi), on a real redis-server that goes away and comes back:
 * while it is away every request gets a prompt 503 with Retry-After, not a 500 or a hang; once it
 * is back the same requests succeed, and a live /tap follower resumes where it was.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { JobStore, newJobRecord } from '@nommu-ci/shared';
import { freePort, startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { startApi } from './server.js';

let dir: string;
let server: RedisServer;
let api: Awaited<ReturnType<typeof startApi>>;
let base: string;

beforeAll(async () => {
  process.env.LOG_LEVEL ??= 'error';
  dir = mkdtempSync(path.join(os.tmpdir(), 'nci-redis-down-'));
  server = await startRedisServer({ dir });
  const port = await freePort();
  api = await startApi({ port, host: '127.0.0.1', redis: server.url });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await api?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('while Redis is away', () => {
  it('answers 503 with Retry-After at once, and serves again when Redis is back', async () => {
    const id = randomUUID();
    const seed = new Redis(server.url);
    const store = new JobStore(seed);
    await store.create(newJobRecord(id, 'kunit'), { kind: 'kunit' });
    await store.appendTap(id, 1, ['KTAP version 1']);
    seed.disconnect();
    expect((await fetch(`${base}/v1/jobs/${id}`)).status).toBe(200);
    // A follower of a job that has not ended, open across the outage.
    const res = await fetch(`${base}/v1/jobs/${id}/tap`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    const rest = (async () => {
      for (let c = await reader.read(); !c.done; c = await reader.read()) text += decoder.decode(c.value);
      return text;
    })();

    await server.stop();
    for (const [method, url, body] of [
      ['GET', `/v1/jobs/${id}`, undefined],
      ['GET', '/v1/jobs', undefined],
      ['POST', '/v1/jobs', JSON.stringify({ kind: 'kunit' })],
    ] as const) {
      const t0 = Date.now();
      const r = await fetch(base + url, { method, body, headers: body ? { 'content-type': 'application/json' } : {} });
      expect(r.status, `${method} ${url}`).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect(((await r.json()) as { message: string }).message).toMatch(/Redis\) is unavailable/);
      expect(Date.now() - t0).toBeLessThan(5000);
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(503);

    server = await startRedisServer({ dir, port: server.port });
    const back = Date.now() + 20_000;
    let status = 0;
    while (Date.now() < back && (status = (await fetch(`${base}/v1/jobs/${id}`)).status) !== 200) await new Promise((r) => setTimeout(r, 200));
    expect(status).toBe(200);

    const again = new Redis(server.url);
    const store2 = new JobStore(again);
    await store2.appendTap(id, 1, ['ok 1 after-the-outage']);
    await store2.update(id, { state: 'passed' });
    await store2.endTap(id, 1, false);
    again.disconnect();
    expect(await rest).toBe('KTAP version 1\nok 1 after-the-outage\n');
  }, 60_000);
});
