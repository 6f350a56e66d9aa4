/**
 * A patch's changed lines against one kernel's tracefile: per file, which changed lines ran,
 * which did not, and which the compiler did not instrument (comments, declarations, lines of a
 * `#ifdef` branch not compiled: no DA record). A file with no record at all was not built into
 * that kernel (an `#ifndef CONFIG_MMU` file on the MMU kernel, a driver the config leaves out).
 * Nothing here knows about CONFIG_MMU: each kernel's tracefile says what was compiled and run.
 */
import type { ChangedFile } from './changed-lines.js';
import type { ChangedFileCoverage } from './model.js';
import { toRanges } from './ranges.js';
import type { Tracefile } from './tracefile.js';

export function changedCoverage(changed: readonly ChangedFile[], trace: Tracefile): ChangedFileCoverage[] {
  return changed.map(({ path, lines }) => {
    const hits = trace.get(path);
    const executed: number[] = [];
    const notExecuted: number[] = [];
    const notInstrumented: number[] = [];
    for (const l of lines) {
      const n = hits?.get(l);
      if (n === undefined) notInstrumented.push(l);
      else if (n > 0) executed.push(l);
      else notExecuted.push(l);
    }
    return {
      file: path,
      built: hits !== undefined,
      changed_lines: lines.length,
      instrumented_lines: executed.length + notExecuted.length,
      executed_lines: executed.length,
      executed: toRanges(executed),
      not_executed: toRanges(notExecuted),
      not_instrumented: hits ? toRanges(notInstrumented) : [],
    };
  });
}
