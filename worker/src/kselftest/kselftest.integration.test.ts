/**
 * kselftests on a real MMU UML kernel, in the sandbox: the base kernel built with
 * kselftestFragment() (stages/build.ts's ensureBase; reused once built), a few `timers` and `mm`
 * programs built statically from the tree (build.ts, cached), our own test programs (one hangs,
 * one crashes, one powers the kernel off), the rootfs, and the boots the worker makes of it
 * (kselftestBootPlan through bootAll and the boot stage). Checks the per-test results, that the
 * hanging program is timed out and reported while the rest still run, that the program that
 * kills the kernel is reported crashed and a second boot runs the tests after it, and that a
 * program that cannot be built is reported skipped with the compiler's reason.
 *
 * A cold run builds a kernel (3-8 min on two busy cores); later runs boot in about a minute.
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, loadCatalog, type TestNode } from '@nommu-ci/shared';
import { removeTree } from '../exec.js';
import { boot, type BootOutcome } from '../stages/boot.js';
import { bootAll, type BootPlan, type BootsOutcome } from '../stages/boots.js';
import { ensureBase, ownedDir } from '../stages/build.js';
import { child, named } from '../../test/tree.js';
import { kselftestBootPlan, kselftestFragment, prepareKselftest, type PreparedKselftest } from './plan.js';
import { KERNEL_KILLER } from './rootfs.js';

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
let outcome: BootsOutcome;
let boots: BootOutcome[];
const tap: string[] = [];
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
      selftestPrograms: ['plain-pass', 'tap-pass', 'hang', KERNEL_KILLER, 'tap-crash', 'bg', 'skip'],
      selftestTimeoutS: 3,
    });
  } finally {
    closeSync(fd);
  }

  boots = [];
  const bootWith = (plan: BootPlan, n: number): Promise<BootOutcome> =>
    boot({
      kernelDir,
      tmpDir,
      consoleLog: path.join(jobDir, 'console.log'),
      ...plan,
      name: `kselftest-it-boot-${n}-${process.pid}`,
      sink: {
        appendTap: async (lines) => void tap.push(...lines),
        event: async (e) => void (e.type === 'test' && live.push(e.path)),
      },
    }).then((o) => (boots.push(o), o));
  outcome = await bootAll(kselftestBootPlan(prepared), bootWith, async (lines) => void tap.push(...lines));
}, 1_800_000);

afterAll(async () => {
  // NOMMU_CI_KEEP_TEST_DIRS=1 keeps console.log, build.log and the rootfs for a look.
  if (!process.env.NOMMU_CI_KEEP_TEST_DIRS) await removeTree(jobDir);
});

const top = (name: string): TestNode => named(outcome.tests, name);

describe.skipIf(!kernel.available)('kselftest on the MMU UML kernel', () => {
  it('boots the rootfs, runs init, powers off cleanly', () => {
    expect(boots.map((b) => [b.exit.killed, b.exit.code, b.problem])).toEqual([
      [null, 0, null],
      [null, 0, null],
    ]);
    // The second boot ran everything after the program that killed the first; the only gap in
    // its KTAP is tap-crash's own plan, cut short by its SIGSEGV.
    expect(boots[1]!.result.errors).toEqual(['nommu-ci.tap-crash: expected 3 tests, got 2']);
    expect(tap[0]).toBe('KTAP version 1');
    expect(outcome.tests.map((t) => t.name)).toEqual(['nommu-ci', 'timers', 'mm']);
    // Results arrived one by one, as the boot stage streams them.
    expect(live.length).toBeGreaterThan(10);
  });

  it('times out the hanging program and runs the rest', () => {
    const own = top('nommu-ci');
    expect(own.children.map((c) => [c.name, c.status])).toEqual([
      ['plain-pass', 'pass'],
      ['tap-pass', 'pass'],
      ['hang', 'fail'],
      [KERNEL_KILLER, 'crash'],
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
