/** Our full model: the run record (verdict, blame, cells) with each cell's job record and links. */
import type { CellData, RunRecord } from '../model.js';
import { jobUrl, runUrl, type ReportOptions } from './common.js';

export function jsonReport(run: RunRecord, cells: readonly CellData[], o: ReportOptions) {
  return {
    ...run,
    url: runUrl(o, run.id),
    jobs: Object.fromEntries(cells.map((d) => [d.cell.job, { url: jobUrl(o, d.cell.job), record: d.record }])),
  };
}
