import { describe, expect, it } from 'vitest';
import { KtapStream, summarize, type TestNode } from '@nommu-ci/shared';
import { appendBoot, leftover, markDied } from './resume.js';
import type { PlanEntry } from './rootfs.js';

const entry = (target: string, test: string): PlanEntry => ({ target, test, timeout_s: 10, program: '/x' });
const plan = [entry('timers', 'a'), entry('timers', 'b'), entry('timers', 'c'), entry('mm', 'd')];

/** What init's KTAP gives when the kernel dies after `timers:a` reported (b was running). */
function firstBoot(): TestNode[] {
  const s = new KtapStream();
  for (const l of ['KTAP version 1', '1..2', '    KTAP version 1', '    # Subtest: timers', '    1..3', '    ok 1 a']) s.push(l);
  return s.end('reboot: Power down').tests;
}

describe('kselftest after a kernel that died', () => {
  it('names the test the kernel died in and what is left after it', () => {
    const tests = firstBoot();
    expect(leftover(plan, tests)).toEqual({ died: plan[1], rest: [plan[2], plan[3]] });
    const done: TestNode[] = [
      { name: 'timers', status: 'pass', diagnostics: [], children: ['a', 'b', 'c'].map((n) => ({ name: n, status: 'pass', diagnostics: [], children: [] })) },
      { name: 'mm', status: 'pass', diagnostics: [], children: [{ name: 'd', status: 'pass', diagnostics: [], children: [] }] },
    ];
    expect(leftover(plan, done)).toBeNull();
  });

  it('marks it crashed and joins the next boot into one tree that counts every test once', () => {
    const tests = firstBoot();
    const marked = markDied(tests, plan[1]!, 'kernel stopped');
    const second = new KtapStream();
    for (const l of ['KTAP version 1', '1..2', '    KTAP version 1', '    # Subtest: timers', '    1..1', '    not ok 1 c', 'not ok 1 timers', '    KTAP version 1', '    # Subtest: mm', '    1..1', '    ok 1 d', 'ok 2 mm']) second.push(l);
    const joined = appendBoot(marked, second.end().tests);
    expect(joined.map((t) => [t.name, t.status, t.children.map((c) => `${c.name}:${c.status}`)])).toEqual([
      ['timers', 'crash', ['a:pass', 'b:crash', 'c:fail']],
      ['mm', 'pass', ['d:pass']],
    ]);
    expect(joined[0]!.children[1]!.diagnostics[0]).toMatch(/the kernel died while timers:b ran: kernel stopped/);
    expect(summarize(joined)).toEqual({ passed: 2, failed: 1, skipped: 0, crashed: 1 });
  });
});
