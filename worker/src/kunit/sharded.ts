/**
 * A KUnit job's suites in several kernels at once. The kernel lists its suites
 * (`kunit.action=list`); plan.ts groups them into boots, each selecting its suites with one
 * `kunit.filter_glob` and running in one time mode, placed longest first on `shards` instances
 * of the same binary that boot side by side in the job's sandbox. Each instance's KTAP is cut
 * into whole suites (SuiteSplitter), which go to the job's tap stream as they end, numbered in
 * the order they go out under one `1..N` plan; the stored tree has the suites in the kernel's
 * own order, as a serial run has them.
 *
 * A suite that kills its kernel is reported crashed (its partial results kept, its name in the
 * job's message), and the suites its boot had not reached yet are booted again in a fresh
 * instance, so one crash costs no other suite's results.
 */
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import {
  globMatch,
  globsFor,
  suiteGlob,
  numbered,
  parseKtap,
  parseListing,
  planShards,
  summarize,
  SuiteSplitter,
  type JobEvent,
  type ListedSuite,
  type PlannedBoot,
  type SuiteBlock,
  type TestNode,
  type TimeMode,
} from '@nommu-ci/shared';
import { StageError, throwIfAborted } from '../errors.js';
import { boot, kernelArgs, type BootOutcome } from '../stages/boot.js';
import type { BootsOutcome } from '../stages/boots.js';
import { kunitReader } from '../stages/console-readers.js';

export interface KunitSelection {
  /** The request's filter_glob. */
  filterGlob?: string;
  /** Attribute filter (kunit.filter), e.g. "speed>slow". */
  filter?: string;
  filterAction?: 'skip';
}

/** kernelArgs() plus the attribute filter, as kunit.py's run_kernel adds them. */
export function selectionArgs(sel: KunitSelection, glob = sel.filterGlob): string[] {
  const a = kernelArgs(glob);
  if (sel.filter) a.unshift(`kunit.filter="${sel.filter}"`);
  if (sel.filterAction) a.unshift(`kunit.filter_action=${sel.filterAction}`);
  return a;
}

/**
 * UML's basic time-travel mode: the clock skips forward while the kernel idles, so a sleeping
 * test does not wait, yet runs at real CPU speed, so a test that spins until time passes still
 * ends. `time-travel=inf-cpu` (no wall clock at all) hung lib_ratelimit, crc, blake2s,
 * dma-buf-fence-chain and printk-ringbuffer on 7.2.12 (bench/kunit-time-modes.ts, 2026-12-04).
 */
export const TIME_TRAVEL_ARG = 'time-travel';

export interface ShardedOptions {
  kernelDir: string;
  tmpDir: string;
  /** Host path of console.log: each instance's console is appended to it when it ends. */
  consoleLog: string;
  signal: AbortSignal;
  deadline: number;
  /** Sandbox name prefix (the job id). */
  name: string;
  sink: { appendTap(lines: string[]): Promise<void>; event(e: JobEvent): Promise<void> };
  selection: KunitSelection;
  shards: number;
  /** `suite`: a kernel per suite; `test`: a kernel per test (kunit.py --run_isolated). */
  isolate?: 'suite' | 'test';
  /** Whether the kernel has CONFIG_UML_TIME_TRAVEL_SUPPORT; without it every suite runs in real time. */
  timeTravel: boolean;
  modeOf: (suite: string) => TimeMode;
  /** Measured wall time per suite (ms) from earlier runs; `__boot__` is a boot's own cost. */
  history: ReadonlyMap<string, number>;
  /** Suites already known (a reused base result): not run, their tree and KTAP lines used as they are. */
  known?: ReadonlyMap<string, { node: TestNode; lines: string[] }>;
  onKtap?: () => void;
  onProgress?: (done: number, total: number) => void;
  idleMs?: number;
  /** Every boot's .gcda files go here (coverage jobs). */
  gcovDir?: string;
}

export interface ShardedOutcome extends BootsOutcome {
  /** The suites as listed (what the job was to run). */
  listed: ListedSuite[];
  /** Wall time of each suite that ended, and `__boot__`. */
  durations: Map<string, number>;
  /** Each suite's KTAP lines as streamed (for a later reuse of this result). */
  blocks: Map<string, string[]>;
  boots: number;
}

/** Boots the kernel with kunit.action=list: the suites and tests it would run, in order. */
export async function listSuites(o: Pick<ShardedOptions, 'kernelDir' | 'tmpDir' | 'consoleLog' | 'signal' | 'deadline' | 'name' | 'selection' | 'idleMs' | 'gcovDir'>): Promise<ListedSuite[]> {
  const lines: string[] = [];
  await boot({
    kernelDir: o.kernelDir,
    tmpDir: o.tmpDir,
    consoleLog: o.consoleLog,
    args: ['kunit.action=list', ...selectionArgs(o.selection)],
    reader: kunitReader(),
    signal: o.signal,
    deadline: o.deadline,
    idleMs: o.idleMs,
    gcovDir: o.gcovDir,
    name: `${o.name}-list`,
    sink: { appendTap: async (l) => void lines.push(...l), event: async () => undefined },
  });
  return parseListing(lines);
}

interface Work {
  glob: string;
  suites: string[];
  mode: TimeMode;
  /** For isolate=test: the one test. */
  test?: string;
}

const RANK: Record<TestNode['status'], number> = { skip: 0, pass: 1, fail: 2, crash: 3 };

export async function runSharded(o: ShardedOptions): Promise<ShardedOutcome> {
  const listed = await listSuites(o);
  throwIfAborted(o.signal);
  const names = listed.map((s) => s.name);
  const known = new Map([...(o.known ?? new Map()), ...emptySuites(listed, o.known)]);
  const toRun = listed.filter((s) => !known.has(s.name));
  const modeOf = (s: string): TimeMode => (o.timeTravel ? o.modeOf(s) : 'real');
  const testGlob = o.selection.filterGlob?.includes('.') ? o.selection.filterGlob.slice(o.selection.filterGlob.indexOf('.') + 1) : null;

  let queues: Work[][];
  const alone = (s: string): string => suiteGlob(names, s);
  if (o.isolate === 'test') {
    const work = toRun.flatMap((s) => s.tests.map((t) => ({ glob: alone(s.name), suites: [s.name], mode: modeOf(s.name), test: t })));
    queues = deal(work, o.shards, (w) => o.history.get(w.suites[0]!) ?? 0);
  } else if (o.isolate === 'suite') {
    const work = toRun.map((s) => ({ glob: alone(s.name), suites: [s.name], mode: modeOf(s.name) }));
    queues = deal(work, o.shards, (w) => o.history.get(w.suites[0]!) ?? 0);
  } else {
    const plan = planShards({ suites: toRun, shards: o.shards, history: o.history, modeOf, bootMs: o.history.get('__boot__') });
    // globsFor() covers among every listed suite: known ones must not be matched again.
    queues = plan.shards.map((boots) => boots.flatMap((b) => reglob(b, names, toRun)));
  }

  // One header for the merged stream; every suite (or, isolated per test, every test) is one entry.
  const entries = o.isolate === 'test' ? known.size + toRun.reduce((t, s) => t + s.tests.length, 0) : listed.length;
  o.onKtap?.();
  await o.sink.appendTap(['KTAP version 1', `1..${entries}`]);
  let emitted = 0;
  const blocks = new Map<string, string[]>();
  const nodes = new Map<string, TestNode>();
  const durations = new Map<string, number>();
  const notes: string[] = [];
  let problem: string | null = null;
  let done = 0;
  const total = listed.length;
  let tapChain: Promise<void> = Promise.resolve();
  const emit = (lines: string[]): void => {
    tapChain = tapChain.then(() => o.sink.appendTap(lines));
  };
  for (const s of listed) {
    const k = known.get(s.name);
    if (!k) continue;
    nodes.set(s.name, k.node);
    blocks.set(s.name, k.lines);
    emit(numbered({ name: s.name, lines: k.lines, complete: true }, ++emitted));
    done++;
  }
  o.onProgress?.(done, total);

  let boots = 0;
  const consoles: string[] = [];
  const runShard = async (k: number, queue: Work[]): Promise<void> => {
    // Next to console.log, outside the sandbox's /tmp: no kernel can write another's console.
    const consoleFile = `${o.consoleLog}.shard-${k + 1}`;
    consoles.push(consoleFile);
    while (queue.length > 0) {
      throwIfAborted(o.signal);
      const w = queue.shift()!;
      const n = ++boots;
      const splitter = new SuiteSplitter();
      const started = Date.now();
      let blockStart = 0;
      let firstBlock = 0;
      const seen = new Set<string>();
      const glob = w.test ? `${w.glob}.${w.test}` : testGlob ? `${w.glob}.${testGlob}` : w.glob;
      appendFileSync(consoleFile, `\n=== nommu-ci: shard ${k + 1}, boot ${n}: kunit.filter_glob=${glob}${w.mode === 'time-travel' ? ` ${TIME_TRAVEL_ARG}` : ''}\n`);
      const onBlock = (b: SuiteBlock): void => {
        const now = Date.now();
        // A suite this boot was not meant to run (a glob wider than planned) is not counted or
        // streamed twice: its own boot reports it.
        if (!w.suites.includes(b.name)) {
          appendFileSync(consoleFile, `\n=== nommu-ci: suite ${b.name} ran unplanned in this boot; its result here is ignored\n`);
          blockStart = now;
          return;
        }
        seen.add(b.name);
        if (!w.test) durations.set(b.name, now - blockStart);
        blockStart = now;
        if (b.complete) {
          blocks.set(b.name, [...(blocks.get(b.name) ?? []), ...b.lines]);
          emit(numbered(b, ++emitted));
          if (!w.test) o.onProgress?.(++done, total);
        }
      };
      let out: BootOutcome | null = null;
      let failed: string | null = null;
      try {
        out = await boot({
          kernelDir: o.kernelDir,
          tmpDir: o.tmpDir,
          consoleLog: consoleFile,
          args: [...selectionArgs(o.selection, glob), ...(w.mode === 'time-travel' ? [TIME_TRAVEL_ARG] : [])],
          reader: kunitReader(),
          signal: o.signal,
          deadline: o.deadline,
          idleMs: o.idleMs,
          gcovDir: o.gcovDir,
          name: `${o.name}-s${k + 1}b${n}`,
          sink: {
            appendTap: async (lines) => {
              for (const l of lines) {
                if (!firstBlock) firstBlock = blockStart = Date.now();
                const b = splitter.push(l);
                if (b) onBlock(b);
              }
            },
            event: (e) => o.sink.event(e),
          },
        });
      } catch (e) {
        if (!(e instanceof StageError)) throw e;
        failed = e.message;
      }
      if (firstBlock && !w.test) durations.set('__boot__', firstBlock - started);
      const crash = out?.problem ?? failed ?? null;
      const partial = splitter.end();
      if (partial && w.suites.includes(partial.name)) {
        emit(numbered(partial, ++emitted, crash ?? undefined));
        blocks.set(partial.name, [...(blocks.get(partial.name) ?? []), ...numbered(partial, 0, crash ?? undefined).slice(0, -1)]);
        seen.add(partial.name);
        if (!w.test) o.onProgress?.(++done, total);
      }
      for (const t of out?.result.tests ?? []) {
        if (!w.suites.includes(t.name)) continue;
        if (t.status === 'crash') {
          const why = crash ?? t.reason ?? 'the kernel stopped';
          t.reason = why;
          notes.push(`suite ${t.name} crashed the kernel${w.test ? ` in ${w.test}` : ''}: ${why}`);
        }
        nodes.set(t.name, w.test ? mergeTest(nodes.get(t.name), t) : t);
      }
      // Suites the boot never reached: a fresh kernel for them, as long as this boot got through
      // some of its own (else the same boot would be tried for ever).
      const left = w.test ? [] : w.suites.filter((s) => !seen.has(s));
      if (left.length > 0 && left.length < w.suites.length) {
        notes.push(`${left.length} suite(s) after ${[...seen].pop()} booted again in a fresh kernel`);
        const again = globsFor(names, new Set(left)).map((g) => ({ glob: g, suites: left.filter((s) => globMatch(g, s)), mode: w.mode }));
        queue.unshift(...again);
      } else if (left.length > 0) {
        problem ??= failed ?? crash ?? 'a kernel reported nothing';
        for (const s of left) {
          const l = listed.find((x) => x.name === s)!;
          nodes.set(s, { name: s, status: 'crash', reason: `not run: ${failed ?? crash ?? 'the kernel reported nothing'}`, diagnostics: [], children: [], planned: l.tests.length });
          emit([`# nommu-ci: suite ${s} not run: ${failed ?? crash ?? 'the kernel reported nothing'}`, `not ok ${++emitted} ${s}`]);
          o.onProgress?.(++done, total);
        }
      } else if (failed && w.test) {
        notes.push(`${w.glob}.${w.test}: ${failed}`);
      }
    }
  };
  try {
    await Promise.all(queues.map((q, k) => runShard(k, q)));
  } finally {
    await tapChain;
    for (const f of consoles.sort()) {
      if (!existsSync(f)) continue;
      appendFileSync(o.consoleLog, readFileSync(f));
      rmSync(f, { force: true });
    }
  }
  const tests = listed.map((s) => nodes.get(s.name) ?? { name: s.name, status: 'crash' as const, reason: 'not run', diagnostics: [], children: [], planned: s.tests.length });
  const summary = summarize(tests, listed.length);
  const complete = tests.every((t) => t.status !== 'crash' && (t.planned === undefined || t.children.length === t.planned));
  const last: BootOutcome = {
    result: { version: 'KTAP version 1', tests, summary, errors: [], complete, planned: listed.length },
    problem,
    ktapLines: 0,
    exit: { code: 0, signal: null, killed: null, oom: false, forksRefused: 0, pidsMax: 0, setupError: null, ms: 0 },
  };
  return { tests, summary, notes, last, listed, durations, blocks, boots };
}

/**
 * Listed suites without a test (kunit_fault when CONFIG_KUNIT_FAULT_TEST is off) run only in an
 * unfiltered kernel: any kunit.filter_glob drops them, so no boot of ours would report them. A
 * serial run reports such a suite skipped with `1..0`, so it is written as the kernel writes it
 * (lib/kunit/test.c: kunit_print_suite_start, then a skip for a suite with no results).
 */
function emptySuites(listed: readonly ListedSuite[], known?: ReadonlyMap<string, unknown>): Map<string, { node: TestNode; lines: string[] }> {
  const out = new Map<string, { node: TestNode; lines: string[] }>();
  for (const s of listed) {
    if (s.tests.length > 0 || known?.has(s.name)) continue;
    const lines = ['    KTAP version 1', `    # Subtest: ${s.name}`, '    1..0', `ok 1 ${s.name} # SKIP `];
    const node = parseKtap(['KTAP version 1', '1..1', ...lines]).tests[0]!;
    out.set(s.name, { node, lines });
  }
  return out;
}

/** A planned boot's glob, made again among the suites to run only (a reused base's suites excluded). */
function reglob(b: PlannedBoot, all: readonly string[], toRun: readonly ListedSuite[]): Work[] {
  if (toRun.length === all.length) return [{ glob: b.glob, suites: b.suites, mode: b.mode }];
  return globsFor(all, new Set(b.suites)).map((g) => ({ glob: g, suites: b.suites.filter((s) => globMatch(g, s)), mode: b.mode }));
}

/** Longest first onto the least loaded of `n` queues. */
function deal<T>(items: T[], n: number, weight: (t: T) => number): T[][] {
  const qs: T[][] = Array.from({ length: Math.max(1, n) }, () => []);
  const load = qs.map(() => 0);
  for (const it of [...items].sort((a, b) => weight(b) - weight(a))) {
    let k = 0;
    for (let i = 1; i < qs.length; i++) if (load[i]! < load[k]!) k = i;
    qs[k]!.push(it);
    load[k]! += weight(it) + 1;
  }
  return qs.filter((q) => q.length > 0);
}

/** A suite run a test at a time: its tests joined under one node, in the kernel's order. */
function mergeTest(into: TestNode | undefined, part: TestNode): TestNode {
  if (!into) return { ...part, children: [...part.children] };
  const children = [...into.children, ...part.children];
  const status = into.status === 'skip' ? part.status : part.status === 'skip' || RANK[into.status] >= RANK[part.status] ? into.status : part.status;
  return { ...into, status, children, planned: (into.planned ?? into.children.length) + (part.planned ?? part.children.length) };
}
