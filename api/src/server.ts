/** The API process: `tsx api/src/server.ts`, configured from the environment (see README). */
import { once } from 'node:events';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { JobStore, QUEUE_NAME, RedisOutageLog, SeriesApplicability, loadBootSelftests, loadCatalog, loadSeries, redisUrl, type QueueJobData } from '@nommu-ci/shared';
import { buildApp } from './app.js';

export async function startApi(opts: { port: number; host: string; redis: string }) {
  // While Redis is away a request fails at once and the error handler answers 503 (the client
  // retries), instead of hanging until Redis is back; the connection itself keeps reconnecting.
  const redis = new Redis(opts.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  const queueConn = redis.duplicate();
  await Promise.all([redis, queueConn].map((c) => (c.status === 'ready' ? null : once(c, 'ready'))));
  const queue = new Queue<QueueJobData>(QUEUE_NAME, {
    connection: queueConn,
    defaultJobOptions: {
      attempts: Number(process.env.NOMMU_CI_ATTEMPTS ?? 3),
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  });
  const applicability = new SeriesApplicability();
  const app = await buildApp({
    redis,
    store: new JobStore(redis),
    queue,
    catalog: () => loadCatalog(),
    series: (kernel) => loadSeries(kernel?.seriesDir),
    seriesApplies: (kernel, series) => applicability.check(kernel, series),
    bootSelftests: () => loadBootSelftests(),
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
  });
  // Say in the log that Redis is away, and that it is back: once each per outage.
  const outage = new RedisOutageLog({ warn: (m) => app.log.warn(m), info: (m) => app.log.info(m) });
  outage.connection('redis', redis);
  outage.connection('redis (queue)', queueConn);
  outage.client('queue', queue);
  await app.listen({ port: opts.port, host: opts.host });
  app.log.info(await app.auth.describe());
  return {
    app,
    async close() {
      await app.close();
      await queue.close();
      queueConn.disconnect();
      redis.disconnect();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Listening before the server says it is up, so that a signal right after stops it cleanly.
  const stopSignal = new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  const api = await startApi({
    port: Number(process.env.PORT ?? 8080),
    host: process.env.HOST ?? '127.0.0.1',
    redis: redisUrl(),
  });
  await stopSignal;
  await api.close();
  process.exit(0);
}
