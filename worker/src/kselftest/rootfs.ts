/**
 * The root filesystem of a kselftest boot: a host directory the UML kernel mounts as its root
 * through hostfs (`rootfstype=hostfs hostfs=/rootfs`; the sandbox binds the directory at /rootfs).
 *
 *   nommu-ci/init            our init (kernel-images/rootfs/init/init.c)
 *   nommu-ci/plan            what it runs: target<TAB>test<TAB>timeout_s[<TAB>skip reason<TAB>detail...]
 *   kselftest/<target>/<t>   the test programs (copies: the guest can write the rootfs)
 *   bin/busybox, bin/<applet> BusyBox built for no-MMU (kernel-images/rootfs/build-busybox.sh,
 *                            static-pie, so it runs on both kernels): the shell of our shell tests
 *   proc sys dev tmp         mount points (hostfs acts as the sandbox uid on the host, so init
 *                            cannot create them itself in a root-owned directory)
 * No dynamic loader: every program is static (MMU) or static-pie (no-MMU). Built per job inside
 * the job's directory; the parts come from caches (init by source hash, programs by build.ts).
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, KERNEL_IMAGES_DIR } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import { mustRun } from '../exec.js';
import { withLock } from '../locks.js';
import { SANDBOX_GID, SANDBOX_UID } from '../sandbox.js';
import { KSELFTEST_CACHE, LINK_FLAGS, toolchainKey, type Link } from './build.js';

export const INIT_SRC_DIR = path.join(KERNEL_IMAGES_DIR, 'rootfs/init');
/** Inside the guest. */
export const INIT_PATH = '/nommu-ci/init';
export const PLAN_PATH = '/nommu-ci/plan';
export const TEST_ROOT = '/kselftest';
/** Where boot must bind the rootfs directory inside the sandbox. */
export const ROOTFS_MOUNT = '/rootfs';
/** The programs of kernel-images/rootfs/init/selftest.c, by behaviour (see there). */
export const SELFTEST_PROGRAMS = ['tap-pass', 'tap-fail', 'tap-noversion', 'tap-crash', 'plain-pass', 'exit-fail', 'skip', 'hang', 'tap-hang', 'bg'] as const;
/** The one that kills the kernel (powers it off): only for a guest, never in the list above that runs on the host too. */
export const KERNEL_KILLER = 'poweroff';
/** The target name our own test programs run under. */
export const SELFTEST_TARGET = 'nommu-ci';

export const ROOTFS_TESTS_DIR = path.join(KERNEL_IMAGES_DIR, 'rootfs/tests');
export const BUSYBOX = process.env.NOMMU_CI_BUSYBOX ?? path.join(CACHE_DIR, 'busybox/busybox');
/** What the rootfs links to busybox in /bin. */
const BUSYBOX_APPLETS = ['sh', 'cat', 'chmod', 'echo', 'grep', 'ls', 'mkdir', 'rm', 'seq', 'sleep', 'test', 'tr', 'true', 'false', 'wc', 'kill', 'ps'];

export interface InitBinaries {
  init: string;
  /** The multi-call test program (selftest.c). */
  selftest: string;
  /**
   * Our other test programs (kernel-images/rootfs/tests/), by name: fpstate (FP/SSE/AVX state,
   * TLS, SIGSEGV, fork, clocks), built with musl (its threads need a libc that copes without
   * mprotect()); faults (every kind of fault a program can cause ends as its own signal), musl
   * too; busybox-sh, a script for the busybox shell.
   */
  programs: Record<string, string>;
}

/**
 * Compiles init.c and selftest.c with the host gcc and fpstate.c with musl
 * (kernel-images/rootfs/musl-cc), all trusted (our repository), linked for `link`, once per
 * (sources, link, toolchain) under KSELFTEST_CACHE/init-<hash>.
 */
export async function buildInit(link: Link, signal?: AbortSignal): Promise<InitBinaries> {
  const srcs = ['init.c', 'selftest.c'].map((f) => path.join(INIT_SRC_DIR, f));
  const fpstate = path.join(ROOTFS_TESTS_DIR, 'fpstate.c');
  const faults = path.join(ROOTFS_TESTS_DIR, 'faults.c');
  const musl = path.join(KERNEL_IMAGES_DIR, 'rootfs/musl-cc');
  const h = createHash('sha256');
  for (const f of [...srcs, fpstate, faults, musl, path.join(KERNEL_IMAGES_DIR, 'rootfs/static-pie.specs')]) h.update(readFileSync(f));
  h.update(link);
  h.update(toolchainKey());
  const dir = path.join(KSELFTEST_CACHE, `init-${h.digest('hex').slice(0, 16)}`);
  const out = (): InitBinaries => ({
    init: path.join(dir, 'init'),
    selftest: path.join(dir, 'selftest'),
    programs: { fpstate: path.join(dir, 'fpstate'), faults: path.join(dir, 'faults'), 'busybox-sh': path.join(ROOTFS_TESTS_DIR, 'busybox-sh') },
  });
  const built = (): boolean => ['init', 'selftest', 'fpstate', 'faults'].every((f) => existsSync(path.join(dir, f)));
  if (built()) return out();
  return withLock(dir, signal, async () => {
    if (built()) return out();
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const flags = LINK_FLAGS[link].split(' ');
    for (const [src, bin] of [
      [srcs[0]!, 'init'],
      [srcs[1]!, 'selftest'],
    ] as const) {
      await mustRun(['gcc', ...flags, '-O2', '-Wall', '-o', path.join(tmp, bin), src], { signal });
    }
    // -mno-avx: the compiler must not keep its own values in the registers the test checks.
    await mustRun([musl, link === 'static' ? '-static' : '-static-pie', '-O2', '-Wall', '-mno-avx', '-pthread', '-o', path.join(tmp, 'fpstate'), fpstate], { signal });
    await mustRun([musl, link === 'static' ? '-static' : '-static-pie', '-O2', '-Wall', '-o', path.join(tmp, 'faults'), faults], { signal });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    return out();
  });
}

export interface PlanEntry {
  target: string;
  test: string;
  timeout_s: number;
  /** Host path of the program; absent for a skipped test. */
  program?: string;
  /** Do not run: report `# SKIP <skip>` with `details` as diagnostics. */
  skip?: string;
  details?: string[];
}

const oneLine = (s: string): string => s.replace(/[\t\r\n]+/g, ' ').trim();

/** The plan file's text (format in kernel-images/rootfs/init/init.c). */
export function formatPlan(entries: readonly PlanEntry[]): string {
  return entries
    .map((e) => {
      const f = [e.target, e.test, String(e.timeout_s)];
      if (e.skip !== undefined) f.push(oneLine(e.skip) || 'skipped', ...(e.details ?? []).map(oneLine).filter(Boolean));
      return f.join('\t');
    })
    .map((l) => `${l}\n`)
    .join('');
}

function sandboxDir(d: string): void {
  mkdirSync(d, { recursive: true });
  if (process.getuid?.() === 0) chownSync(d, SANDBOX_UID, SANDBOX_GID);
}

/**
 * Writes the rootfs at `dir` (replacing what was there): init, plan, programs, mount points.
 * Entries of one target must be consecutive (init's output groups by runs of a target).
 */
export function assembleRootfs(dir: string, init: InitBinaries, entries: readonly PlanEntry[]): void {
  if (!existsSync(BUSYBOX)) throw new StageError('config', `no busybox at ${BUSYBOX}: run npm run setup (it builds it)`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'nommu-ci', 'kselftest', 'bin']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(init.init, path.join(dir, 'nommu-ci/init'));
  chmodSync(path.join(dir, 'nommu-ci/init'), 0o755);
  copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of BUSYBOX_APPLETS) symlinkSync('busybox', path.join(dir, 'bin', a));
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.program === undefined) continue;
    const tdir = path.join(dir, 'kselftest', e.target);
    if (!tdir.startsWith(path.join(dir, 'kselftest') + '/')) throw new Error(`bad target ${e.target}`);
    if (!seen.has(e.target)) {
      // The test's working directory: writable by the guest (hostfs acts as the sandbox uid).
      sandboxDir(tdir);
      seen.add(e.target);
    }
    const dest = path.join(tdir, e.test);
    copyFileSync(e.program, dest);
    chmodSync(dest, 0o755);
  }
  writePlan(dir, entries);
}

/** Replaces what init of the rootfs at `dir` runs (the programs must be there already). */
export function writePlan(dir: string, entries: readonly PlanEntry[]): void {
  writeFileSync(path.join(dir, 'nommu-ci/plan'), formatPlan(entries));
}

/** Plan entries for our own test programs (selftest.c, InitBinaries.programs), installed as target `nommu-ci`. */
export function selftestEntries(init: InitBinaries, names: readonly string[], timeout_s: number): PlanEntry[] {
  return names.map((n) => ({ target: SELFTEST_TARGET, test: n, timeout_s, program: init.programs[n] ?? init.selftest }));
}

/** Kernel arguments that boot `init` (default: ours) from the rootfs bound at ROOTFS_MOUNT. */
export function rootfsBootArgs(memMiB = 1024, init = INIT_PATH): string[] {
  return [
    `mem=${memMiB}M`,
    'console=tty',
    // con0 is the console (stdout); the other UML consoles default to xterm, which is not there.
    'con=none',
    'con0=fd:0,fd:1',
    // Warnings and worse on the console (WARN, BUG, oops, panic); info chatter such as segfault
    // reports stays in the log buffer and out of the KTAP.
    'loglevel=5',
    'root=/dev/root',
    'rootfstype=hostfs',
    `hostfs=${ROOTFS_MOUNT}`,
    'rw',
    `init=${init}`,
  ];
}
