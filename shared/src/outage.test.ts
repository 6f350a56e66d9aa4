import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { RedisOutageLog } from './outage.js';
import { freePort, startRedisServer } from './redis-server.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-outage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('RedisOutageLog', () => {
  it('says once that Redis is away and once that it is back, for every connection and queue of a process', async () => {
    const port = await freePort();
    let server = await startRedisServer({ dir, port });
    const lines: string[] = [];
    const outage = new RedisOutageLog({ warn: (m) => lines.push(`warn ${m}`), info: (m) => lines.push(`info ${m}`) });
    const a = new Redis(server.url, { maxRetriesPerRequest: null });
    const b = a.duplicate();
    const queue = new Queue('outage', { connection: b });
    outage.connection('a', a);
    outage.connection('b', b);
    outage.client('queue', queue);
    // BullMQ prints the errors of a queue that has no listener with console.error.
    const printed = vi.spyOn(console, 'error');
    try {
      await queue.add('x', {});
      await server.stop();
      // Commands issued meanwhile wait (maxRetriesPerRequest: null) while both connections retry.
      const pending = queue.add('y', {});
      await new Promise((r) => setTimeout(r, 3000));
      server = await startRedisServer({ dir, port });
      await pending;
      for (let i = 0; i < 100 && !lines.some((l) => l.startsWith('info')); i++) await new Promise((r) => setTimeout(r, 100));
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^warn [ab]: .*ECONNREFUSED.*: Redis is unreachable; reconnecting/);
      expect(lines[1]).toMatch(/^info Redis is reachable again after \d+\.\d s$/);
      expect(printed).not.toHaveBeenCalled();
      expect(await queue.count()).toBe(2);
    } finally {
      printed.mockRestore();
      await queue.close();
      a.disconnect();
      b.disconnect();
      await server.stop();
    }
  }, 60_000);
});
