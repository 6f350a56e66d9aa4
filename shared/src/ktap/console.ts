/**
 * Kernel console → KTAP lines: the kernel-specific layer in front of the KTAP parser.
 *
 * Follows kunit_tool's extract_tap_lines (tools/testing/kunit/kunit_parser.py): nothing before
 * the first `KTAP version N` / `TAP version N` line counts (boot noise), the text in front of
 * that version line is the console prefix and is removed from the following lines, and
 * extraction ends at the markers kunit_tool ends at (`reboot: System halted`, `List of all
 * partitions:`, the old no-rootfs `Kernel panic - not syncing: VFS:`), plus the other
 * kunit_shutdown= endings.
 *
 * Added for a CI that must tell a crash from a normal end: lines that say the kernel died or
 * was hurt are remembered in `crash` (the first one). A panic also ends extraction, since no
 * test can report after it; that includes the VFS panic, which old kernels reached after their
 * tests (then nothing is left open and the crash changes no status) but which also cuts tests
 * short (kunit_tool's test_kernel_panic_interrupt.log). An oops-like report (BUG:, Oops, kernel BUG at, ...) does not: on
 * some architectures KUnit survives a fault in a test's thread and goes on, so the report is
 * released as free text, and becomes a diagnostic of the test that was running.
 */

const VERSION = /(KTAP|TAP) version [0-9]+\s*$/;
/** kunit_tool's KTAP_END, plus the other kunit_shutdown= outcomes. Normal ends, not crashes. */
const END = /\s*(List of all partitions:|Kernel panic - not syncing: VFS:|reboot: (System halted|Restarting system|Power down))/;
/** The kernel is gone: nothing after this line can be a test result. */
const FATAL = /Kernel panic - not syncing/;
/** The kernel reported a fault or a hang; it may or may not go on. */
const HURT =
  /(\bBUG: |kernel BUG at |\bOops\b|general protection fault|Unable to handle kernel|Kernel mode fault at addr|INFO: task .* blocked for more than|rcu: INFO: .* detected stalls?)/;
/** kunit_tool also keeps the executor's complaints that come before the version line. */
const EXECUTOR_ERROR = /\s*kunit executor: (.*)$/;
/** `[    1.234567] ` printk time, optionally `[    T1] ` caller id, optionally a `<6>` level first. */
const TIMESTAMP_PREFIX = /^(<\d+>)?(\[[ \t]*[0-9]+\.[0-9]+\])(\[[ \t]*[CT]?[0-9]+\])? ?/;

export class KtapExtractor {
  private started = false;
  private stopped = false;
  private prefix = '';
  private timestamped = false;
  /** Whitespace between the timestamp and the version line (kunit_tool strips it too). */
  private extraIndent = 0;
  private crashLine: string | null = null;

  /** The first crash, panic or oops line seen (without its console prefix), else null. */
  get crash(): string | null {
    return this.crashLine;
  }

  /** True once the version line has been seen. */
  get found(): boolean {
    return this.started;
  }

  /** True once extraction ended (normal end marker or panic); later lines release nothing. */
  get ended(): boolean {
    return this.stopped;
  }

  push(consoleLine: string): string[] {
    if (this.stopped) return [];
    const raw = consoleLine.replace(/[\r\n]+$/, '');
    if (!this.started) {
      const m = VERSION.exec(raw);
      if (m) {
        this.started = true;
        this.prefix = raw.slice(0, m.index);
        const t = TIMESTAMP_PREFIX.exec(this.prefix);
        if (t && /^\s*$/.test(this.prefix.slice(t[0].length))) {
          this.timestamped = true;
          this.extraIndent = this.prefix.length - t[0].length;
        }
        return [raw.slice(m.index).trimEnd()];
      }
      if (this.noteCrash(this.stripAny(raw))) return [];
      const e = EXECUTOR_ERROR.exec(raw);
      return e ? [`kunit executor: ${e[1] ?? ''}`] : [];
    }
    const line = this.strip(raw);
    if (this.noteCrash(line)) return [];
    if (END.test(line)) {
      this.stopped = true;
      return [];
    }
    return [line];
  }

  /** Records a crash line; true if it ends extraction. */
  private noteCrash(line: string): boolean {
    const fatal = FATAL.test(line);
    if (!fatal && !HURT.test(line)) return false;
    if (this.crashLine === null) this.crashLine = line.trim();
    if (fatal) this.stopped = true;
    return fatal;
  }

  private stripAny(line: string): string {
    return line.replace(TIMESTAMP_PREFIX, '');
  }

  private strip(line: string): string {
    if (this.prefix === '') return line;
    // Timestamps change from line to line (and widen after 99999 s): strip by shape.
    if (this.timestamped) return dropSpace(line.replace(TIMESTAMP_PREFIX, ''), this.extraIndent);
    if (line.startsWith(this.prefix)) return line.slice(this.prefix.length);
    // kunit_tool removes as many characters as the prefix had, whatever they are; we only do
    // that for whitespace (the lines of an indented log), and leave foreign lines as they are.
    if (/^\s+$/.test(this.prefix)) return dropSpace(line, this.prefix.length);
    return line;
  }
}

function dropSpace(line: string, n: number): string {
  let i = 0;
  while (i < n && i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  return line.slice(i);
}

/** Convenience: a whole console log → the KTAP lines and the crash line. */
export function extractKtap(consoleLines: Iterable<string>): { lines: string[]; crash: string | null } {
  const x = new KtapExtractor();
  const lines: string[] = [];
  for (const l of consoleLines) lines.push(...x.push(l));
  return { lines, crash: x.crash };
}
