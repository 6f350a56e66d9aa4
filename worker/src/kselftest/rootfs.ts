/**
 * The root filesystem of a kselftest boot: a host directory the UML kernel mounts as its root
 * through hostfs (`rootfstype=hostfs hostfs=/rootfs`; the sandbox binds the directory at /rootfs).
 *
 *   nommu-ci/init            our init (kernel-images/rootfs/init/init.c), static
 *   nommu-ci/plan            what it runs: target<TAB>test<TAB>timeout_s[<TAB>skip reason<TAB>detail...]
 *   kselftest/<target>/<t>   the test programs (copies: the guest can write the rootfs)
 *   proc sys dev tmp         mount points (hostfs acts as the sandbox uid on the host, so init
 *                            cannot create them itself in a root-owned directory)
 * No busybox and no dynamic loader: on MMU every program is static. Built per job inside the
 * job's directory; the parts come from caches (init by source hash, programs by build.ts).
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR } from '@nommu-ci/shared';
import { mustRun } from '../exec.js';
import { withLock } from '../locks.js';
import { SANDBOX_GID, SANDBOX_UID } from '../sandbox.js';
import { KSELFTEST_CACHE, toolchainKey } from './build.js';

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

export interface InitBinaries {
  init: string;
  /** The multi-call test program (selftest.c). */
  selftest: string;
}

/**
 * Compiles init.c and selftest.c (trusted: our repository) with the host gcc, statically, once per
 * (sources, toolchain) under KSELFTEST_CACHE/init-<hash>.
 */
export async function buildInit(signal?: AbortSignal): Promise<InitBinaries> {
  const srcs = ['init.c', 'selftest.c'].map((f) => path.join(INIT_SRC_DIR, f));
  const h = createHash('sha256');
  for (const f of srcs) h.update(readFileSync(f));
  h.update(toolchainKey());
  const dir = path.join(KSELFTEST_CACHE, `init-${h.digest('hex').slice(0, 16)}`);
  const out = (): InitBinaries => ({ init: path.join(dir, 'init'), selftest: path.join(dir, 'selftest') });
  if (existsSync(out().init) && existsSync(out().selftest)) return out();
  return withLock(dir, signal, async () => {
    if (existsSync(out().init) && existsSync(out().selftest)) return out();
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const [src, bin] of [
      [srcs[0]!, 'init'],
      [srcs[1]!, 'selftest'],
    ] as const) {
      await mustRun(['gcc', '-static', '-O2', '-Wall', '-o', path.join(tmp, bin), src], { signal });
    }
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
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'nommu-ci', 'kselftest']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(init.init, path.join(dir, 'nommu-ci/init'));
  chmodSync(path.join(dir, 'nommu-ci/init'), 0o755);
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

/** Plan entries for our own test programs (selftest.c), installed as target `nommu-ci`. */
export function selftestEntries(init: InitBinaries, names: readonly string[], timeout_s: number): PlanEntry[] {
  return names.map((n) => ({ target: SELFTEST_TARGET, test: n, timeout_s, program: init.selftest }));
}

/** Kernel arguments that boot `init` from the rootfs bound at ROOTFS_MOUNT. */
export function rootfsBootArgs(memMiB = 1024): string[] {
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
    `init=${INIT_PATH}`,
  ];
}
