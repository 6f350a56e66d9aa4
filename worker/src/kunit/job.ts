/**
 * How a KUnit job's kernel is run, once it is built: in one kernel running every suite in turn
 * (the serial run, `shards: 1`, which is what kunit.py does), or sharded (sharded.ts) with time
 * travel where measured safe (time-modes.ts), isolated per suite or test, list-only, or taking
 * a base result measured before (reuse.ts). Chooses, and keeps what later jobs learn from:
 * per-suite durations and base results.
 */
import { availableParallelism } from 'node:os';
import type { Redis } from 'ioredis';
import { summarize, type JobEvent, type KunitJobRequest, type ListedSuite, type TestNode } from '@nommu-ci/shared';
import type { BootsOutcome } from '../stages/boots.js';
import type { BootOutcome } from '../stages/boot.js';
import { compilerVersion } from '../runs/processor.js';
import { loadDurations, saveDurations } from './history.js';
import { baseKey, reusableSuites, storeBase } from './reuse.js';
import { listSuites, runSharded, type KunitSelection } from './sharded.js';
import { timeModeOf } from './time-modes.js';

/**
 * Kernels a KUnit job runs side by side unless it sets `shards`: the cores this worker may use
 * (its CPU affinity) shared among the jobs it runs at once, at least 1.
 */
export const KUNIT_SHARDS = Number(
  process.env.NOMMU_CI_KUNIT_SHARDS ?? Math.max(1, Math.floor(availableParallelism() / Number(process.env.NOMMU_CI_CONCURRENCY ?? 1))),
);

export function selectionOf(r: KunitJobRequest): KunitSelection {
  return { filterGlob: r.filter_glob, filter: r.filter, filterAction: r.filter_action };
}

export function shardsFor(r: KunitJobRequest): number {
  return r.shards ?? KUNIT_SHARDS;
}

/** Serial: today's single boot, as kunit.py runs it. */
export function runsSerially(r: KunitJobRequest): boolean {
  return shardsFor(r) <= 1 && !r.isolate && !r.list_only && !r.reuse_base_result;
}

export interface KunitRunContext {
  request: KunitJobRequest;
  jobId: string;
  redis: Redis;
  /** Names the kernel: source, version, series (or mmu). */
  kernelLabel: string;
  configHash: string;
  /** CONFIG_UML_TIME_TRAVEL_SUPPORT=y in the built .config. */
  timeTravel: boolean;
  patched: boolean;
  kernelDir: string;
  tmpDir: string;
  consoleLog: string;
  signal: AbortSignal;
  deadline: number;
  sink: { appendTap(lines: string[]): Promise<void>; event(e: JobEvent): Promise<void> };
  onKtap: () => void;
  onProgress: (done: number, total: number) => void;
  log: (msg: string) => void;
  /** Coverage jobs: where every boot writes its .gcda files. */
  gcovDir?: string;
}

export async function runKunit(c: KunitRunContext): Promise<BootsOutcome> {
  const r = c.request;
  const selection = selectionOf(r);
  if (r.list_only) return listOnly(c, selection);
  const key = baseKey({
    kernel: c.kernelLabel,
    config: c.configHash,
    filter_glob: r.filter_glob,
    filter: r.filter,
    filter_action: r.filter_action,
    isolate: r.isolate,
    compiler: compilerVersion(),
  });
  // A suite taken from an earlier job would add no line to this job's coverage.
  const reuse = !c.patched && r.reuse_base_result && !r.coverage ? await reusableSuites(c.redis, key) : null;
  const history = await loadDurations(c.redis, c.kernelLabel, c.configHash);
  const out = await runSharded({
    kernelDir: c.kernelDir,
    tmpDir: c.tmpDir,
    consoleLog: c.consoleLog,
    signal: c.signal,
    deadline: c.deadline,
    name: c.jobId,
    sink: c.sink,
    selection,
    shards: shardsFor(r),
    isolate: r.isolate,
    timeTravel: c.timeTravel,
    modeOf: (s) => timeModeOf(s),
    history,
    known: reuse?.suites,
    onKtap: c.onKtap,
    onProgress: c.onProgress,
    gcovDir: c.gcovDir,
  });
  const info: string[] = [];
  if (reuse && reuse.suites.size > 0) info.push(`${reuse.suites.size} of ${out.listed.length} suites taken from base job ${reuse.from}`);
  if (out.boots > 0) info.push(`${out.listed.length} suites in ${out.boots} boots on ${shardsFor(r)} shards`);
  if (!r.isolate) await saveDurations(c.redis, c.kernelLabel, c.configHash, out.durations).catch((e: unknown) => c.log(`suite durations not saved: ${String(e)}`));
  if (!c.patched) await storeBase(c.redis, key, c.jobId, out.tests, out.blocks).catch((e: unknown) => c.log(`base result not stored: ${String(e)}`));
  return { ...out, info };
}

/** The tests as a KTAP document of skipped tests ("listed, not run"), and the same as the tree. */
async function listOnly(c: KunitRunContext, selection: KunitSelection): Promise<BootsOutcome> {
  const listed = await listSuites({ ...c, name: c.jobId, selection });
  c.onKtap();
  const lines = listingKtap(listed);
  await c.sink.appendTap(lines);
  const tests: TestNode[] = listed.map((s) => ({
    name: s.name,
    status: 'skip',
    reason: 'listed, not run',
    diagnostics: [],
    planned: s.tests.length,
    children: s.tests.map((t) => ({ name: t, status: 'skip', reason: 'listed, not run', diagnostics: [], children: [] })),
  }));
  const summary = summarize(tests, listed.length);
  const last: BootOutcome = {
    result: { version: 'KTAP version 1', tests, summary, errors: [], complete: true, planned: listed.length },
    problem: null,
    ktapLines: lines.length,
    exit: { code: 0, signal: null, killed: null, oom: false, forksRefused: 0, pidsMax: 0, setupError: null, ms: 0 },
  };
  return { tests, summary, notes: [], last };
}

export function listingKtap(listed: readonly ListedSuite[]): string[] {
  const out = ['KTAP version 1', `1..${listed.length}`];
  listed.forEach((s, i) => {
    out.push('    KTAP version 1', `    # Subtest: ${s.name}`, `    1..${s.tests.length}`);
    s.tests.forEach((t, j) => out.push(`    ok ${j + 1} ${t} # SKIP listed, not run`));
    out.push(`ok ${i + 1} ${s.name} # SKIP listed, not run`);
  });
  return out;
}
