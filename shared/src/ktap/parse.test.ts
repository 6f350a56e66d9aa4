import { describe, expect, it } from 'vitest';
import type { TestNode } from '../result.js';
import { classify } from './lines.js';
import { KtapStream, parseKtap } from './parse.js';

/** Lines of a template literal, without the common left margin (the KTAP indentation is kept). */
function ktap(text: string): string[] {
  const lines = text.replace(/^\n/, '').replace(/\n\s*$/, '').split('\n');
  const margin = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(margin));
}

const shape = (t: TestNode): unknown => ({
  name: t.name,
  status: t.status,
  ...(t.reason !== undefined ? { reason: t.reason } : {}),
  ...(t.children.length ? { children: t.children.map(shape) } : {}),
});

// The shape KUnit prints (lib/kunit/test.c): suites indented 4, parameters 8, KUnit's own
// per-case diagnostics at 4 even inside a parameter subtest.
const KUNIT = ktap(`
  KTAP version 1
  1..2
      # suite_a: initializing suite
      KTAP version 1
      # Subtest: suite_a
      # module: mod_a
      1..3
      # case_one: initializing
      ok 1 case_one
      # case_two: EXPECTATION FAILED at lib/x.c:10
      Expected 1 == 2, but
          1 == 1
      not ok 2 case_two
          KTAP version 1
          # Subtest: case_param
      # case_param: initializing
          ok 1 value 3 # SKIP unsupported param value 3
          ok 2 value 2
      # case_param: pass:1 fail:0 skip:1 total:2
      ok 3 case_param
  # suite_a: pass:2 fail:1 skip:0 total:3
  not ok 1 suite_a
      KTAP version 1
      # Subtest: suite_b
      1..1
      ok 1 only_case
  ok 2 suite_b
`);

describe('parseKtap on KUnit-shaped output', () => {
  const r = parseKtap(KUNIT);

  it('builds the tree from headers and indentation', () => {
    expect(r.version).toBe('KTAP version 1');
    expect(r.tests.map(shape)).toEqual([
      {
        name: 'suite_a',
        status: 'fail',
        children: [
          { name: 'case_one', status: 'pass' },
          { name: 'case_two', status: 'fail' },
          {
            name: 'case_param',
            status: 'pass',
            children: [
              { name: 'value 3', status: 'skip', reason: 'unsupported param value 3' },
              { name: 'value 2', status: 'pass' },
            ],
          },
        ],
      },
      { name: 'suite_b', status: 'pass', children: [{ name: 'only_case', status: 'pass' }] },
    ]);
    expect(r.tests[0]!.planned).toBe(3);
    expect(r.tests[0]!.children[2]!.planned).toBeUndefined(); // KUnit prints no plan for generated params
    expect(r.planned).toBe(2);
    expect(r.summary).toEqual({ passed: 3, failed: 1, skipped: 1, crashed: 0 });
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
  });

  it('attaches diagnostics to the test they precede, trailing ones to the enclosing test', () => {
    const [a] = r.tests;
    expect(a!.diagnostics).toEqual([
      '# suite_a: initializing suite',
      '# module: mod_a',
      '# suite_a: pass:2 fail:1 skip:0 total:3',
    ]);
    expect(a!.children[0]!.diagnostics).toEqual(['# case_one: initializing']);
    // Continuation lines keep their indentation relative to the suite's lines.
    expect(a!.children[1]!.diagnostics).toEqual(['# case_two: EXPECTATION FAILED at lib/x.c:10', 'Expected 1 == 2, but', '    1 == 1']);
    const param = a!.children[2]!;
    // No plan: the header runs until the first case, so (as in kunit_tool) the first case's
    // "initializing" is the parameterized test's own.
    expect(param.diagnostics).toEqual(['# case_param: initializing', '# case_param: pass:1 fail:0 skip:1 total:2']);
    expect(param.children[0]!.diagnostics).toEqual([]);
  });
});

describe('directives', () => {
  it('SKIP makes a test skipped even when it says not ok (kunit_tool), with its reason', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
      1..3
      ok 1 a # SKIP not on UML
      not ok 2 b # SKIP
      ok 3 - c # skip lower case
    `));
    expect(r.tests.map(shape)).toEqual([
      { name: 'a', status: 'skip', reason: 'not on UML' },
      { name: 'b', status: 'skip' },
      { name: 'c', status: 'skip', reason: 'lower case' },
    ]);
  });

  it('TODO changes nothing (kunit_tool ignores it) but keeps its reason', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
      1..2
      not ok 1 known_bug # TODO fix the allocator
      ok 2 fixed # TODO
    `));
    expect(r.tests.map(shape)).toEqual([
      { name: 'known_bug', status: 'fail', reason: 'fix the allocator' },
      { name: 'fixed', status: 'pass' },
    ]);
    expect(r.summary).toEqual({ passed: 1, failed: 1, skipped: 0, crashed: 0 });
  });

  it('reads names after `- ` and stops them at ` # `; a `#` inside a word stays in the name', () => {
    expect(classify('    ok 12 - some_test # SKIP why')).toMatchObject({ kind: 'result', indent: 4, num: 12, name: 'some_test', directive: 'SKIP', reason: 'why' });
    expect(classify('not ok 3 case#1')).toMatchObject({ kind: 'result', ok: false, name: 'case#1', directive: null });
    expect(classify('ok 1 # SKIP all')).toMatchObject({ kind: 'result', name: '', directive: 'SKIP', reason: 'all' });
    expect(classify('\t# Subtest: x')).toMatchObject({ kind: 'subtest', indent: 8, name: 'x' });
    expect(classify('okay 1 x').kind).toBe('other');
    expect(classify('# ok 1 x').kind).toBe('other');
  });
});

describe('missing plan', () => {
  it('parses a subtest from its results and ends it at the result named like its header (flat TAP)', () => {
    const r = parseKtap(ktap(`
      TAP version 14
      1..2
      # Subtest: s1
      ok 1 - a
      ok 2 - b
      ok 1 - s1
      # Subtest: s2
      not ok 1 - c
      not ok 2 - s2
    `));
    expect(r.tests.map(shape)).toEqual([
      { name: 's1', status: 'pass', children: [{ name: 'a', status: 'pass' }, { name: 'b', status: 'pass' }] },
      { name: 's2', status: 'fail', children: [{ name: 'c', status: 'fail' }] },
    ]);
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
  });

  it('without the top-level plan it still parses, reports "missing plan" and cannot claim completeness', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
          # Subtest: s
          ok 1 a
      ok 1 s
    `));
    expect(r.tests.map(shape)).toEqual([{ name: 's', status: 'pass', children: [{ name: 'a', status: 'pass' }] }]);
    expect(r.planned).toBeNull();
    expect(r.errors).toEqual(['main: missing plan']);
    expect(r.complete).toBe(false);
  });

  it('accepts a late plan, and checks the count against it', () => {
    // kunit_tool_test.py test_parse_late_test_plan: one pass, two errors.
    const r = parseKtap(['TAP version 13', 'ok 4 test4', '1..4']);
    expect(r.summary.passed).toBe(1);
    expect(r.errors).toEqual(['main: expected test number 1 but found 4', 'main: expected 4 tests, got 1']);
  });
});

describe('garbage', () => {
  it('ignores everything before the version line and keeps free text after it as diagnostics', () => {
    const r = parseKtap([
      'Linux version 7.2.12 (root@vm)',
      'ok 1 this is boot noise, not a result',
      '1..7',
      'KTAP version 1',
      '1..1',
      'random: crng init done',
      '    KTAP version 1',
      '    # Subtest: s',
      '    1..1',
      'kAFS: Red Hat AFS client v0.1 registering.',
      '    ok 1 a',
      'ok 1 s',
    ]);
    expect(r.tests.map(shape)).toEqual([{ name: 's', status: 'pass', children: [{ name: 'a', status: 'pass' }] }]);
    expect(r.tests[0]!.diagnostics).toEqual(['random: crng init done']);
    expect(r.tests[0]!.children[0]!.diagnostics).toEqual(['kAFS: Red Hat AFS client v0.1 registering.']);
    expect(r.planned).toBe(1);
    expect(r.complete).toBe(true);
  });

  it('reports no KTAP output at all', () => {
    const r = parseKtap(['Kernel panic - not syncing: Out of memory', 'ok 1 x']);
    expect(r.version).toBeNull();
    expect(r.tests).toEqual([]);
    expect(r.errors).toEqual(['could not find any KTAP output (no "KTAP version" line)']);
    expect(r.complete).toBe(false);
  });

  it('keeps the kunit executor complaints that come before the version line', () => {
    const r = parseKtap(['kunit executor: filter_glob invalid', 'KTAP version 1', '1..0']);
    expect(r.errors).toEqual(['kunit executor: filter_glob invalid', 'main: 0 tests run']);
  });

  it('flags versions it does not know', () => {
    expect(parseKtap(['KTAP version 2', '1..1', 'ok 1 a']).errors).toEqual(['main: KTAP version higher than expected: 2']);
    expect(parseKtap(['TAP version 14', '1..1', 'ok 1 a']).errors).toEqual([]);
  });
});

const CUT = ktap(`
  KTAP version 1
  1..3
      KTAP version 1
      # Subtest: done
      1..1
      ok 1 a
  ok 1 done
      KTAP version 1
      # Subtest: s
      1..4
      ok 1 b
      ok 2 c
          KTAP version 1
          # Subtest: p
          ok 1 p1
  RIP: 0033:list_test_list_move+0xac/0x250
`);

describe('crash in the middle', () => {
  it('with a crash reason: every open test is crash with the reason; missing tests are not invented', () => {
    const panic = 'Kernel panic - not syncing: Segfault with no mm';
    const r = parseKtap(CUT, panic);
    expect(r.tests.map(shape)).toEqual([
      { name: 'done', status: 'pass', children: [{ name: 'a', status: 'pass' }] },
      {
        name: 's',
        status: 'crash',
        reason: panic,
        children: [
          { name: 'b', status: 'pass' },
          { name: 'c', status: 'pass' },
          { name: 'p', status: 'crash', reason: panic, children: [{ name: 'p1', status: 'pass' }] },
        ],
      },
    ]);
    // The oops text printed after the last result belongs to the innermost open test.
    expect(r.tests[1]!.children[2]!.diagnostics).toEqual(['RIP: 0033:list_test_list_move+0xac/0x250']);
    // As kunit_tool counts: the case s's plan announced and the suite main's plan announced,
    // neither of which reported, are one crashed test each.
    expect(r.summary).toEqual({ passed: 4, failed: 0, skipped: 0, crashed: 2 });
    expect(r.errors).toEqual(['s: expected 4 tests, got 3', 'main: expected 3 tests, got 2']);
    expect(r.complete).toBe(false);
  });

  it('without a reason: open tests fail with an error ("missing result line")', () => {
    const r = parseKtap(CUT);
    expect(r.tests[1]!.status).toBe('fail');
    expect(r.tests[1]!.reason).toBeUndefined();
    expect(r.tests[1]!.children[2]!.status).toBe('fail');
    expect(r.errors).toEqual([
      's.p: missing result line (output ended)',
      's: missing result line (output ended)',
      's: expected 4 tests, got 3',
      'main: expected 3 tests, got 2',
    ]);
  });

  it('a test whose result arrives with subtests missing cannot pass', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
      1..1
          # Subtest: s
          1..5
          ok 1 a
      ok 1 s
    `));
    expect(r.tests[0]!.status).toBe('fail');
    expect(r.errors).toEqual(['s: expected 5 tests, got 1']);
    expect(r.complete).toBe(false);
  });

  it('a result line less indented than an open subtest closes it (its own result line was lost)', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
      1..1
          KTAP version 1
          # Subtest: s
          1..2
              KTAP version 1
              # Subtest: p
              ok 1 p1
          ok 2 other
      ok 1 s
    `));
    // kunit_tool ignores indentation and would read "ok 2 other" as a case of p. Here it is at
    // the suite's level, named and numbered as the suite's second case: p lost its result line.
    expect(r.tests.map(shape)).toEqual([
      {
        name: 's',
        status: 'pass',
        children: [
          { name: 'p', status: 'fail', children: [{ name: 'p1', status: 'pass' }] },
          { name: 'other', status: 'pass' },
        ],
      },
    ]);
    expect(r.errors).toEqual(['s.p: missing result line']);
    expect(r.complete).toBe(false);
  });

  it('a less indented result with the right number but another name is the subtest’s own, misnamed', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
      1..1
          KTAP version 1
          # Subtest: s
          ok 1 a
      not ok 1 renamed
    `));
    expect(r.tests.map(shape)).toEqual([{ name: 's', status: 'fail', children: [{ name: 'a', status: 'pass' }] }]);
    expect(r.errors).toEqual(['s: result line names "renamed", expected "s"']);
  });

  it('a new header at an open subtest’s level closes that subtest', () => {
    const r = parseKtap(ktap(`
      KTAP version 1
      1..2
          KTAP version 1
          # Subtest: s1
          1..2
          ok 1 a
          KTAP version 1
          # Subtest: s2
          1..1
          ok 1 b
      ok 2 s2
    `));
    expect(r.tests.map(shape)).toEqual([
      { name: 's1', status: 'fail', children: [{ name: 'a', status: 'pass' }] },
      { name: 's2', status: 'pass', children: [{ name: 'b', status: 'pass' }] },
    ]);
    expect(r.errors).toEqual(['s1: missing result line', 's1: expected 2 tests, got 1']);
  });
});

describe('KtapStream', () => {
  it('reports each result as it arrives, cases before their suite, with paths', () => {
    const seen: string[] = [];
    const s = new KtapStream((path, node) => seen.push(`${path.join('/')}=${node.status}`));
    for (const l of KUNIT) s.push(l);
    expect(seen).toEqual([
      'suite_a/case_one=pass',
      'suite_a/case_two=fail',
      'suite_a/case_param/value 3=skip',
      'suite_a/case_param/value 2=pass',
      'suite_a/case_param=pass',
      'suite_a=fail',
      'suite_b/only_case=pass',
      'suite_b=pass',
    ]);
    s.end();
    expect(seen).toHaveLength(8);
  });

  it('reports the tests that end() closes, innermost first', () => {
    const seen: string[] = [];
    const s = new KtapStream((path, node) => seen.push(`${path.join('/')}=${node.status}`));
    for (const l of CUT) s.push(l);
    const before = seen.length;
    s.end('timeout after 30 s');
    expect(seen.slice(before)).toEqual(['s/p=crash', 's=crash']);
  });

  it('a result is final when reported', () => {
    const statuses: string[] = [];
    const nodes: TestNode[] = [];
    const s = new KtapStream((_p, n) => {
      nodes.push(n);
      statuses.push(n.status);
    });
    for (const l of KUNIT) s.push(l);
    s.end('late crash');
    expect(nodes.map((n) => n.status)).toEqual(statuses);
  });

  it('equals parseKtap for the same lines, fed one at a time', () => {
    for (const [lines, crash] of [[KUNIT, undefined], [CUT, 'boom'], [CUT, undefined]] as const) {
      const s = new KtapStream();
      for (const l of lines) s.push(l);
      expect(s.end(crash)).toEqual(parseKtap(lines, crash));
    }
  });

  it('ignores lines after end() and returns the same result again', () => {
    const s = new KtapStream();
    s.push('KTAP version 1');
    s.push('1..1');
    const r = s.end();
    s.push('ok 1 late');
    expect(s.end()).toBe(r);
    expect(r.tests).toEqual([]);
  });
});
