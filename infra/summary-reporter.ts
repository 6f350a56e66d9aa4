/**
 * Ends a vitest run with one plain line, "N passed, N failed, N skipped", which CI systems that
 * do not know vitest's own summary can read.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
    }
    // After vitest's own summary, so that it is the closing line.
    process.once('exit', () => process.stdout.write(`\nnommu-ci tests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`));
  }
}
