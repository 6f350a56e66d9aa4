/**
 * User space on the real no-MMU UML kernel (our series), in the sandbox:
 * - a kselftest run like kselftest.integration.test.ts's on MMU (same timers and mm programs,
 *   built static-pie), plus our own programs: fpstate (FP/SSE/AVX-512 registers and TLS across
 *   system calls, signal handlers and threads; SIGSEGV kills only the program; clocks) and
 *   busybox-sh (BusyBox's shell: pipes, vfork + exec, a background job), a hanging program and
 *   one that powers the kernel off;
 * - the kernel's own nolibc test program (tools/testing/selftests/nolibc), static-pie, as init:
 *   every case passes except the ones no no-MMU kernel can pass, each listed below with why;
 * - a program linked at a fixed address (plain -static) as init: refused, saying why.
 *
 * A cold run builds a kernel (3-8 min on two busy cores); later runs take about a minute.
 */
import { chownSync, closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_DIR, KERNEL_IMAGES_DIR, loadCatalog, loadSeries, type TestNode } from '@nommu-ci/shared';
import { mustRun, removeTree } from '../exec.js';
import { SANDBOX_GID, SANDBOX_UID } from '../sandbox.js';
import { boot, type BootOutcome } from '../stages/boot.js';
import { bootAll, type BootPlan, type BootsOutcome } from '../stages/boots.js';
import { ensureBase, ownedDir } from '../stages/build.js';
import { seriesLabel, seriesTree } from '../stages/source.js';
import { child, named } from '../../test/tree.js';
import { kselftestBootPlan, kselftestFragment, prepareKselftest, type PreparedKselftest } from './plan.js';
import { KERNEL_KILLER, ROOTFS_MOUNT, rootfsBootArgs } from './rootfs.js';

const kernel = loadCatalog()[0]!;
const series = loadSeries();
const jobDir = path.join(CACHE_DIR, 'jobs', `nommu-it-${process.pid}`);
const tmpDir = path.join(jobDir, 'tmp');
const logFile = path.join(jobDir, 'build.log');

const TIMERS = ['nanosleep', 'rtcpie'];
/**
 * On no-MMU the first two are skipped by the source heuristic (MAP_FIXED, kselftest_harness.h),
 * not built; compaction_test runs and skips itself (no huge pages to compact), as it does on MMU UML.
 */
const MM = ['map_fixed_noreplace', 'merge', 'compaction_test'];

/**
 * nolibc-test cases that fail on any no-MMU kernel, and why (measured on ours; the same
 * generic code runs on every no-MMU architecture).
 */
export const NOLIBC_NOMMU_FAILURES: Record<string, string> = {
  sbrk: 'no-MMU brk areas have size zero (binfmt_elf_fdpic: "zero-size brk area"); sbrk() gets ENOMEM',
  fork: 'fork() needs an MMU: kernel/fork.c returns EINVAL',
  ftruncate: 'needs memfd_create(), which needs TMPFS, which needs SHMEM, which depends on MMU (ENOSYS)',
  file_stream_wsr: 'O_TMPFILE in /tmp: without SHMEM /tmp is ramfs, which has no O_TMPFILE (EOPNOTSUPP)',
  open_mode: 'O_TMPFILE in /tmp: without SHMEM /tmp is ramfs, which has no O_TMPFILE (EOPNOTSUPP)',
  largefile: 'O_TMPFILE in /tmp: without SHMEM /tmp is ramfs, which has no O_TMPFILE (EOPNOTSUPP)',
  mmap_munmap_good: 'maps /dev/zero at an offset; /dev/zero cannot be mapped without an MMU (drivers/char/mem.c: ENOSYS, mm/nommu.c: ENODEV)',
};

let kernelDir: string;
let prepared: PreparedKselftest;
let outcome: BootsOutcome;
const boots: BootOutcome[] = [];
const tap: string[] = [];
let nolibc: { ended: string; results: Map<string, string> };
let fixed: { ended: string; console: string };
let smallMem: { ended: string; console: string };

beforeAll(async () => {
  if (!kernel.available || !series) return;
  await removeTree(jobDir);
  ownedDir(tmpDir);
  const fd = openSync(logFile, 'a');
  const log = (b: Buffer): void => void writeSync(fd, b);
  const tree = await seriesTree(kernel, series);
  try {
    const base = await ensureBase(
      // The worker's label for this tree, so kselftest jobs on no-MMU reuse this build.
      { label: `${kernel.name}-${seriesLabel(series).replace('@', '-')}`, tree, fragment: kselftestFragment({ mmu: false }) },
      { tmpDir, log, name: `nommu-it-base-${process.pid}`, onStage: () => undefined },
    );
    expect(base.dot.mmu).toBe(false);
    kernelDir = base.dir;
    prepared = await prepareKselftest({
      request: { kind: 'kselftest', targets: ['timers', 'mm'], tests: [...TIMERS.map((t) => `timers:${t}`), ...MM.map((t) => `mm:${t}`)], test_timeout_s: 60 },
      srcDir: tree,
      cacheKey: `${kernel.name}-${kernel.version}-${seriesLabel(series)}`,
      jobDir,
      tmpDir,
      mmu: false,
      log,
      name: `nommu-it-${process.pid}`,
      selftestPrograms: ['plain-pass', 'fpstate', 'busybox-sh', 'hang', KERNEL_KILLER, 'bg'],
      selftestTimeoutS: 5,
    });
  } finally {
    closeSync(fd);
  }
  const bootWith = (plan: BootPlan, n: number): Promise<BootOutcome> =>
    boot({
      kernelDir,
      tmpDir,
      consoleLog: path.join(jobDir, `console-${n}.log`),
      ...plan,
      name: `nommu-it-boot-${n}-${process.pid}`,
      sink: { appendTap: async (lines) => void tap.push(...lines), event: async () => undefined },
    }).then((o) => (boots.push(o), o));
  outcome = await bootAll(kselftestBootPlan(prepared), bootWith, async (lines) => void tap.push(...lines));

  // nolibc-test from the tree, static-pie, relocated by our start-up code, as init.
  const hdr = path.join(jobDir, 'nolibc-hdr');
  await mustRun(['make', '-s', '-C', tree, 'ARCH=x86', `O=${hdr}`, 'headers']);
  const st = path.join(tree, 'tools/testing/selftests/nolibc');
  const nolibcCc = (init: string, ...sources: string[]): string[] => [
    'gcc', '-Os', '-fno-asynchronous-unwind-tables', '-fno-stack-protector', '-fPIE', '-static-pie', '-nostdlib', '-nostdinc',
    '-I', path.join(tree, 'tools/include/nolibc'), '-I', path.join(hdr, 'usr/include'), '-Wl,-e,_start_pie', '-o', init,
    ...sources, path.join(KERNEL_IMAGES_DIR, 'rootfs/tests/pie-start.c'),
  ];
  const n = await bootInit('nolibc', (init) => nolibcCc(init, path.join(st, 'nolibc-test.c'), path.join(st, 'nolibc-test-linkage.c')));
  // "<n> <case> <details> [OK]|[FAIL]|[SKIPPED]"
  const results = new Map<string, string>();
  for (const l of n.console.split('\n')) {
    const m = /^\s*\d+ ([A-Za-z0-9_]+)\b.*\[(OK|FAIL|SKIPPED)\]\s*$/.exec(l);
    if (m) results.set(m[1]!, m[2]!);
    if (m?.[2] === 'FAIL') process.stdout.write(`nolibc: ${l}\n`);
  }
  nolibc = { ended: n.ended, results };

  // With little memory the page allocator hands out the memory between the host brk and
  // uml_reserved early; programs loaded there need it executable (series v6, patch 9).
  const hello = path.join(jobDir, 'small-mem.c');
  writeFileSync(hello, '#include <stdio.h>\nint main(void) { printf("small-mem: running\\n"); return 0; }\n');
  smallMem = await bootInit('small-mem', (init) => nolibcCc(init, hello), 64);

  const src = path.join(jobDir, 'exit0.c');
  writeFileSync(src, 'int main(void) { return 0; }\n');
  fixed = await bootInit('fixed', (init) => ['gcc', '-static', '-no-pie', '-o', init, src]);
}, 2_400_000);

/**
 * Boots the kernel with one program as init, in a root of its own (owned by the sandbox uid, as
 * hostfs acts as that uid on the host: nolibc-test chmods itself, makes /tmp, links). Such an
 * init prints no KTAP and, as PID 1, ends the boot in a panic: boot() rejects with the reason.
 */
async function bootInit(name: string, compile: (init: string) => string[], memMiB = 256): Promise<{ ended: string; console: string }> {
  const root = path.join(jobDir, `${name}-root`);
  for (const d of [root, path.join(root, 'dev'), path.join(root, 'tmp')]) ownedDir(d);
  const init = path.join(root, 'init');
  await mustRun(compile(init));
  chownSync(init, SANDBOX_UID, SANDBOX_GID);
  const consoleLog = path.join(jobDir, `${name}-console.log`);
  const ended = await boot({
    kernelDir,
    tmpDir,
    consoleLog,
    args: rootfsBootArgs(memMiB, '/init'),
    mounts: [{ host: root, path: ROOTFS_MOUNT, rw: true }],
    name: `nommu-it-${name}-${process.pid}`,
    sink: { appendTap: async () => undefined, event: async () => undefined },
  }).then(
    () => 'booted',
    (e: Error) => e.message,
  );
  return { ended, console: readFileSync(consoleLog, 'utf8') };
}

afterAll(async () => {
  if (!process.env.NOMMU_CI_KEEP_TEST_DIRS) await removeTree(jobDir);
});

const top = (name: string): TestNode => named(outcome.tests, name);

describe.skipIf(!kernel.available || !series)('user space on the no-MMU UML kernel', () => {
  it('boots the rootfs twice (the second after the program that powers the kernel off) and runs init', () => {
    expect(boots.map((b) => [b.exit.killed, b.exit.code, b.problem])).toEqual([
      [null, 0, null],
      [null, 0, null],
    ]);
    expect(tap[0]).toBe('KTAP version 1');
    expect(outcome.tests.map((t) => t.name)).toEqual(['nommu-ci', 'timers', 'mm']);
  });

  it('our programs: FP/AVX state, TLS, SIGSEGV and clocks (fpstate), the busybox shell, timeouts', () => {
    const own = top('nommu-ci');
    expect(own.children.map((c) => [c.name, c.status])).toEqual([
      ['plain-pass', 'pass'],
      ['fpstate', 'pass'],
      ['busybox-sh', 'pass'],
      ['hang', 'fail'],
      [KERNEL_KILLER, 'crash'],
      ['bg', 'pass'],
    ]);
    const fp = child(own, 'fpstate');
    expect(fp.children.map((c) => [c.name, c.status])).toEqual([
      ['registers survive system calls', 'pass'],
      ['registers survive signal handlers that use them', 'pass'],
      ['threads keep their own registers and TLS', 'pass'],
      ['a bad pointer kills the program with SIGSEGV', 'pass'],
      ['clock_gettime, gettimeofday and time agree and advance', 'pass'],
      ['fork and clone without CLONE_VM copy memory or fail with EINVAL, never share it', 'pass'],
    ]);
    expect(child(own, 'busybox-sh').children.map((c) => c.status)).toEqual(Array(7).fill('pass'));
    expect(child(own, 'hang').diagnostics.join('\n')).toMatch(/hang: timed out after 5 s; killed/);
  });

  it('timers and mm: programs built static-pie run; tests that need an MMU are skipped saying why', () => {
    expect(top('timers').children.map((c) => [c.name, c.status])).toEqual([
      ['nanosleep', 'pass'],
      ['rtcpie', 'skip'],
    ]);
    expect(child(top('timers'), 'nanosleep').planned).toBe(12);
    expect(top('mm').children.map((c) => [c.name, c.status, c.reason])).toEqual([
      ['map_fixed_noreplace', 'skip', 'needs an MMU: maps at fixed addresses (MAP_FIXED)'],
      ['merge', 'skip', 'needs an MMU: kselftest_harness.h forks for every test'],
      ['compaction_test', 'skip', 'Prerequisites unsatisfied'],
    ]);
    expect(prepared.skipped.map((s) => s.name)).toEqual(['mm:map_fixed_noreplace', 'mm:merge']);
  });

  it("nolibc-test as init: every case passes but the ones no no-MMU kernel can pass", () => {
    expect(nolibc.ended).toMatch(/Attempted to kill init! exitcode=0x00000100/);
    expect(nolibc.results.size).toBeGreaterThan(250);
    const failed = [...nolibc.results].filter(([, r]) => r === 'FAIL').map(([n]) => n).sort();
    expect(failed).toEqual(Object.keys(NOLIBC_NOMMU_FAILURES).sort());
  });

  it('a program linked at a fixed address is refused, and the kernel says why', () => {
    expect(fixed.ended).toMatch(/Requested init \/init failed \(error -8\)/);
    expect(fixed.console).toContain('/init: linked at a fixed address (ET_EXEC); without an MMU only position-independent programs can run');
  });

  it('runs programs with mem=64M, where they are loaded below the boot-time reserve', () => {
    expect(smallMem.console).toContain('small-mem: running');
    expect(smallMem.ended).toMatch(/Attempted to kill init! exitcode=0x00000000/);
  });

  it('the rootfs has busybox and static-pie programs only', () => {
    expect(existsSync(path.join(prepared.rootfs, 'bin/busybox'))).toBe(true);
    const head = readFileSync(path.join(prepared.rootfs, 'nommu-ci/init')).subarray(16, 18);
    expect(head.readUInt16LE(0)).toBe(3); // ET_DYN
  });
});
