/**
 * Going on after a test kills the kernel. kselftest programs are independent, so when a boot's
 * KTAP stops short (a panic, a halt, a hang the boot stage gave up on), the test that was
 * running is reported crashed and the kernel is booted again with a plan of the tests after
 * it. These are the pure parts: what is left of a plan given what reported, the test that died
 * marked, and the results of the boots joined into one tree.
 */
import type { TestNode } from '@nommu-ci/shared';
import type { PlanEntry } from './rootfs.js';

/** A target's status from its parts: all skipped is skip, any failure fails, a crash wins. */
const RANK: Record<TestNode['status'], number> = { skip: 0, pass: 1, fail: 2, crash: 3 };

export interface Leftover {
  /** The test the kernel died in: the first of the plan with no result. */
  died: PlanEntry;
  /** The tests after it. */
  rest: PlanEntry[];
}

const reported = (tests: readonly TestNode[], e: PlanEntry): boolean => {
  const t = tests.find((x) => x.name === e.target)?.children.find((c) => c.name === e.test);
  // An open test closed by the stream's end is `crash`: it did not report.
  return t !== undefined && t.status !== 'crash';
};

/** What did not run, or null when every test of the plan reported. */
export function leftover(plan: readonly PlanEntry[], tests: readonly TestNode[]): Leftover | null {
  const i = plan.findIndex((e) => !reported(tests, e));
  if (i < 0) return null;
  return { died: plan[i]!, rest: plan.slice(i + 1) };
}

/** The tree with the test the kernel died in marked crashed, with `reason`; a target that lost a test to a crash is crashed. */
export function markDied(tests: readonly TestNode[], died: PlanEntry, reason: string): TestNode[] {
  const out = tests.map((t) => ({ ...t, children: [...t.children] }));
  let target = out.find((t) => t.name === died.target);
  if (!target) {
    target = { name: died.target, status: 'crash', reason, diagnostics: [], children: [] };
    out.push(target);
  }
  target.status = 'crash';
  target.reason ??= reason;
  delete target.planned; // what it planned is now reported over more than one boot
  const node: TestNode = { name: died.test, status: 'crash', reason, diagnostics: [`# the kernel died while ${died.target}:${died.test} ran: ${reason}`], children: [] };
  const at = target.children.findIndex((c) => c.name === died.test);
  if (at >= 0) target.children[at] = { ...target.children[at]!, status: 'crash', reason, diagnostics: [...target.children[at]!.diagnostics, ...node.diagnostics] };
  else target.children.push(node);
  return out;
}

/** The next boot's targets joined in: children appended to the target of the same name, new targets added. */
export function appendBoot(tests: readonly TestNode[], next: readonly TestNode[]): TestNode[] {
  const out = tests.map((t) => ({ ...t, children: [...t.children] }));
  for (const t of next) {
    const same = out.find((x) => x.name === t.name);
    if (!same) {
      out.push(t);
      continue;
    }
    same.children.push(...t.children);
    delete same.planned;
    if (RANK[t.status] > RANK[same.status]) same.status = t.status;
  }
  return out;
}
