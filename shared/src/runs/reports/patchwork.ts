/**
 * The body of a patchwork check (REST API: POST /api/patches/<id>/checks/): `state` one of
 * pending/success/warning/fail, `context` a slug naming the checker, `description` one line,
 * `target_url` where the details are.
 */
import type { RunRecord } from '../model.js';
import { runUrl, type ReportOptions } from './common.js';

export type PatchworkState = 'pending' | 'success' | 'warning' | 'fail';

export interface PatchworkCheck {
  state: PatchworkState;
  context: string;
  description: string;
  target_url: string;
}

export const PATCHWORK_CONTEXT = 'nommu-ci';

export function patchworkCheck(run: RunRecord, o: ReportOptions): PatchworkCheck {
  const v = run.verdict;
  let state: PatchworkState;
  let description: string;
  if (!v) {
    state = 'pending';
    description = `nommu-ci: run ${run.state} (base and series, no-MMU and MMU)`;
  } else {
    state = v.outcome === 'pass' ? 'success' : v.outcome === 'regression' ? 'fail' : 'warning';
    const bad = (run.blame ?? []).filter((b) => b.patch !== null).map((b) => `patch ${b.patch}/${run.series.patches.length} on ${b.mmu ? 'MMU' : 'no-MMU'}`);
    const blame = bad.length ? ` (first bad: ${bad.join(', ')})` : '';
    description = `${v.headline}${blame}`;
  }
  // Patchwork shows the description in one table cell: keep it short and on one line.
  description = description.replace(/\s+/g, ' ').trim();
  if (description.length > 250) description = description.slice(0, 247) + '...';
  return { state, context: PATCHWORK_CONTEXT, description, target_url: `${runUrl(o, run.id)}/report?format=markdown` };
}
