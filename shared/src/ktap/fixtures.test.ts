/**
 * The parser on real console logs of this kernel (UML, 7.2.12 Debian), captured with kunit.py:
 * see shared/fixtures/ktap/README.md for how each one was produced.
 *
 * The expected totals are what kunit_tool reports for the same file:
 *   cd /var/cache/nommu-ci/src/linux-source-7.2 && python3 tools/testing/kunit/kunit.py parse <fixture>
 * ("Testing complete. Ran N tests: passed: ..., crashed: ..."), compared with our summary.
 * summarize() (our Summary) differs only where kunit_tool invents the tests a crash cut off.
 * The last block re-runs kunit_tool itself when the kernel tree is on this machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SOURCES_DIR } from '../paths.js';
import type { TestNode } from '../result.js';
import { summarize } from '../result.js';
import { KtapExtractor } from './console.js';
import { KtapStream, parseKtap, type KtapResult } from './parse.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/ktap');
/** Not .log: the repository's .gitignore drops *.log. */
const FIXTURE_EXT = '.console.txt';
const consoleLines = (name: string): string[] => readFileSync(path.join(FIXTURES, name), 'utf8').split('\n');

/** What the worker does: console → extractor → parser, the crash line as the end reason. */
function parseConsole(name: string, reason?: string): KtapResult & { crash: string | null } {
  const x = new KtapExtractor();
  const lines: string[] = [];
  for (const l of consoleLines(name)) lines.push(...x.push(l));
  return { ...parseKtap(lines, reason ?? x.crash ?? undefined), crash: x.crash };
}

const find = (tests: TestNode[], ...names: string[]): TestNode => {
  let node: TestNode | undefined;
  let level = tests;
  for (const n of names) {
    node = level.find((t) => t.name === n);
    if (!node) throw new Error(`no test ${names.join('.')}`);
    level = node.children;
  }
  return node!;
};

const counts = (passed: number, failed: number, crashed: number, skipped: number) => ({ passed, failed, skipped, crashed });

describe('fixtures: totals as kunit.py parse reports them', () => {
  // Each row: fixture, kunit.py parse "Ran N tests: ..." as {passed, failed, crashed, skipped}.
  const rows: [string, ReturnType<typeof counts>][] = [
    ['pass.console.txt', counts(65, 0, 0, 0)], //           Ran 65 tests: passed: 65
    ['skip.console.txt', counts(18, 0, 0, 4)], //           Ran 22 tests: passed: 18, skipped: 4
    ['fail.console.txt', counts(63, 2, 0, 0)], //           Ran 65 tests: passed: 63, failed: 2
    ['crash.console.txt', counts(9, 0, 32, 0)], //           Ran 41 tests: passed: 9, crashed: 32, errors: 33
    ['crash-param.console.txt', counts(6, 0, 3, 3)], //      Ran 12 tests: passed: 6, crashed: 3, skipped: 3, errors: 5
    ['hang.console.txt', counts(2, 0, 39, 0)], //            Ran 41 tests: passed: 2, crashed: 39, errors: 40
    ['default.console.txt', counts(805, 0, 0, 25)], //    Ran 830 tests: passed: 805, skipped: 25
    ['no-tests.console.txt', counts(0, 0, 0, 0)], //         Ran 0 tests: errors: 1
  ];
  it.each(rows)('%s', (name, kunitTool) => {
    const r = parseConsole(name);
    expect(r.summary).toEqual(kunitTool);
    expect(summarize(r.tests, r.planned)).toEqual(kunitTool);
  });

  it('covers every fixture', () => {
    const logs = readdirSync(FIXTURES).filter((f) => f.endsWith(FIXTURE_EXT));
    expect(logs.sort()).toEqual(rows.map((r) => r[0]).sort());
  });
});

describe('fixtures: trees', () => {
  it('pass: three suites, complete, no errors', () => {
    const r = parseConsole('pass.console.txt');
    expect(r.version).toBe('KTAP version 1');
    expect(r.tests.map((t) => [t.name, t.status, t.planned, t.children.length])).toEqual([
      ['list-kunit-test', 'pass', 39, 39],
      ['hlist', 'pass', 18, 18],
      ['klist', 'pass', 8, 8],
    ]);
    expect(r.tests[0]!.diagnostics).toEqual([
      '# module: list_test',
      '# list-kunit-test: pass:39 fail:0 skip:0 total:39',
      '# Totals: pass:39 fail:0 skip:0 total:39',
    ]);
    expect(r.crash).toBeNull();
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
  });

  it('skip: reasons, parameterized cases as children, diagnostics in place', () => {
    const r = parseConsole('skip.console.txt');
    const skip = find(r.tests, 'example', 'example_skip_test');
    expect(skip).toMatchObject({ status: 'skip', reason: 'this test should be skipped' });
    expect(skip.diagnostics).toEqual([
      '# example_skip_test: initializing',
      '# example_skip_test: You should not see a line below.',
      '# example_skip_test: cleaning up',
    ]);
    const params = find(r.tests, 'example', 'example_params_test');
    expect(params.planned).toBeUndefined();
    expect(params.children.map((c) => [c.name, c.status, c.reason])).toEqual([
      ['example value 3', 'skip', 'unsupported param value 3'],
      ['example value 2', 'pass', undefined],
      ['example value 1', 'pass', undefined],
      ['example value 0', 'skip', 'unsupported param value 0'],
    ]);
    expect(find(r.tests, 'example', 'example_params_test_with_init_dynamic_arr').children).toHaveLength(6);
    expect(find(r.tests, 'example', 'example_slow_test').diagnostics).toContain('# example_slow_test.speed: slow');
    expect(r.tests[0]!.diagnostics).toEqual([
      '# example: initializing suite',
      '# module: kunit_example_test',
      '# example: exiting suite',
      '# example: pass:9 fail:0 skip:2 total:11',
      '# Totals: pass:18 fail:0 skip:4 total:22',
    ]);
    expect(r.complete).toBe(true);
  });

  it('fail: the failing cases carry KUnit’s expectation report', () => {
    const r = parseConsole('fail.console.txt');
    expect(r.tests[0]).toMatchObject({ name: 'list-kunit-test', status: 'fail' });
    const add = find(r.tests, 'list-kunit-test', 'list_test_list_add');
    expect(add.status).toBe('fail');
    expect(add.diagnostics[0]).toBe('# list_test_list_add: EXPECTATION FAILED at lib/tests/list-test.c:58');
    expect(add.diagnostics[1]).toBe('Expected b.next == &b, but');
    expect(add.diagnostics[2]).toMatch(/^ {4}b\.next == [0-9a-f]{16}$/);
    expect(find(r.tests, 'list-kunit-test', 'list_test_list_del').status).toBe('fail');
    expect(r.tests.slice(1).map((t) => t.status)).toEqual(['pass', 'pass']);
    expect(r.complete).toBe(true);
  });

  it('crash: the suite is crash with the panic line; its 30 unreported cases and 2 suites are not invented', () => {
    const r = parseConsole('crash.console.txt');
    const panic = 'Kernel panic - not syncing: Segfault with no mm';
    expect(r.crash).toBe(panic);
    expect(r.tests).toHaveLength(1);
    const suite = r.tests[0]!;
    expect(suite).toMatchObject({ name: 'list-kunit-test', status: 'crash', reason: panic, planned: 39 });
    expect(suite.children).toHaveLength(9);
    expect(suite.children.every((c) => c.status === 'pass')).toBe(true);
    // UML's register dump came before the panic line: it is the crashed suite's output.
    expect(suite.diagnostics).toContain('RIP: 0033:list_test_list_move+0xac/0x250');
    expect(suite.diagnostics.some((d) => d.includes('Call Trace'))).toBe(false); // after the panic: not extracted
    expect(r.errors).toEqual(['list-kunit-test: expected 39 tests, got 9', 'main: expected 3 tests, got 1']);
    expect(r.complete).toBe(false);
  });

  it('crash-param: BUG() inside a parameterized test leaves three levels open', () => {
    const r = parseConsole('crash-param.console.txt');
    const bug = 'BUG: failure at lib/kunit/kunit-example-test.c:256/example_params_test()!';
    expect(r.crash).toBe(bug); // the first report, before "Kernel panic - not syncing: BUG!"
    const suite = find(r.tests, 'example');
    expect(suite).toMatchObject({ status: 'crash', reason: bug });
    expect(suite.children).toHaveLength(8);
    const params = find(r.tests, 'example', 'example_params_test');
    expect(params).toMatchObject({ status: 'crash', reason: bug });
    expect(params.children.map((c) => c.status)).toEqual(['skip', 'pass']);
    expect(params.diagnostics.slice(-2)).toEqual(['# example_params_test: initializing', bug]);
    expect(r.errors).toEqual(['example: expected 11 tests, got 8']);
  });

  it('hang: killed after 30 s; with the worker’s timeout reason the open suite is crash', () => {
    const reason = 'timeout: kernel killed after 30 s';
    const r = parseConsole('hang.console.txt', reason);
    expect(r.crash).toBeNull(); // nothing in the console says why it stopped
    expect(r.tests[0]).toMatchObject({ name: 'list-kunit-test', status: 'crash', reason });
    expect(r.tests[0]!.children.map((c) => c.name)).toEqual(['list_test_list_init', 'list_test_list_add']);
    // Without a reason the same log is a failure with errors, not a crash.
    const plain = parseConsole('hang.console.txt');
    expect(plain.tests[0]!.status).toBe('fail');
    expect(plain.errors).toContain('list-kunit-test: missing result line (output ended)');
  });

  it('default: 78 suites, all with results, nothing left open', () => {
    const r = parseConsole('default.console.txt');
    expect(r.planned).toBe(78);
    expect(r.tests).toHaveLength(78);
    expect(r.tests.every((t) => t.status === 'pass' || t.status === 'skip')).toBe(true);
    expect(r.errors).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.crash).toBeNull(); // the WARNINGs some tests provoke are not crashes
  });

  it('no-tests: a filter that matched nothing is complete but "0 tests run"', () => {
    const r = parseConsole('no-tests.console.txt');
    expect(r).toMatchObject({ planned: 0, tests: [], errors: ['main: 0 tests run'], complete: true });
  });
});

describe('fixtures: incremental equals batch', () => {
  it.each(readdirSync(FIXTURES).filter((f) => f.endsWith(FIXTURE_EXT)))('%s', (name) => {
    const x = new KtapExtractor();
    const reported: string[] = [];
    const s = new KtapStream((p) => reported.push(p.join('.')));
    const all: string[] = [];
    for (const l of consoleLines(name)) {
      for (const k of x.push(l)) {
        s.push(k);
        all.push(k);
      }
    }
    const live = s.end(x.crash ?? undefined);
    expect(live).toEqual(parseKtap(all, x.crash ?? undefined));
    // Every node in the tree was reported exactly once.
    const paths: string[] = [];
    const walk = (t: TestNode, pre: string[]): void => {
      paths.push([...pre, t.name].join('.'));
      t.children.forEach((c) => walk(c, [...pre, t.name]));
    };
    live.tests.forEach((t) => walk(t, []));
    expect(reported.sort()).toEqual(paths.sort());
  });
});

const TREE = path.join(SOURCES_DIR, 'linux-source-7.2');
const haveKunitTool = existsSync(path.join(TREE, 'tools/testing/kunit/kunit_parser.py'));

describe.skipIf(!haveKunitTool)('kunit_tool itself, on the fixtures and on its own test data', () => {
  it('agrees on every count', () => {
    const data = path.join(TREE, 'tools/testing/kunit/test_data');
    const files = [
      ...readdirSync(FIXTURES).filter((f) => f.endsWith(FIXTURE_EXT)).map((f) => path.join(FIXTURES, f)),
      ...readdirSync(data).filter((f) => f.endsWith('.log')).map((f) => path.join(data, f)),
    ];
    const out = execFileSync('python3', [path.join(FIXTURES, 'kunit-tool-counts.py'), TREE, ...files], { encoding: 'utf8' });
    const theirs = JSON.parse(out) as Record<string, { passed: number; failed: number; crashed: number; skipped: number }>;
    expect(Object.keys(theirs)).toHaveLength(files.length);
    for (const f of files) {
      const x = new KtapExtractor();
      const lines: string[] = [];
      for (const l of readFileSync(f, 'utf8').split('\n')) lines.push(...x.push(l));
      const ours = parseKtap(lines, x.crash ?? undefined).summary;
      const t = theirs[f]!;
      expect({ file: path.basename(f), ...ours }).toEqual({ file: path.basename(f), passed: t.passed, failed: t.failed, crashed: t.crashed, skipped: t.skipped });
    }
  });
});
