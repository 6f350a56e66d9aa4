/**
 * Builds kselftest programs statically from a job's tree, in the sandbox: plain static for the
 * MMU kernel, static-pie for the no-MMU kernel (which can only load position-independent
 * programs without a program interpreter), with the toolchains of toolchains.ts in turn: on
 * no-MMU musl first, then glibc for the programs musl did not build.
 *
 * A build root holds:
 *   headers/usr/include     `make ARCH=x86 O=/hdr headers` of the tree (UML runs x86_64 user code,
 *                           so the UAPI is x86's, not um's)
 *   selftests/              a hardlink farm of the tree's tools/testing/selftests: directories owned
 *                           by the sandbox uid (Makefiles write files next to their sources, e.g.
 *                           mm's local_config.mk), files stay the tree's root-owned inodes, so the
 *                           sandbox creates files but never writes through a link into the tree
 *   out/<target>/<test>     the programs; out/<target>/.failed/<test>.log make's output for one that
 *                           did not build
 *   out-glibc/<target>/     the glibc fallback's own build (its objects must not mix with musl's);
 *                           what it builds is copied into out/<target>/
 *   tools/                  pie-start.o, the musl wrapper and specs (toolchains.ts)
 * In the sandbox: the tree read-only at /src, selftests/ over /src/tools/testing/selftests (so
 * lib.mk's top_srcdir is /src), headers at /hdr, out at /out (out-glibc at /out-glibc), tools
 * read-only at TOOLS_MOUNT; then per target and toolchain
 *   make -k -C /src/tools/testing/selftests/<target> OUTPUT=/out/<target> CC="<toolchain's cc>"
 *        USERLDFLAGS="<its ldflags>" KHDR_INCLUDES="-isystem /hdr/usr/include" /out/<target>/<test>...
 * (CC on the command line beats lib.mk's `CC :=`, so custom link rules that skip LDFLAGS link
 * statically too). A program that is missing after the last toolchain is made once more alone
 * with it, and its first error lines are its skip reason; a program that came out dynamic, or
 * (static-pie) at a fixed address, is refused the same way (unusableProgram).
 *
 * Our own targets (own.ts) are copied into selftests/ first, with a key of their sources.
 *
 * Caching: an unpatched tree builds in a shared root under KSELFTEST_CACHE keyed by (tree, link,
 * toolchain), locked while it builds; make only rebuilds what is missing or older, and failures
 * are remembered in .failed/ so the next job does not retry them. A patched tree builds in the
 * job's own directory, every time.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CACHE_DIR } from '@nommu-ci/shared';
import { abortReason, JobAborted, StageError } from '../errors.js';
import { mustRun } from '../exec.js';
import { withLock } from '../locks.js';
import { describeExit, runSandboxed, SANDBOX_GID, SANDBOX_UID, type Mount } from '../sandbox.js';
import { SELFTESTS_DIR } from '@nommu-ci/shared';
import { TOOLCHAINS, TOOLS_MOUNT, toolsDir, toolsKey, type Link, type Toolchain } from './toolchains.js';
import { isOwnTarget, placeOwnTarget } from './own.js';

export type { Link } from './toolchains.js';

export const KSELFTEST_CACHE = process.env.NOMMU_CI_KSELFTEST_CACHE ?? path.join(CACHE_DIR, 'kselftest');

/**
 * How our own programs (init, selftest.c) link. static-pie: glibc's start-up relocates the program, then applies RELRO with mprotect(), which
 * a no-MMU kernel does not have (ENOSYS), and gives up; -z norelro leaves RELRO out.
 */
export const LINK_FLAGS: Record<Link, string> = {
  static: '-static',
  'static-pie': '-static-pie -Wl,-z,norelro',
};

export interface BuildRequest {
  target: string;
  /** Program names (compiled kinds only). */
  tests: string[];
}

export interface BuildFailure {
  target: string;
  test: string;
  /** The first error line. */
  reason: string;
  /** Up to 20 error lines (or the last lines of make's output). */
  details: string[];
}

export interface BuildTestsOptions {
  /** static for the MMU kernel, static-pie for the no-MMU kernel. */
  link: Link;
  /** Host path of the tree (pristine, series-applied or the job's patched view); only read. */
  tree: string;
  selection: BuildRequest[];
  /** Key of a trusted (unpatched) tree, e.g. "debian-7.2-7.2.12-1": build in the shared cache. Null: patched, build in workDir. */
  cacheKey: string | null;
  /** Job-private directory for untrusted builds. */
  workDir: string;
  tmpDir: string;
  signal?: AbortSignal;
  deadline?: number;
  jobs?: number;
  log: (b: Buffer) => void;
  name: string;
}

export interface BuildTestsResult {
  /** Host directory of each target's programs. */
  outDirs: Map<string, string>;
  /** Programs built, per target. */
  built: Map<string, string[]>;
  failed: BuildFailure[];
  root: string;
}

const ERROR_LINE = /(\berror\b:|\bError \d+|undefined reference|cannot find -l|fatal error|No rule to make target|multiple definition|\*\*\*)/;

/** What identifies the compiler and C library a static build links against. */
export function toolchainKey(): string {
  const h = createHash('sha256');
  for (const argv of [
    ['gcc', '--version'],
    ['ldd', '--version'],
  ]) {
    try {
      h.update(execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0] ?? '');
    } catch {
      h.update(`no ${argv[0]}`);
    }
  }
  h.update('static-v2');
  h.update(toolsKey());
  return h.digest('hex').slice(0, 12);
}

function chownSandbox(p: string): void {
  if (process.getuid?.() === 0) execFileSync('chown', [`${SANDBOX_UID}:${SANDBOX_GID}`, p]);
}

/**
 * Why a built program cannot run on the kernel it was linked for, or null: it asks for a dynamic
 * loader (PT_INTERP), which the rootfs has not; or, static-pie, it is linked at a fixed address
 * (ET_EXEC), which a no-MMU kernel refuses. One read of the ELF and program headers.
 */
export function unusableProgram(file: string, link: Link): string | null {
  const fd = openSync(file, 'r');
  try {
    const hdr = Buffer.alloc(64);
    if (readSync(fd, hdr, 0, 64, 0) < 64 || hdr.readUInt32BE(0) !== 0x7f454c46 || hdr[4] !== 2) return null;
    const phoff = Number(hdr.readBigUInt64LE(32));
    const phentsize = hdr.readUInt16LE(54);
    const phnum = hdr.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (ph.readUInt32LE(i * phentsize) === 3) return 'linked dynamically (needs a dynamic loader the rootfs does not have); its Makefile rule ignores CC/LDFLAGS';
    }
    if (link === 'static-pie' && hdr.readUInt16LE(16) === 2) return 'linked at a fixed address (not PIE), which a no-MMU kernel cannot load; its Makefile rule overrides -static-pie';
    return null;
  } finally {
    closeSync(fd);
  }
}

function errorLines(out: string): string[] {
  const lines = out.split('\n').map((l) => l.trimEnd());
  const errs = lines.filter((l) => ERROR_LINE.test(l) && !/^make(\[\d+\])?: \*\*\* \[.*\] Error \d+$/.test(l) && !/^make.*Target .* not remade because of errors/.test(l));
  const pick = errs.length > 0 ? errs : lines.filter((l) => l.trim() !== '').slice(-10);
  return pick.slice(0, 20).map((l) => l.replace(/\/src\/tools\/testing\/selftests\//g, '').slice(0, 300));
}

interface Root {
  dir: string;
  hdr: string;
  selftests: string;
  out: string;
  tools: string;
}

function rootOf(dir: string): Root {
  return { dir, hdr: path.join(dir, 'headers'), selftests: path.join(dir, 'selftests'), out: path.join(dir, 'out'), tools: path.join(dir, 'tools') };
}

/** Where a toolchain's build goes, on the host and in the sandbox: the first's is the programs' own. */
function outOf(o: BuildTestsOptions, r: Root, tc: Toolchain): { host: string; sandbox: string } {
  if (TOOLCHAINS[o.link][0] === tc) return { host: r.out, sandbox: '/out' };
  return { host: path.join(r.dir, `out-${tc.libc}`), sandbox: `/out-${tc.libc}` };
}

function mounts(o: BuildTestsOptions, r: Root): Mount[] {
  return [
    { host: o.tree, path: '/src' },
    { host: r.selftests, path: `/src/${SELFTESTS_DIR}`, rw: true },
    { host: r.hdr, path: '/hdr', rw: true },
    ...TOOLCHAINS[o.link].map((tc) => ({ host: outOf(o, r, tc).host, path: outOf(o, r, tc).sandbox, rw: true })),
    { host: r.tools, path: TOOLS_MOUNT },
  ];
}

async function sandboxMake(o: BuildTestsOptions, r: Root, argv: string[], name: string, log = true): Promise<{ code: number | null; out: string }> {
  let out = '';
  const res = await runSandboxed({
    name,
    argv,
    mounts: mounts(o, r),
    tmpDir: o.tmpDir,
    cwd: '/src',
    env: { KBUILD_BUILD_USER: 'nommu-ci', KBUILD_BUILD_HOST: 'sandbox' },
    signal: o.signal,
    timeoutMs: o.deadline !== undefined ? o.deadline - Date.now() : undefined,
    onOutput: (b) => {
      if (log) o.log(b);
      if (out.length < 1 << 20) out += b.toString('utf8');
    },
  });
  if (res.killed === 'abort') throw abortReason(o.signal) ?? new JobAborted('cancel');
  if (res.killed === 'timeout') throw new JobAborted('timeout');
  if (res.oom) throw new StageError('build', `kselftest build ran out of memory (${describeExit(res)})`);
  return { code: res.code, out };
}

/** Makes the root's headers and selftests farm if they are missing. */
async function prepareRoot(o: BuildTestsOptions, r: Root): Promise<void> {
  mkdirSync(r.dir, { recursive: true });
  await toolsDir(r.tools, o.signal);
  for (const d of [r.hdr, ...TOOLCHAINS[o.link].map((tc) => outOf(o, r, tc).host)]) {
    mkdirSync(d, { recursive: true });
    chownSandbox(d);
  }
  if (!existsSync(path.join(r.selftests, '.nommu-ci-complete'))) {
    rmSync(r.selftests, { recursive: true, force: true });
    await mustRun(['cp', '-al', path.join(o.tree, SELFTESTS_DIR), r.selftests]);
    if (process.getuid?.() === 0) {
      await mustRun(['find', r.selftests, '-type', 'd', '-exec', 'chown', `${SANDBOX_UID}:${SANDBOX_GID}`, '{}', '+']);
    }
    writeFileSync(path.join(r.selftests, '.nommu-ci-complete'), '');
  }
  if (!existsSync(path.join(r.hdr, '.nommu-ci-complete'))) {
    o.log(Buffer.from('=== nommu-ci: kselftest: UAPI headers (make ARCH=x86 headers)\n'));
    const res = await sandboxMake(o, r, ['make', '-s', 'ARCH=x86', 'O=/hdr', `-j${o.jobs ?? 2}`, 'headers'], `${o.name}-hdr`);
    if (res.code !== 0) throw new StageError('build', `make headers failed for the kselftest build:\n${errorLines(res.out).join('\n')}`);
    writeFileSync(path.join(r.hdr, '.nommu-ci-complete'), '');
  }
}

function makeArgv(o: BuildTestsOptions, r: Root, tc: Toolchain, target: string, tests: string[], keepGoing: boolean): string[] {
  const out = `${outOf(o, r, tc).sandbox}/${target}`;
  return [
    'make',
    ...(keepGoing ? ['-k'] : []),
    `-j${o.jobs ?? 2}`,
    '-C',
    `/src/${SELFTESTS_DIR}/${target}`,
    `OUTPUT=${out}`,
    `CC=${tc.cc}`,
    `USERLDFLAGS=${tc.ldflags}`,
    'KHDR_INCLUDES=-isystem /hdr/usr/include',
    'ARCH=x86_64',
    ...tests.map((t) => `${out}/${t}`),
  ];
}

async function buildIn(o: BuildTestsOptions, r: Root, trusted: boolean): Promise<BuildTestsResult> {
  await prepareRoot(o, r);
  const chains = TOOLCHAINS[o.link];
  const last = chains[chains.length - 1]!;
  const result: BuildTestsResult = { outDirs: new Map(), built: new Map(), failed: [], root: r.dir };
  for (const sel of o.selection) {
    const out = path.join(r.out, sel.target);
    const failedDir = path.join(out, '.failed');
    if (isOwnTarget(sel.target)) placeOwnTarget(r.selftests, chains.map((tc) => outOf(o, r, tc).host), sel.target, chownSandbox);
    for (const tc of chains) {
      const base = outOf(o, r, tc).host;
      mkdirSync(path.join(base, sel.target), { recursive: true });
      for (const d of sel.target.split('/').map((_, i, a) => path.join(base, ...a.slice(0, i + 1)))) chownSandbox(d);
    }
    mkdirSync(failedDir, { recursive: true });
    chownSandbox(failedDir);
    result.outDirs.set(sel.target, out);
    const have = (t: string, dir = out): boolean => existsSync(path.join(dir, t)) && statSync(path.join(dir, t)).isFile();
    const usable = (t: string, dir = out): boolean => have(t, dir) && unusableProgram(path.join(dir, t), o.link) === null;
    const known = (t: string): boolean => trusted && existsSync(path.join(failedDir, `${t}.log`));
    const tag = sel.target.replace(/\//g, '_');
    // Each toolchain in turn makes what the ones before it did not (see toolchains.ts).
    let todo = sel.tests.filter((t) => !known(t));
    for (const tc of chains) {
      if (tc !== chains[0]) todo = todo.filter((t) => !usable(t));
      if (todo.length === 0) break;
      o.log(Buffer.from(`=== nommu-ci: kselftest: building ${sel.target} with ${tc.libc}: ${todo.join(' ')}\n`));
      await sandboxMake(o, r, makeArgv(o, r, tc, sel.target, todo, true), `${o.name}-${tag}-${tc.libc}`);
      if (tc === chains[0]) continue;
      const dir = path.join(outOf(o, r, tc).host, sel.target);
      for (const t of todo.filter((x) => usable(x, dir))) copyFileSync(path.join(dir, t), path.join(out, t));
    }
    const built: string[] = [];
    for (const t of sel.tests) {
      const logFile = path.join(failedDir, `${t}.log`);
      const unusable = have(t) ? unusableProgram(path.join(out, t), o.link) : null;
      if (have(t) && unusable === null) {
        built.push(t);
        continue;
      }
      let text: string;
      if (known(t)) text = readFileSync(logFile, 'utf8');
      else if (unusable !== null) text = `${t}: ${unusable}\n`;
      else {
        // Alone, without -j, with the last toolchain tried, so the output is this program's.
        const res = await sandboxMake(o, r, makeArgv({ ...o, jobs: 1 }, r, last, sel.target, [t], false), `${o.name}-${t}`, false);
        text = res.out || `make exited ${res.code} without output`;
        if (res.code === 0 && !have(t, path.join(outOf(o, r, last).host, sel.target))) text = `make succeeded but produced no ${sel.target}/${t} (the Makefile builds it under another name or not at all)\n${text}`;
      }
      if (trusted) writeFileSync(logFile, text);
      const details = errorLines(text);
      result.failed.push({ target: sel.target, test: t, reason: `build failed: ${details[0] ?? 'no output'}`, details });
    }
    result.built.set(sel.target, built);
  }
  return result;
}

/** Builds the selection; see the module comment for where and how. */
export async function buildTests(o: BuildTestsOptions): Promise<BuildTestsResult> {
  if (o.cacheKey === null) return buildIn(o, rootOf(o.workDir), false);
  if (!/^[A-Za-z0-9._@-]+$/.test(o.cacheKey)) throw new Error(`bad kselftest cache key ${o.cacheKey}`);
  const dir = path.join(KSELFTEST_CACHE, `${o.cacheKey}-${o.link}-${toolchainKey()}`);
  return withLock(dir, o.signal, () => buildIn(o, rootOf(dir), true), () =>
    o.log(Buffer.from('=== nommu-ci: kselftest: waiting for another worker building in the same cache\n')),
  );
}
