/** For tests: the API on a redis-server of its own (real, private, in a scratch directory) and a fresh BullMQ queue. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { JobStore, loadBootSelftests, loadCatalog, loadSeries, type QueueJobData } from '@nommu-ci/shared';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';
import { buildApp, type AppDeps } from './app.js';

export interface TestApi {
  server: RedisServer;
  redis: Redis;
  queue: Queue<QueueJobData>;
  store: JobStore;
  app: FastifyInstance;
  /** Closes the app, removes the queue and stops the redis-server. */
  stop(): Promise<void>;
}

/** `deps` replaces the defaults: the machine's kernel catalogue and series, open access. */
export async function startTestApi(name: string, deps: Partial<Omit<AppDeps, 'redis' | 'store' | 'queue'>> = {}): Promise<TestApi> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `nci-${name}-`));
  const server = await startRedisServer({ dir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const queue = new Queue<QueueJobData>(`${name}-${randomUUID()}`, { connection: redis.duplicate() });
  const store = new JobStore(redis);
  const app = await buildApp({ redis, store, queue, catalog: () => loadCatalog(), series: () => loadSeries(), bootSelftests: () => loadBootSelftests(), ...deps });
  return {
    server,
    redis,
    queue,
    store,
    app,
    async stop() {
      await app.close();
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
