import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMbox } from '../mbox.js';
import { REPO_DIR } from '../paths.js';
import type { TestNode } from '../result.js';
import { listSuite, sampleRun } from './samples.js';
import { compareTests, errorLocations, firstBuildErrors, parseApplyFailure } from './verdict.js';

const mbox = parseMbox(readFileSync(path.join(REPO_DIR, 'shared/fixtures/series/fixture-series.mbox'), 'utf8'));
const pass = { kind: 'passed' } as const;

describe('compareTests', () => {
  const leaf = (name: string, status: TestNode['status']): TestNode => ({ name, status, diagnostics: status === 'fail' ? ['# boom'] : [], children: [] });
  const suite = (...children: TestNode[]): TestNode[] => [{ name: 's', status: 'pass', diagnostics: [], children }];

  it('classifies every kind of change per test', () => {
    const base = suite(leaf('a', 'pass'), leaf('b', 'pass'), leaf('c', 'fail'), leaf('d', 'fail'), leaf('e', 'pass'), leaf('f', 'skip'), leaf('g', 'pass'));
    const series = suite(leaf('a', 'fail'), leaf('b', 'crash'), leaf('c', 'pass'), leaf('d', 'crash'), leaf('f', 'skip'), leaf('g', 'pass'), leaf('h', 'pass'), leaf('i', 'fail'));
    const ch = compareTests(base, series);
    const by = Object.fromEntries(ch.map((c) => [c.path, [c.kind, c.regression]]));
    expect(by).toEqual({
      's.a': ['new-failure', true],
      's.b': ['new-crash', true],
      's.c': ['fixed', false],
      's.d': ['still-failing', false],
      's.e': ['missing', true],
      's.h': ['new-test', false],
      's.i': ['new-test', true],
    });
    expect(ch[0]!.kind).toBe('new-crash');
    expect(ch.find((c) => c.path === 's.a')!.diagnostics).toEqual(['# boom']);
  });

  it('names parameterized cases by their full path', () => {
    const p = (st: TestNode['status']): TestNode[] => [
      { name: 's', status: 'pass', diagnostics: [], children: [{ name: 'c', status: 'pass', diagnostics: [], children: [leaf('param-1', 'pass'), leaf('param-2', st)] }] },
    ];
    expect(compareTests(p('pass'), p('fail')).map((c) => c.path)).toEqual(['s.c.param-2']);
  });
});

describe('build errors', () => {
  it('finds the compiler and linker errors with file:line', () => {
    expect(
      errorLocations([
        "/src/mm/nommu.c:95:32: error: implicit declaration of function 'x'",
        "../lib/a.c:3: error: expected ';'",
        'ld: kernel/kallsyms.c:125:(.text+0x2111af): undefined reference to `kallsyms_markers\'',
        'make[4]: *** [/src/scripts/Makefile.build:287: mm/nommu.o] Error 1',
      ]),
    ).toEqual([
      { file: 'mm/nommu.c', line: 95, column: 32, message: "implicit declaration of function 'x'" },
      { file: 'lib/a.c', line: 3, column: null, message: "expected ';'" },
      { file: 'kernel/kallsyms.c', line: 125, column: null, message: "undefined reference to `kallsyms_markers'" },
    ]);
  });

  it('quotes the first errors of a build log with their context', () => {
    const log = "  CC x\n/src/mm/nommu.c: In function 'kobjsize':\n/src/mm/nommu.c:95:32: error: bad\n   95 |  return f(v);\n      |         ^\nmake: *** Error 2\n";
    expect(firstBuildErrors(log)).toEqual(["mm/nommu.c: In function 'kobjsize':", 'mm/nommu.c:95:32: error: bad', '   95 |  return f(v);', '      |         ^']);
  });

  it('reads the patch stage message', () => {
    const a = parseApplyFailure(
      'patch 2/3 "[PATCH 2/3] list: test: x" does not apply:\nerror: patch failed: lib/tests/list-test.c:309\nerror: lib/tests/list-test.c: patch does not apply\nfailing hunk: lib/tests/list-test.c @@ -309,7 +309,7 @@ static void list_test_list_empty(struct kunit *test)',
    );
    expect(a).toMatchObject({ patch: 2, total: 3, subject: '[PATCH 2/3] list: test: x', file: 'lib/tests/list-test.c', line: 309, hunk: '@@ -309,7 +309,7 @@ static void list_test_list_empty(struct kunit *test)' });
  });
});

describe('computeVerdict', () => {
  it('the fixture series: a new KUnit failure on both kernels, and a build break only on no-MMU', () => {
    const failing = [listSuite({ list_test_list_empty: 'fail' })];
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'build-failed' }, 'series-mmu': { kind: 'test-failed', tests: failing } });
    const v = run.verdict!;
    expect(v.outcome).toBe('regression');
    expect(run.state).toBe('failed');
    expect(v.breaksOnlyNoMmu).toBe(true);
    const [nommu, mmu] = v.kernels;
    expect(nommu!.label).toBe('no-MMU');
    expect(nommu!.build!.locations[0]).toEqual({ file: 'mm/nommu.c', line: 95, column: 32, message: "implicit declaration of function 'vma_span_bytes' [-Wimplicit-function-declaration]" });
    expect(nommu!.build!.errors).toContain("mm/nommu.c: In function 'kobjsize':");
    expect(nommu!.tests).toEqual([]); // no tests from a kernel that does not build
    expect(mmu!.tests.map((t) => [t.path, t.kind])).toEqual([['list-kunit-test.list_test_list_empty', 'new-failure']]);
    expect(mmu!.tests[0]!.diagnostics[0]).toContain('EXPECTATION FAILED at lib/tests/list-test.c:312');
    expect(v.regressions).toBe(2);
    expect(v.headline).toBe('breaks only the no-MMU build; 1 new test failure on MMU');
  });

  it('a series that does not apply names the patch and hunk', () => {
    const msg = 'patch 3/3 "[PATCH 3/3] mm/nommu: use vma_span_bytes() in kobjsize()" does not apply:\nerror: patch failed: mm/nommu.c:90\nerror: mm/nommu.c: patch does not apply\nfailing hunk: mm/nommu.c @@ -90,7 +90,7 @@ unsigned int kobjsize(const void *objp)';
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'patch-failed', message: msg }, 'series-mmu': { kind: 'patch-failed', message: msg } });
    expect(run.verdict!.apply).toMatchObject({ patch: 3, total: 3, file: 'mm/nommu.c', line: 90, hunk: '@@ -90,7 +90,7 @@ unsigned int kobjsize(const void *objp)' });
    expect(run.verdict!.headline).toBe('series does not apply: patch 3/3 at mm/nommu.c:90');
    expect(run.verdict!.regressions).toBe(1);
    expect(run.state).toBe('failed');
  });

  it('passes a harmless series and counts a fixed test', () => {
    const { run } = sampleRun(mbox, {
      'base-nommu': { kind: 'test-failed', tests: [listSuite({ list_test_list_del: 'fail' })] },
      'base-mmu': pass,
      'series-nommu': pass,
      'series-mmu': pass,
    });
    expect(run.verdict!.outcome).toBe('pass');
    expect(run.state).toBe('passed');
    expect(run.verdict!.kernels[0]!.counts.fixed).toBe(1);
    expect(run.verdict!.headline).toBe('no regressions on no-MMU and MMU; 1 test fixed');
  });

  it('a crash mid-suite: new crash plus the tests that no longer ran', () => {
    const { run } = sampleRun(mbox, {
      'base-nommu': pass,
      'base-mmu': pass,
      'series-nommu': { kind: 'test-failed', tests: [listSuite({ list_test_list_empty: 'crash' }, ['list_test_list_del'])] },
      'series-mmu': pass,
    });
    const k = run.verdict!.kernels[0]!;
    expect(k.tests.map((t) => [t.path, t.kind])).toEqual([
      ['list-kunit-test.list_test_list_empty', 'new-crash'],
      ['list-kunit-test.list_test_list_del', 'missing'],
    ]);
    expect(run.verdict!.breaksOnlyNoMmu).toBe(false);
    expect(run.verdict!.headline).toBe('1 new test failure on no-MMU; 1 test missing on no-MMU');
  });

  it('a base that does not build is not a regression; an infrastructure error makes the run an error', () => {
    const broken = sampleRun(mbox, { 'base-nommu': { kind: 'build-failed' }, 'base-mmu': pass, 'series-nommu': { kind: 'build-failed' }, 'series-mmu': pass });
    expect(broken.run.verdict!.kernels[0]!.outcome).toBe('base-broken');
    expect(broken.run.verdict!.outcome).toBe('pass');
    const infra = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': { kind: 'error', message: 'infrastructure error: disk full' }, 'series-nommu': pass, 'series-mmu': pass });
    expect(infra.run.verdict!.outcome).toBe('error');
    expect(infra.run.state).toBe('error');
  });

  it('a series kernel that does not boot where the base did', () => {
    const { run } = sampleRun(mbox, { 'base-nommu': pass, 'base-mmu': pass, 'series-nommu': { kind: 'boot-failed', message: 'kernel printed no KTAP (exit 1): Kernel panic - not syncing' }, 'series-mmu': pass });
    expect(run.verdict!.kernels[0]!.boot).toMatch(/Kernel panic/);
    expect(run.verdict!.headline).toBe('no-MMU kernel does not boot');
  });
});
