/**
 * The chaos suite: the service's guarantees under faults, each case asserting the outcome.
 *
 *  - kills: a worker process SIGKILLed at a random moment of a chosen stage (source, patch, config,
 *    build, boot, test in turn), another started: every job ends exactly once with the result of an
 *    undisturbed run, its KTAP stream says where the retry started, and nothing is left behind
 *    (job directory, cgroups, processes, mounts);
 *  - Redis stopped for 2 s and for 30 s mid-build: the job finishes once, with its results;
 *  - two workers with caches of their own sharing one Redis: the one building is killed, the other
 *    completes the job (full suite only: its cold build takes minutes);
 *  - the cache disk full: the job ends `error` at the stage that hit it, saying so, and the worker
 *    takes jobs again once there is space;
 *  - a kernel that floods its console, one that goes silent, and a test program that forks without
 *    end: each stopped by its limit, named;
 *  - after every job: its BullMQ state (completed once), and nothing left on the host (job
 *    directory, sandbox processes, cgroups, mounts).
 *
 * `npm run chaos` (NOMMU_CI_CHAOS=full) runs NOMMU_CI_CHAOS_KILLS (20) kills over all stages and
 * every case, and prints the table (case, runs, outcome). Without it (npm test), the cases that
 * reuse cached kernels and fit a few minutes: 2 kills (build, test), Redis away 2 s, the flood and
 * the silence.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { freePort, startRedisServer } from '@nommu-ci/shared/redis-server';
import { FINAL_STATES, JobStore, loadCatalog, type JobEvent, type JobRecord, type JobRequest, type TestNode } from '@nommu-ci/shared';
import { finalEvents, freshQueueName, killWorker, makeQueue, settled, spawnWorker, startTestRedis, submitJob, waitForState, type TestRedis, type WorkerProcess } from './helpers.js';
import { lineOf, linePatch, newFilesPatch } from './patches.js';

const FULL = process.env.NOMMU_CI_CHAOS === 'full';
const KILLS = Number(process.env.NOMMU_CI_CHAOS_KILLS ?? (FULL ? 20 : 2));
const STAGES = ['source', 'patch', 'config', 'build', 'boot', 'test'] as const;
/** The stages kills aim at in turn: all of them, or in npm test the two where most is at stake. */
const TARGETS: readonly (typeof STAGES)[number][] = FULL ? STAGES : ['build', 'test'];
const DEFAULT_JOBS = path.join(process.env.NOMMU_CI_CACHE ?? '/var/cache/nommu-ci', 'jobs');
const kernel = loadCatalog()[0]!;
const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';
const REL = 'lib/tests/list-test.c';
const isRoot = process.getuid?.() === 0;

/** A patch replacing a comment line after the statements of the list test's first case by `code`. */
const listPatch = (code: string[], subject: string): string => linePatch(REL, lineOf(REL, 'list_empty_careful() checks both next and prev.'), code, subject);

const table: { case: string; runs: number; outcome: string }[] = [];

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('chaos');
});
afterAll(async () => {
  await t?.stop();
  if (table.length) {
    console.log(['', '| case | runs | outcome |', '| --- | --: | --- |', ...table.map((r) => `| ${r.case} | ${r.runs} | ${r.outcome} |`)].join('\n'));
  }
});

/** The result tree as (path, status) pairs: what "the same result" means. */
function outcome(nodes: TestNode[] | null, prefix = ''): string[] {
  return (nodes ?? []).flatMap((n) => [`${prefix}${n.name}: ${n.status}`, ...outcome(n.children, `${prefix}${n.name}/`)]);
}

/**
 * What a finished job left behind on this host: job directory, sandboxes and other processes,
 * cgroups, mounts. Cleanup that is under way (a background rm of the trash) gets 30 s.
 */
async function leftBehind(id: string, jobsDir = DEFAULT_JOBS): Promise<string[]> {
  const end = Date.now() + 30_000;
  for (;;) {
    const found = leftovers(id, jobsDir);
    if (found.length === 0 || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function leftovers(id: string, jobsDir: string): string[] {
  const found: string[] = [];
  if (existsSync(jobsDir)) found.push(...readdirSync(jobsDir).filter((d) => d.startsWith(id)).map((d) => `job directory ${d}`));
  for (const root of ['/sys/fs/cgroup/pids/nommu-ci', '/sys/fs/cgroup/memory/nommu-ci', '/sys/fs/cgroup/nommu-ci']) {
    if (existsSync(root)) found.push(...readdirSync(root).filter((d) => d.startsWith(id)).map((d) => `cgroup ${root}/${d}`));
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      // The worker's background delete of the trash (removeTree) is cleanup, not a leftover: under
      // load it outlasts the job by minutes.
      if (cmd.includes(id) && !/^rm -rf -- \S+\/trash\//.test(cmd)) found.push(`process ${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // gone meanwhile
    }
  }
  if (readFileSync('/proc/self/mountinfo', 'utf8').includes(id)) found.push('a mount');
  return found;
}

describe.sequential('chaos', () => {
  it(
    `a worker SIGKILLed in each stage (${KILLS} kills): every job ends once, as an undisturbed run does, and leaves nothing`,
    async () => {
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const request: JobRequest = { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL, patch: listPatch(['\t/* chaos */'], 'list-test: chaos') };
      let worker = spawnWorker(t.url, name);
      const hit: string[] = [];
      try {
        await worker.ready;
        const refId = await submitJob(t, queue, request);
        const ref = await waitForState(t, refId, [...FINAL_STATES], 900_000);
        expect(ref.state).toBe('passed');
        const expected = outcome(await t.store.results(refId));
        expect(expected.length).toBeGreaterThan(3);
        expect(await settled(queue, refId)).toBe('completed');
        expect(await leftBehind(refId)).toEqual([]);

        for (let i = 0; i < KILLS; i++) {
          const target = TARGETS[i % TARGETS.length]!;
          const id = await submitJob(t, queue, request, { attempts: 3 });
          // Random moment within the stage: polled every 10 ms, then up to a second more in the long ones.
          let rec: JobRecord | null = null;
          for (;;) {
            rec = await t.store.get(id);
            if (rec?.stage === target || (rec && FINAL_STATES.has(rec.state))) break;
            if (rec && STAGES.indexOf(rec.stage as (typeof STAGES)[number]) > STAGES.indexOf(target)) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          await new Promise((r) => setTimeout(r, Math.random() * (target === 'build' ? 1000 : 100)));
          const at = (await t.store.get(id))!;
          await killWorker(worker);
          worker = spawnWorker(t.url, name);
          await worker.ready;
          const r = await waitForState(t, id, [...FINAL_STATES], 900_000);
          const why = `kill ${i + 1} aimed at ${target}, landed in ${at.stage}: ${r.state} ${r.message ?? ''}`;
          expect(r.state, why).toBe('passed');
          expect(outcome(await t.store.results(id)), why).toEqual(expected);
          // The record's final state is written a moment before its event: count events once settled.
          expect(await settled(queue, id), why).toBe('completed');
          expect((await finalEvents(t, id)).finals, why).toHaveLength(1);
          if (FINAL_STATES.has(at.state)) {
            hit.push('after the end');
          } else {
            // One retry, and the lost attempt's stream says where it was lost; the retry's stream
            // starts over with a whole KTAP document and ends it.
            expect(r.attempt, why).toBe(2);
            const tap1 = await JobStore.readStream(t.redis, t.store.tapKey(id, 1), '0', 0);
            expect(tap1.at(-1)?.fields.eof, why).toBe('retry');
            const lostIn = tap1.at(-1)?.fields.lost_in;
            expect(STAGES, why).toContain(lostIn);
            expect(STAGES.indexOf(lostIn as (typeof STAGES)[number]), why).toBeGreaterThanOrEqual(Math.min(STAGES.indexOf(at.stage as (typeof STAGES)[number]), STAGES.indexOf('config')));
            const tap2 = await JobStore.readStream(t.redis, t.store.tapKey(id, 2), '0', 0);
            expect(tap2.find((e) => e.fields.l !== undefined)?.fields.l, why).toBe('KTAP version 1');
            expect(tap2.at(-1)?.fields.eof, why).toBe('done');
            hit.push(lostIn!);
          }
          expect(await leftBehind(id), why).toEqual([]);
        }
        const landed = [...new Set(hit)].map((h) => `${h} ${hit.filter((x) => x === h).length}`).join(', ');
        table.push({ case: 'worker SIGKILLed at a random moment of a stage', runs: KILLS, outcome: `jobs completed exactly once, each with the undisturbed result, retry marked where it was lost (${landed}); nothing left behind` });
      } finally {
        await killWorker(worker);
        await queue.close();
        await events.close();
      }
    },
    KILLS * 900_000,
  );

  it.runIf(FULL)(
    'two workers with caches of their own on one Redis: the builder is killed, the other completes the job',
    async () => {
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const caches = [0, 1].map((n) => {
        const root = mkdtempSync(path.join(os.tmpdir(), `nci-host${n}-`));
        chmodSync(root, 0o755);
        mkdirSync(path.join(root, 'src'));
        symlinkSync(kernel.path, path.join(root, 'src', path.basename(kernel.path)));
        cpSync(`${kernel.path}.version`, path.join(root, 'src', `${path.basename(kernel.path)}.version`));
        return root;
      });
      const a = spawnWorker(t.url, name, { NOMMU_CI_CACHE: caches[0]! });
      let b: WorkerProcess | null = null;
      try {
        await a.ready;
        const id = await submitJob(t, queue, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL }, { attempts: 3 });
        await waitForState(t, id, ['building'], 300_000);
        for (let rec = await t.store.get(id); rec?.stage !== 'build'; rec = await t.store.get(id)) await new Promise((r) => setTimeout(r, 100));
        await new Promise((r) => setTimeout(r, 5000));
        await killWorker(a);
        b = spawnWorker(t.url, name, { NOMMU_CI_CACHE: caches[1]! });
        const r = await waitForState(t, id, [...FINAL_STATES], 1_800_000);
        expect(r.state).toBe('passed');
        expect(r.attempt).toBe(2);
        expect(await settled(queue, id)).toBe('completed');
        expect((await finalEvents(t, id)).finals).toHaveLength(1);
        expect(existsSync(path.join(caches[1]!, 'builds'))).toBe(true);
        for (const c of caches) expect(await leftBehind(id, path.join(c, 'jobs'))).toEqual([]);
        table.push({ case: 'two hosts on one Redis, the builder SIGKILLed', runs: 1, outcome: `job completed exactly once, by the other host (attempt ${r.attempt}); nothing left behind` });
      } finally {
        await killWorker(a);
        if (b) await killWorker(b);
        await queue.close();
        await events.close();
        for (const c of caches) rmSync(c, { recursive: true, force: true });
      }
    },
    1_800_000,
  );

  it.each(FULL ? [2, 30] : [2])(
    'Redis stopped for %i s in the middle of a job: the job finishes once, with its results',
    async (outageS) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-chaos-redis-'));
      const port = await freePort();
      let server = await startRedisServer({ dir, port });
      const conn = new Redis(server.url, { maxRetriesPerRequest: null });
      conn.on('error', () => undefined); // refused while the server is down: expected here
      const r: TestRedis = { server, url: server.url, redis: conn, store: new JobStore(conn), stop: async () => undefined };
      const name = freshQueueName();
      const { queue, events } = makeQueue(r, name);
      queue.on('error', () => undefined);
      events.on('error', () => undefined);
      const w = spawnWorker(server.url, name);
      try {
        await w.ready;
        const id = await submitJob(r, queue, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL, patch: listPatch(['\t/* redis away */'], 'list-test: redis away') }, { attempts: 3 });
        for (let rec = await r.store.get(id); rec?.stage !== 'build'; rec = await r.store.get(id)) {
          if (rec && FINAL_STATES.has(rec.state)) throw new Error(`ended before the outage: ${JSON.stringify(rec)}`);
          await new Promise((res) => setTimeout(res, 20));
        }
        await server.stop();
        await new Promise((res) => setTimeout(res, outageS * 1000));
        server = await startRedisServer({ dir, port });
        const rec = await waitForState(r, id, [...FINAL_STATES], 900_000);
        const said = `${rec.state} as attempt ${rec.attempt}: ${rec.message ?? ''}`;
        expect(rec.state, said).toBe('passed');
        expect((await r.store.results(id))?.[0]?.name, said).toBe('list-kunit-test');
        expect(await settled(queue, id), said).toBe('completed');
        const evs = (await JobStore.readStream(conn, r.store.eventsKey(id), '0', 0)).filter((e) => e.fields.e).map((e) => JSON.parse(e.fields.e!) as JobEvent);
        expect(evs.filter((e) => e.type === 'state' && FINAL_STATES.has(e.state)), said).toHaveLength(1);
        expect(await r.store.artifact(id, 'build.log'), said).not.toBeNull();
        expect(await leftBehind(id), said).toEqual([]);
        table.push({ case: `Redis stopped for ${outageS} s mid-build`, runs: 1, outcome: `job completed exactly once (attempt ${rec.attempt}), results and logs kept; nothing left behind` });
      } finally {
        await killWorker(w);
        await queue.close();
        await events.close();
        conn.disconnect();
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    1_200_000,
  );

  it.runIf(FULL && isRoot)(
    'a full cache disk: the job ends error at the stage that hit it, and the worker takes jobs once there is space',
    async () => {
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const root = mkdtempSync(path.join(os.tmpdir(), 'nci-full-'));
      chmodSync(root, 0o755);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0755', 'nci-full', root]);
      mkdirSync(path.join(root, 'src'));
      symlinkSync(kernel.path, path.join(root, 'src', path.basename(kernel.path)));
      cpSync(`${kernel.path}.version`, path.join(root, 'src', `${path.basename(kernel.path)}.version`));
      // The shared ccache (elsewhere) keeps the build after the remount short.
      const w = spawnWorker(t.url, name, { NOMMU_CI_CACHE: root, NOMMU_CI_CCACHE: path.join(process.env.NOMMU_CI_CACHE ?? '/var/cache/nommu-ci', 'ccache') });
      try {
        await w.ready;
        const req: JobRequest = { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL };
        const fullId = await submitJob(t, queue, req, { attempts: 1 });
        const full = await waitForState(t, fullId, [...FINAL_STATES], 900_000);
        expect(full.state).toBe('error');
        expect(['build', 'config', 'source']).toContain(full.stage);
        expect(full.message).toMatch(/full|No space left on device/);
        expect(await settled(queue, fullId)).toBe('failed');
        expect(await leftBehind(fullId, path.join(root, 'jobs'))).toEqual([]);
        execFileSync('mount', ['-o', 'remount,size=4g', root]);
        const okId = await submitJob(t, queue, req, { attempts: 1 });
        const ok = await waitForState(t, okId, [...FINAL_STATES], 1_800_000);
        expect(ok.state).toBe('passed');
        expect(await settled(queue, okId)).toBe('completed');
        expect(await leftBehind(okId, path.join(root, 'jobs'))).toEqual([]);
        table.push({ case: 'cache disk full (48 MiB tmpfs), then room again', runs: 2, outcome: `contained: error at ${full.stage} (${full.message!.split('\n')[0]!.slice(0, 80)}); the next job completed once; nothing left behind` });
      } finally {
        await killWorker(w);
        await queue.close();
        await events.close();
        execFileSync('umount', ['-l', root]);
        rmSync(root, { recursive: true, force: true });
      }
    },
    2_700_000,
  );

  it.runIf(FULL && isRoot)(
    'a test program that forks without end: stopped at its job\'s process limit, named, and nothing left',
    async () => {
      // On the MMU kernel each guest process is a host process (UML's stub), so a guest fork bomb
      // reaches the job's pids cgroup. 300 keeps the bomb well below what other jobs may use.
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const w = spawnWorker(t.url, name, { NOMMU_CI_NPROC: '300' });
      try {
        await w.ready;
        const dir = 'tools/testing/selftests/nommu-ci-forkbomb';
        const patch = newFilesPatch(
          {
            [`${dir}/Makefile`]: 'TEST_GEN_PROGS := fork-bomb\n\ninclude ../lib.mk\n',
            [`${dir}/fork-bomb.c`]: [
              '#include <stdio.h>',
              '#include <unistd.h>',
              '',
              'int main(void)',
              '{',
              '\tprintf("# forking without end\\n");',
              '\tfflush(stdout);',
              '\tfor (;;)',
              '\t\tfork();',
              '}',
              '',
            ].join('\n'),
          },
          'selftests: a fork bomb',
        );
        const id = await submitJob(t, queue, { kind: 'kselftest', kernel: kernel.name, mmu: true, targets: ['nommu-ci-forkbomb'], patch, test_timeout_s: 30 });
        const r = await waitForState(t, id, [...FINAL_STATES], 1_500_000);
        const said = `${r.state} at ${r.stage}: ${r.message}`;
        expect(r.state, said).toBe('failed');
        expect(said, said).toMatch(/process limit reached: \d+ forks refused at 300 processes/);
        expect(outcome(await t.store.results(id)).some((l) => / (fail|crash)$/.test(l)), said).toBe(true);
        expect(await settled(queue, id), said).toBe('completed');
        expect(await leftBehind(id), said).toEqual([]);
        table.push({ case: 'test program forking without end (MMU guest)', runs: 1, outcome: `contained: ${said.split('\n')[0]!.slice(0, 110)}; nothing left behind` });
      } finally {
        await killWorker(w);
        await queue.close();
        await events.close();
      }
    },
    1_800_000,
  );

  it(
    'a kernel that floods its console and one that goes silent: each stopped by its limit, named',
    async () => {
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const w = spawnWorker(t.url, name, { NOMMU_CI_CONSOLE_LIMIT: String(8 * 1024 * 1024), NOMMU_CI_BOOT_IDLE_S: '20' });
      try {
        await w.ready;
        const cases = [
          { what: 'console flood', code: ['\tfor (;;)', '\t\tpr_info("nommu-ci flood %0200d\\n", 0);'], expect: /console flood: more than 8 MiB/ },
          // list-test.c does not include linux/delay.h; a block-scope declaration stands in for it.
          { what: 'silence', code: ['\tfor (;;) {', '\t\textern void msleep(unsigned int msecs);', '', '\t\tmsleep(1000);', '\t}'], expect: /no console output for 20 s/ },
        ];
        for (const c of cases) {
          const id = await submitJob(t, queue, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL, patch: listPatch(c.code, `list-test: ${c.what}`) });
          const r = await waitForState(t, id, [...FINAL_STATES], 900_000);
          const said = `${r.state} at ${r.stage}: ${r.message}`;
          expect(r.state, said).toBe('failed');
          expect(said, said).toMatch(c.expect);
          expect(outcome(await t.store.results(id)).some((l) => l.endsWith(': crash')), said).toBe(true);
          expect(await settled(queue, id), said).toBe('completed');
          expect(await leftBehind(id), said).toEqual([]);
          table.push({ case: `kernel ${c.what}`, runs: 1, outcome: `contained: ${said.split('\n')[0]!.slice(0, 110)}; nothing left behind` });
        }
      } finally {
        await killWorker(w);
        await queue.close();
        await events.close();
      }
    },
    1_800_000,
  );
});
