/**
 * The lines a patch series adds or modifies, per file, numbered as in the tree with the whole
 * series applied: the tree the series kernels were built from, so the numbers are those of its
 * tracefile.
 *
 * The patches are followed one after the other: each patch's hunks carry the lines earlier
 * patches changed to their new numbers (a line a later patch removes is no longer changed; one it
 * re-adds is changed again), then add its own added lines. Only the diffs are needed, not the
 * tree; a combined base-to-series diff would need the base tree's contents, and the two differ
 * only where a later patch restores exactly what an earlier one replaced (reported here as
 * changed: the series did touch it). Deleted files drop out; a renamed file keeps its changed
 * lines under its new name. A removed line leaves nothing to execute, so a patch that only
 * removes lines from a file has no changed lines there.
 */
import type { FileDiff, Hunk, MboxPatch } from '../mbox.js';

export interface ChangedFile {
  path: string;
  /** Added or modified lines, ascending, in the numbering of the file after the series. */
  lines: number[];
}

/** Where old line `line` is after the hunks (null if they remove it). Hunks are in file order. */
function carry(line: number, hunks: readonly Hunk[]): number | null {
  let delta = 0;
  for (const h of hunks) {
    const oldCount = count(h.ops, '-') + count(h.ops, ' ');
    const newCount = count(h.ops, '+') + count(h.ops, ' ');
    // A hunk with no old lines inserts after line oldStart; any other covers [oldStart, oldStart + oldCount).
    const first = oldCount === 0 ? h.oldStart + 1 : h.oldStart;
    if (line < first) return line + delta;
    if (line >= first + oldCount) {
      delta += newCount - oldCount;
      continue;
    }
    let o = h.oldStart;
    let n = h.newStart;
    for (const op of h.ops) {
      if (op === '+') {
        n++;
        continue;
      }
      if (o === line) return op === '-' ? null : n;
      o++;
      if (op === ' ') n++;
    }
  }
  return line + delta;
}

const count = (s: string, c: string): number => s.split(c).length - 1;

function addedLines(hunks: readonly Hunk[]): number[] {
  const out: number[] = [];
  for (const h of hunks) {
    let n = h.newStart;
    for (const op of h.ops) {
      if (op === '+') out.push(n);
      if (op !== '-') n++;
    }
  }
  return out;
}

/** Changed lines per file of patches applied in order, files in order of first mention. */
export function changedLines(patches: readonly Pick<MboxPatch, 'fileDiffs'>[]): ChangedFile[] {
  const state = new Map<string, Set<number>>();
  const order: string[] = [];
  const apply = (fd: FileDiff): void => {
    const before = fd.from === null ? undefined : state.get(fd.from);
    if (fd.status === 'renamed') state.delete(fd.from!);
    if (fd.status === 'deleted') {
      state.delete(fd.path);
      return;
    }
    const now = new Set<number>();
    for (const l of before ?? []) {
      const moved = carry(l, fd.hunks);
      if (moved !== null) now.add(moved);
    }
    for (const l of addedLines(fd.hunks)) now.add(l);
    state.set(fd.path, now);
    if (!order.includes(fd.path)) order.push(fd.path);
  };
  for (const p of patches) for (const fd of p.fileDiffs) apply(fd);
  return order
    .filter((p) => (state.get(p)?.size ?? 0) > 0)
    .map((path) => ({ path, lines: [...state.get(path)!].sort((a, b) => a - b) }));
}
