/**
 * A KUnit job's results in the formats existing tools read:
 *  - kunit.py's `--json` document (tools/testing/kunit/kunit_json.py, get_json_result): groups
 *    for tests with subtests, test cases with PASS/SKIP/ERROR/FAIL, and each group's counts as
 *    kunit_parser.py computes them (`errors` are its parse errors: a subtest a plan announced that
 *    never came is an ERROR case named "" and an error; a test that lost its result line, one);
 *  - JUnit XML (Jenkins, GitLab): one <testsuite> per KUnit suite, parameterized cases flattened
 *    as `case.param`, failures with their diagnostics, crashes as <error>.
 */
import junitReportBuilder, { type Builder } from 'junit-report-builder';

// The package is CommonJS whose module.exports is the builder itself; its types describe an ES default.
const junitBuilder = junitReportBuilder as unknown as Builder;
import type { TestNode, TestStatus } from '../result.js';

interface Counts {
  passed: number;
  failed: number;
  crashed: number;
  skipped: number;
  errors: number;
}

const zero = (): Counts => ({ passed: 0, failed: 0, crashed: 0, skipped: 0, errors: 0 });
const total = (c: Counts): number => c.passed + c.failed + c.crashed + c.skipped;

function addStatus(c: Counts, s: TestStatus): void {
  if (s === 'pass') c.passed++;
  else if (s === 'fail') c.failed++;
  else if (s === 'skip') c.skipped++;
  else c.crashed++;
}

/** kunit_parser's status names as kunit_json maps them. */
const JSON_STATUS: Record<TestStatus, string> = { pass: 'PASS', skip: 'SKIP', crash: 'ERROR', fail: 'FAIL' };

interface JsonGroup {
  name: string;
  sub_groups: JsonGroup[];
  test_cases: { name: string; status: string }[];
  misc: { tests: number; passed: number; failed: number; crashed: number; skipped: number; errors: number };
  [common: string]: unknown;
}

export interface KunitJsonMeta {
  arch?: string;
  defconfig?: string;
  buildEnvironment?: string;
}

/** kunit_parser's bubble_up_test_results for one test; returns its counts. */
function groupOf(t: TestNode, common: Record<string, unknown>, isParent: boolean, isMain = false): { group: JsonGroup; counts: Counts; status: TestStatus } {
  const counts = zero();
  const sub_groups: JsonGroup[] = [];
  const test_cases: JsonGroup['test_cases'] = [];
  for (const child of t.children) {
    if (child.children.length > 0) {
      const g = groupOf(child, common, true);
      sub_groups.push(g.group);
      add(counts, g.counts);
    } else {
      const c = leafCounts(child);
      test_cases.push({ name: child.name, status: JSON_STATUS[child.status] });
      add(counts, c);
    }
  }
  // Subtests the plan announced and that never reported: kunit_parser appends a crashed Test() named "".
  const missing = t.planned !== undefined ? Math.max(0, t.planned - t.children.length) : 0;
  for (let i = 0; i < missing; i++) {
    test_cases.push({ name: '', status: 'ERROR' });
    counts.crashed++;
    counts.errors++;
  }
  let status = t.status;
  // A test cut short by a crash lost its own result line ("missing subtest result line!").
  if (t.status === 'crash' && isParent && !isMain) counts.errors++;
  // "0 tests run!": the test becomes NO_TESTS, which counts as nothing.
  const noTests = (isParent || isMain) && t.children.length === 0 && missing === 0 && (t.status === 'crash' || t.status === 'pass');
  if (noTests) counts.errors++;
  if (total(counts) === 0 && !noTests) addStatus(counts, status);
  else if (counts.crashed > 0) status = 'crash';
  if (t.status === 'fail' && counts.crashed === 0 && counts.failed === 0 && counts.passed > 0) counts.failed++;
  const group: JsonGroup = { name: t.name, sub_groups, test_cases, misc: { tests: total(counts), ...counts }, ...common };
  return { group, counts, status };
}

function leafCounts(t: TestNode): Counts {
  const c = zero();
  addStatus(c, t.status);
  return c;
}

function add(a: Counts, b: Counts): void {
  a.passed += b.passed;
  a.failed += b.failed;
  a.crashed += b.crashed;
  a.skipped += b.skipped;
  a.errors += b.errors;
}

/** kunit.py run/parse --json: the document, as an object (JSON.stringify(x, null, 4) is kunit.py's text). */
export function kunitJson(tests: readonly TestNode[], planned: number | null, meta: KunitJsonMeta = {}): JsonGroup {
  const common = {
    arch: meta.arch ?? 'um',
    defconfig: meta.defconfig ?? 'kunit_defconfig',
    build_environment: meta.buildEnvironment ?? '',
    lab_name: null,
    kernel: null,
    job: null,
    git_branch: 'kselftest',
  };
  const main: TestNode = { name: 'main', status: 'pass', diagnostics: [], children: [...tests], ...(planned !== null ? { planned } : {}) };
  const { group } = groupOf(main, common, false, true);
  group.name = 'KUnit Test Group';
  return group;
}

/** JUnit XML: a <testsuite> per suite, nested cases flattened into `parent.child` names. */
export function junitXml(tests: readonly TestNode[], name = 'KUnit'): string {
  const builder = junitBuilder.newBuilder().name(name);
  for (const suite of tests) {
    const ts = builder.testSuite().name(suite.name);
    const cases = flatten(suite.children, '');
    const missing = suite.planned !== undefined ? suite.planned - suite.children.length : 0;
    for (const { path, node } of cases) {
      const tc = ts.testCase().className(suite.name).name(path);
      const log = node.diagnostics.join('\n');
      if (node.status === 'fail') tc.failure(firstLine(node) ?? 'failed', 'failure');
      else if (node.status === 'crash') tc.error(`crashed: ${node.reason ?? 'the kernel stopped'}`, 'crash');
      else if (node.status === 'skip') tc.skipped();
      if (log !== '') tc.standardOutput(log);
    }
    if (cases.length === 0 || missing > 0) {
      // A suite that ran no case (or lost some to a crash) still says so.
      const tc = ts.testCase().className(suite.name).name(cases.length === 0 ? suite.name : `${suite.name} (${missing} not run)`);
      if (suite.status === 'crash' || missing > 0) tc.error(`crashed: ${suite.reason ?? 'the kernel stopped'}`, 'crash');
      else if (suite.status === 'fail') tc.failure(firstLine(suite) ?? 'failed', 'failure');
      else if (suite.status === 'skip') tc.skipped();
      if (suite.diagnostics.length > 0) tc.standardOutput(suite.diagnostics.join('\n'));
    }
  }
  return builder.build();
}

function flatten(nodes: readonly TestNode[], prefix: string): { path: string; node: TestNode }[] {
  return nodes.flatMap((n) => {
    const path = prefix ? `${prefix}.${n.name}` : n.name;
    return n.children.length > 0 ? flatten(n.children, path) : [{ path, node: n }];
  });
}

function firstLine(n: TestNode): string | null {
  return n.diagnostics.find((d) => /EXPECTATION FAILED|ASSERTION FAILED|Expected/.test(d))?.trim() ?? n.reason ?? null;
}
