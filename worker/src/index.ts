/**
 * The worker process: BullMQ Worker(s) on the shared queue running `processor` on each job.
 * Concurrency from NOMMU_CI_CONCURRENCY (default 1). Cancels arrive on CANCEL_CHANNEL (any
 * worker may hold the job; the one that does kills its sandbox). SIGTERM/SIGINT: stop taking
 * jobs, give running ones NOMMU_CI_SHUTDOWN_GRACE_S (default 10) to finish, then abort them
 * (they are retried elsewhere: an interrupted attempt is an infrastructure event, not a result).
 * The same process runs the run workers (runs/): a series' runs and their webhook reports.
 */
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { CANCEL_CHANNEL, DEFAULT_KERNEL, JobStore, loadCatalog, QUEUE_NAME, RedisOutageLog, redisUrl, type QueueJobData } from '@nommu-ci/shared';
import { clearPartialSpares, prepareSpare } from './stages/source.js';
import { JobAborted } from './errors.js';
import { emptyTrash } from './exec.js';
import { createProcessor, endLostJob } from './processor.js';
import { startRunWorker } from './runs/index.js';
import { reapCgroups, sandboxSelfTest } from './sandbox.js';
import { ownedDir } from './stages/build.js';
import { ownDir, reapJobDirs } from './jobdirs.js';
import { JOBS_DIR } from './paths.js';
import { rmSync } from 'node:fs';
import os from 'node:os';
import pino from 'pino';

export { createProcessor } from './processor.js';

/** BullMQ's failedReason for a job that stalled more often than maxStalledCount allows. */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

export interface WorkerOptions {
  redisUrl?: string;
  queueName?: string;
  concurrency?: number;
  jobsDir?: string;
  log?: (msg: string) => void;
  /** Warnings (Redis unreachable); default `log`. */
  warn?: (msg: string) => void;
  /** Keep a ready-made view of the default tree (default true). */
  spareViews?: boolean;
  /** How often BullMQ looks for jobs whose worker stopped renewing their lock (a lock lasts twice this). */
  stalledIntervalMs?: number;
  /** Times a job may be lost so before BullMQ fails it (then ended `error`, as lost). */
  maxStalledCount?: number;
}

export interface RunningWorker {
  worker: Worker<QueueJobData>;
  /** Stops taking jobs; running jobs get `graceMs` before they are aborted. */
  close(graceMs?: number): Promise<void>;
}

export async function startWorker(opts: WorkerOptions = {}): Promise<RunningWorker> {
  const url = opts.redisUrl ?? redisUrl();
  const log = opts.log ?? ((m: string) => console.error(`nommu-ci worker: ${m}`));
  // Commands wait for Redis to come back instead of failing (Redis restarts are survivable).
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const sub = new Redis(url, { maxRetriesPerRequest: null });
  const outage = new RedisOutageLog({ warn: opts.warn ?? log, info: log });
  outage.connection('redis', redis);
  outage.connection('redis (cancel subscriber)', sub);
  const running = new Map<string, AbortController>();
  await sub.subscribe(CANCEL_CHANNEL);
  sub.on('message', (channel: string, id: string) => {
    if (channel !== CANCEL_CHANNEL) return;
    const ctl = running.get(id);
    if (ctl && !ctl.signal.aborted) {
      log(`job ${id}: cancel requested; killing it`);
      ctl.abort(new JobAborted('cancel'));
    }
  });
  const concurrency = opts.concurrency ?? Number(process.env.NOMMU_CI_CONCURRENCY ?? 1);
  const store = new JobStore(redis);
  const processor = createProcessor({ store, redis, running, log, jobsDir: opts.jobsDir });
  const jobsDir = opts.jobsDir ?? JOBS_DIR;
  const selftestDir = ownDir(jobsDir, 'selftest');
  ownedDir(selftestDir);
  try {
    await sandboxSelfTest(selftestDir);
  } finally {
    rmSync(selftestDir, { recursive: true, force: true });
  }
  // Left by workers that were killed.
  for (const d of await reapJobDirs(jobsDir)) log(`removed job directory ${d}: its worker died`);
  emptyTrash();
  reapCgroups();
  await clearPartialSpares();
  // The first patched job's view is then a rename, not a 100k-link copy.
  const def = loadCatalog().find((k) => k.name === DEFAULT_KERNEL && k.available);
  if (def && opts.spareViews !== false) prepareSpare(def.path);
  const stalledMs = opts.stalledIntervalMs ?? Number(process.env.NOMMU_CI_STALLED_INTERVAL_S ?? 15) * 1000;
  const workerConn = redis.duplicate();
  outage.connection('redis (worker)', workerConn);
  const worker = new Worker<QueueJobData>(opts.queueName ?? QUEUE_NAME, processor, {
    connection: workerConn,
    concurrency,
    // Shown by the dashboard's queue page and recorded on each job as processedBy: where it runs.
    name: `${os.hostname()}:${process.pid}`,
    // Builds keep the event loop free, so the lock is renewed; a killed worker's job is
    // picked up again after the stalled interval.
    lockDuration: 2 * stalledMs,
    stalledInterval: stalledMs,
    maxStalledCount: opts.maxStalledCount ?? Number(process.env.NOMMU_CI_MAX_STALLED ?? 2),
  });
  outage.client('bullmq', worker);
  worker.on('failed', (job, e) => {
    log(`job ${job?.data.id ?? '?'}: attempt failed: ${e.message}`);
    // BullMQ fails a job lost too often as a worker takes it, without calling the processor:
    // nothing else would end its record and streams.
    if (job) void endIfLost(job, e).catch((e2: unknown) => log(`job ${job.data.id}: ending it as lost: ${e2 instanceof Error ? e2.message : String(e2)}`));
  });
  async function endIfLost(job: Job<QueueJobData>, e: Error): Promise<void> {
    if ((await job.getState()) !== 'failed') return; // retried: the next attempt ends it
    const why = e.message === STALLED_TOO_OFTEN ? `the worker stopped ${job.stalledCounter} time${job.stalledCounter === 1 ? '' : 's'} while running it` : `BullMQ failed it: ${e.message}`;
    if (await endLostJob({ store, redis }, job.data.id, why)) log(`job ${job.data.id}: ended as lost: ${why}`);
  }
  return {
    worker,
    async close(graceMs = Number(process.env.NOMMU_CI_SHUTDOWN_GRACE_S ?? 10) * 1000) {
      const closing = worker.close();
      const t = setTimeout(() => {
        for (const ctl of running.values()) ctl.abort(new JobAborted('shutdown', 'worker shutting down'));
      }, graceMs);
      await closing;
      clearTimeout(t);
      await workerConn.quit().catch(() => workerConn.disconnect());
      await sub.quit().catch(() => sub.disconnect());
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Listening before anything else: a signal that arrives while the worker starts, or right after
  // it says it is up, must stop it cleanly rather than kill it with the default action.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => resolve(sig));
  });
  const logger = pino({ name: 'nommu-ci-worker', level: process.env.LOG_LEVEL ?? 'info' });
  const w = await startWorker({ log: (m) => logger.info(m), warn: (m) => logger.warn(m) });
  const runs = await startRunWorker({ log: (m) => logger.info(m), warn: (m) => logger.warn(m) });
  console.error(`nommu-ci worker: pid ${process.pid}, concurrency ${Number(process.env.NOMMU_CI_CONCURRENCY ?? 1)}, queue ${QUEUE_NAME}`);
  const sig = await stopSignal;
  console.error(`nommu-ci worker: ${sig}; finishing`);
  await Promise.all([w.close(), runs.close()]).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
