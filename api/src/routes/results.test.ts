/** GET /v1/jobs/:id/results?format= and the KUnit run options of POST /v1/jobs, against a real redis-server. */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseJunit } from 'junit2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import { COVERAGE_ARTIFACT, extractKtap, JobCoverageSchema, JobStore, kunitJson, newJobRecord, parseKtap, REPO_DIR, type QueueJobData } from '@nommu-ci/shared';
import { startTestApi, type TestApi } from '../testing.js';

let t: TestApi;
let queue: Queue<QueueJobData>;
let app: FastifyInstance;
let store: JobStore;

beforeAll(async () => {
  t = await startTestApi('api-results');
  ({ queue, app, store } = t);
});
afterAll(() => t?.stop());

/** A finished job whose results are those of a captured console log (as the worker stores them). */
async function finishedJob(fixture: string): Promise<{ id: string; tests: ReturnType<typeof parseKtap> }> {
  const id = randomUUID();
  const { lines, crash } = extractKtap(readFileSync(path.join(REPO_DIR, 'shared/fixtures/ktap', fixture), 'utf8').split('\n'));
  const r = parseKtap(lines, crash ?? undefined);
  await store.create(newJobRecord(id, 'kunit'), { kind: 'kunit' });
  await store.setResults(id, r.tests);
  await store.update(id, { state: r.summary.crashed || r.summary.failed ? 'failed' : 'passed', summary: r.summary });
  return { id, tests: r };
}

describe('GET /v1/jobs/:id/results?format=', () => {
  it('kunit-json: kunit.py --json\'s document, with the top-level plan recovered from the summary', async () => {
    const { id, tests } = await finishedJob('crash.console.txt');
    const res = await app.inject(`/v1/jobs/${id}/results?format=kunit-json`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const doc = res.json() as ReturnType<typeof kunitJson>;
    expect(doc).toEqual({ ...kunitJson(tests.tests, tests.planned, { buildEnvironment: `nommu-ci job ${id}` }) });
    expect(doc.misc).toEqual({ tests: 41, passed: 9, failed: 0, crashed: 32, skipped: 0, errors: 33 });
  });

  it('junit: XML a JUnit reader takes, and the tree stays the default', async () => {
    const { id } = await finishedJob('fail.console.txt');
    const res = await app.inject(`/v1/jobs/${id}/results?format=junit`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/xml/);
    const doc = (await parseJunit(res.body)) as { failures: number; testsuite: { name: string }[] };
    expect(doc.failures).toBe(2);
    expect(doc.testsuite.map((s) => s.name)).toEqual(['list-kunit-test', 'hlist', 'klist']);
    const tree = await app.inject(`/v1/jobs/${id}/results`);
    expect((tree.json() as { name: string }[]).map((t) => t.name)).toEqual(['list-kunit-test', 'hlist', 'klist']);
  });

  it('refuses an unknown format, naming the field', async () => {
    const { id } = await finishedJob('pass.console.txt');
    const res = await app.inject(`/v1/jobs/${id}/results?format=tap`);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('querystring.format');
  });
});

describe('GET /v1/jobs/:id/results?format=coverage', () => {
  const fixture = (f: string) => readFileSync(path.join(REPO_DIR, 'shared/fixtures/coverage', f), 'utf8');
  const NOMMU = fixture('nommu.info');
  const RESERVES = fixture('nommu-reserves.mbox');

  /** A finished coverage job with the tracefile artifact the worker stores. */
  async function coverageJob(tracefile: string | null, patch?: string): Promise<string> {
    const id = randomUUID();
    await store.create({ ...newJobRecord(id, 'kunit'), state: 'passed' }, { kind: 'kunit', mmu: false, ...(patch ? { patch } : {}) });
    if (tracefile !== null) await store.putArtifact(id, COVERAGE_ARTIFACT, Buffer.from(tracefile));
    return id;
  }

  it('a job with a patch: totals, and per changed file the lines executed, not executed and not instrumented', async () => {
    const id = await coverageJob(NOMMU, RESERVES);
    const res = await app.inject(`/v1/jobs/${id}/results?format=coverage`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(Value.Check(JobCoverageSchema, body)).toBe(true);
    expect(body).toEqual({
      totals: { files: 4, lines_found: 915, lines_hit: 187 },
      changed: [
        {
          file: 'mm/nommu.c',
          built: true,
          changed_lines: 4,
          instrumented_lines: 3,
          executed_lines: 2,
          executed: [[1871, 1871], [1892, 1892]],
          not_executed: [[702, 702]],
          not_instrumented: [[1863, 1863]],
        },
      ],
    });
  });

  it('a job without a patch: totals only', async () => {
    const id = await coverageJob(NOMMU);
    expect((await app.inject(`/v1/jobs/${id}/results?format=coverage`)).json()).toEqual({ totals: { files: 4, lines_found: 915, lines_hit: 187 }, changed: null });
  });

  it('409 naming what is missing or wrong: no tracefile, or one that cannot be read', async () => {
    const none = await coverageJob(null, RESERVES);
    const a = await app.inject(`/v1/jobs/${none}/results?format=coverage`);
    expect(a.statusCode).toBe(409);
    expect(a.json().message).toBe(`job ${none} has no coverage.info: not a coverage job, or it has not finished its tests (state passed)`);
    const absolute = await coverageJob(NOMMU.replace(/^SF:/gm, 'SF:/src/'), RESERVES);
    const b = await app.inject(`/v1/jobs/${absolute}/results?format=coverage`);
    expect(b.statusCode).toBe(409);
    expect(b.json().message).toContain('its coverage.info cannot be read: SF:/src/mm/percpu-km.c is an absolute path');
  });
});

describe('POST /v1/jobs: KUnit run options', () => {
  const post = (payload: object) => app.inject({ method: 'POST', url: '/v1/jobs', payload });

  it('takes shards, isolate, filter, filter_action and list_only', async () => {
    const res = await post({ kind: 'kunit', mmu: true, shards: 2, isolate: 'suite', filter: 'speed>slow', filter_action: 'skip', list_only: true });
    expect(res.statusCode).toBe(202);
    expect(await store.request(res.json().id)).toMatchObject({ shards: 2, isolate: 'suite', filter: 'speed>slow', filter_action: 'skip', list_only: true });
  });

  it('refuses what would not reach the kernel as asked', async () => {
    for (const [body, field] of [
      [{ shards: 0 }, 'shards'],
      [{ isolate: 'case' }, 'isolate'],
      [{ filter: 'speed="slow"' }, 'filter'],
      [{ filter: 'a b\nc' }, 'filter'],
      [{ filter_action: 'skip' }, 'filter_action'],
    ] as const) {
      const res = await post({ kind: 'kunit', mmu: true, ...body });
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().message).toContain(field);
    }
  });
});
