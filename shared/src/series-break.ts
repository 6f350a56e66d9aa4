/**
 * A real kernel tree the no-MMU series does not apply to, for tests: a hardlink copy of a pristine
 * tree with one line changed that one hunk of the series removes, so `git apply` fails at exactly
 * that hunk (and a 3-way merge conflicts there). The line is chosen from the series as it is, so
 * the tests follow the series when it changes. Test code only: exported as
 * `@nommu-ci/shared/series-break`, not from the package index.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SeriesInfo } from './kernels.js';

export interface BrokenHunk {
  /** 1-based position of the patch in the series, and its file name. */
  index: number;
  patch: string;
  file: string;
  /** 1-based among the file's hunks in that patch, of `of`, with its `@@` header. */
  hunk: number;
  of: number;
  header: string;
  /** The line the hunk removes, as in the pristine file, and what the copy has instead. */
  removed: string;
  changed: string;
}

/**
 * In the latest patch that has one, the first line a hunk removes from a file no earlier patch
 * touches and that occurs once in the pristine file (so that hunk, and no earlier one, fails).
 */
export function breakableHunk(series: SeriesInfo, pristine: string): BrokenHunk {
  type FileDiff = { hunks: string[]; removed: { hunk: number; line: string }[] };
  const diffs = series.patches.map((p) => {
    const files = new Map<string, FileDiff>();
    let cur: FileDiff | null = null;
    const lines = readFileSync(path.join(series.dir, p), 'utf8').split('\n');
    for (const [i, l] of lines.entries()) {
      if (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
        cur = { hunks: [], removed: [] };
        files.set((l.startsWith('--- a/') ? l : lines[i + 1]!).slice(6), cur);
      } else if (l.startsWith('@@ ') && cur) {
        cur.hunks.push(l);
      } else if (l.startsWith('-') && l.trim().length > 2 && cur && cur.hunks.length > 0) {
        cur.removed.push({ hunk: cur.hunks.length, line: l.slice(1) });
      }
    }
    return files;
  });
  for (let i = diffs.length - 1; i >= 0; i--) {
    for (const [file, d] of diffs[i]!) {
      if (diffs.slice(0, i).some((e) => e.has(file))) continue;
      let text: string;
      try {
        text = readFileSync(path.join(pristine, file), 'utf8');
      } catch {
        continue; // a file the patch creates
      }
      const r = d.removed.find((x) => text.split(x.line).length === 2);
      if (r) {
        return { index: i + 1, patch: series.patches[i]!, file, hunk: r.hunk, of: d.hunks.length, header: d.hunks[r.hunk - 1]!, removed: r.line, changed: `${r.line} /* changed by a test */` };
      }
    }
  }
  throw new Error(`no patch of ${series.dir} removes a line that could be changed`);
}

/** Replaces (never writes through: the copy shares inodes with the pristine tree) one line of a file. */
export function replaceLine(tree: string, file: string, from: string, to: string): void {
  const p = path.join(tree, file);
  const text = readFileSync(p, 'utf8');
  if (!text.includes(from)) throw new Error(`${p} has no line ${JSON.stringify(from)}`);
  rmSync(p);
  writeFileSync(p, text.replace(from, to));
}

/** `dest`: a hardlink copy of `pristine` (same file system) with the hunk's line changed. */
export function makeBrokenTree(pristine: string, dest: string, b: BrokenHunk): void {
  execFileSync('cp', ['-al', pristine, dest]);
  rmSync(path.join(dest, '.git'), { recursive: true, force: true });
  replaceLine(dest, b.file, b.removed, b.changed);
}
