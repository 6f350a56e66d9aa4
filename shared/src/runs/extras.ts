/**
 * A run whose series touches mm/ also runs our mm exerciser (the kselftest target nommu-ci/mm,
 * kernel-images/rootfs/kselftest/mm/) on both kernels, base and series: four more jobs, the
 * run's extra cells. Each one's results join the KUnit cell of the same side and kernel when the
 * run's cells are loaded (loadCells), so the verdict, every report and the dashboard compare them
 * leaf by leaf as they compare KUnit tests (`nommu-ci/mm.mappings.<case>`): a case the series
 * breaks is a new failure, a known no-MMU bug failing on both sides is still failing.
 *
 * Kept apart from model.ts and the run processor, which only see the merged cells.
 */
import type { JobRecord, JobRequest } from '../job.js';
import type { TestNode } from '../result.js';
import type { Cell, CellData, RunRecord, RunSeries } from './model.js';

export const MM_TARGET = 'nommu-ci/mm';

/** An extra cell: a cell of the matrix, run as a kselftest job of one target. */
export type ExtraCell = Cell & { target: string };

/** A test path from an extra cell's results (prefix jobs of per_patch narrowing do not run them). */
export function fromExtraCell(path: string): boolean {
  return path === MM_TARGET || path.startsWith(`${MM_TARGET}.`);
}

/** The series changes a file under mm/. */
export function touchesMm(series: RunSeries): boolean {
  return series.patches.some((p) => p.files.some((f) => f.startsWith('mm/')));
}

/** The extra cells a run of `series` gets, with fresh job ids from `newId`. */
export function extraCells(series: RunSeries, newId: () => string): ExtraCell[] {
  if (!touchesMm(series)) return [];
  return [
    { key: 'base-nommu', series: false, mmu: false, job: newId(), target: MM_TARGET },
    { key: 'base-mmu', series: false, mmu: true, job: newId(), target: MM_TARGET },
    { key: 'series-nommu', series: true, mmu: false, job: newId(), target: MM_TARGET },
    { key: 'series-mmu', series: true, mmu: true, job: newId(), target: MM_TARGET },
  ];
}

/** The kselftest job request of an extra cell: the run's kernel, Kconfig additions, timeout and coverage. */
export function extraRequest(run: Pick<RunRecord, 'kernel' | 'options'>, cell: ExtraCell, patch: string | undefined): JobRequest {
  const o = run.options;
  return {
    kind: 'kselftest',
    kernel: run.kernel,
    mmu: cell.mmu,
    targets: [cell.target],
    ...(patch !== undefined ? { patch } : {}),
    ...(o.kconfig_add ? { kconfig_add: o.kconfig_add } : {}),
    ...(o.timeout_s ? { timeout_s: o.timeout_s } : {}),
    ...(o.coverage ? { coverage: true } : {}),
  };
}

const FINAL: ReadonlySet<JobRecord['state']> = new Set(['passed', 'failed', 'error', 'canceled']);

/**
 * What an extra job adds to its cell's result tree: its own results; a job that ended without
 * any (failed at build or boot, error) is one failed leaf naming the target and why, so the
 * comparison sees the exerciser did not run rather than nothing.
 */
function extraResults(d: CellData): TestNode[] {
  if (d.results && d.results.length > 0) return d.results;
  const r = d.record;
  if (!r || !FINAL.has(r.state)) return [];
  const target = (d.cell as ExtraCell).target;
  return [{ name: target, status: 'fail', reason: `${target} did not run: ${r.state}${r.stage ? ` at ${r.stage}` : ''}${r.message ? `: ${r.message}` : ''}`, diagnostics: [], children: [] }];
}

/**
 * The run's cells with each extra cell's results added to its KUnit cell (same side and kernel).
 * A cell is final only when both of its jobs are: while its KUnit job has ended and the extra job
 * has not, the cell is running (one of its jobs ran), so readers do not compute a verdict
 * without the extra results.
 */
export function mergeExtras(cells: readonly CellData[], extras: readonly CellData[]): CellData[] {
  return cells.map((c) => {
    const mine = extras.filter((e) => e.cell.mmu === c.cell.mmu && 'series' in e.cell && 'series' in c.cell && e.cell.series === c.cell.series);
    if (mine.length === 0) return c;
    const pending = mine.find((e) => e.record && !FINAL.has(e.record.state));
    const record = c.record && FINAL.has(c.record.state) && pending ? { ...c.record, state: 'running' as const } : c.record;
    return { ...c, record, results: c.results === null && mine.every((e) => e.results === null) ? null : [...(c.results ?? []), ...mine.flatMap(extraResults)] };
  });
}
