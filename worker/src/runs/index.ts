/**
 * The run workers: one BullMQ Worker on the runs queue (run completion, per-patch narrowing) and
 * one on the webhooks queue (signed report delivery with retries). Cheap work: they can run in
 * every worker process next to the job Worker; BullMQ gives each run to one of them.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { FairShare, JobStore, QUEUE_NAME, RedisOutageLog, redisUrl, runQueueNames, RunStore, type QueueJobData } from '@nommu-ci/shared';
import { createRunProcessor, type RunJobData, type WebhookJobData } from './processor.js';
import { createWebhookProcessor } from './webhook.js';

export { createRunProcessor, compilerVersion, type RunJobData, type WebhookJobData } from './processor.js';
export { createWebhookProcessor, sign } from './webhook.js';

export interface RunWorkerOptions {
  redisUrl?: string;
  /** The jobs queue the run's cells are on (tests use their own); the runs and webhooks queues are named after it. */
  jobsQueueName?: string;
  /** Default NOMMU_CI_WEBHOOK_SECRET. */
  webhookSecret?: string;
  /** For links in webhook reports; default NOMMU_CI_PUBLIC_URL or http://127.0.0.1:$PORT. */
  baseUrl?: string;
  webhookAttempts?: number;
  webhookBackoffMs?: number;
  webhookTimeoutMs?: number;
  log?: (msg: string) => void;
  /** Warnings (Redis unreachable); default `log`. */
  warn?: (msg: string) => void;
}

export interface RunningRunWorker {
  runs: Worker<RunJobData>;
  webhooks: Worker<WebhookJobData>;
  close(): Promise<void>;
}

export async function startRunWorker(opts: RunWorkerOptions = {}): Promise<RunningRunWorker> {
  const url = opts.redisUrl ?? redisUrl();
  const log = opts.log ?? ((m: string) => console.error(`nommu-ci run worker: ${m}`));
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const outage = new RedisOutageLog({ warn: opts.warn ?? log, info: log });
  outage.connection('redis (runs)', redis);
  const jobsName = opts.jobsQueueName ?? QUEUE_NAME;
  const names = runQueueNames(jobsName);
  const store = new JobStore(redis);
  const runs = new RunStore(redis);
  const jobsQueue = new Queue<QueueJobData>(jobsName, { connection: redis });
  const webhooksQueue = new Queue<WebhookJobData>(names.webhooks, { connection: redis });
  outage.client('jobs queue', jobsQueue);
  outage.client('webhooks queue', webhooksQueue);
  const runsConn = redis.duplicate();
  const webhooksConn = redis.duplicate();
  outage.connection('redis (run worker)', runsConn);
  outage.connection('redis (webhook worker)', webhooksConn);
  const runWorker = new Worker<RunJobData>(
    names.runs,
    createRunProcessor({ store, runs, jobsQueue, webhooks: webhooksQueue, fair: new FairShare(redis), webhookAttempts: opts.webhookAttempts, webhookBackoffMs: opts.webhookBackoffMs, log }),
    { connection: runsConn, concurrency: 4 },
  );
  const webhookWorker = new Worker<WebhookJobData>(
    names.webhooks,
    createWebhookProcessor({
      store,
      runs,
      secret: opts.webhookSecret ?? process.env.NOMMU_CI_WEBHOOK_SECRET,
      baseUrl: opts.baseUrl ?? process.env.NOMMU_CI_PUBLIC_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`,
      timeoutMs: opts.webhookTimeoutMs,
      log,
    }),
    { connection: webhooksConn, concurrency: 4 },
  );
  outage.client('run worker', runWorker);
  outage.client('webhook worker', webhookWorker);
  runWorker.on('failed', (job, e) => log(`run ${job?.data.id ?? '?'}: attempt failed: ${e.message}`));
  return {
    runs: runWorker,
    webhooks: webhookWorker,
    async close() {
      await Promise.all([runWorker.close(), webhookWorker.close()]);
      await Promise.all([jobsQueue.close(), webhooksQueue.close()]);
      for (const c of [runsConn, webhooksConn]) await c.quit().catch(() => c.disconnect());
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
