/** `nommu-ci token create|list|revoke` and --token against a real API on 127.0.0.1 and a real redis-server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '@nommu-ci/api/testing';
import { ApiError, Client } from './client.js';
import { tokenCommand } from './token.js';

const ADMIN = 'cli-test-admin';
let t: TestApi;
let url: string;

beforeAll(async () => {
  t = await startTestApi('cli-token', { auth: { adminToken: ADMIN, anonymousReads: true, maxConcurrent: 40, maxPerHour: 400, requestsPerMinute: 1000 } });
  url = await t.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(() => t?.stop());

async function cli(...argv: string[]) {
  const io = { out: '', err: '' };
  const code = await tokenCommand(['--server', url, ...argv], { out: (s) => ((io.out += s), true), err: (s) => ((io.err += s), true) });
  return { code, ...io };
}

describe('nommu-ci token', () => {
  it('creates a token and prints it alone, lists tokens, revokes one; the token works until then', async () => {
    const made = await cli('--token', ADMIN, 'create', '--name', 'mm-bot', '--role', 'submit', '--max-concurrent', '3');
    expect(made.code).toBe(0);
    expect(made.out).toMatch(/^nci_[A-Za-z0-9_-]{43}\n$/);
    const token = made.out.trim();

    const list = await cli('--token', ADMIN, 'list');
    expect(list.out.split('\n')[0]).toMatch(/^NAME\s+ROLE\s+CREATED\s+MAX-CONCURRENT\s+MAX-PER-HOUR$/);
    expect(list.out).toMatch(/^mm-bot\s+submit\s+\S+\s+3\s+default$/m);

    const client = new Client(url, token);
    const job = await client.submit({ kind: 'kunit', mmu: true });
    expect((await client.job(job.id)).submitted_by).toBe('mm-bot');
    await expect(new Client(url, undefined).submit({ kind: 'kunit', mmu: true })).rejects.toThrow(/^401: POST \/v1\/jobs needs a token with role submit/);

    expect((await cli('--token', ADMIN, 'revoke', 'mm-bot')).code).toBe(0);
    const after = await client.submit({ kind: 'kunit', mmu: true }).catch((e: ApiError) => e);
    expect(after).toBeInstanceOf(ApiError);
    expect((after as ApiError).status).toBe(401);
  });

  it('needs an admin token: without one the server says what is missing', async () => {
    await expect(cli('list')).rejects.toThrow(/^401: GET \/v1\/admin\/tokens needs a token with role admin/);
    expect((await cli('create', '--name', 'x')).code).toBe(64);
  });
});
