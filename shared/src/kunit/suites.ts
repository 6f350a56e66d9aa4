/**
 * A KUnit boot's KTAP cut into whole suites, so that suites from kernels running side by side can
 * be streamed as one valid KTAP document: each suite's lines go out together once its top-level
 * result line arrives, renumbered in the order they go out (`ok 3 name` is the third suite the
 * merged stream reports, whichever kernel ran it).
 */
import { classify } from '../ktap/lines.js';

export interface SuiteBlock {
  name: string;
  /** The suite's lines, its own top-level result line last (absent when the kernel died in it). */
  lines: string[];
  complete: boolean;
}

const TOP_RESULT = /^(ok|not ok) [0-9]+\b/;

export class SuiteSplitter {
  private header = true;
  private lines: string[] = [];
  private name = '';

  /** One KTAP line of the boot; returns the suite it completes, if any. */
  push(line: string): SuiteBlock | null {
    const c = classify(line);
    if (this.header) {
      // The boot's own `KTAP version 1` and `1..N`: the merged stream has one header of its own.
      if ((c.kind === 'version' || c.kind === 'plan') && c.indent === 0) return null;
      this.header = false;
    }
    if (c.kind === 'subtest' && this.name === '') this.name = c.name;
    if (c.kind === 'result' && c.indent === 0 && TOP_RESULT.test(line)) {
      const block: SuiteBlock = { name: c.name || this.name, lines: [...this.lines, line], complete: true };
      this.lines = [];
      this.name = '';
      return block;
    }
    this.lines.push(line);
    return null;
  }

  /** What was left when the boot ended: the suite the kernel died in, or null. */
  end(): SuiteBlock | null {
    if (this.lines.length === 0 || this.name === '') return null;
    const block: SuiteBlock = { name: this.name, lines: this.lines, complete: false };
    this.lines = [];
    this.name = '';
    return block;
  }

  /** Whether a suite has started and not ended. */
  get open(): boolean {
    return this.name !== '';
  }
}

/** The block's lines with its top-level result numbered `n` (a crashed suite gets a `not ok` line saying why). */
export function numbered(block: SuiteBlock, n: number, crash?: string): string[] {
  if (!block.complete) {
    return [...block.lines, `# nommu-ci: suite ${block.name} did not finish: ${crash ?? 'the kernel stopped'}`, `not ok ${n} ${block.name}`];
  }
  const last = block.lines[block.lines.length - 1]!;
  return [...block.lines.slice(0, -1), last.replace(/^(ok|not ok) [0-9]+/, `$1 ${n}`)];
}
