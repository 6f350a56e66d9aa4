/**
 * Test helpers shared by the worker's and the API's integration tests: a private real
 * redis-server on a free port, fresh queue names (bullmq's own test style), and jobs created in
 * the store the way the API creates them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { FINAL_STATES, JobStore, newJobRecord, REPO_DIR, type JobEvent, type JobRecord, type JobRequest, type QueueJobData } from '@nommu-ci/shared';
import { startWorker } from '../src/index.js';
import { startRedisServer, type RedisServer } from '@nommu-ci/shared/redis-server';

export interface TestRedis {
  server: RedisServer;
  url: string;
  /** A connection for the test itself (maxRetriesPerRequest: null, as BullMQ wants). */
  redis: Redis;
  store: JobStore;
  stop(): Promise<void>;
}

/** Starts a private redis-server (the real one) in a temporary directory, on a free port. */
export async function startTestRedis(name = 'worker'): Promise<TestRedis> {
  const dir = path.join(os.tmpdir(), `nci-${name}-redis-${process.pid}-${Date.now()}`);
  const server = await startRedisServer({ dir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  return {
    server,
    url: server.url,
    redis,
    store: new JobStore(redis),
    async stop() {
      redis.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A queue name no other test uses. */
export const freshQueueName = (prefix = 'nci-test'): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Creates the job record and request as POST /v1/jobs does, and queues it. */
export async function submitJob(
  t: TestRedis,
  queue: Queue<QueueJobData>,
  request: JobRequest,
  opts: { attempts?: number } = {},
): Promise<string> {
  const id = randomUUID();
  await t.store.create(newJobRecord(id, request.kind), request);
  await queue.add(request.kind, { id }, { jobId: id, attempts: opts.attempts ?? 1 });
  return id;
}

/**
 * A queue and its events on the test's server. They get connection options rather than a client,
 * so that BullMQ owns their connections and close() ends them (a client handed in stays open).
 */
export function makeQueue(t: TestRedis, name: string): { queue: Queue<QueueJobData>; events: QueueEvents } {
  const connection = { host: '127.0.0.1', port: t.server.port, maxRetriesPerRequest: null };
  return {
    queue: new Queue<QueueJobData>(name, { connection }),
    events: new QueueEvents(name, { connection }),
  };
}

/** Polls the store until the job is in one of `states` (or the timeout), returning the record. */
export async function waitForState(t: TestRedis, id: string, states: readonly string[], timeoutMs: number): Promise<JobRecord> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.store.get(id);
    if (r && states.includes(r.state)) return r;
    if (Date.now() > end) throw new Error(`job ${id} not in ${states.join('/')} after ${timeoutMs} ms: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Its stdout and stderr so far. */
  output: () => string;
  /** Resolves once it says it is taking jobs; rejects if it exits first. */
  ready: Promise<void>;
}

/** A worker as its own process (worker/src/index.ts), so that a test can SIGKILL it. */
export function spawnWorker(redisUrl: string, queueName: string, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'worker/src/index.ts')], {
    env: { ...process.env, REDIS_URL: redisUrl, NOMMU_CI_QUEUE: queueName, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const iv = setInterval(() => {
      if (out.includes('nommu-ci worker: pid')) resolve();
      else if (child.exitCode !== null) reject(new Error(`worker exited: ${out}`));
      else return;
      clearInterval(iv);
    }, 50);
  });
  return { child, output: () => out, ready };
}

/**
 * BullMQ's state of a job once its processor has returned (the record reaches its final state a
 * moment before: the worker still stores artifacts and removes the job's directory).
 */
export async function settled(queue: { getJob(id: string): Promise<{ getState(): Promise<string> } | undefined> }, id: string): Promise<string> {
  const end = Date.now() + 60_000;
  for (;;) {
    const st = (await (await queue.getJob(id))?.getState()) ?? 'missing';
    if (st !== 'active' && st !== 'waiting' && st !== 'delayed') return st;
    if (Date.now() > end) return `still ${st} a minute after the job's final state`;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A job's final state events (one, if it ended once) and whether its event stream was closed. */
export async function finalEvents(t: TestRedis, id: string): Promise<{ finals: JobEvent[]; closed: boolean }> {
  const all = await JobStore.readStream(t.redis, t.store.eventsKey(id), '0', 0);
  const evs = all.filter((e) => e.fields.e).map((e) => JSON.parse(e.fields.e!) as JobEvent);
  return { finals: evs.filter((e) => e.type === 'state' && FINAL_STATES.has(e.state)), closed: all.at(-1)?.fields.eof === 'done' };
}

/** Resolves when the process has exited (at once if it already has). */
export const exited = (c: ChildProcess): Promise<void> =>
  new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

/** SIGKILLs a worker process and waits for it to be gone. */
export async function killWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await exited(w.child);
}

/** All lines of a tap stream (attempt n) so far. */
export async function tapLines(t: TestRedis, id: string, attempt = 1): Promise<string[]> {
  const entries = await JobStore.readStream(t.redis, t.store.tapKey(id, attempt), '0', 0);
  return entries.filter((e) => e.fields.l !== undefined).map((e) => e.fields.l!);
}

export interface Run {
  id: string;
  record: JobRecord;
  ms: number;
  /** (ms since submit, line) for each KTAP line as it arrived live. */
  live: [number, string][];
  events: JobEvent[];
}

export interface RunOptions {
  timeoutMs?: number;
  /** Runs while the job is in flight. */
  during?: (id: string) => Promise<void>;
}

/** Runs one job through a fresh queue and worker, following its tap stream live. */
export async function runJobOn(t: TestRedis, request: JobRequest, opts: RunOptions = {}): Promise<Run> {
  const name = freshQueueName();
  const { queue, events } = makeQueue(t, name);
  const worker = await startWorker({ redisUrl: t.url, queueName: name, concurrency: 1, log: () => undefined });
  const start = Date.now();
  try {
    const id = await submitJob(t, queue, request);
    // Follow the tap stream live, as the API does for GET /v1/jobs/:id/tap.
    const live: [number, string][] = [];
    const follower = (async () => {
      const conn = t.redis.duplicate();
      let after = '0';
      try {
        for (;;) {
          const entries = await JobStore.readStream(conn, t.store.tapKey(id, 1), after, 1000);
          for (const e of entries) {
            after = e.id;
            if (e.fields.eof) return;
            live.push([Date.now() - start, e.fields.l!]);
          }
          if (Date.now() - start > (opts.timeoutMs ?? 600_000)) return;
        }
      } finally {
        conn.disconnect();
      }
    })();
    const during = opts.during?.(id);
    const record = await waitForState(t, id, [...FINAL_STATES], opts.timeoutMs ?? 600_000);
    await during;
    await follower;
    const evs = await JobStore.readStream(t.redis, t.store.eventsKey(id), '0', 0);
    return { id, record, ms: Date.now() - start, live, events: evs.filter((e) => e.fields.e).map((e) => JSON.parse(e.fields.e!) as JobEvent) };
  } finally {
    await worker.close(0);
    await queue.close();
    await events.close();
  }
}
