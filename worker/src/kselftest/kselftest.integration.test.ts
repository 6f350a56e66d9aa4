/**
 * kselftests on a real MMU UML kernel, in the sandbox: the base kernel built with
 * kselftestFragment() (stages/build.ts's ensureBase; reused once built), a few `timers` and `mm`
 * programs built statically from the tree (build.ts, cached), our own test programs (one hangs,
 * one crashes), the rootfs, and a boot with prepareKselftest()'s arguments and mounts, its console
 * read as the boot stage reads it (KtapExtractor, KtapStream). Checks the per-test results, that
 * the hanging program is timed out and reported while the rest still run, and that a program that
 * cannot be built is reported skipped with the compiler's reason.
 *
 * A cold run builds a kernel (3-8 min on two busy cores); later runs boot in about a minute.
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, KtapExtractor, KtapStream, loadCatalog, type KtapResult, type TestNode } from '@nommu-ci/shared';
import { removeTree } from '../exec.js';
import { runSandboxed, type SandboxResult } from '../sandbox.js';
import { ensureBase, ownedDir } from '../stages/build.js';
import { kselftestFragment, prepareKselftest, type PreparedKselftest } from './plan.js';

const kernel = loadCatalog()[0]!;
const jobDir = path.join(CACHE_DIR, 'jobs', `kselftest-it-${process.pid}`);
const tmpDir = path.join(jobDir, 'tmp');
const logFile = path.join(jobDir, 'build.log');

/**
 * Measured on 7.2.12 UML (MMU, ptrace mode): nanosleep passes in ~9 s, rtcpie skips (UML has no
 * RTC); the mm programs pass in well under a second; mlock-random-test needs libcap, which has no
 * static library here, so it does not build.
 */
const TIMERS = ['nanosleep', 'rtcpie'];
const MM = ['mremap_dontunmap', 'map_fixed_noreplace', 'merge', 'mdwe_test', 'mlock-random-test'];

let kernelDir: string;
let prepared: PreparedKselftest;
let result: KtapResult;
let exit: SandboxResult;
let crash: string | null;
const live: string[][] = [];

beforeAll(async () => {
  if (!kernel.available) return;
  await removeTree(jobDir);
  ownedDir(tmpDir);
  const fd = openSync(logFile, 'a');
  const log = (b: Buffer): void => void writeSync(fd, b);
  try {
    const base = await ensureBase(
      { label: `${kernel.name}-mmu`, tree: kernel.path, fragment: kselftestFragment({ mmu: true }) },
      { tmpDir, log, name: `kselftest-it-base-${process.pid}`, onStage: () => undefined },
    );
    expect(base.dot.mmu).toBe(true);
    expect(base.dot.options.get('CONFIG_HOSTFS')).toBe('y');
    kernelDir = base.dir;
    prepared = await prepareKselftest({
      request: { kind: 'kselftest', targets: ['timers', 'mm'], tests: [...TIMERS.map((t) => `timers:${t}`), ...MM.map((t) => `mm:${t}`)], test_timeout_s: 60 },
      srcDir: kernel.path,
      cacheKey: `${kernel.name}-${kernel.version}`,
      jobDir,
      tmpDir,
      mmu: true,
      log,
      name: `kselftest-it-${process.pid}`,
      selftestPrograms: ['plain-pass', 'tap-pass', 'hang', 'tap-crash', 'bg', 'skip'],
      selftestTimeoutS: 3,
    });
  } finally {
    closeSync(fd);
  }

  const extractor = new KtapExtractor();
  const stream = new KtapStream((p) => live.push(p));
  let partial = '';
  const line = (l: string): void => {
    for (const k of extractor.push(l.replace(/\r$/, ''))) stream.push(k);
  };
  exit = await runSandboxed({
    name: `kselftest-it-boot-${process.pid}`,
    argv: ['/build/linux', ...prepared.bootArgs],
    mounts: [{ host: kernelDir, path: '/build' }, ...prepared.mounts],
    tmpDir,
    cwd: '/tmp',
    env: { TMPDIR: '/dev/shm' },
    shmBytes: 1536 * 1024 * 1024,
    timeoutMs: 600_000,
    outputFile: path.join(jobDir, 'console.log'),
    onOutput: (b) => {
      const parts = (partial + b.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      parts.forEach(line);
    },
  });
  if (partial) line(partial);
  crash = extractor.crash;
  result = stream.end(crash ?? undefined);
}, 1_800_000);

afterAll(async () => {
  // NOMMU_CI_KEEP_TEST_DIRS=1 keeps console.log, build.log and the rootfs for a look.
  if (!process.env.NOMMU_CI_KEEP_TEST_DIRS) await removeTree(jobDir);
});

const child = (n: TestNode | undefined, name: string): TestNode => {
  const c = n?.children.find((x) => x.name === name);
  if (!c) throw new Error(`${n?.name} has no child ${name}: ${n?.children.map((x) => x.name).join(', ')}`);
  return c;
};
const top = (name: string): TestNode => {
  const t = result.tests.find((x) => x.name === name);
  if (!t) throw new Error(`no top-level test ${name}: ${result.tests.map((x) => x.name).join(', ')}`);
  return t;
};

describe.skipIf(!kernel.available)('kselftest on the MMU UML kernel', () => {
  it('boots the rootfs, runs init, powers off cleanly', () => {
    expect(exit.killed).toBeNull();
    expect(exit.code).toBe(0);
    expect(crash).toBeNull();
    expect(result.version).toBe('KTAP version 1');
    expect(result.tests.map((t) => t.name)).toEqual(['nommu-ci', 'timers', 'mm']);
    // Results arrived one by one, as the boot stage streams them.
    expect(live.length).toBeGreaterThan(10);
  });

  it('times out the hanging program and runs the rest', () => {
    const own = top('nommu-ci');
    expect(own.children.map((c) => [c.name, c.status])).toEqual([
      ['plain-pass', 'pass'],
      ['tap-pass', 'pass'],
      ['hang', 'fail'],
      ['tap-crash', 'fail'],
      ['bg', 'pass'],
      ['skip', 'skip'],
    ]);
    expect(child(own, 'hang').diagnostics.join('\n')).toMatch(/hang: timed out after 3 s; killed/);
    expect(child(child(own, 'tap-crash'), 'signal').diagnostics.join('\n')).toMatch(/killed by signal 11/);
    expect(child(own, 'tap-pass').children.map((c) => c.status)).toEqual(['pass', 'pass', 'pass', 'skip']);
  });

  it('timers: nanosleep passes with its own TAP nested; rtcpie skips with its reason', () => {
    const timers = top('timers');
    expect(timers.children.map((c) => [c.name, c.status])).toEqual([
      ['nanosleep', 'pass'],
      ['rtcpie', 'skip'],
    ]);
    const nanosleep = child(timers, 'nanosleep');
    expect(nanosleep.planned).toBe(12);
    expect(child(nanosleep, 'CLOCK_MONOTONIC').status).toBe('pass');
    expect(child(timers, 'rtcpie').reason).toMatch(/rtc0 does not exist/);
    expect(timers.status).toBe('pass');
  });

  it('mm: programs run; one that does not build statically is skipped with the compiler reason', () => {
    const mm = top('mm');
    expect(mm.children.map((c) => c.name)).toEqual(MM);
    for (const name of ['mremap_dontunmap', 'map_fixed_noreplace', 'merge', 'mdwe_test']) expect([name, child(mm, name).status]).toEqual([name, 'pass']);
    // kselftest_harness.h output (merge, mdwe_test) is TAP too: its cases are nested.
    expect(child(mm, 'merge').children.length).toBeGreaterThan(3);
    const nobuild = child(mm, 'mlock-random-test');
    expect(nobuild.status).toBe('skip');
    expect(nobuild.reason).toMatch(/^build failed: mlock-random-test\.c:\d+:\d+: fatal error: sys\/capability\.h: No such file or directory/);
    expect(prepared.skipped.map((s) => s.name)).toEqual(['mm:mlock-random-test']);
  });

  it('the rootfs and boot arguments are what the processor is told to use', () => {
    expect(prepared.mounts).toEqual([{ host: prepared.rootfs, path: '/rootfs', rw: true }]);
    expect(prepared.bootArgs).toEqual(expect.arrayContaining(['rootfstype=hostfs', 'hostfs=/rootfs', 'init=/nommu-ci/init']));
    expect(existsSync(path.join(prepared.rootfs, 'nommu-ci/plan'))).toBe(true);
  });
});
