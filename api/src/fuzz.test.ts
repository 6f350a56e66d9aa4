/**
 * Requests generated from the API's own OpenAPI document (so a new route is fuzzed without
 * touching this file): samples of each operation's schemas, the same with one field at a time
 * replaced by anything fast-check makes, malformed path parameters and query strings, raw bodies
 * (bytes, deep nesting, huge numbers, wrong content types), and the live streams with hostile
 * Last-Event-ID headers and clients that hang up. The API must answer every one without a 5xx,
 * each 4xx saying what is wrong, and still serve afterwards. Real Redis, fresh queue.
 *
 * A failure prints fast-check's seed and the shrunk request; `FUZZ_RUNS` raises the number of runs.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { sample } from 'openapi-sampler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { newJobRecord } from '@nommu-ci/shared';
import { startTestApi, type TestApi } from './testing.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 100);

interface Operation {
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI path, `{id}` style. */
  path: string;
  params: { name: string; in: 'path' | 'query' | 'header'; schema: object }[];
  body: object | null;
}

let t: TestApi;
let app: FastifyInstance;
let ops: Operation[];
/** A job that exists, so path parameters also reach the code behind the 404. */
let jobId: string;

beforeAll(async () => {
  t = await startTestApi('fuzz');
  app = t.app;
  const store = t.store;
  await app.ready();
  jobId = randomUUID();
  await store.create({ ...newJobRecord(jobId, 'kunit'), state: 'passed' }, { kind: 'kunit' });
  await store.appendTap(jobId, 1, ['KTAP version 1', '1..1', 'ok 1 fuzz']);
  await store.endTap(jobId, 1, false);
  await store.appendEvent(jobId, { type: 'state', state: 'passed' } as never);
  await store.endEvents(jobId);
  ops = operations(app.swagger() as { paths: Record<string, Record<string, OpenApiOp>> });
});

afterAll(() => t?.stop());

interface OpenApiOp {
  parameters?: { name: string; in: string; schema?: object }[];
  requestBody?: { content?: Record<string, { schema?: object }> };
}

function operations(doc: { paths: Record<string, Record<string, OpenApiOp>> }): Operation[] {
  const out: Operation[] = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    if (!p.startsWith('/v1/') && p !== '/healthz') continue;
    for (const [m, op] of Object.entries(item)) {
      const method = m.toUpperCase();
      if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') continue;
      out.push({
        method,
        path: p,
        params: (op.parameters ?? []).filter((x) => ['path', 'query', 'header'].includes(x.in)).map((x) => ({ name: x.name, in: x.in as 'path', schema: x.schema ?? {} })),
        body: op.requestBody?.content?.['application/json']?.schema ?? null,
      });
    }
  }
  return out;
}

const sampleOf = (schema: object): unknown => sample(schema as Parameters<typeof sample>[0], { skipReadOnly: true, quiet: true });

/**
 * Percent-encodes every UTF-8 byte; a value starting with RAW is sent as written, so that invalid
 * escapes and invalid UTF-8 (`%ff`, `%c3%28`, a bare `%`) reach the server too.
 */
const RAW = 'raw:';
const enc = (s: string): string => (s.startsWith(RAW) ? s.slice(RAW.length) : [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));

function url(op: Operation, pathValues: Record<string, string>, query: string): string {
  const p = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => enc(pathValues[name] ?? jobId));
  return query ? `${p}?${query}` : p;
}

/** A response the API may give to anything: no 5xx, a 4xx with a message that names the problem. */
function checkAnswer(req: InjectOptions, res: LightMyRequestResponse): void {
  const what = `${req.method} ${req.url} ${typeof req.payload === 'string' ? req.payload.slice(0, 300) : JSON.stringify(req.payload)?.slice(0, 300)}`;
  expect(res.statusCode, `${what} -> ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.statusCode >= 400) {
    const body = res.json() as { message?: string };
    expect(typeof body.message, what).toBe('string');
    expect(body.message!.length, what).toBeGreaterThan(5);
    if (res.statusCode === 400) {
      expect(body.message, what).toMatch(/\b(body|params|querystring|headers|JSON|content-type|patch|format|url)\b/i);
    }
  }
}

async function send(req: InjectOptions): Promise<LightMyRequestResponse> {
  const res = await app.inject(req);
  checkAnswer(req, res);
  return res;
}

/** Strings a hostile client would send: any unicode, path tricks, control bytes, very long. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('..', '../../etc/passwd', '%00', '\u0000', '-1', '1e309', 'NaN', '[]', '{}', 'null', ' ', '\ud800', 'a'.repeat(70_000)),
  fc.constantFrom(`${RAW}%ff`, `${RAW}%c3%28`, `${RAW}%`, `${RAW}%zz`, `${RAW}a%2fb`, `${RAW}..%2f..%2fetc`),
  fc.uuid(),
);

// Hundreds of requests a case: minutes on a loaded machine, and more with FUZZ_RUNS raised.
describe('fuzzing from the OpenAPI document', { timeout: 120_000 + RUNS * 1_000 }, () => {
  it('covers every operation of the document', () => {
    const names = ops.map((o) => `${o.method} ${o.path}`);
    expect(names).toEqual(expect.arrayContaining(['POST /v1/jobs', 'GET /v1/jobs/{id}', 'POST /v1/runs', 'GET /v1/jobs/{id}/events']));
  });

  it('answers schema samples and samples with one field replaced by anything, without a 5xx', async () => {
    for (const op of ops.filter((o) => o.body)) {
      const base = sampleOf(op.body!) as Record<string, unknown>;
      await send({ method: op.method, url: url(op, {}, ''), payload: base as object });
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...Object.keys(base), 'unknown_field'), fc.anything({ withNullPrototype: false, maxDepth: 4 }), async (key, value) => {
          await send({ method: op.method, url: url(op, {}, ''), payload: { ...base, [key]: value } as object });
        }),
        { numRuns: RUNS },
      );
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ maxDepth: 5 }), async (value) => {
          await send({ method: op.method, url: url(op, {}, ''), payload: JSON.stringify(value), headers: { 'content-type': 'application/json' } });
        }),
        { numRuns: RUNS },
      );
    }
  });

  it('answers malformed path parameters and query strings without a 5xx', async () => {
    for (const op of ops) {
      const pathNames = op.params.filter((p) => p.in === 'path').map((p) => p.name);
      const queryNames = op.params.filter((p) => p.in === 'query').map((p) => p.name);
      await fc.assert(
        fc.asyncProperty(
          fc.dictionary(fc.constantFrom(...pathNames, 'x'), nasty),
          fc.array(fc.tuple(fc.constantFrom(...queryNames, 'x', 'limit[]'), nasty), { maxLength: 4 }),
          async (pathValues, query) => {
            const qs = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
            const payload = op.body ? (sampleOf(op.body) as object) : undefined;
            await send({ method: op.method, url: url(op, pathValues, qs), payload });
          },
        ),
        { numRuns: Math.ceil(RUNS / 3) },
      );
    }
  });

  it('answers raw bodies: bytes, deep nesting, huge numbers, wrong content types', async () => {
    const posts = ops.filter((o) => o.method === 'POST');
    for (const op of posts) {
      const u = url(op, {}, '');
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
          await send({ method: 'POST', url: u, payload: Buffer.from(bytes), headers: { 'content-type': 'application/json' } });
        }),
        { numRuns: RUNS },
      );
      for (const payload of ['['.repeat(100_000), '{"a":'.repeat(50_000), '{"kind":"kunit","timeout_s":1e999}', '{"kind":"kunit","mmu":true,"mmu":false}', '"\\ud800"', '']) {
        await send({ method: 'POST', url: u, payload, headers: { 'content-type': 'application/json' } });
      }
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1']) {
        await send({ method: 'POST', url: u, payload: '{"kind":"kunit"}', headers: { 'content-type': type } });
      }
    }
  });

  it('answers bad patch text in both patch fields with a 4xx naming the patch', async () => {
    const mboxish = fc.array(
      fc.oneof(
        fc.constantFrom('From 0 Mon Sep 17 00:00:00 2001', 'Subject: [PATCH 1/2] x', 'Subject: =?utf-8?b?!!!?=', 'Content-Transfer-Encoding: base64', 'diff --git a/x b/x', '--- a/x', '+++ b/x', '@@ -1 +1 @@', '@@ -1,99999999999 +1 @@', '-a', '+b', ' c', '', '\\ No newline at end of file', 'GIT binary patch'),
        fc.string({ maxLength: 30 }),
      ),
      { maxLength: 30 },
    );
    await fc.assert(
      fc.asyncProperty(mboxish, async (lines) => {
        const patch = lines.join('\n');
        const job = await send({ method: 'POST', url: '/v1/jobs', payload: { kind: 'kunit', patch } });
        expect([202, 400, 413, 422]).toContain(job.statusCode);
        const run = await send({ method: 'POST', url: '/v1/runs', payload: { patch } });
        expect([202, 400, 413, 422]).toContain(run.statusCode);
      }),
      { numRuns: RUNS },
    );
  });

  it('streams a job to any Last-Event-ID and survives clients that hang up', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(nasty, fc.constantFrom('0', '0-0', '$', '+', '-', '99999999999999-0', '1-1-1', '1.5', '')), async (last) => {
        const headers: Record<string, string> = {};
        // Header values cannot carry control bytes or lone surrogates on the wire; send what a client can.
        const value = Buffer.from(last, 'utf8').toString('latin1').replace(/[\r\n\0]/g, '');
        if (value) headers['last-event-id'] = value;
        await send({ method: 'GET', url: `/v1/jobs/${jobId}/events`, headers });
      }),
      // An ID past the end makes the stream wait for entries that never come (seconds each).
      { numRuns: Math.ceil(RUNS / 5) },
    );
    // Real sockets, cut at once or after the first bytes, on both streams.
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    for (let i = 0; i < 40; i++) {
      const ctl = new AbortController();
      const stream = i % 2 ? 'tap' : 'events';
      const r = fetch(`${address}/v1/jobs/${jobId}/${stream}`, { signal: ctl.signal, headers: { 'last-event-id': String(i) } });
      if (i % 4 < 2) ctl.abort();
      else await r.then(async (res) => (await res.body?.getReader().read(), ctl.abort())).catch(() => undefined);
      await r.catch(() => undefined);
    }
    const health = await fetch(`${address}/healthz`);
    expect(health.status).toBe(200);
    const events = await fetch(`${address}/v1/jobs/${jobId}/events`);
    expect(await events.text()).toMatch(/passed/);
  });
});
