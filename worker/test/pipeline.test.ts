/**
 * The worker end to end, against a real redis-server and real UML builds in the sandbox:
 * a clean job (build, boot, streamed KTAP, stored result), a warm patched rebuild, a patch that
 * does not apply, a build failure, a hostile patch, and a cancel mid-build.
 *
 * Builds share two cores: the tests run one after another, and a cold base build (the first
 * test on a fresh machine) takes a few minutes.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, JobStore, loadCatalog, loadSeries, type KunitJobRequest } from '@nommu-ci/shared';
import { startWorker } from '../src/index.js';
import { BUILDS_DIR, JOBS_DIR } from '../src/paths.js';
import { mergeFragment } from '../src/stages/config.js';
import { hasSpare, prepareSpare } from '../src/stages/source.js';
import { lineOf, linePatch } from './patches.js';
import { freshQueueName, makeQueue, runJobOn, startTestRedis, submitJob, tapLines, waitForState, type Run, type RunOptions, type TestRedis } from './helpers.js';

const SMALL = 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n';
const kernel = loadCatalog()[0]!;
const TEST_FILE = 'lib/tests/list-test.c';

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('worker-e2e');
});
afterAll(async () => {
  await t?.stop();
});

/** Runs one KUnit job (MMU kernel unless it says) through a fresh queue and worker. */
const runJob = (request: Omit<KunitJobRequest, 'kind'>, opts: RunOptions = {}): Promise<Run> =>
  runJobOn(t, { kind: 'kunit', kernel: kernel.name, mmu: true, ...request }, opts);

describe.sequential('worker pipeline (real redis-server, real UML build, sandboxed)', () => {
  it(
    'builds UML with a small kunitconfig, boots it sandboxed, streams KTAP and stores the result',
    async () => {
      const run = await runJob({ kunitconfig: SMALL });
      const r = run.record;
      console.log(`clean job: ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}, first KTAP line at ${run.live[0]?.[0]} ms`);
      expect(r.message).toMatch(/passed/);
      expect(r.state).toBe('passed');
      expect(r.stage).toBeNull();
      expect(r.summary.passed).toBeGreaterThan(0);
      expect(r.summary.failed + r.summary.crashed).toBe(0);
      expect(r.config?.mmu).toBe(true);
      expect(r.config?.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.kernel).toEqual({ name: kernel.name, version: kernel.version, series: null });
      expect(r.timings.stages.build).toBeGreaterThanOrEqual(0);
      expect(r.timings.stages.test).toBeGreaterThan(0);
      expect(r.timings.finished_at).toBeDefined();
      // Streamed: lines arrived while the job ran, KTAP from its version line.
      const stored = await tapLines(t, run.id);
      expect(stored[0]).toMatch(/^KTAP version 1$/);
      expect(stored.some((l) => /^\s*ok \d+ list_test_list_init/.test(l))).toBe(true);
      expect(run.live.map((x) => x[1])).toEqual(stored);
      expect(run.events.filter((e) => e.type === 'test').length).toBeGreaterThan(0);
      expect(run.events.map((e) => (e.type === 'state' ? e.state : null)).filter(Boolean)).toEqual(
        expect.arrayContaining(['building', 'booting', 'running', 'passed']),
      );
      const results = await t.store.results(run.id);
      expect(results?.[0]?.name).toBe('list-kunit-test');
      const config = (await t.store.artifact(run.id, 'config'))!.toString();
      expect(createHash('sha256').update(config).digest('hex')).toBe(r.config!.hash);
      expect(config).toContain('CONFIG_LIST_KUNIT_TEST=y');
      expect((await t.store.artifact(run.id, 'console.log'))!.toString()).toContain('KTAP version 1');
      expect(await t.store.artifact(run.id, 'build.log')).not.toBeNull();
      expect(existsSync(path.join(JOBS_DIR, run.id))).toBe(false);
    },
    1_800_000,
  );

  it.runIf(loadSeries() !== null)(
    'builds and boots the no-MMU kernel (our series applied under the job) and reads CONFIG_MMU from .config',
    async () => {
      const run = await runJob({ kunitconfig: SMALL, mmu: false });
      const r = run.record;
      const series = loadSeries()!;
      console.log(`no-MMU job: ${r.state} ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}: ${r.message}`);
      expect(r.kernel?.series).toBe(`${series.name}@${series.hash}`);
      expect(r.config?.mmu).toBe(false);
      expect((await t.store.artifact(run.id, 'config'))!.toString()).toContain('# CONFIG_MMU is not set');
      expect(r.state).toBe('passed');
      expect(r.summary.passed).toBeGreaterThan(0);
    },
    1_800_000,
  );

  it(
    'rebuilds a one-line patch in the job directory from the base, in seconds',
    async () => {
      const line = lineOf(TEST_FILE, 'Test the different ways of initialising a list.');
      const patch = linePatch(TEST_FILE, line, ['\t/* Test the different ways of initialising a list (patched). */'], 'list-test: reword a comment');
      // A long-running worker has a spare view ready (made in the background after a job).
      prepareSpare(kernel.path);
      for (let i = 0; i < 120 && !hasSpare(kernel.path); i++) {
        await new Promise((res) => setTimeout(res, 250));
      }
      const run = await runJob({ kunitconfig: SMALL, patch });
      const r = run.record;
      console.log(`warm patched job: ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}`);
      expect(r.state).toBe('passed');
      expect(r.summary.passed).toBeGreaterThan(0);
      const log = (await t.store.artifact(run.id, 'build.log'))!.toString();
      expect(log).toContain('lib/tests/list-test.o');
      // Only what the patch touched is rebuilt: no other object of lib/ is compiled.
      expect(log.split('\n').filter((l) => /^\s+CC\s+lib\//.test(l))).toEqual(['  CC      lib/tests/list-test.o']);
      expect((await t.store.artifact(run.id, 'patch.log'))!.toString()).toContain('Applied patch lib/tests/list-test.c cleanly');
      // The pristine tree is untouched.
      expect(readFileSync(path.join(kernel.path, TEST_FILE), 'utf8')).not.toContain('(patched)');
    },
    900_000,
  );

  it(
    'rebuilds the patched files even when the base is built during the same job (after the patch was applied)',
    async () => {
      // A fragment no base has yet, with the same .config as SMALL: a fresh base (ccache hits).
      const fresh = `${SMALL}# CONFIG_NCI_FRESH_BASE_${Date.now()} is not set\n`;
      const line = lineOf(TEST_FILE, 'Test the different ways of initialising a list.');
      const patch = linePatch(TEST_FILE, line, ['\tthis is not C either;'], 'list-test: break the build under a fresh base');
      const run = await runJob({ kunitconfig: fresh, patch });
      console.log(`fresh-base job: ${run.ms} ms, stages ${JSON.stringify(run.record.timings.stages)}`);
      try {
        expect(run.record.stage).toBe('build');
        expect(run.record.message).toMatch(/list-test\.c:\d+:\d+: error:/);
      } finally {
        for (const d of readdirSync(BUILDS_DIR).filter((n) => n.includes(createHash('sha256').update(mergeFragment(kernel.path, { kunitconfig: fresh, mmu: true }).text).digest('hex').slice(0, 16)))) {
          rmSync(path.join(BUILDS_DIR, d), { recursive: true, force: true });
        }
      }
    },
    1_800_000,
  );

  it(
    'fails a patch that does not apply at stage patch, naming the patch, file and hunk',
    async () => {
      const line = lineOf(TEST_FILE, 'Test the different ways of initialising a list.');
      const patch = linePatch(TEST_FILE, line, ['\t/* x */'], 'list-test: stale patch', { breakContext: true });
      const run = await runJob({ kunitconfig: SMALL, patch });
      expect(run.record.state).toBe('failed');
      expect(run.record.stage).toBe('patch');
      expect(run.record.message).toContain('[PATCH] list-test: stale patch');
      expect(run.record.message).toContain(`patch failed: ${TEST_FILE}:`);
      expect(run.record.message).toContain('failing hunk');
      expect((await t.store.artifact(run.id, 'patch.log'))!.toString()).toContain('error:');
      expect(await tapLines(t, run.id)).toEqual([]);
    },
    300_000,
  );

  it(
    'fails a patch with a syntax error at stage build with the compiler error',
    async () => {
      const line = lineOf(TEST_FILE, 'Test the different ways of initialising a list.');
      const patch = linePatch(TEST_FILE, line, ['\tthis is not C;'], 'list-test: break the build');
      const run = await runJob({ kunitconfig: SMALL, patch });
      console.log(`build failure job: ${run.ms} ms: ${run.record.message}`);
      expect(run.record.state).toBe('failed');
      expect(run.record.stage).toBe('build');
      expect(run.record.message).toMatch(/list-test\.c:\d+:\d+: error:/);
      expect((await t.store.artifact(run.id, 'build.log'))!.toString()).toMatch(/error:/);
    },
    600_000,
  );

  it(
    'contains a hostile patch: no host files, no writes outside its dirs, no network; the job still ends cleanly',
    async () => {
      const hostDir = mkdtempSync(path.join(os.tmpdir(), 'nci-hostile-'));
      chmodSync(hostDir, 0o777); // even a world-writable host directory is out of reach
      const connections: string[] = [];
      const server = net.createServer((s) => {
        connections.push('connected');
        s.destroy();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const pristine = readFileSync(path.join(kernel.path, TEST_FILE));
      const mk = 'lib/tests/Makefile';
      const mkLines = readFileSync(path.join(kernel.path, mk), 'utf8').trimEnd().split('\n');
      const hostile = [
        mkLines[mkLines.length - 1]!,
        `$(warning NCI-HOSTILE shadow=[$(shell head -c 40 /etc/shadow 2>&1)])`,
        `$(warning NCI-HOSTILE root=[$(shell ls /root 2>&1)])`,
        `$(warning NCI-HOSTILE cache=[$(shell ls /var/cache/nommu-ci 2>&1)])`,
        `$(warning NCI-HOSTILE write=[$(shell (echo pwned > ${hostDir}/pwned; echo pwned > /src/pwned; echo pwned > /ccache/pwned; echo pwned >> /src/${TEST_FILE}; echo pwned > /build/../pwned) 2>&1 | tr '\\n' ' ')])`,
        `$(warning NCI-HOSTILE net=[$(shell python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${port}), 2); print("connected")' 2>&1 | tail -1)])`,
      ];
      const patch = linePatch(mk, mkLines.length, hostile, 'lib/tests: hostile Makefile');
      try {
        const run = await runJob({ kunitconfig: SMALL, patch });
        const log = (await t.store.artifact(run.id, 'build.log'))!.toString();
        const said = (k: string): string => new RegExp(`NCI-HOSTILE ${k}=\\[([^\\]]*)\\]`).exec(log)?.[1] ?? 'NOT RUN';
        console.log(`hostile job: ${run.record.state} ${run.ms} ms; ${['shadow', 'root', 'cache', 'write', 'net'].map((k) => `${k}: ${said(k)}`).join(' | ')}`);
        expect(said('shadow')).toMatch(/No such file/);
        expect(said('root')).toMatch(/No such file/);
        expect(said('cache')).toMatch(/No such file/);
        expect(said('write')).toMatch(/(Read-only file system|No such file|Permission denied)/);
        expect(said('net')).toMatch(/Network is unreachable|Connection ?refused|Errno 111/i);
        if (existsSync('/etc/shadow')) expect(log).not.toContain(readFileSync('/etc/shadow', 'utf8').slice(0, 20));
        expect(existsSync(path.join(hostDir, 'pwned'))).toBe(false);
        expect(existsSync(path.join(kernel.path, 'pwned'))).toBe(false);
        expect(existsSync('/var/cache/nommu-ci/ccache/pwned')).toBe(false);
        expect(readFileSync(path.join(kernel.path, TEST_FILE)).equals(pristine)).toBe(true);
        expect(connections).toEqual([]);
        expect(run.record.state).toBe('passed');
        expect(existsSync(path.join(JOBS_DIR, run.id))).toBe(false);
      } finally {
        server.close();
        rmSync(hostDir, { recursive: true, force: true });
      }
    },
    600_000,
  );

  it(
    'fails at stage config naming the options that did not stick',
    async () => {
      const run = await runJob({ kunitconfig: SMALL, kconfig_add: ['CONFIG_NCI_NO_SUCH_OPTION=y', 'CONFIG_DEBUG_INFO_NONE=n'] });
      console.log(`config job: ${run.record.state} ${run.record.stage}: ${run.record.message}`);
      expect(run.record.state).toBe('failed');
      expect(run.record.stage).toBe('config');
      expect(run.record.message).toContain('CONFIG_NCI_NO_SUCH_OPTION=y (now: not set)');
      expect(await t.store.artifact(run.id, 'config')).not.toBeNull();
    },
    300_000,
  );

  it('fails a no-MMU job at stage config while the no-MMU series does not exist', async () => {
    if (loadSeries()) return; // the series exists: covered by the no-MMU tests
    const run = await runJob({ kunitconfig: SMALL, mmu: false });
    expect(run.record.state).toBe('failed');
    expect(run.record.stage).toBe('config');
    expect(run.record.message).toMatch(/no-MMU series .* does not exist/);
  });

  it(
    'after a worker died mid-job, ends the lost attempt as retried and streams attempt 2',
    async () => {
      const name = freshQueueName();
      const { queue, events } = makeQueue(t, name);
      const id = await submitJob(t, queue, { kind: 'kunit', kernel: kernel.name, mmu: true, kunitconfig: SMALL });
      // What a worker killed while the kernel ran leaves behind: attempt 1 started, its stream open.
      await t.store.update(id, { state: 'running', stage: 'test', attempt: 1, timings: { queued_at: new Date().toISOString(), started_at: new Date().toISOString(), stages: {} } });
      await t.store.appendTap(id, 1, ['KTAP version 1', '1..3']);
      const worker = await startWorker({ redisUrl: t.url, queueName: name, log: () => undefined });
      try {
        const r = await waitForState(t, id, [...FINAL_STATES], 600_000);
        expect(r.state).toBe('passed');
        expect(r.attempt).toBe(2);
        const first = await JobStore.readStream(t.redis, t.store.tapKey(id, 1), '0', 0);
        expect(first.at(-1)?.fields.eof).toBe('retry');
        const second = await JobStore.readStream(t.redis, t.store.tapKey(id, 2), '0', 0);
        expect(second[0]?.fields.l).toBe('KTAP version 1');
        expect(second.at(-1)?.fields.eof).toBe('done');
      } finally {
        await worker.close(0);
        await queue.close();
        await events.close();
      }
    },
    600_000,
  );

  it(
    'kills a job at its timeout and fails it naming the stage',
    async () => {
      const rel = 'include/linux/list.h';
      const line = lineOf(rel, '#define _LINUX_LIST_H');
      const patch = linePatch(rel, line, ['#define _LINUX_LIST_H', 'static inline int nci_timeout_test(void) { return 2; }'], 'list.h: a rebuild longer than the timeout');
      // Below the API's minimum of 30 s: the worker takes what the store says.
      const run = await runJob({ kunitconfig: SMALL, patch, timeout_s: 8 });
      console.log(`timeout job: ${run.ms} ms: ${run.record.message}`);
      expect(run.record.state).toBe('failed');
      expect(run.record.message).toMatch(/job timed out after 8 s \(during (build|config|patch)\)/);
      expect(run.ms).toBeLessThan(30_000);
      expect(existsSync(path.join(JOBS_DIR, run.id))).toBe(false);
    },
    300_000,
  );

  it(
    'cancels a job mid-build: the build is killed and the job ends canceled',
    async () => {
      // A change to a header many files include: a long rebuild to cancel.
      const rel = 'include/linux/list.h';
      const line = lineOf(rel, '#define _LINUX_LIST_H');
      const patch = linePatch(rel, line, ['#define _LINUX_LIST_H', 'static inline int nci_cancel_test(void) { return 1; }'], 'list.h: force a long rebuild');
      let canceledAt = 0;
      const run = await runJob(
        { kunitconfig: SMALL, patch },
        {
          during: async (id) => {
            const start = Date.now();
            for (;;) {
              const r = await t.store.get(id);
              if (r?.state === 'building' && r.stage === 'build') break;
              if (r && FINAL_STATES.has(r.state)) return;
              if (Date.now() - start > 600_000) return;
              await new Promise((res) => setTimeout(res, 200));
            }
            await new Promise((res) => setTimeout(res, 5000));
            canceledAt = Date.now();
            await t.store.requestCancel(id);
          },
        },
      );
      const stopMs = Date.now() - canceledAt;
      console.log(`cancel: job ended ${stopMs} ms after the cancel request: ${run.record.message}`);
      expect(run.record.state).toBe('canceled');
      expect(run.record.stage).toBe('build');
      expect(stopMs).toBeLessThan(15_000);
      expect(await t.store.artifact(run.id, 'build.log')).not.toBeNull();
      expect(existsSync(path.join(JOBS_DIR, run.id))).toBe(false);
      // Nothing of the sandbox is left: its cgroups are gone.
      for (const c of ['/sys/fs/cgroup/pids/nommu-ci', '/sys/fs/cgroup/memory/nommu-ci']) {
        if (existsSync(c)) expect(readdirSync(c).filter((d) => d.startsWith(run.id))).toEqual([]);
      }
    },
    900_000,
  );
});
