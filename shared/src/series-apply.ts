/**
 * Whether a no-MMU series applies to a kernel tree, checked the way the worker applies it
 * (`git apply`, patch by patch, no fuzz) but on a scratch copy of only the files the series
 * touches: a few dozen files instead of a 100k-file hardlink farm, so the API can answer a POST
 * with a 422 naming the first patch and hunk that fail. Answers are cached per (tree, series
 * hash) and stay valid while the touched files keep their inode, size and mtime, so an operator
 * who updates a tree in place gets a fresh answer and no POST runs git twice for the same state.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { KernelSource, SeriesInfo } from './kernels.js';

const run = promisify(execFile);

export interface SeriesApplyFailure {
  /** 1-based position in the series. */
  index: number;
  patch: string;
  /** File and hunk git named, when it named one (a missing file has no hunk). */
  file: string | null;
  /** 1-based among the file's hunks in that patch, with its header. */
  hunk: { number: number; of: number; header: string } | null;
  /** git apply's own error lines. */
  errors: string[];
}

interface PatchFiles {
  /** Paths the patch reads or writes (old and new names), relative to the tree. */
  paths: string[];
  /** Per file (new name), the `@@` headers of its hunks in order. */
  hunks: Map<string, string[]>;
}

function unquote(p: string): string {
  const s = p.startsWith('"') ? JSON.parse(p) as string : p;
  return s.replace(/^[ab]\//, '');
}

function patchFiles(text: string): PatchFiles {
  const paths = new Set<string>();
  const hunks = new Map<string, string[]>();
  const lines = text.split('\n');
  let cur: string | null = null;
  const name = (l: string): string | null => {
    const n = l.slice(4).replace(/\t.*$/, '');
    return n === '/dev/null' ? null : unquote(n);
  };
  for (const [i, l] of lines.entries()) {
    // A file header is a `---` line right before a `+++` line (a removed "-- x" line is not).
    if (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      const from = name(l);
      cur = name(lines[i + 1]!);
      for (const p of [from, cur]) if (p) paths.add(p);
      if (cur && !hunks.has(cur)) hunks.set(cur, []);
    } else if (/^(rename|copy) (from|to) /.test(l)) {
      paths.add(l.replace(/^\S+ \S+ /, ''));
    } else if (l.startsWith('@@ ') && cur) {
      hunks.get(cur)!.push(l);
    }
  }
  return { paths: [...paths], hunks };
}

function failureOf(index: number, patch: string, files: PatchFiles, out: string): SeriesApplyFailure {
  const errors = out.split('\n').filter((l) => /^(error|fatal):/.test(l) && !l.startsWith('error: while searching for:'));
  const failed = errors.map((l) => /^error: patch failed: (.*):(\d+)$/.exec(l)).find((m) => m);
  if (failed) {
    const file = failed[1]!;
    const headers = files.hunks.get(file) ?? [];
    const n = headers.findIndex((h) => Number(/^@@ -(\d+)/.exec(h)?.[1]) === Number(failed[2]));
    return { index, patch, file, hunk: n >= 0 ? { number: n + 1, of: headers.length, header: headers[n]! } : null, errors };
  }
  const named = errors.map((l) => /^error: (.+?): (No such file|already exists|does not exist)/.exec(l)).find((m) => m);
  return { index, patch, file: named?.[1] ?? null, hunk: null, errors: errors.length ? errors : out.trim().split('\n').slice(-5) };
}

/** Applies `series` to scratch copies of the files of `tree` it touches; the first failure, or null. */
export async function checkSeriesApplies(tree: string, series: SeriesInfo): Promise<SeriesApplyFailure | null> {
  const texts = series.patches.map((p) => readFileSync(path.join(series.dir, p), 'utf8'));
  const files = texts.map(patchFiles);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'nci-series-check-'));
  try {
    const work = path.join(scratch, 'tree');
    mkdirSync(work);
    for (const p of new Set(files.flatMap((f) => f.paths))) {
      const from = path.join(tree, p);
      if (!existsSync(from)) continue; // a file the series creates, or one this tree lacks: git says which
      mkdirSync(path.dirname(path.join(work, p)), { recursive: true });
      copyFileSync(from, path.join(work, p));
    }
    // Never a repository above the scratch directory: git apply would apply relative to its root.
    const env = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LC_ALL: 'C', GIT_CEILING_DIRECTORIES: scratch };
    for (const [i, p] of series.patches.entries()) {
      try {
        await run('git', ['apply', '--verbose', path.join(series.dir, p)], { cwd: work, env, maxBuffer: 16 << 20 });
      } catch (e) {
        const { stdout = '', stderr = '' } = e as { stdout?: string; stderr?: string };
        return failureOf(i + 1, p, files[i]!, `${stdout}\n${stderr}`);
      }
    }
    return null;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One line for a 422: which patch, file and hunk of which series fail on which kernel. */
export function describeApplyFailure(kernel: KernelSource, series: SeriesInfo, f: SeriesApplyFailure): string {
  const where = f.hunk ? `${f.file} hunk ${f.hunk.number} of ${f.hunk.of} (${f.hunk.header})` : f.file ?? f.errors.join('; ');
  return (
    `kernel "${kernel.name}" (${kernel.version}): the no-MMU series ${series.name}@${series.hash} does not apply to it: ` +
    `patch ${f.index}/${series.patches.length} ${f.patch} fails at ${where}; ` +
    `this kernel runs MMU jobs only ("mmu": true)`
  );
}

/**
 * Cached answers of checkSeriesApplies. The key is (tree, series directory, series hash) plus a
 * fingerprint of the files the series touches, so the cache holds one answer per kernel and series.
 */
export class SeriesApplicability {
  private readonly cache = new Map<string, { fingerprint: string; answer: Promise<SeriesApplyFailure | null> }>();

  /** The first failure of `series` on `kernel`, or null when it applies; git runs once per state of the tree. */
  check(kernel: KernelSource, series: SeriesInfo): Promise<SeriesApplyFailure | null> {
    const key = `${kernel.path}\0${series.dir}\0${series.hash}`;
    const fingerprint = this.fingerprint(kernel.path, series);
    const hit = this.cache.get(key);
    if (hit && hit.fingerprint === fingerprint) return hit.answer;
    const answer = checkSeriesApplies(kernel.path, series);
    this.cache.set(key, { fingerprint, answer });
    // A check that threw (a patch file vanished) is not an answer to keep.
    answer.catch(() => this.cache.get(key)?.answer === answer && this.cache.delete(key));
    return answer;
  }

  private readonly touched = new Map<string, string[]>();

  private fingerprint(tree: string, series: SeriesInfo): string {
    const id = `${series.dir}\0${series.hash}`;
    let paths = this.touched.get(id);
    if (!paths) {
      paths = [...new Set(series.patches.flatMap((p) => patchFiles(readFileSync(path.join(series.dir, p), 'utf8')).paths))].sort();
      this.touched.set(id, paths);
    }
    return paths
      .map((p) => {
        try {
          const st = statSync(path.join(tree, p));
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch {
          return '-';
        }
      })
      .join(',');
  }
}
