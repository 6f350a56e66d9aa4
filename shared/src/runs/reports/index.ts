/** Report formatters: pure functions of a run (and, for the full formats, its cells' data). */
import type { CellData, RunRecord } from '../model.js';
import type { ReportOptions } from './common.js';
import { emailReport } from './email.js';
import { jsonReport } from './json.js';
import { kcidbReport } from './kcidb.js';
import { markdownReport } from './markdown.js';
import { patchworkCheck } from './patchwork.js';

export * from './common.js';
export { emailReport, type EmailReport } from './email.js';
export { jsonReport } from './json.js';
export { kcidbReport, kcidbPathSegment, patchsetHash, KCIDB_ORIGIN, KCIDB_VERSION, type KcidbData } from './kcidb.js';
export { markdownReport } from './markdown.js';
export { patchworkCheck, PATCHWORK_CONTEXT, type PatchworkCheck } from './patchwork.js';

export const REPORT_FORMATS = ['markdown', 'email', 'patchwork', 'kcidb', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** A report as an HTTP body: its content type and text. */
export function renderReport(format: ReportFormat, run: RunRecord, cells: readonly CellData[], o: ReportOptions, patch?: number): { type: string; body: string } {
  switch (format) {
    case 'markdown':
      return { type: 'text/markdown; charset=utf-8', body: markdownReport(run, o) };
    case 'email':
      return { type: 'text/plain; charset=utf-8', body: emailReport(run, o).text };
    case 'patchwork':
      return { type: 'application/json; charset=utf-8', body: JSON.stringify(patchworkCheck(run, o, patch), null, 2) };
    case 'kcidb':
      return { type: 'application/json; charset=utf-8', body: JSON.stringify(kcidbReport(run, cells, o), null, 2) };
    case 'json':
      return { type: 'application/json; charset=utf-8', body: JSON.stringify(jsonReport(run, cells, o), null, 2) };
  }
}
