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

/** Counts test cases (leaves) as kunit_tool does: a suite with children counts through them. */
export function summarize(tests: readonly TestNode[]): Summary {
  const s = emptySummary();
  const visit = (t: TestNode): void => {
    if (t.children.length > 0) {
      t.children.forEach(visit);
      return;
    }
    if (t.status === 'pass') s.passed++;
    else if (t.status === 'fail') s.failed++;
    else if (t.status === 'skip') s.skipped++;
    else s.crashed++;
  };
  tests.forEach(visit);
  return s;
}
