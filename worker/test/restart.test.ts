/**
 * A worker process killed (SIGKILL) in the middle of a build: BullMQ's stalled-job handling
 * hands the job to another worker, which ends the lost attempt's tap stream as "retry", runs
 * attempt 2, and the job finishes once. And SIGTERM stops a worker promptly. (Redis going away
 * mid-job: chaos.test.ts.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, JobStore, loadCatalog } from '@nommu-ci/shared';
import { startWorker } from '../src/index.js';
import { exited, finalEvents, freshQueueName, makeQueue, settled, spawnWorker, startTestRedis, submitJob, waitForState, type TestRedis } from './helpers.js';
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
      const w1 = spawnWorker(t.url, name);
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
          // The record's final state is written a moment before the streams end and BullMQ
          // settles the job: read them once it has.
          const state = await settled(queue, id);
          const tap1 = await JobStore.readStream(t.redis, t.store.tapKey(id, 1), '0', 0);
          expect(tap1.at(-1)?.fields.eof).toBe('retry');
          const tap2 = await JobStore.readStream(t.redis, t.store.tapKey(id, 2), '0', 0);
          expect(tap2[0]?.fields.l).toBe('KTAP version 1');
          expect(tap2.at(-1)?.fields.eof).toBe('done');
          expect((await finalEvents(t, id)).finals).toHaveLength(1);
          expect(state).toBe('completed');
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
    'stops on SIGTERM without a job, promptly',
    async () => {
      const w = spawnWorker(t.url, freshQueueName());
      await w.ready;
      const t0 = Date.now();
      w.child.kill('SIGTERM');
      await exited(w.child);
      expect(w.child.exitCode, `${w.child.signalCode ?? ""} ${w.output()}`).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
    },
    60_000,
  );
});
