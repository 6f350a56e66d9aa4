/**
 * Coverage in words, the same in every report: per file and kernel, how many changed lines ran,
 * and the changed lines no test executed, as ranges. A changed line with code that did not run is
 * always named, never folded into a count that reads as a pass.
 */
import type { ChangedFileCoverage, JobCoverage, KernelCoverage, RunCoverage } from './model.js';
import { rangesText } from './ranges.js';

const kernelName = (mmu: boolean) => (mmu ? 'MMU' : 'no-MMU');

/** `12 of 15 changed lines executed`, `not built`, or that none of the changed lines is code. */
export function fileCoverageText(f: ChangedFileCoverage): string {
  if (!f.built) return 'not built';
  const plural = (n: number) => (n === 1 ? 'line' : 'lines');
  if (f.instrumented_lines === 0) return `no code among its ${f.changed_lines} changed ${plural(f.changed_lines)}`;
  return `${f.executed_lines} of ${f.instrumented_lines} changed ${plural(f.instrumented_lines)} executed`;
}

/** `mm/nommu.c:120-124, 130 not executed by any test` (null when every changed line with code ran). */
export function notExecutedText(f: ChangedFileCoverage): string | null {
  return f.not_executed.length ? `${f.file}:${rangesText(f.not_executed)} not executed by any test` : null;
}

function onKernel(k: KernelCoverage, file: string): string {
  if (k.missing !== null) return `not measured on ${kernelName(k.mmu)}`;
  const f = k.files.find((x) => x.file === file);
  return f ? `${fileCoverageText(f)} on ${kernelName(k.mmu)}` : `not measured on ${kernelName(k.mmu)}`;
}

/** Per file: `mm/nommu.c: 12 of 15 changed lines executed on no-MMU; not built on MMU`. */
export function runCoverageLines(c: RunCoverage): string[] {
  return c.files.map((file) => `${file}: ${c.kernels.map((k) => onKernel(k, file)).join('; ')}`);
}

/** Per kernel and file with changed lines no test ran: `mm/nommu.c:120-124 not executed by any test on no-MMU`. */
export function runNotExecutedLines(c: RunCoverage): string[] {
  return c.kernels.flatMap((k) => k.files.map((f) => notExecutedText(f)).filter((t): t is string => t !== null).map((t) => `${t} on ${kernelName(k.mmu)}`));
}

/** Why a kernel has no measurement: `MMU: no tracefile (...)`. */
export function runCoverageGaps(c: RunCoverage): string[] {
  return c.kernels.filter((k) => k.missing !== null).map((k) => `${kernelName(k.mmu)}: ${k.missing}`);
}

/** One line for tight places (a patchwork check): changed lines executed per kernel, summed over files. */
export function runCoverageBrief(c: RunCoverage): string {
  if (c.files.length === 0) return 'no changed line of a C source or header';
  const parts = c.kernels.map((k) => {
    if (k.missing !== null) return `not measured on ${kernelName(k.mmu)}`;
    const built = k.files.filter((f) => f.built);
    if (built.length === 0) return `not built on ${kernelName(k.mmu)}`;
    const ran = built.reduce((n, f) => n + f.executed_lines, 0);
    const code = built.reduce((n, f) => n + f.instrumented_lines, 0);
    if (code === 0) return `no changed line with code on ${kernelName(k.mmu)}`;
    return `${ran} of ${code} on ${kernelName(k.mmu)}`;
  });
  return `changed lines executed: ${parts.join(', ')}`;
}

/** A job's coverage for a terminal: the totals, each changed file, and the changed lines no test ran. */
export function jobCoverageText(c: JobCoverage): string {
  const t = c.totals;
  const pct = t.lines_found ? ` (${((100 * t.lines_hit) / t.lines_found).toFixed(1)}%)` : '';
  const out = [`coverage: ${t.lines_hit} of ${t.lines_found} instrumented lines executed in ${t.files} files${pct}`];
  if (c.changed !== null) {
    if (c.changed.length === 0) out.push('the patch changes no line of a C source or header');
    for (const f of c.changed) out.push(`${f.file}: ${fileCoverageText(f)}`);
    for (const f of c.changed) {
      const missed = notExecutedText(f);
      if (missed) out.push(missed);
    }
  }
  return out.join('\n') + '\n';
}
