/**
 * A coverage job end to end through the real worker: the no-MMU kernel built with gcov (the
 * coverage series applied, kunit.py's coverage fragment, the mangle_path rename), booted in the
 * sandbox, its .gcda files captured by lcov in the sandbox. The job's patch adds a KUnit case
 * calling a function with a branch no test takes: the tracefile must show the taken lines
 * executed and the other line not.
 *
 * Cold it builds the small config's coverage base (list-kunit-test only, gcov and debug info):
 * 11 minutes for plain make -j2 here, 33 minutes at nice 19 beside other builds (2026-12-04).
 * Warm, 2.5 to 4.5 minutes: the copy of the 450 MB base and the rebuild of one file (about a
 * minute), a boot, and lcov (geninfo over 560 .gcda files, 1.5 to 2.5 minutes; genhtml 30 s).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog } from '@nommu-ci/shared';
import { lineOf, linePatch } from './patches.js';
import { runJobOn, startTestRedis, type TestRedis } from './helpers.js';

const kernel = loadCatalog()[0]!;
const FILE = 'lib/tests/list-test.c';

let t: TestRedis;
beforeAll(async () => {
  t = await startTestRedis('worker-coverage');
});
afterAll(async () => {
  await t?.stop();
});

/** Execution counts of `file`'s lines (DA records) in an lcov tracefile. */
function lineCounts(info: string, file: string): Map<number, number> {
  const out = new Map<number, number>();
  let inFile = false;
  for (const l of info.split('\n')) {
    if (l.startsWith('SF:')) inFile = l.slice(3) === file;
    const m = /^DA:(\d+),(\d+)/.exec(l);
    if (inFile && m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}

describe.skipIf(!kernel.available)('coverage jobs (real worker)', () => {
  it(
    'a no-MMU KUnit job with coverage: true records the lines its test ran and the line it did not',
    async () => {
      const at = lineOf(FILE, 'static struct kunit_case list_test_cases[] = {');
      const patch = linePatch(
        FILE,
        at,
        [
          'static noinline int nci_cov_branch(int x)',
          '{',
          '\tif (x > 0)',
          '\t\treturn x + 1;',
          '\treturn -x;',
          '}',
          '',
          'static void nci_cov_test(struct kunit *test)',
          '{',
          '\tKUNIT_EXPECT_EQ(test, nci_cov_branch(1), 2);',
          '}',
          '',
          'static struct kunit_case list_test_cases[] = {',
          '\tKUNIT_CASE(nci_cov_test),',
        ],
        'list-test: a case that takes one branch of two',
      );
      const run = await runJobOn(
        t,
        { kind: 'kunit', kernel: kernel.name, mmu: false, coverage: true, kunitconfig: 'CONFIG_KUNIT=y\nCONFIG_LIST_KUNIT_TEST=y\n', patch, timeout_s: 3600 },
        { timeoutMs: 3_500_000 },
      );
      const r = run.record;
      console.log(`coverage job: ${r.state} in ${run.ms} ms, stages ${JSON.stringify(r.timings.stages)}: ${r.message}`);
      const buildLog = (await t.store.artifact(run.id, 'build.log'))?.toString() ?? '';
      console.log(buildLog.split('\n').filter((l) => l.startsWith('=== nommu-ci: coverage')).join('\n'));
      expect(r.state, r.message ?? '').toBe('passed');
      expect(r.config?.mmu).toBe(false);

      const info = (await t.store.artifact(run.id, 'coverage.info'))?.toString() ?? '';
      // Kept for a look (and as shared/fixtures/coverage/ was made): $NOMMU_CI_COVERAGE_OUT, default under the temporary directory.
      const out = process.env.NOMMU_CI_COVERAGE_OUT ?? path.join(os.tmpdir(), 'nommu-ci-coverage');
      mkdirSync(out, { recursive: true });
      writeFileSync(path.join(out, 'list-test-nommu.info'), info);
      console.log(`coverage job: tracefile ${info.length} bytes at ${out}/list-test-nommu.info`);
      const counts = lineCounts(info, FILE);
      expect(counts.get(at + 2), 'if (x > 0)').toBeGreaterThan(0);
      expect(counts.get(at + 3), 'return x + 1;').toBeGreaterThan(0);
      expect(counts.get(at + 4), 'return -x;').toBe(0);
      expect(counts.get(at + 9), 'KUNIT_EXPECT_EQ(...)').toBeGreaterThan(0);
      // SF paths are relative to the tree, whichever tree (view, series) the job built.
      const files = [...info.matchAll(/^SF:(.*)$/gm)].map((m) => m[1]!);
      expect(files.length).toBe(r.coverage?.files);
      expect(files.every((f) => !f.startsWith('/'))).toBe(true);
      expect(files).toContain('mm/nommu.c');
      // The record's totals are the sums of the tracefile's LF and LH records.
      const sum = (k: string) => [...info.matchAll(new RegExp(`^${k}:(\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
      expect(r.coverage).toMatchObject({ lines_found: sum('LF'), lines_hit: sum('LH') });
      expect(r.coverage!.lines_hit).toBeGreaterThan(0);
      expect(r.message).toMatch(/coverage: \d+ of \d+ lines executed/);

      // genhtml's report, stored with the job: its index and the page of the patched file.
      const index = (await t.store.coverageReportFile(run.id, 'index.html'))?.toString() ?? '';
      expect(index).toContain('LCOV');
      const page = (await t.store.coverageReportFile(run.id, `${FILE}.gcov.html`))?.toString() ?? '';
      expect(page).toContain('nci_cov_branch');
    },
    3_600_000,
  );
});
