/** Changed lines of real git patches (shared/fixtures/coverage/make-series.sh). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMbox } from '../mbox.js';
import { REPO_DIR } from '../paths.js';
import { changedLines } from './changed-lines.js';
import { toRanges } from './ranges.js';

const FIX = path.join(REPO_DIR, 'shared/fixtures/coverage');
const series = parseMbox(readFileSync(path.join(FIX, 'series.mbox'), 'utf8'));
const combined = parseMbox(readFileSync(path.join(FIX, 'series-combined.diff'), 'utf8'));
const ranges = (patches: typeof series.patches) => Object.fromEntries(changedLines(patches).map((f) => [f.path, toRanges(f.lines)]));

describe('changedLines', () => {
  it('one patch, two hunks: the added lines in the new numbering', () => {
    // patch 1: kobjsize's check split in two (3 lines for 1), and MAP_FIXED refused with a message (4 lines for 1, the return kept)
    expect(ranges(series.patches.slice(0, 1))).toEqual({ 'mm/nommu.c': [[73, 75], [704, 706], [708, 708]] });
  });

  it('later patches move and replace the lines earlier ones changed', () => {
    // patch 2 adds 5 lines above both hunks, replaces patch 1's three kobjsize lines with one, rewrites its message lines
    expect(ranges(series.patches.slice(0, 2))).toEqual({ 'mm/nommu.c': [[65, 69], [78, 78], [707, 709], [711, 711]] });
  });

  it('the series followed patch by patch gives what the combined diff of base and series says', () => {
    const byPath = (ps: typeof series.patches) => changedLines(ps).sort((a, b) => a.path.localeCompare(b.path));
    expect(byPath(series.patches)).toEqual(byPath(combined.patches));
    expect(byPath(series.patches)).toHaveLength(3);
  });

  it('a rename keeps the new name, a new file is all changed, a deleted file drops out', () => {
    const r = ranges(series.patches);
    expect(Object.keys(r)).toEqual(['mm/nommu.c', 'mm/nommu-stats.c', 'mm/percpu-nommu.c']);
    expect(r['mm/percpu-nommu.c']).toEqual([[33, 33]]);
    expect(r['mm/nommu-stats.c']).toEqual([[1, 5]]);
    expect(series.patches[2]!.fileDiffs.map((f) => [f.path, f.from, f.status])).toEqual([
      ['mm/nommu-stats.c', null, 'added'],
      ['mm/percpu-nommu.c', 'mm/percpu-km.c', 'renamed'],
      ['mm/rodata_test.c', 'mm/rodata_test.c', 'deleted'],
    ]);
  });

  it('a file renamed after an earlier patch changed it keeps those lines, carried through the rename\'s own hunks', () => {
    const edit = { fileDiffs: [{ path: 'mm/a.c', from: 'mm/a.c', status: 'modified' as const, hunks: [{ oldStart: 10, newStart: 10, ops: ' -+ ' }] }] };
    // the rename inserts two lines at the top and removes line 20
    const rename = {
      fileDiffs: [
        {
          path: 'mm/b.c',
          from: 'mm/a.c',
          status: 'renamed' as const,
          hunks: [
            { oldStart: 1, newStart: 1, ops: '++ ' },
            { oldStart: 19, newStart: 21, ops: ' - ' },
          ],
        },
      ],
    };
    expect(changedLines([edit, rename])).toEqual([{ path: 'mm/b.c', lines: [1, 2, 13] }]);
  });
});
