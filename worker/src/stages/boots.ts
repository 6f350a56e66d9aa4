/**
 * One job's boots: usually one. When the kernel dies in a test and the job's tests are
 * independent programs (kselftest), the plan says how to boot again for the tests after it;
 * the results of all boots are joined into one tree, and the KTAP stream says where one boot
 * ended and the next began.
 */
import { summarize, type Summary, type TestNode } from '@nommu-ci/shared';
import { StageError } from '../errors.js';
import { appendBoot } from '../kselftest/resume.js';
import type { Mount } from '../sandbox.js';
import type { BootOutcome } from './boot.js';
import type { ConsoleReader } from './console-readers.js';

/** How to boot a job's kernel and read it. */
export interface BootPlan {
  args: string[];
  mounts?: Mount[];
  reader: ConsoleReader;
  idleMs?: number;
  /**
   * After a boot whose KTAP stopped short (the kernel died in a test): the results so far with
   * that test marked, and the boot for the tests after it (null when none are left). Absent
   * where tests are not independent (KUnit suites and boot selftests run inside the kernel).
   */
  resume?: (tests: readonly TestNode[], reason: string) => Resumption | null;
}

export interface Resumption {
  tests: TestNode[];
  next: BootPlan | null;
  /** Said in the KTAP stream and the job's message. */
  note: string;
}

export interface BootsOutcome {
  tests: TestNode[];
  summary: Summary;
  /** What happened between boots, for the job's message. */
  notes: string[];
  /** The last boot's outcome. */
  last: BootOutcome;
  /** How the tests were run, for the message of a job that passed (sharding, reused results). */
  info?: string[];
}

/** Boots with `first`, then again as long as the plan resumes after a kernel that died. */
export async function bootAll(
  first: BootPlan,
  bootWith: (plan: BootPlan, n: number) => Promise<BootOutcome>,
  appendTap: (lines: string[]) => Promise<void>,
): Promise<BootsOutcome> {
  let last = await bootWith(first, 1);
  let tests = last.result.tests;
  let summary = last.result.summary;
  const notes: string[] = [];
  for (let n = 2, current = first; current.resume && !last.result.complete; n++) {
    const r = current.resume(tests, last.problem ?? 'the kernel stopped before its tests ended');
    if (!r) break;
    tests = r.tests;
    summary = summarize(tests);
    notes.push(r.note);
    if (!r.next) break;
    await appendTap([`# nommu-ci: ${r.note}`]);
    try {
      last = await bootWith(r.next, n);
    } catch (e) {
      if (!(e instanceof StageError)) throw e;
      notes.push(`boot ${n}: ${e.message}`);
      break;
    }
    tests = appendBoot(tests, last.result.tests);
    summary = summarize(tests);
    current = r.next;
  }
  return { tests, summary, notes, last };
}
