/**
 * What a SIGKILLed worker leaves: its job directory, and a job that may be lost more often than
 * BullMQ allows. The next worker on the host removes the directory when it starts, or, on another
 * cache directory, when it runs the job's next attempt; a job BullMQ fails without running it ends
 * `error` as lost, its streams closed. Real Redis, real worker processes, real job directories.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, JobStore, loadCatalog, type JobRequest, type QueueJobData } from '@nommu-ci/shared';
import type { Queue } from 'bullmq';
import { startWorker, type WorkerOptions } from '../src/index.js';
import { JOBS_DIR } from '../src/paths.js';
import { finalEvents, freshQueueName, killWorker, makeQueue, settled, spawnWorker, startTestRedis, submitJob, waitForState, type TestRedis } from './helpers.js';

const kernel = loadCatalog()[0]!;
const request: JobRequest = { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n' };
/** Workers whose lock on a job lapses 2 s after they die, not 30 s. */
const QUICK = { NOMMU_CI_STALLED_INTERVAL_S: '1' };

let t: TestRedis;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'nci-lost-'));
chmodSync(tmp, 0o755); // the sandbox's uid reaches its job's directories through it
beforeAll(async () => {
  t = await startTestRedis('worker-lost');
});
afterAll(async () => {
  await t?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const dirsOf = (jobsDir: string, id: string): string[] => (existsSync(jobsDir) ? readdirSync(jobsDir).filter((d) => d.startsWith(`${id}.`)) : []);

/** Submits the job to a worker process on the default cache and SIGKILLs it once the job's directory exists. */
async function lostOnce(queueName: string, queue: Parameters<typeof submitJob>[1]): Promise<{ id: string; dir: string }> {
  const a = spawnWorker(t.url, queueName, QUICK);
  try {
    await a.ready;
    const id = await submitJob(t, queue, request, { attempts: 3 });
    const end = Date.now() + 120_000;
    while (dirsOf(JOBS_DIR, id).length === 0) {
      if (Date.now() > end) throw new Error(`job ${id} has no directory: ${JSON.stringify(await t.store.get(id))}\n${a.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await killWorker(a);
    const [name] = dirsOf(JOBS_DIR, id);
    expect(name).toContain(`.${a.child.pid}.`);
    return { id, dir: path.join(JOBS_DIR, name!) };
  } finally {
    await killWorker(a);
  }
}

/**
 * Loses the job once (lostOnce), then starts the worker that is to take it over, with `opts`,
 * and hands `check` what it needs; the worker and the queue are closed afterwards.
 */
async function afterLoss(
  opts: Partial<WorkerOptions>,
  check: (c: { id: string; dir: string; log: string[]; queue: Queue<QueueJobData> }) => Promise<void>,
): Promise<void> {
  const name = freshQueueName();
  const { queue, events } = makeQueue(t, name);
  const log: string[] = [];
  try {
    const { id, dir } = await lostOnce(name, queue);
    expect(existsSync(dir)).toBe(true); // the killed worker left it
    const b = await startWorker({ redisUrl: t.url, queueName: name, log: (m) => log.push(m), spareViews: false, stalledIntervalMs: 1000, ...opts });
    try {
      await check({ id, dir, log, queue });
    } finally {
      await b.close();
    }
  } finally {
    await queue.close();
    await events.close();
  }
}

describe.sequential('a SIGKILLed worker', () => {
  it('leaves a directory the next worker on the same cache removes as it starts', async () => {
    await afterLoss({}, async ({ id, dir, log, queue }) => {
      expect(existsSync(dir), log.join('\n')).toBe(false);
      expect(log).toContain(`removed job directory ${path.basename(dir)}: its worker died`);
      const r = await waitForState(t, id, [...FINAL_STATES], 900_000);
      expect(r.state, `${r.message}\n${log.join('\n')}`).toBe('passed');
      expect(r.attempt).toBe(2);
      await settled(queue, id);
      expect(dirsOf(JOBS_DIR, id)).toEqual([]);
      expect(await t.store.workDirs(id)).toEqual([]);
    });
  }, 1_000_000);

  it("leaves a directory that the job's next attempt removes from a worker on another cache directory", async () => {
    const otherJobs = path.join(tmp, 'jobs');
    await afterLoss({ jobsDir: otherJobs }, async ({ id, dir, log, queue }) => {
      const r = await waitForState(t, id, [...FINAL_STATES], 900_000);
      expect(r.state, `${r.message}\n${log.join('\n')}`).toBe('passed');
      expect(r.attempt).toBe(2);
      expect(existsSync(dir)).toBe(false);
      expect(log.some((m) => m.includes(`removed ${dir}`)), log.join('\n')).toBe(true);
      expect(await settled(queue, id)).toBe('completed');
      expect(dirsOf(otherJobs, id)).toEqual([]);
      expect(await t.store.workDirs(id)).toEqual([]);
    });
  }, 1_000_000);

  it('lost more often than maxStalledCount allows: BullMQ fails the job without running it, and it ends error with its streams closed', async () => {
    await afterLoss({ maxStalledCount: 0 }, async ({ id, log, queue }) => {
      const r = await waitForState(t, id, [...FINAL_STATES], 60_000);
      expect(r.state, log.join('\n')).toBe('error');
      expect(r.message).toBe('lost: the worker stopped 1 time while running it');
      expect(r.attempt).toBe(1);
      expect(['source', 'config', 'build', 'boot', 'test']).toContain(r.stage);
      expect(r.timings.finished_at).toBeTruthy();
      expect(await (await queue.getJob(id))?.getState()).toBe('failed');
      const { finals, closed } = await finalEvents(t, id);
      expect(finals).toEqual([{ type: 'state', state: 'error', stage: r.stage, message: r.message }]);
      expect(closed).toBe(true);
      const tap = await JobStore.readStream(t.redis, t.store.tapKey(id, 1), '0', 0);
      expect(tap.at(-1)?.fields.eof).toBe('done');
    });
  }, 300_000);
});
