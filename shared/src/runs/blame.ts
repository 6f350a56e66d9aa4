/**
 * Per-patch narrowing (`per_patch: true`): for each kernel with a regression, the first one is
 * bisected through prefixes of the series (patches 1..k, k < n; the base is prefix 0 and the whole
 * series prefix n), as git bisect does: about log2(n) builds per kernel, each an incremental
 * rebuild of the base. The shortest prefix that shows the failure names the patch that introduced
 * it. Pure: the run processor queues the prefix jobs and feeds their data here.
 */
import type { Blame, CellData, RunSeries } from './model.js';
import { compareTests, type Verdict } from './verdict.js';
import { fromExtraCell } from './extras.js';

export interface NarrowTarget {
  mmu: boolean;
  kind: 'build' | 'boot' | 'test';
  /** The test path, for kind "test". */
  path?: string;
  what: string;
}

/**
 * The first regression of each kernel that has one (an apply failure already names its patch).
 * Not one in an extra cell's results (extras.ts): the prefix jobs are KUnit jobs, which cannot show it.
 */
export function narrowTargets(v: Verdict): NarrowTarget[] {
  if (v.apply) return [];
  const out: NarrowTarget[] = [];
  for (const k of v.kernels) {
    if (k.build) out.push({ mmu: k.mmu, kind: 'build', what: `${k.build.stage} breakage${k.build.locations[0] ? ` at ${k.build.locations[0].file}:${k.build.locations[0].line}` : ''}` });
    else if (k.boot) out.push({ mmu: k.mmu, kind: 'boot', what: 'boot failure' });
    else {
      const t = k.tests.find((x) => x.regression && !fromExtraCell(x.path));
      if (t) out.push({ mmu: k.mmu, kind: 'test', path: t.path, what: `${t.path} (${t.kind})` });
    }
  }
  return out;
}

/** Whether a prefix cell shows the target failure: null when its job did not end with a result. */
export function showsFailure(t: NarrowTarget, prefix: CellData, base: CellData | undefined): boolean | null {
  const r = prefix.record;
  if (!r || r.state === 'error' || r.state === 'canceled' || r.state === 'queued' || r.state === 'building' || r.state === 'booting' || r.state === 'running') return null;
  if (r.state === 'failed' && r.stage === 'patch') return null;
  const buildFailed = r.state === 'failed' && (r.stage === 'build' || r.stage === 'config');
  if (t.kind === 'build') return buildFailed;
  if (buildFailed) return null; // a different failure hides this one
  if (t.kind === 'boot') return r.state === 'failed' && r.stage === 'boot' && !(prefix.results && prefix.results.length > 0);
  if (!prefix.results || !base?.results) return null;
  return compareTests(base.results, prefix.results).some((c) => c.path === t.path && c.regression);
}

/** The blame of one target from the prefixes tried (in any order). */
export function blameFrom(t: NarrowTarget, series: RunSeries, tried: { patches: number; data: CellData }[], base: CellData | undefined): Blame {
  const n = series.patches.length;
  const results = tried
    .map((x) => ({ patches: x.patches, job: x.data.cell.job, shows: showsFailure(t, x.data, base) }))
    .sort((a, b) => a.patches - b.patches);
  let patch: number | null = n;
  for (const x of results) {
    if (x.shows === null) {
      patch = null;
      break;
    }
    if (x.shows) {
      patch = x.patches;
      break;
    }
  }
  return {
    mmu: t.mmu,
    what: t.what,
    patch,
    subject: patch ? (series.patches[patch - 1]?.rawSubject ?? null) : null,
    tried: results.map((x) => ({ patches: x.patches, failed: x.shows === true, job: x.job })),
  };
}

/**
 * The next prefix jobs of the bisection, one per target still open: for each kernel, `lo` is the
 * longest prefix known not to show the failure (0: the base) and `hi` the shortest known to show it
 * (n: the whole series); while hi - lo > 1 the midpoint is tried. Stateless: computed from the
 * prefixes tried so far, so the run processor can be re-entered at any point.
 */
export function nextPrefixes(
  targets: readonly NarrowTarget[],
  n: number,
  tried: readonly { patches: number; mmu: boolean; data: CellData }[],
  bases: readonly CellData[],
): { mmu: boolean; patches: number }[] {
  const next: { mmu: boolean; patches: number }[] = [];
  for (const t of targets) {
    const base = bases.find((b) => 'key' in b.cell && !b.cell.series && b.cell.mmu === t.mmu);
    let lo = 0;
    let hi = n;
    let open = true;
    const mine = tried.filter((x) => x.mmu === t.mmu);
    for (const x of mine) {
      const shows = showsFailure(t, x.data, base);
      if (shows === null) {
        open = false; // a prefix that did not end with a result: stop (blameFrom says null)
        break;
      }
      if (shows) hi = Math.min(hi, x.patches);
      else lo = Math.max(lo, x.patches);
    }
    if (!open || hi - lo <= 1) continue;
    const mid = Math.floor((lo + hi) / 2);
    if (!mine.some((x) => x.patches === mid)) next.push({ mmu: t.mmu, patches: mid });
  }
  return next;
}
