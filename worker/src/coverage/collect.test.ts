/**
 * treeRelative(): geninfo's raw output (excerpts as geninfo 1.16 writes them for a UML build at
 * /build from a tree at /src) to the job's tracefile; and the real tracefiles in
 * shared/fixtures/coverage, which it must leave as they are.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_DIR } from '@nommu-ci/shared';
import { treeRelative } from './collect.js';

const RAW = `TN:
SF:/src/include/linux/mm.h
FN:1200,page_zone
FNDA:0,page_zone
FNF:1
FNH:0
DA:1200,0
DA:1202,0
LF:2
LH:0
end_of_record
TN:
SF:/src/mm/nommu.c
FN:65,kobjsize
FNDA:3,kobjsize
FNF:1
FNH:1
DA:65,3
DA:67,3
DA:70,0
LF:3
LH:2
end_of_record
TN:
SF:/build/include/generated/autoconf.h
DA:1,1
LF:1
LH:1
end_of_record
TN:
SF:/src/include/linux/mm.h
FN:1200,page_zone
FNDA:2,page_zone
FNF:1
FNH:1
DA:1200,2
DA:1202,0
DA:1210,1
LF:3
LH:2
end_of_record
`;

describe('treeRelative', () => {
  it('keeps the tree\'s files, relative to its root, one record each with the executions summed', () => {
    const { text, totals } = treeRelative(RAW, '/src/');
    expect([...text.matchAll(/^SF:(.*)$/gm)].map((m) => m[1])).toEqual(['include/linux/mm.h', 'mm/nommu.c']);
    const mm = text.slice(text.indexOf('SF:include/linux/mm.h'), text.indexOf('end_of_record'));
    expect(mm).toContain('DA:1200,2\nDA:1202,0\nDA:1210,1\nLF:3\nLH:2');
    expect(mm).toContain('FNDA:2,page_zone\nFNF:1\nFNH:1');
    expect(text).toContain('SF:mm/nommu.c\nFN:65,kobjsize\nFNDA:3,kobjsize\nFNF:1\nFNH:1\nDA:65,3\nDA:67,3\nDA:70,0\nLF:3\nLH:2\nend_of_record');
    expect(totals).toEqual({ lines_found: 6, lines_hit: 4, files: 2 });
  });

  it('drops the files not in the tree (kbuild generates some in the build directory under tree names)', () => {
    const { text, totals } = treeRelative(RAW, '/src/', (rel) => rel !== 'mm/nommu.c');
    expect([...text.matchAll(/^SF:(.*)$/gm)].map((m) => m[1])).toEqual(['include/linux/mm.h']);
    expect(totals).toEqual({ lines_found: 3, lines_hit: 2, files: 1 });
  });

  it('leaves a tracefile it wrote as it is (the real one in shared/fixtures/coverage)', () => {
    const dir = path.join(REPO_DIR, 'shared/fixtures/coverage');
    // The fixture the service's pipeline wrote; the others there are lcov's own output, trimmed.
    for (const f of ['nommu-list-kunit.info']) {
      const info = readFileSync(path.join(dir, f), 'utf8');
      const { text, totals } = treeRelative(info.replace(/^SF:/gm, 'SF:/src/'), '/src/');
      expect(text, f).toBe(info);
      const sum = (k: string) => [...info.matchAll(new RegExp(`^${k}:(\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
      expect(totals, f).toEqual({ lines_found: sum('LF'), lines_hit: sum('LH'), files: info.match(/^SF:/gm)!.length });
    }
  });
});
