/**
 * kunit_tool's counting (TestCounts / bubble_up_test_results in kunit_parser.py) on our tree,
 * so that a parse can be checked against `kunit.py parse` for the same log.
 *
 * It differs from summarize() (result.ts) in three ways, all from kunit_tool:
 * - subtests a plan announced but that never reported (the kernel died first) count as crashed,
 *   one each, where summarize() counts only tests that exist;
 * - a test with subtests that reports `not ok` while all its subtests passed counts as one more
 *   failure (e.g. a suite whose init failed), where summarize() counts only leaves;
 * - a test with a header but no subtests that reports ok counts as nothing ("no tests run").
 */
import type { TestNode } from '../result.js';
import type { KtapResult } from './parse.js';

export interface KunitToolCounts {
  passed: number;
  failed: number;
  crashed: number;
  skipped: number;
}

const zero = (): KunitToolCounts => ({ passed: 0, failed: 0, crashed: 0, skipped: 0 });
const total = (c: KunitToolCounts): number => c.passed + c.failed + c.crashed + c.skipped;

function add(to: KunitToolCounts, c: KunitToolCounts): void {
  to.passed += c.passed;
  to.failed += c.failed;
  to.crashed += c.crashed;
  to.skipped += c.skipped;
}

function addStatus(c: KunitToolCounts, status: TestNode['status']): void {
  if (status === 'pass') c.passed++;
  else if (status === 'fail') c.failed++;
  else if (status === 'skip') c.skipped++;
  else c.crashed++;
}

function count(t: TestNode): KunitToolCounts {
  const c = zero();
  for (const s of t.children) add(c, count(s));
  const isParent = t.planned !== undefined || t.children.length > 0;
  if (t.planned !== undefined && t.children.length < t.planned) c.crashed += t.planned - t.children.length;
  if (total(c) === 0) {
    // A parent without subtests that passed (or crashed) is "no tests run": nothing to count.
    if (!(isParent && (t.status === 'pass' || t.status === 'crash'))) addStatus(c, t.status);
  } else if (t.status === 'fail' && c.crashed === 0 && c.failed === 0 && c.passed > 0) {
    c.failed++;
  }
  return c;
}

export function kunitToolCounts(result: Pick<KtapResult, 'tests' | 'planned'>): KunitToolCounts {
  const c = zero();
  for (const t of result.tests) add(c, count(t));
  if (result.planned !== null && result.tests.length < result.planned) c.crashed += result.planned - result.tests.length;
  return c;
}
