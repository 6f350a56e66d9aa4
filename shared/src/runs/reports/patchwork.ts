/**
 * The body of a patchwork check (REST API: POST /api/patches/<id>/checks/): `state` one of
 * pending/success/warning/fail, `context` a slug naming the checker, `description` one line,
 * `target_url` where the details are.
 */
import { runCoverageBrief } from '../../coverage/text.js';
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

/**
 * The check for the series, or (with `patch`) for one patch of it, as a bot posts one check per
 * patch: with a first bad patch known (per_patch, or the patch that does not apply), the patches
 * before it succeed, it fails, and the ones after it get a warning (tested only on top of it).
 */
export function patchworkCheck(run: RunRecord, o: ReportOptions, patch?: number): PatchworkCheck {
  const v = run.verdict;
  const n = run.series.patches.length;
  const target_url = runUrl(o, run.id);
  const done = (state: PatchworkState, description: string): PatchworkCheck => {
    let d = description.replace(/\s+/g, ' ').trim();
    // Patchwork shows the description in one table cell: keep it short and on one line.
    if (d.length > 250) d = d.slice(0, 247) + '...';
    return { state, context: PATCHWORK_CONTEXT, description: d, target_url };
  };
  if (!v) return done('pending', `nommu-ci: run ${run.state} (base and series, no-MMU and MMU)`);
  const state: PatchworkState = v.outcome === 'pass' ? 'success' : v.outcome === 'regression' ? 'fail' : 'warning';
  const bad = (run.blame ?? []).filter((b) => b.patch !== null).map((b) => ({ patch: b.patch!, what: `${b.what} on ${b.mmu ? 'MMU' : 'no-MMU'}` }));
  if (v.apply?.patch) bad.push({ patch: v.apply.patch, what: 'does not apply' });
  if (patch !== undefined && v.outcome === 'regression' && bad.length > 0) {
    const first = Math.min(...bad.map((b) => b.patch));
    if (patch < first) return done('success', `no regression up to this patch (first bad: ${first}/${n})`);
    const here = bad.filter((b) => b.patch === patch);
    if (here.length) return done('fail', `introduces: ${here.map((b) => b.what).join('; ')}`);
    return done('warning', `tested on top of patch ${first}/${n}, which introduces a regression: ${v.headline}`);
  }
  const blame = bad.length ? ` (first bad: ${bad.map((b) => `patch ${b.patch}/${n}${b.what === 'does not apply' ? '' : ` on ${b.what.split(' on ').pop()}`}`).join(', ')})` : '';
  return done(state, `${v.headline}${blame}${run.coverage ? `; ${runCoverageBrief(run.coverage)}` : ''}`);
}
