/** A job's and a run's coverage from their tracefiles and patches. */
import { parseMbox } from '../mbox.js';
import { changedCoverage } from './changed-coverage.js';
import { changedLines, type ChangedFile } from './changed-lines.js';
import type { JobCoverage, KernelCoverage, RunCoverage } from './model.js';
import { parseTracefile, tracefileTotals, TracefileError } from './tracefile.js';

/**
 * The changed lines of the files gcov can instrument: C sources and the headers they inline
 * from. A Kconfig, Makefile or document line has nothing to execute, and would otherwise read
 * as a file "not built".
 */
function changedCode(mbox: string): ChangedFile[] {
  return changedLines(parseMbox(mbox).patches).filter((f) => /\.[ch]$/.test(f.path));
}

/** Throws TracefileError for a tracefile that cannot be used. */
export function jobCoverage(tracefile: string, patch: string | undefined): JobCoverage {
  const trace = parseTracefile(tracefile);
  return { totals: tracefileTotals(trace), changed: patch === undefined ? null : changedCoverage(changedCode(patch), trace) };
}

/** A series job of a run: its tracefile, or why it has none. */
export type SeriesTrace = { mmu: boolean; job: string } & ({ tracefile: string } | { tracefile: null; missing: string });

export function runCoverage(mbox: string, kernels: readonly SeriesTrace[]): RunCoverage {
  const changed = changedCode(mbox);
  return { files: changed.map((c) => c.path), kernels: kernels.map((k) => kernelCoverage(k, changed)) };
}

function kernelCoverage(k: SeriesTrace, changed: readonly ChangedFile[]): KernelCoverage {
  const none = (missing: string): KernelCoverage => ({ mmu: k.mmu, job: k.job, totals: null, files: [], missing });
  if (k.tracefile === null) return none(k.missing);
  try {
    const trace = parseTracefile(k.tracefile);
    return { mmu: k.mmu, job: k.job, totals: tracefileTotals(trace), files: changedCoverage(changed, trace), missing: null };
  } catch (e) {
    if (e instanceof TracefileError) return none(`unreadable tracefile: ${e.message}`);
    throw e;
  }
}
