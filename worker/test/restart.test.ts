/**
 * A worker process killed (SIGKILL) in the middle of a build: BullMQ's stalled-job handling
 * hands the job to another worker, which ends the lost attempt's tap stream as "retry", runs
 * attempt 2, and the job finishes once. Redis restarting mid-job loses nothing. And SIGTERM stops
 * a worker promptly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FINAL_STATES, JobStore, loadCatalog, REPO_DIR, type JobEvent } from '@nommu-ci/shared';
import { freePort, startRedisServer } from '@nommu-ci/shared/redis-server';
import { startWorker } from '../src/index.js';
import { freshQueueName, makeQueue, startTestRedis, submitJob, waitForState, type TestRedis } from './helpers.js';
import { lineOf, linePatch } from './patches.js';

const kernel = loadCatalog()[0]!;
const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('worker-restart');
});
afterAll(async () => {
  await t?.stop();
});

function workerProcess(queueName: string, env: Record<string, string> = {}): { child: ChildProcess; output: () => string; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'worker/src/index.ts')], {
    env: { ...process.env, REDIS_URL: t.url, NOMMU_CI_QUEUE: queueName, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const iv = setInterval(() => {
      if (out.includes('nommu-ci worker: pid')) {
        clearInterval(iv);
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(iv);
        reject(new Error(`worker exited: ${out}`));
      }
    }, 100);
  });
  return { child, output: () => out, ready };
}

const exited = (c: ChildProcess): Promise<void> => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

/** Waits until the (patched) job is past its source stage and not yet booting: mid-build. */
async function inBuild(r: TestRedis, id: string, what: string): Promise<void> {
  const start = Date.now();
  for (;;) {
    const rec = await r.store.get(id);
    if (rec?.stage === 'build' || rec?.stage === 'config' || rec?.stage === 'patch') return;
    if (rec && FINAL_STATES.has(rec.state)) throw new Error(`job ended before ${what}: ${JSON.stringify(rec)}`);
    if (Date.now() - start > 300_000) throw new Error('job never started');
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe.sequential('worker restarts', () => {
  it(
    'retries a job whose worker was killed mid-build; it finishes once, as attempt 2',
    async () => {
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const w1 = workerProcess(name);
      await w1.ready;
      const rel = 'lib/tests/list-test.c';
      const patch = linePatch(rel, lineOf(rel, 'Test the different ways of initialising a list.'), ['\t/* killed worker */'], 'list-test: survive a worker kill');
      const id = await submitJob(t, queue, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL, patch }, { attempts: 3 });
      try {
        await inBuild(t, id, 'the kill');
        w1.child.kill('SIGKILL');
        await exited(w1.child);
        const killedAt = Date.now();
        const w2 = await startWorker({ redisUrl: t.url, queueName: name, log: () => undefined });
        try {
          const r = await waitForState(t, id, [...FINAL_STATES], 600_000);
          console.log(`killed worker: job ${r.state} as attempt ${r.attempt}, ${Date.now() - killedAt} ms after the kill`);
          expect(r.state).toBe('passed');
          expect(r.attempt).toBe(2);
          const tap1 = await JobStore.readStream(t.redis, t.store.tapKey(id, 1), '0', 0);
          expect(tap1.at(-1)?.fields.eof).toBe('retry');
          const tap2 = await JobStore.readStream(t.redis, t.store.tapKey(id, 2), '0', 0);
          expect(tap2[0]?.fields.l).toBe('KTAP version 1');
          expect(tap2.at(-1)?.fields.eof).toBe('done');
          const evs = (await JobStore.readStream(t.redis, t.store.eventsKey(id), '0', 0))
            .filter((e) => e.fields.e)
            .map((e) => JSON.parse(e.fields.e!) as JobEvent);
          expect(evs.filter((e) => e.type === 'state' && FINAL_STATES.has(e.state))).toHaveLength(1);
          const job = await queue.getJob(id);
          expect(await job?.getState()).toBe('completed');
          // The killed worker's sandbox died with it; the new worker reaped its cgroups.
          for (const c of ['/sys/fs/cgroup/pids/nommu-ci', '/sys/fs/cgroup/memory/nommu-ci']) {
            if (!existsSync(c)) continue;
            for (const d of readdirSync(c).filter((n) => n.startsWith(id))) {
              expect(readFileSync(path.join(c, d, 'cgroup.procs'), 'utf8').trim()).toBe('');
            }
          }
        } finally {
          await w2.close(0);
        }
      } finally {
        if (w1.child.exitCode === null && w1.child.signalCode === null) w1.child.kill('SIGKILL');
        await queue.close();
        await events.close();
      }
    },
    900_000,
  );

  it(
    'loses nothing when Redis restarts in the middle of a job: it finishes with its record, stream and results',
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-redis-restart-'));
      const port = await freePort();
      let server = await startRedisServer({ dir, port });
      const conn = new Redis(server.url, { maxRetriesPerRequest: null });
      conn.on('error', () => undefined); // refused while the server is down: expected here
      // The job's Redis is this test's own, restarted below; the helpers take it like the shared one.
      const r: TestRedis = { server, url: server.url, redis: conn, store: new JobStore(conn), stop: async () => undefined };
      const name = freshQueueName();
      const { queue, events } = makeQueue(r, name);
      queue.on('error', () => undefined);
      events.on('error', () => undefined);
      const w = await startWorker({ redisUrl: server.url, queueName: name, log: () => undefined });
      try {
        const rel = 'lib/tests/list-test.c';
        const patch = linePatch(rel, lineOf(rel, 'Test the different ways of initialising a list.'), ['\t/* redis restarted */'], 'list-test: survive a Redis restart');
        const id = await submitJob(r, queue, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL, patch });
        await inBuild(r, id, 'the restart');
        await server.stop();
        await new Promise((res) => setTimeout(res, 2000));
        server = await startRedisServer({ dir, port });
        const rec = await waitForState(r, id, [...FINAL_STATES], 600_000);
        console.log(`redis restart: job ${rec.state} as attempt ${rec.attempt}: ${rec.message}`);
        expect(rec.state).toBe('passed');
        expect(rec.attempt).toBe(1);
        expect((await r.store.results(id))?.[0]?.name).toBe('list-kunit-test');
        const tap = await JobStore.readStream(r.redis, r.store.tapKey(id, 1), '0', 0);
        expect(tap[0]?.fields.l).toBe('KTAP version 1');
        expect(tap.at(-1)?.fields.eof).toBe('done');
        expect(await r.store.artifact(id, 'build.log')).not.toBeNull();
      } finally {
        await w.close(0);
        await queue.close();
        await events.close();
        r.redis.disconnect();
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    900_000,
  );

  it(
    'stops on SIGTERM without a job, promptly',
    async () => {
      const w = workerProcess(freshQueueName());
      await w.ready;
      const t0 = Date.now();
      w.child.kill('SIGTERM');
      await exited(w.child);
      expect(w.child.exitCode).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
    },
    60_000,
  );
});
