/**
 * Stage `build`: `make ARCH=um O=/build CC="ccache gcc" -jN` in the sandbox, the tree at /src.
 *
 * Build directories are reused with trust separation:
 *  - a *base* build directory per (source, series, config fragment) under BUILDS_DIR is built
 *    only from an unpatched (trusted) tree, with the shared ccache writable; it is locked while
 *    it is configured and built, and never modified once complete;
 *  - a job with a patch copies the complete base (`cp -a`, mtimes kept) into its own directory
 *    and builds its patched view there, ccache read-only (CCACHE_READONLY), so untrusted builds
 *    never write a shared cache. The view's unchanged files are hardlinks with the pristine
 *    mtimes, and the tree is /src and the build /build in both builds, so kbuild's recorded
 *    paths and commands match and only what the patch touched is rebuilt.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { abortReason, InfraError, JobAborted, noSpaceLine, StageError } from '../errors.js';
import { mustRun, removeTree, runHost } from '../exec.js';
import { tryLock, withLock } from '../locks.js';
import { BUILDS_DIR, CCACHE_DIR } from '../paths.js';
import { assertSandboxStarted, describeExit, runSandboxed, SANDBOX_GID, SANDBOX_UID, type Mount, type SandboxResult } from '../sandbox.js';
import { configure, readDotConfig, type DotConfig, type Fragment } from './config.js';

export const BUILD_JOBS = Number(process.env.NOMMU_CI_BUILD_JOBS ?? os.availableParallelism());
const COMPLETE = '.nommu-ci-complete';

export interface KmakeOptions {
  /** Host path of the tree, mounted read-only at /src. */
  srcDir: string;
  /** Host path of the build directory, mounted at /build. */
  buildDir: string;
  tmpDir: string;
  /** Trusted (unpatched tree): the shared ccache is writable. Otherwise read-only. */
  trusted: boolean;
  targets: string[];
  /** More make variables (a coverage kernel's KCFLAGS); the same for a base and the builds copied from it. */
  makeVars?: readonly string[];
  jobs?: number;
  signal?: AbortSignal;
  /** Epoch ms at which the job times out. */
  deadline?: number;
  /** Receives make's output (build.log). */
  log: (chunk: Buffer) => void;
  name: string;
}

export interface KmakeResult {
  result: SandboxResult;
  /** Compiler/make error lines (the first ones), or the last lines of output. */
  errors: string;
  tail: string;
  abort: JobAborted | null;
}

const ERROR_LINE = /(\berror\b:|\bError \d+|undefined reference|\*\*\*|fatal:|No rule to make target|multiple definition)/;

export async function kmake(o: KmakeOptions): Promise<KmakeResult> {
  const mounts: Mount[] = [
    { host: o.srcDir, path: '/src' },
    { host: o.buildDir, path: '/build', rw: true },
  ];
  if (existsSync(CCACHE_DIR)) mounts.push({ host: CCACHE_DIR, path: '/ccache', rw: o.trusted });
  const env: Record<string, string> = {
    CCACHE_DIR: '/ccache',
    CCACHE_TEMPDIR: '/tmp/ccache-tmp',
    // Depend mode hashes the compiler's own -MMD output instead of running the preprocessor
    // first: a miss costs one compile, as without ccache (bench/ccache-modes.sh, mm/ and lib/
    // with cold caches: gcc 32.3 s, ccache's default mode 43.3 s, depend mode 27.8 s).
    CCACHE_DEPEND: '1',
    KBUILD_BUILD_USER: 'nommu-ci',
    KBUILD_BUILD_HOST: 'sandbox',
  };
  if (!o.trusted) Object.assign(env, { CCACHE_READONLY: '1', CCACHE_NOSTATS: '1' });
  const errors: string[] = [];
  let tail: string[] = [];
  let partial = '';
  const r = await runSandboxed({
    name: o.name,
    argv: ['make', 'ARCH=um', 'O=/build', 'CC=ccache gcc', ...(o.makeVars ?? []), `-j${o.jobs ?? BUILD_JOBS}`, ...o.targets],
    mounts,
    tmpDir: o.tmpDir,
    cwd: '/src',
    env,
    signal: o.signal,
    timeoutMs: o.deadline !== undefined ? o.deadline - Date.now() : undefined,
    onOutput: (b) => {
      o.log(b);
      const lines = (partial + b.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (errors.length < 20 && ERROR_LINE.test(l)) errors.push(l);
      }
      tail = tail.concat(lines).slice(-30);
    },
  });
  if (partial) tail = tail.concat(partial).slice(-30);
  assertSandboxStarted(r);
  let abort: JobAborted | null = null;
  if (r.killed === 'abort') abort = abortReason(o.signal) ?? new JobAborted('cancel');
  if (r.killed === 'timeout') abort = new JobAborted('timeout');
  return { result: r, errors: errors.join('\n'), tail: tail.join('\n'), abort };
}

/** Runs the build proper; throws StageError('build') with the first error lines. */
export async function build(o: Omit<KmakeOptions, 'targets'>): Promise<void> {
  const r = await kmake({ ...o, targets: [] });
  if (r.abort) throw r.abort;
  if (r.result.code !== 0) {
    const full = noSpaceLine(`${r.errors}\n${r.tail}`);
    if (full) throw new InfraError('build', `the disk of ${o.buildDir} is full: ${full}`);
    throw new StageError('build', `build failed (${describeExit(r.result)}):\n${r.errors || r.tail}`);
  }
  if (!existsSync(path.join(o.buildDir, 'linux'))) throw new StageError('build', 'build finished but produced no `linux` binary');
}

/** Lets the sandbox uid write the shared ccache (trusted builds only); fixes entries others created. */
export async function ensureCcache(): Promise<void> {
  mkdirSync(CCACHE_DIR, { recursive: true });
  if (process.getuid?.() !== 0) return;
  // Best effort: other builds (root's, on this host) add and remove files while find walks.
  await runHost(['find', CCACHE_DIR, '(', '!', '-uid', String(SANDBOX_UID), '-o', '!', '-gid', String(SANDBOX_GID), ')', '-exec', 'chown', '-h', `${SANDBOX_UID}:${SANDBOX_GID}`, '{}', '+']);
}

/** A sandbox-owned empty directory. */
export function ownedDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) chownSync(dir, SANDBOX_UID, SANDBOX_GID);
}

export interface BaseSpec {
  /** Catalog name + series label or "mmu"; with the fragment hash it names the directory. */
  label: string;
  /** The trusted tree (pristine or series-applied) the base is built from. */
  tree: string;
  fragment: Fragment;
}

export function baseDir(spec: BaseSpec): string {
  return path.join(BUILDS_DIR, `${spec.label}-${spec.fragment.hash.slice(0, 16)}`);
}

export interface BaseResult {
  dir: string;
  dot: DotConfig;
  /** False if it was already complete. */
  built: boolean;
}

/**
 * Makes sure the base build directory for `spec` is complete: configured (validated) and built
 * from the trusted tree. Stages are reported through onStage so the job's timings split.
 */
export async function ensureBase(
  spec: BaseSpec,
  o: Omit<KmakeOptions, 'targets' | 'srcDir' | 'buildDir' | 'trusted'> & { onStage: (s: 'config' | 'build') => void; onWait?: () => void },
): Promise<BaseResult> {
  const dir = baseDir(spec);
  const done = (): boolean => existsSync(path.join(dir, COMPLETE)) && existsSync(path.join(dir, 'linux'));
  if (done()) {
    markUsed(dir);
    return { dir, dot: readDotConfig(path.join(dir, '.config')), built: false };
  }
  return withLock(
    dir,
    o.signal,
    async () => {
      if (done()) return { dir, dot: readDotConfig(path.join(dir, '.config')), built: false };
      // An incomplete base was interrupted (possibly by SIGKILL, leaving truncated objects that
      // look up to date): start it over; ccache makes that cheap.
      await removeTree(dir);
      ownedDir(dir);
      await ensureCcache();
      o.onStage('config');
      const common = { ...o, srcDir: spec.tree, buildDir: dir, trusted: true };
      o.log(Buffer.from(`=== nommu-ci: base build ${path.basename(dir)} (trusted tree, shared ccache)\n`));
      const dot = await configure({ ...common, fragment: spec.fragment }).catch(async (e: unknown) => {
        if (e instanceof StageError) await removeTree(dir); // nothing worth keeping
        throw e;
      });
      o.onStage('build');
      await build(common);
      writeFileSync(path.join(dir, COMPLETE), `${new Date().toISOString()}\n`);
      return { dir, dot, built: true };
    },
    o.onWait,
  );
}

/** Copies a complete base into the job's directory, keeping owners and mtimes. */
export async function copyBase(base: string, dest: string): Promise<void> {
  await removeTree(dest);
  mkdirSync(path.dirname(dest), { recursive: true });
  await mustRun(['cp', '-a', '--reflink=auto', base, dest]);
}

/** Records a base's last use (its stamp's mtime): the GC removes the least recently used. */
function markUsed(dir: string): void {
  const now = new Date();
  try {
    utimesSync(path.join(dir, COMPLETE), now, now);
  } catch {
    /* removed meanwhile */
  }
}

export const MAX_BASES = Number(process.env.NOMMU_CI_MAX_BASES ?? 24);
/** A base used within this long is never collected (a job may be about to copy or boot it). */
const GC_GRACE_MS = 3600_000;

/**
 * Keeps at most MAX_BASES complete base build directories (about 100 MB each for a small
 * config), removing the least recently used ones that no job has used for an hour and that
 * nobody holds the lock of. Incomplete ones older than a day (a crashed build) go too.
 */
export async function collectBases(opts: { dir?: string; max?: number; now?: number } = {}): Promise<string[]> {
  const root = opts.dir ?? BUILDS_DIR;
  const max = opts.max ?? MAX_BASES;
  const now = opts.now ?? Date.now();
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => !n.endsWith('.flock') && !n.endsWith('.lock'));
  } catch {
    return [];
  }
  const entries = names.map((n) => {
    const dir = path.join(root, n);
    let used = 0;
    let complete = true;
    try {
      used = statSync(path.join(dir, COMPLETE)).mtimeMs;
    } catch {
      complete = false;
      try {
        used = statSync(dir).mtimeMs;
      } catch {
        used = now;
      }
    }
    return { dir, used, complete };
  });
  const victims = [
    ...entries.filter((e) => !e.complete && now - e.used > 24 * 3600_000),
    ...entries
      .filter((e) => e.complete)
      .sort((a, b) => b.used - a.used)
      .slice(max)
      .filter((e) => now - e.used > GC_GRACE_MS),
  ];
  const removed: string[] = [];
  for (const v of victims) {
    const held = await tryLock(v.dir);
    if (!held) continue; // being built or checked right now
    try {
      await removeTree(v.dir).catch(() => undefined);
    } finally {
      await held.release();
    }
    removed.push(v.dir);
  }
  return removed;
}
