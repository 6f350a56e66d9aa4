/**
 * The result model shared by the parser (which builds it), the worker (which stores it)
 * and the API and reports (which read it). It mirrors kunit_tool's test tree.
 */

/** `crash`: the kernel died (panic, oops, hang, timeout) while the test was running. */
export type TestStatus = 'pass' | 'fail' | 'skip' | 'crash';

export interface TestNode {
  name: string;
  status: TestStatus;
  /** Reason given after `# SKIP` / `# TODO`, or the crash reason we inferred. */
  reason?: string;
  /** KTAP diagnostic lines (`# ...`) and free-form output that belong to this test, in order. */
  diagnostics: string[];
  children: TestNode[];
  /** The plan (`1..N`) the kernel announced for the children, if any. */
  planned?: number;
}

export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  crashed: number;
}

export const emptySummary = (): Summary => ({ passed: 0, failed: 0, skipped: 0, crashed: 0 });

/**
 * Counts as kunit_tool does (TestCounts / bubble_up_test_results in kunit_parser.py), so our
 * numbers match `kunit.py parse` on the same log:
 * - test cases (leaves) count by their status;
 * - subtests a plan announced but that never reported (the kernel died first) count as crashed,
 *   one each, and so do top-level tests missing from the top-level `planned`;
 * - a test with subtests that reports `not ok` while all of them passed counts as one failure
 *   (e.g. a suite whose init failed);
 * - a test with a plan or subtests, none of which reported, that passed or crashed counts as
 *   nothing ("no tests run") unless its plan announced some, which then count as crashed.
 */
export function summarize(tests: readonly TestNode[], planned: number | null = null): Summary {
  const s = emptySummary();
  for (const t of tests) add(s, count(t));
  if (planned !== null && tests.length < planned) s.crashed += planned - tests.length;
  return s;
}

function add(to: Summary, c: Summary): void {
  to.passed += c.passed;
  to.failed += c.failed;
  to.skipped += c.skipped;
  to.crashed += c.crashed;
}

function addStatus(s: Summary, status: TestStatus): void {
  if (status === 'pass') s.passed++;
  else if (status === 'fail') s.failed++;
  else if (status === 'skip') s.skipped++;
  else s.crashed++;
}

function count(t: TestNode): Summary {
  const c = emptySummary();
  for (const child of t.children) add(c, count(child));
  const isParent = t.planned !== undefined || t.children.length > 0;
  if (t.planned !== undefined && t.children.length < t.planned) c.crashed += t.planned - t.children.length;
  if (c.passed + c.failed + c.skipped + c.crashed === 0) {
    if (!(isParent && (t.status === 'pass' || t.status === 'crash'))) addStatus(c, t.status);
  } else if (t.status === 'fail' && c.crashed === 0 && c.failed === 0 && c.passed > 0) {
    c.failed++;
  }
  return c;
}
