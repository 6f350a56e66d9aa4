/**
 * Boot-time selftests print no KTAP; this turns their console output into KTAP so that they
 * stream, parse and report like KUnit. The kernel runs with initcall_debug, whose
 * "calling"/"returned" lines bracket each test's output and give its return value.
 *
 * Each selftest becomes a KTAP suite with one case, its initcall, opened when the initcall starts
 * (the shape of a one-case KUnit suite, so the parser needs nothing special):
 *       KTAP version 1
 *       # Subtest: maple_tree
 *       1..1
 *       # BUG at check_x:42 (1)                          <- a failure line
 *       # maple_tree: passed 3, failed 1, total 4        <- the summary, as counts
 *       not ok 1 maple_tree_seed
 *   not ok 1 maple_tree
 * A suite whose initcall was running when the kernel died has no result line, so the KTAP
 * parser's crash handling marks it crashed; one that never ran is `not ok` with the reason.
 */
import type { BootSelftest } from './catalog.js';

// Timestamps (CONFIG_PRINTK_TIME) and the level prefixes of lines flushed at panic time.
const PRINTK_PREFIX = /^(<\d>)?(\[\s*\d+\.\d+\]\s?)?/;
const MAX_FAILURE_LINES = 50;

interface Running {
  test: BootSelftest;
  counts: { passed?: number; failed?: number; total?: number } | null;
  failures: number;
}

export class BootSelftestConsole {
  private readonly pending = new Map<string, BootSelftest>();
  private running: Running | null = null;
  private reported = 0;
  private readonly summaryRes: Map<string, RegExp[]>;
  private readonly failureRes: Map<string, RegExp[]>;

  constructor(private readonly selected: readonly BootSelftest[]) {
    for (const t of selected) this.pending.set(t.initcall, t);
    this.summaryRes = new Map(selected.map((t) => [t.name, t.summary.map((r) => new RegExp(r))]));
    this.failureRes = new Map(selected.map((t) => [t.name, t.failure.map((r) => new RegExp(r))]));
  }

  start(): string[] {
    return ['KTAP version 1', `1..${this.selected.length}`];
  }

  /** KTAP lines this console line produces (often none). */
  push(consoleLine: string): string[] {
    const line = consoleLine.replace(PRINTK_PREFIX, '').trimEnd();
    const calling = /^calling\s+([A-Za-z0-9_]+)\+0x/.exec(line);
    if (calling) {
      const test = this.pending.get(calling[1]!);
      if (!test) return [];
      this.pending.delete(test.initcall);
      this.running = { test, counts: null, failures: 0 };
      return ['    KTAP version 1', `    # Subtest: ${test.name}`, '    1..1'];
    }
    const r = this.running;
    if (!r) return [];
    const returned = new RegExp(`^initcall ${r.test.initcall}\\+0x\\S+ returned (-?\\d+) after`).exec(line);
    if (returned) return this.finish(r, Number(returned[1]));
    for (const re of this.summaryRes.get(r.test.name)!) {
      const m = re.exec(line);
      if (m) {
        const g = m.groups ?? {};
        const num = (k: string) => (g[k] === undefined ? undefined : Number(g[k]));
        r.counts = { passed: num('passed'), failed: num('failed'), total: num('total') };
        return [`    # ${line}`];
      }
    }
    if (this.failureRes.get(r.test.name)!.some((re) => re.test(line)) && r.failures++ < MAX_FAILURE_LINES) return [`    # ${line}`];
    return [];
  }

  /**
   * Results for tests that never ran. If one is still running the kernel died in it: it is left
   * open for the parser's crash handling, and the tests after it stay missing, as KUnit suites
   * after a crash do.
   */
  end(): string[] {
    const out: string[] = [];
    if (this.running) return out;
    for (const t of this.pending.values()) {
      this.reported++;
      out.push(`# ${t.name}: its initcall ${t.initcall} never ran (not built in, or the kernel stopped before it)`, `not ok ${this.reported} ${t.name}`);
    }
    this.pending.clear();
    return out;
  }

  private finish(r: Running, ret: number): string[] {
    this.running = null;
    this.reported++;
    const c = r.counts;
    const out: string[] = [];
    let ok = true;
    if (!c) {
      ok = false;
      out.push(`    # ${r.test.name}: no summary line`);
    } else {
      const total = c.total ?? (c.passed ?? 0) + (c.failed ?? 0);
      const failed = c.failed ?? (c.passed !== undefined ? total - c.passed : 0);
      const passed = c.passed ?? total - failed;
      out.push(`    # ${r.test.name}: passed ${passed}, failed ${failed}, total ${total}`);
      if (failed > 0) ok = false;
    }
    if (ret !== 0) {
      out.push(`    # ${r.test.initcall}() returned ${ret}${r.test.return_code ? '' : ' (not a verdict for this test)'}`);
      if (r.test.return_code) ok = false;
    }
    const verdict = ok ? 'ok' : 'not ok';
    out.push(`    ${verdict} 1 ${r.test.initcall}`, `${verdict} ${this.reported} ${r.test.name}`);
    return out;
  }
}
