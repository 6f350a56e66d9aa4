/**
 * The tracefile of a real gcov no-MMU UML kernel (shared/fixtures/coverage/nommu.info) against
 * real patches to mm/nommu.c of the same tree (nommu-reserves.mbox): see the fixtures' README.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMbox } from '../mbox.js';
import { REPO_DIR } from '../paths.js';
import { changedLines } from './changed-lines.js';
import { jobCoverage, runCoverage } from './measure.js';
import { rangesText, toRanges } from './ranges.js';
import { jobCoverageText, runCoverageBrief, runCoverageLines, runNotExecutedLines } from './text.js';
import { parseTracefile, tracefileTotals, TracefileError } from './tracefile.js';

const FIX = path.join(REPO_DIR, 'shared/fixtures/coverage');
const NOMMU = readFileSync(path.join(FIX, 'nommu.info'), 'utf8');
const RESERVES = readFileSync(path.join(FIX, 'nommu-reserves.mbox'), 'utf8');

describe('parseTracefile', () => {
  const t = parseTracefile(NOMMU);

  it('reads each file\'s line counts, adding up the records lcov writes per object for a header', () => {
    expect([...t.keys()].sort()).toEqual(['include/kunit/test.h', 'lib/kunit/kunit-example-test.c', 'mm/nommu.c', 'mm/percpu-km.c']);
    expect((NOMMU.match(/^SF:include\/kunit\/test\.h$/gm) ?? []).length).toBe(5);
    // mmap_init() ran at boot; validate_mmap_request() needs a user-space mmap(), and this kernel ran only KUnit
    const nommu = t.get('mm/nommu.c')!;
    expect(nommu.get(426)).toBeGreaterThan(0);
    expect(nommu.get(702)).toBe(0);
    expect(nommu.has(1863)).toBe(false); // a comment line
    expect(tracefileTotals(t)).toEqual({ files: 4, lines_found: 915, lines_hit: 187 });
  });

  it('the MMU kernel\'s tracefile has no mm/nommu.c: it is built only without an MMU', () => {
    const mmu = parseTracefile(readFileSync(path.join(FIX, 'mmu.info'), 'utf8'));
    expect([...mmu.keys()].sort()).toEqual(['include/kunit/test.h', 'lib/kunit/kunit-example-test.c', 'mm/percpu-km.c']);
  });

  it('refuses what cannot be compared with a patch, naming why', () => {
    expect(() => parseTracefile('hello\n')).toThrow(/not an lcov tracefile: no SF: record/);
    expect(() => parseTracefile(NOMMU.replace('SF:mm/nommu.c', 'SF:/var/tmp/lead/git7.2/mm/nommu.c'))).toThrow(/SF:\/var\/tmp\/lead\/git7\.2\/mm\/nommu\.c is an absolute path/);
    // what JobStore.putArtifact leaves of a tracefile over the artifact limit
    const cut = NOMMU.slice(0, 4000) + '\n[... 123 bytes cut by nommu-ci ...]\n' + NOMMU.slice(-4000);
    expect(() => parseTracefile(cut)).toThrow(TracefileError);
  });
});

describe('changed lines against a tracefile', () => {
  it('a job: executed, not executed and not instrumented lines of each changed file', () => {
    const c = jobCoverage(NOMMU, RESERVES);
    expect(c.totals).toEqual({ files: 4, lines_found: 915, lines_hit: 187 });
    expect(c.changed).toEqual([
      {
        file: 'mm/nommu.c',
        built: true,
        changed_lines: 4,
        instrumented_lines: 3,
        executed_lines: 2,
        executed: [[1871, 1871], [1892, 1892]],
        not_executed: [[702, 702]],
        not_instrumented: [[1863, 1863]],
      },
    ]);
    expect(jobCoverage(NOMMU, undefined).changed).toBeNull();
    expect(jobCoverageText(c)).toBe(
      [
        'coverage: 187 of 915 instrumented lines executed in 4 files (20.4%)',
        'mm/nommu.c: 2 of 3 changed lines executed',
        'mm/nommu.c:702 not executed by any test',
        '',
      ].join('\n'),
    );
  });

  it('only C sources and headers count: a Kconfig line has nothing to execute (our own no-MMU series, patch 8)', () => {
    const kconfig = readFileSync(path.join(REPO_DIR, 'kernel-images/nommu/0008-um-Allow-x86_64-UML-to-be-built-without-an-MMU.patch'), 'utf8');
    expect(changedLines(parseMbox(kconfig).patches).map((f) => f.path)).toEqual(['arch/um/Kconfig', 'arch/um/configs/x86_64_nommu_defconfig', 'arch/x86/um/Kconfig']);
    expect(jobCoverage(NOMMU, kconfig).changed).toEqual([]);
    expect(jobCoverageText(jobCoverage(NOMMU, kconfig))).toContain('\nthe patch changes no line of a C source or header\n');
  });

  it('a run: per file and kernel, a file missing from a kernel\'s tracefile is not built there, and unexecuted lines are named', () => {
    // The MMU kernel's tracefile has no mm/nommu.c record: the file is not compiled with CONFIG_MMU=y.
    const mmu = NOMMU.split(/(?=^TN:)/m).filter((r) => !r.includes('SF:mm/nommu.c')).join('');
    const c = runCoverage(RESERVES, [
      { mmu: false, job: 'j-nommu', tracefile: NOMMU },
      { mmu: true, job: 'j-mmu', tracefile: mmu },
    ]);
    expect(runCoverageLines(c)).toEqual(['mm/nommu.c: 2 of 3 changed lines executed on no-MMU; not built on MMU']);
    expect(runNotExecutedLines(c)).toEqual(['mm/nommu.c:702 not executed by any test on no-MMU']);
    expect(runCoverageBrief(c)).toBe('changed lines executed: 2 of 3 on no-MMU, not built on MMU');
  });

  it('a kernel without a usable tracefile is not measured, and says why', () => {
    const c = runCoverage(RESERVES, [
      { mmu: false, job: 'a', tracefile: 'garbage' },
      { mmu: true, job: 'b', tracefile: null, missing: 'no tracefile: the job ended failed at build' },
    ]);
    expect(c.kernels.map((k) => k.missing)).toEqual(['unreadable tracefile: not an lcov tracefile: no SF: record', 'no tracefile: the job ended failed at build']);
    expect(runCoverageLines(c)).toEqual(['mm/nommu.c: not measured on no-MMU; not measured on MMU']);
  });
});

describe('ranges', () => {
  it('runs of consecutive lines, cut after a maximum', () => {
    expect(toRanges([120, 121, 122, 123, 124, 130, 132, 133])).toEqual([[120, 124], [130, 130], [132, 133]]);
    expect(rangesText(toRanges([1, 2, 4, 6, 8]), 2)).toBe('1-2, 4 and 2 more ranges');
  });
});
