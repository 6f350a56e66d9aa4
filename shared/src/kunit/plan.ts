/**
 * Where each KUnit suite runs: which kernel instance (shard), in which boot, in which time mode.
 *
 * A boot runs the suites one glob selects (globs.ts), in the kernel's order, all in one time
 * mode (UML's time-travel is a boot argument). Suites are grouped into boots: a suite expected to
 * take a large share of the run gets a boot of its own; the others, per time mode, are cut into
 * runs of consecutive names of about equal expected time, each covered by a few globs. Boots are
 * then placed longest first on the least loaded shard (LPT). Expected times come from earlier
 * runs of the same kernel and config (Redis); a suite never measured counts a guess per test, so
 * a first run still shards.
 */
import { globMatch, globsFor, suiteGlob } from './globs.js';
import type { ListedSuite } from './list.js';

export type TimeMode = 'real' | 'time-travel';

export interface PlannedBoot {
  /** The kernel's kunit.filter_glob suite part (the caller appends a test glob if any). */
  glob: string;
  suites: string[];
  mode: TimeMode;
  expectMs: number;
}

export interface PlanInput {
  suites: readonly ListedSuite[];
  shards: number;
  /** Measured wall time per suite (ms), where known. */
  history: ReadonlyMap<string, number>;
  modeOf: (suite: string) => TimeMode;
  /** What one more boot costs (ms). */
  bootMs?: number;
  /** Guess for a suite never measured, per test (ms). */
  perTestMs?: number;
}

export const DEFAULT_BOOT_MS = 600;
export const DEFAULT_PER_TEST_MS = 20;

export function expectedMs(s: ListedSuite, history: ReadonlyMap<string, number>, perTestMs = DEFAULT_PER_TEST_MS): number {
  return history.get(s.name) ?? s.tests.length * perTestMs;
}

/** Boots for `wanted` suites of `all` (same mode), cut into about `pieces` runs of consecutive names. */
function bootsOf(all: readonly string[], wanted: ListedSuite[], mode: TimeMode, pieces: number, est: (s: ListedSuite) => number, bootMs: number): PlannedBoot[] {
  if (wanted.length === 0) return [];
  const sorted = [...wanted].sort((a, b) => (a.name < b.name ? -1 : 1));
  const total = sorted.reduce((t, s) => t + est(s), 0);
  const target = total / Math.max(1, pieces);
  const runs: ListedSuite[][] = [];
  let cur: ListedSuite[] = [];
  let acc = 0;
  for (const s of sorted) {
    cur.push(s);
    acc += est(s);
    if (acc >= target && runs.length < pieces - 1) {
      runs.push(cur);
      cur = [];
      acc = 0;
    }
  }
  if (cur.length > 0) runs.push(cur);
  const out: PlannedBoot[] = [];
  for (const run of runs) {
    const names = new Set(run.map((s) => s.name));
    for (const glob of globsFor(all, names)) {
      const suites = run.filter((s) => globMatch(glob, s.name));
      out.push({ glob, suites: suites.map((s) => s.name), mode, expectMs: bootMs + suites.reduce((t, s) => t + est(s), 0) });
    }
  }
  return out;
}

export interface ShardPlan {
  /** Per shard, its boots in the order they run. */
  shards: PlannedBoot[][];
  /** Expected wall time of the slowest shard (ms). */
  expectMs: number;
}

export function planShards(input: PlanInput): ShardPlan {
  const n = Math.max(1, input.shards);
  const bootMs = input.bootMs ?? DEFAULT_BOOT_MS;
  const est = (s: ListedSuite): number => expectedMs(s, input.history, input.perTestMs);
  const all = input.suites.map((s) => s.name);
  const total = input.suites.reduce((t, s) => t + est(s), 0);
  // A suite taking more than a quarter of a shard's share is a boot of its own.
  const big = total / n / 4;
  const alone = input.suites.filter((s) => est(s) > big && n > 1);
  const rest = input.suites.filter((s) => !alone.includes(s));
  const boots: PlannedBoot[] = alone.map((s) => ({ glob: suiteGlob(all, s.name), suites: [s.name], mode: input.modeOf(s.name), expectMs: bootMs + est(s) }));
  for (const mode of ['time-travel', 'real'] as const) {
    const mine = rest.filter((s) => input.modeOf(s.name) === mode);
    const share = mine.reduce((t, s) => t + est(s), 0);
    // As many pieces as shards, fewer when the suites are too quick to be worth a boot each.
    const pieces = Math.max(1, Math.min(n, Math.round(share / (2 * bootMs))));
    boots.push(...bootsOf(all, mine, mode, pieces, est, bootMs));
  }
  const shards: PlannedBoot[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  for (const b of [...boots].sort((a, b) => b.expectMs - a.expectMs)) {
    let k = 0;
    for (let i = 1; i < n; i++) if (load[i]! < load[k]!) k = i;
    shards[k]!.push(b);
    load[k]! += b.expectMs;
  }
  return { shards: shards.filter((s) => s.length > 0), expectMs: Math.max(0, ...load) };
}
