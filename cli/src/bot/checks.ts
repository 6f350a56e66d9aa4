/**
 * The check the bot posts on each patch of a series once its run has ended, NIPA-style: one
 * context, the state by what the tree *at that patch* does, a one-line description naming the
 * verdict, and a link to the run.
 *
 *  - no regression: success on every patch;
 *  - a regression narrowed to a patch (per_patch): success before it, fail on it ("breaks only
 *    the no-MMU build: mm/nommu.c:96 ...") and fail on every later patch, which is tested on top
 *    of it and still has it ("still broken: tested on top of 2/3: ...");
 *  - a regression not narrowed (series longer than the per-patch limit): fail on every patch;
 *  - only tests the operator listed as flaky regressed: pending (not a verdict), and a run that
 *    could not finish (infrastructure) is pending too;
 *  - the series does not apply: warning on every patch, saying which patch and where.
 *
 * "Never downgraded" is the poster's rule (patchwork-bot.ts): a pending check is not posted over
 * a success or fail this bot already posted on the patch.
 */
import { changeText, type RunRecord, type Verdict } from '@nommu-ci/shared';

export type CheckState = 'pending' | 'success' | 'warning' | 'fail';

export interface PatchCheck {
  state: CheckState;
  description: string;
}

/** Patchwork shows the description in one table cell. */
const MAX_DESCRIPTION = 250;

function oneLine(s: string): string {
  const d = s.replace(/\s+/g, ' ').trim();
  return d.length > MAX_DESCRIPTION ? `${d.slice(0, MAX_DESCRIPTION - 3)}...` : d;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** What broke on one kernel, with the first compiler error's place when the build broke. */
function kernelText(v: Verdict, mmu: boolean): string {
  const k = v.kernels.find((x) => x.mmu === mmu);
  if (!k) return 'regression';
  if (k.build) {
    const loc = k.build.locations[0];
    const where = loc ? `: ${loc.file}:${loc.line} ${loc.message}` : k.build.errors[0] ? `: ${k.build.errors[0]}` : '';
    return `${v.breaksOnlyNoMmu && !mmu ? 'breaks only the no-MMU build' : `breaks the ${k.label} ${k.build.stage}`}${where}`;
  }
  const failing = k.tests.filter((t) => t.regression).map((t) => t.path);
  const text = `${k.label}: ${changeText(k, v.breaksOnlyNoMmu)}`;
  return failing.length ? `${text} (${failing.slice(0, 3).join(', ')}${failing.length > 3 ? ', ...' : ''})` : text;
}

/** The whole verdict in a line: each regressed kernel's text. */
function verdictText(v: Verdict): string {
  const regressed = v.kernels.filter((k) => k.outcome === 'regression');
  if (v.breaksOnlyNoMmu) {
    return [kernelText(v, false), ...regressed.filter((k) => k.mmu && !k.build).map((k) => kernelText(v, k.mmu))].join('; ');
  }
  return regressed.length ? regressed.map((k) => kernelText(v, k.mmu)).join('; ') : v.headline;
}

/** Regressions that are only test changes of tests matching the flaky globs. */
function onlyFlaky(v: Verdict, flaky: readonly string[]): string[] | null {
  if (flaky.length === 0) return null;
  const res = flaky.map(globToRegExp);
  if (v.apply || v.kernels.some((k) => k.build || k.boot)) return null;
  const paths = v.kernels.flatMap((k) => k.tests.filter((t) => t.regression).map((t) => t.path));
  if (paths.length === 0 || !paths.every((p) => res.some((r) => r.test(p)))) return null;
  return [...new Set(paths)];
}

/** One check per patch of the run's series, in series order. */
export function patchChecks(run: RunRecord, flaky: readonly string[] = []): PatchCheck[] {
  const n = run.series.patches.length;
  const all = (state: CheckState, description: string) => Array.from({ length: n }, () => ({ state, description: oneLine(description) }));
  const v = run.verdict;
  if (!v) return all('pending', `nommu-ci: run ${run.state}`);
  if (v.apply) {
    const a = v.apply;
    const where = [a.file && `${a.file}${a.line ? `:${a.line}` : ''}`, a.hunk && `hunk ${a.hunk}`].filter(Boolean).join(' ');
    return all('warning', `not tested: patch ${a.patch ?? '?'}/${n} does not apply to ${run.kernel}${where ? ` (${where})` : ''}`);
  }
  if (v.outcome === 'pass') return all('success', `no regression on no-MMU and MMU: ${v.headline}`);
  if (v.outcome === 'error') return all('pending', `not tested to the end: ${v.headline}`);
  const flakyOnly = onlyFlaky(v, flaky);
  if (flakyOnly) return all('pending', `only tests known to be flaky failed (${flakyOnly.join(', ')}); not a verdict`);

  const blamed = (run.blame ?? []).filter((b) => b.patch !== null);
  if (blamed.length === 0) return all('fail', `${verdictText(v)} (not narrowed to a patch)`);
  const first = Math.min(...blamed.map((b) => b.patch!));
  const introduced = (p: number) => blamed.filter((b) => b.patch === p).map((b) => kernelText(v, b.mmu));
  const firstText = introduced(first).join('; ');
  return run.series.patches.map((_, i) => {
    const p = i + 1;
    if (p < first) return { state: 'success' as const, description: oneLine(`no regression up to this patch (the series regresses at ${first}/${n})`) };
    const here = introduced(p);
    if (p === first) return { state: 'fail' as const, description: oneLine(here.join('; ')) };
    const onTop = `tested on top of ${first}/${n}: ${firstText}`;
    return { state: 'fail' as const, description: oneLine(here.length ? `${here.join('; ')}; and ${onTop}` : `still broken: ${onTop}`) };
  });
}
