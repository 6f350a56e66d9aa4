/**
 * A coverage job's report and tracefile over HTTP (GET /v1/jobs/:id/coverage/*,
 * GET /v1/jobs/:id/artifacts/coverage.info) and `coverage` in POST /v1/jobs, against a real
 * redis-server. The report is stored as the worker stores it (JobStore.putCoverageReport).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobRecord } from '@nommu-ci/shared';
import { startTestApi, type TestApi } from '../testing.js';

let t: TestApi;
beforeAll(async () => {
  t = await startTestApi('api-coverage');
});
afterAll(() => t?.stop());

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

async function coverageJob(): Promise<string> {
  const id = randomUUID();
  await t.store.create(newJobRecord(id, 'kunit'), { kind: 'kunit', coverage: true });
  await t.store.update(id, { state: 'passed', coverage: { lines_found: 10, lines_hit: 7, files: 1 } });
  await t.store.putCoverageReport(
    id,
    new Map([
      ['index.html', Buffer.from('<html>LCOV index</html>')],
      ['gcov.css', Buffer.from('td { color: red }')],
      ['ruby.png', PNG],
      ['mm/nommu.c.gcov.html', Buffer.from('<html>nommu.c</html>')],
    ]),
  );
  await t.store.putArtifact(id, 'coverage.info', Buffer.from('TN:\nSF:mm/nommu.c\nDA:1,1\nLF:1\nLH:1\nend_of_record\n'));
  return id;
}

describe('coverage report and tracefile', () => {
  it('serves the report\'s files with their content types, index.html for the bare path', async () => {
    const id = await coverageJob();
    const get = (p: string) => t.app.inject(`/v1/jobs/${id}/coverage/${p}`);
    for (const [p, type, body] of [
      ['', /^text\/html/, '<html>LCOV index</html>'],
      ['index.html', /^text\/html/, '<html>LCOV index</html>'],
      ['gcov.css', /^text\/css/, 'td { color: red }'],
      ['mm/nommu.c.gcov.html', /^text\/html/, '<html>nommu.c</html>'],
    ] as const) {
      const res = await get(p);
      expect(res.statusCode, p).toBe(200);
      expect(res.headers['content-type'], p).toMatch(type);
      expect(res.body, p).toBe(body);
      expect(res.headers['content-security-policy'], p).toContain("default-src 'none'");
    }
    const png = await get('ruby.png');
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.rawPayload.equals(PNG)).toBe(true);
    const rec = await t.app.inject(`/v1/jobs/${id}`);
    expect(rec.json().coverage).toEqual({ lines_found: 10, lines_hit: 7, files: 1 });
    const page = await t.app.inject(`/jobs/${id}`);
    expect(page.body).toContain(`href="/v1/jobs/${id}/coverage/index.html">coverage report</a> (7 of 10 lines)`);
    const info = await t.app.inject(`/v1/jobs/${id}/artifacts/coverage.info`);
    expect(info.statusCode).toBe(200);
    expect(info.body).toContain('SF:mm/nommu.c');
  });

  it('refuses paths that leave the report, with a 400 naming the segment; 404 for what is not in it', async () => {
    const id = await coverageJob();
    // Over a real socket: an HTTP client (and inject) would resolve dot segments before sending.
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const raw = (p: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: `/v1/jobs/${id}/coverage/${p}` }, (res) => {
            let body = '';
            res.on('data', (b: Buffer) => (body += b.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    for (const p of ['../../../etc/passwd', 'mm/../index.html', '..%2F..%2Fetc%2Fpasswd', 'mm/%2e%2e/index.html', '.hidden', 'mm//nommu.c.gcov.html', 'a%00b.html', 'mm/nommu.c.gcov.html%3Fx']) {
      const res = await raw(p);
      expect(res.status, p).toBe(400);
      expect(JSON.parse(res.body).message, p).toMatch(/coverage report path .*segment/);
    }
    const missing = await t.app.inject(`/v1/jobs/${id}/coverage/mm/gup.c.gcov.html`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toMatch(/no coverage report file mm\/gup\.c\.gcov\.html/);
    const none = await t.app.inject(`/v1/jobs/${randomUUID()}/coverage/index.html`);
    expect(none.statusCode).toBe(404);
    const plain = randomUUID();
    await t.store.create(newJobRecord(plain, 'kunit'), { kind: 'kunit' });
    expect((await t.app.inject(`/v1/jobs/${plain}/coverage/`)).statusCode).toBe(404);
  });

  it('POST /v1/jobs takes coverage as a boolean on every kind, and names the field otherwise', async () => {
    for (const body of [
      { kind: 'kunit', coverage: true },
      { kind: 'boot-selftest', selftests: ['maple_tree'], coverage: true, mmu: true },
      { kind: 'kselftest', targets: ['timers'], coverage: false, mmu: true },
    ]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/jobs', payload: body });
      expect(res.statusCode, JSON.stringify(body) + res.body).toBe(202);
      expect((await t.store.request(res.json().id))?.coverage).toBe(body.coverage);
    }
    const bad = await t.app.inject({ method: 'POST', url: '/v1/jobs', payload: { kind: 'kunit', coverage: 'yes' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/coverage/);
  });
});
