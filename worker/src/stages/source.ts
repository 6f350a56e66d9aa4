/**
 * Stage `source`: which tree a job builds and its cheap per-job view.
 *
 * Pristine trees (the catalog) are never modified. A job gets a hardlink farm of its tree
 * (`cp -al`, about a second); `git apply` writes patched files as new files, so patched paths get
 * new inodes and the pristine ones stay untouched. The view's directories belong to the sandbox
 * uid (so `git apply` inside the sandbox can replace files) while the files themselves stay
 * root-owned 0644: a process in the sandbox can replace a file in the view, never write into a
 * pristine inode.
 *
 * No-MMU jobs build the tree with our series (kernel-images/nommu) applied. That tree is made
 * once per (source, series hash) under TREES_DIR, itself a hardlink farm of the pristine tree,
 * and job views derive from it. Coverage jobs stack the coverage series (kernel-images/coverage)
 * the same way on the tree they would otherwise build: a tree per (that tree, coverage hash).
 */
import { createHash } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import path from 'node:path';
import { DEFAULT_KERNEL, loadCatalog, type KernelSource, type SeriesInfo } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import { mustRun, removeTree, runHost } from '../exec.js';
import { ownDir, ownerDead } from '../jobdirs.js';
import { withLock } from '../locks.js';
import { JOBS_DIR, TREES_DIR } from '../paths.js';
import { SANDBOX_GID, SANDBOX_UID } from '../sandbox.js';

export function seriesLabel(series: SeriesInfo): string {
  return `${series.name}@${series.hash}`;
}

/** The catalog entry a job names; a missing or unavailable one fails the job at `source`. */
export function pickKernel(name: string | undefined, catalog: KernelSource[] = loadCatalog()): KernelSource {
  const want = name ?? DEFAULT_KERNEL;
  const k = catalog.find((e) => e.name === want);
  if (!k) throw new StageError('source', `unknown kernel "${want}"; known: ${catalog.map((e) => e.name).join(', ')}`);
  if (!k.available) throw new StageError('source', `kernel "${want}" is not present on this worker (${k.path} has no Makefile)`);
  return k;
}

const COMPLETE = '.nommu-ci-complete';

/** A tree a series is applied to: a catalog source, or a series-applied tree named after its source and series. */
export type BaseTree = Pick<KernelSource, 'name' | 'path' | 'version'>;

/**
 * The series-applied tree for (source, series), made on first use. Trusted input (our own
 * repository), so it is applied on the host, into a temporary farm renamed into place when done.
 */
export async function seriesTree(src: BaseTree, series: SeriesInfo, signal?: AbortSignal): Promise<string> {
  const dir = path.join(TREES_DIR, `${src.name}-${series.name}-${series.hash}`);
  if (existsSync(path.join(dir, COMPLETE))) return dir;
  return withLock(dir, signal, async () => {
    if (existsSync(path.join(dir, COMPLETE))) return dir;
    const tmp = `${dir}.tmp`;
    await removeTree(tmp);
    await removeTree(dir);
    await mustRun(['cp', '-al', src.path, tmp]);
    for (const p of series.patches) {
      const r = await runHost(['git', 'apply', '--verbose', path.join(series.dir, p)], { cwd: tmp, env: gitEnv() });
      if (r.code !== 0) {
        await removeTree(tmp);
        throw new StageError('source', `series ${seriesLabel(series)}: ${p} does not apply to ${src.name} ${src.version}:\n${gitErrors(r.out)}`);
      }
    }
    writeFileSync(path.join(tmp, COMPLETE), `${seriesLabel(series)}\n`);
    renameSync(tmp, dir);
    return dir;
  });
}

/** git without the host's or root's configuration. */
export function gitEnv(): NodeJS.ProcessEnv {
  return { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LC_ALL: 'C' };
}

export function gitErrors(out: string): string {
  const errs = out.split('\n').filter((l) => /^(error|fatal):/.test(l));
  return (errs.length ? errs : out.split('\n').slice(-10)).join('\n').trim();
}

/**
 * Makes `dest` a hardlink farm of `tree`. The directories on the way to the files a patch
 * touches (`touched`, relative paths) are given to the sandbox uid so `git apply` in the sandbox
 * can replace or create files there; everything else stays root's, read-only to the sandbox.
 */
export async function makeView(tree: string, dest: string, touched: readonly string[] = []): Promise<void> {
  mkdirSync(path.dirname(dest), { recursive: true });
  await removeTree(dest);
  if (!(await takeSpare(tree, dest))) await mustRun(['cp', '-al', tree, dest]);
  rmSync(path.join(dest, COMPLETE), { force: true });
  if (process.getuid?.() !== 0) return;
  const dirs = new Set<string>([dest]);
  for (const f of touched) {
    const parts = path.normalize(f).split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = path.join(dest, ...parts.slice(0, i));
      if (!d.startsWith(dest + '/')) break;
      let st;
      try {
        st = lstatSync(d);
      } catch {
        break; // git apply creates the rest, inside the last one we own
      }
      if (!st.isDirectory()) break; // a symlink (git apply refuses to go through it) or a file
      dirs.add(d);
    }
  }
  for (const d of dirs) chownSync(d, SANDBOX_UID, SANDBOX_GID);
}

/*
 * Spare views: a hardlink farm takes 1-5 s (100k links; more when the machine is busy), so the
 * worker keeps one ready per tree, made in the background between jobs, and a job's view is a
 * rename of it. Spares are plain farms of trusted trees that nothing writes.
 */
const SPARES_DIR = path.join(JOBS_DIR, '.spare');
/** Spares being made by this process: when done, and the copy's pid once it runs. */
const preparing = new Map<string, { done: Promise<void>; pid?: number }>();
const spareKey = (tree: string): string => createHash('sha256').update(path.resolve(tree)).digest('hex').slice(0, 16);

async function takeSpare(tree: string, dest: string): Promise<boolean> {
  const key = spareKey(tree);
  // A job right after another on the same tree: the spare that job's end started is nearer done
  // than a copy of our own would be, and two copies would compete. It was started at idle
  // priority; a job now waits for it, so it runs at the worker's.
  const making = preparing.get(key);
  if (making) {
    if (making.pid !== undefined) {
      try {
        setPriority(making.pid, getPriority());
      } catch {
        /* already done */
      }
    }
    await making.done;
  }
  let names: string[];
  try {
    names = readdirSync(SPARES_DIR);
  } catch {
    return false;
  }
  for (const n of names.filter((x) => x.startsWith(`${key}-ready-`))) {
    try {
      await rename(path.join(SPARES_DIR, n), dest);
      return true;
    } catch {
      // another worker took it
    }
  }
  return false;
}

/** Whether a spare view of `tree` is ready. */
export function hasSpare(tree: string): boolean {
  try {
    return readdirSync(SPARES_DIR).some((n) => n.startsWith(`${spareKey(tree)}-ready-`));
  } catch {
    return false;
  }
}

/** Makes a spare view of `tree` in the background, unless one is ready or being made. */
export function prepareSpare(tree: string): void {
  const key = spareKey(tree);
  if (preparing.has(key)) return;
  try {
    if (readdirSync(SPARES_DIR).some((n) => n.startsWith(`${key}-ready-`))) return;
  } catch {
    /* no spares yet */
  }
  const tag = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  // Named after this process, so that another worker on the same cache leaves it alone.
  const tmp = ownDir(SPARES_DIR, `${key}-tmp-${tag}`);
  const entry: { done: Promise<void>; pid?: number } = { done: Promise.resolve() };
  entry.done = (async () => {
    try {
      mkdirSync(SPARES_DIR, { recursive: true });
      // Made while a build may be running: at low priority, so it does not slow the build.
      await mustRun(['nice', '-n', '19', 'cp', '-al', tree, tmp], { onSpawn: (pid) => (entry.pid = pid) });
      await rename(tmp, path.join(SPARES_DIR, `${key}-ready-${tag}`));
    } catch {
      await removeTree(tmp).catch(() => undefined);
    } finally {
      preparing.delete(key);
    }
  })();
  preparing.set(key, entry);
}

/**
 * Drops half-made spares left by a worker that died (at worker start); those of live workers on
 * the same cache are still being made. Names without an owner are an older worker's.
 */
export async function clearPartialSpares(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(SPARES_DIR);
  } catch {
    return;
  }
  for (const n of names) {
    if (n.includes('-tmp-') && (!n.includes('.') || ownerDead(n))) await removeTree(path.join(SPARES_DIR, n)).catch(() => undefined);
  }
}
