/**
 * Stage `boot` (and `test`): runs the UML `linux` binary inside the sandbox, captures the
 * console into console.log and turns it into KTAP while it runs: console lines -> a
 * ConsoleReader (console-readers.ts: KUnit's own KTAP, or boot-time selftests' output made
 * KTAP) -> KtapStream, KTAP lines appended to the job's tap stream (batched ~100 ms), one
 * `test` event per result. The command line, extra mounts and the reader are the job kind's
 * (kunit.py's for KUnit, see kernelArgs).
 *
 * Ends cleanly when the kernel: prints no KTAP (stage boot), goes silent for the idle timeout or
 * reaches the job deadline (killed; open tests become crash "timeout"), panics (the reader's
 * crash line ends the stream), floods the console (killed past CONSOLE_LIMIT), or forks without
 * end (its sandbox's process limit refuses forks: named as the run's problem).
 */
import { appendFileSync, existsSync, statSync, truncateSync } from 'node:fs';
import { KtapStream, type JobEvent, type KtapResult, type TestNode } from '@nommu-ci/shared';
import { abortReason, JobAborted, StageError } from '../errors.js';
import { assertSandboxStarted, describeExit, processLimit, runSandboxed, type Mount, type SandboxResult } from '../sandbox.js';
import { kunitReader, type ConsoleReader } from './console-readers.js';
import { gcovBoot } from '../coverage/collect.js';

export const CONSOLE_LIMIT = Number(process.env.NOMMU_CI_CONSOLE_LIMIT ?? 64 * 1024 * 1024);
export const BOOT_IDLE_MS = Number(process.env.NOMMU_CI_BOOT_IDLE_S ?? 300) * 1000;
const FLUSH_MS = 100;

/** The kernel command line of a KUnit run, as kunit.py builds it for UML. */
export function kernelArgs(filterGlob?: string): string[] {
  const a: string[] = [];
  if (filterGlob) a.push(`kunit.filter_glob=${filterGlob}`);
  a.push('kunit.enable=1');
  a.push('mem=1G', 'console=tty', 'kunit_shutdown=halt');
  return a;
}

/** Where boot output goes: the job store, behind an interface so tests can look. */
export interface BootSink {
  appendTap(lines: string[]): Promise<void>;
  event(e: JobEvent): Promise<void>;
}

export interface BootOptions {
  /** Host directory holding `linux`, mounted read-only at /build. */
  kernelDir: string;
  tmpDir: string;
  /** Host path of console.log. */
  consoleLog: string;
  /** The kernel command line (default: kernelArgs(), a KUnit run). */
  args?: string[];
  /** More host directories for the sandbox (a root filesystem). */
  mounts?: Mount[];
  /** Console -> KTAP (default: KUnit's KTAP from the console). */
  reader?: ConsoleReader;
  signal?: AbortSignal;
  /** Epoch ms of the job deadline. */
  deadline?: number;
  idleMs?: number;
  consoleLimit?: number;
  sink: BootSink;
  name: string;
  /** Called once when the first KTAP line arrives (the job moves from booting to running). */
  onKtap?: () => void;
  /** A coverage kernel's .gcda files go here (host directory; see coverage/collect.ts). */
  gcovDir?: string;
}

export interface BootOutcome {
  result: KtapResult;
  /** Why the run ended abnormally (crash line, timeout, flood), or null. */
  problem: string | null;
  ktapLines: number;
  exit: SandboxResult;
}

export async function boot(o: BootOptions): Promise<BootOutcome> {
  const reader = o.reader ?? kunitReader();
  // Queue of store writes, in order; the first failure is kept and rethrown (infra).
  let chain: Promise<void> = Promise.resolve();
  let storeError: unknown = null;
  const enqueue = (f: () => Promise<void>): void => {
    chain = chain.then(f).catch((e: unknown) => {
      storeError ??= e;
    });
  };
  const stream = new KtapStream((path: string[], node: TestNode) => {
    const ev: JobEvent = { type: 'test', path, status: node.status, ...(node.reason ? { reason: node.reason } : {}) };
    enqueue(() => o.sink.event(ev));
  });
  let pending: string[] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  const flush = (): void => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    enqueue(() => o.sink.appendTap(batch));
  };

  const limit = o.consoleLimit ?? CONSOLE_LIMIT;
  const idleMs = o.idleMs ?? BOOT_IDLE_MS;
  const local = new AbortController();
  let problem: string | null = null;
  const stop = (why: string): void => {
    if (!problem) problem = why;
    local.abort(new JobAborted('timeout', why));
  };
  let idle: NodeJS.Timeout | null = null;
  const touch = (): void => {
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => stop(`no console output for ${Math.round(idleMs / 1000)} s (kernel hung)`), idleMs);
  };
  touch();
  let bytes = 0;
  let flooded = false;
  // A job may boot more than once (kselftest after a crash): each boot appends to console.log.
  const before = existsSync(o.consoleLog) ? statSync(o.consoleLog).size : 0;
  let ktapLines = 0;
  let partial = '';
  let crashed: string | null = null;
  const line = (l: string): void => {
    const clean = l.replace(/\r$/, '');
    emit(reader.push(clean));
    if (!crashed && reader.crash) crashed = reader.crash;
    if (pending.length > 0 && !flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
  };
  const emit = (lines: string[]): void => {
    for (const k of lines) {
      if (ktapLines === 0) o.onKtap?.();
      ktapLines++;
      pending.push(k);
      stream.push(k);
    }
  };

  const onJobAbort = (): void => local.abort(o.signal?.reason);
  if (o.signal?.aborted) onJobAbort();
  else o.signal?.addEventListener('abort', onJobAbort, { once: true });
  const deadlineMs = o.deadline !== undefined ? o.deadline - Date.now() : undefined;

  const gcov = o.gcovDir !== undefined ? gcovBoot(o.gcovDir) : null;
  let exit: SandboxResult;
  try {
    exit = await runSandboxed({
      name: o.name,
      argv: ['/build/linux', ...(o.args ?? kernelArgs())],
      mounts: [{ host: o.kernelDir, path: '/build' }, ...(o.mounts ?? []), ...(gcov ? [gcov.mount] : [])],
      tmpDir: o.tmpDir,
      cwd: '/tmp',
      env: { TMPDIR: '/dev/shm', ...gcov?.env },
      // UML maps its physical memory from a file in /dev/shm (private tmpfs): room for mem=1G.
      shmBytes: 1536 * 1024 * 1024,
      signal: local.signal,
      timeoutMs: deadlineMs,
      outputFile: o.consoleLog,
      onOutput: (b) => {
        touch();
        if (bytes >= limit) return;
        const room = limit - bytes;
        const chunk = b.length > room ? b.subarray(0, room) : b;
        bytes += chunk.length;
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        if (partial.length > 65536) {
          parts.push(partial);
          partial = '';
        }
        parts.forEach(line);
        if (bytes >= limit) {
          flooded = true;
          stop(`console flood: more than ${Math.round(limit / 1048576)} MiB of console output; kernel killed`);
        }
      },
    });
  } finally {
    if (idle) clearTimeout(idle);
    o.signal?.removeEventListener('abort', onJobAbort);
  }
  if (partial) line(partial);
  emit(reader.end());
  if (flooded) {
    // UML wrote on until it was killed: keep what was read, and say why it ends there.
    truncateSync(o.consoleLog, before + limit);
    appendFileSync(o.consoleLog, `\n[nommu-ci: console output exceeded ${limit} bytes; kernel killed]\n`);
  }
  assertSandboxStarted(exit);
  const jobAbort = abortReason(o.signal);
  if (jobAbort?.why === 'cancel' || jobAbort?.why === 'shutdown') {
    flush();
    await chain;
    throw jobAbort;
  }
  if (exit.killed === 'timeout' || jobAbort?.why === 'timeout') problem ??= 'job timeout reached while the kernel was running';
  if (!problem && exit.oom) problem = 'kernel killed: memory limit exceeded';
  // A guest fork bomb (on the MMU kernel each guest process is a host process) ends at the job's
  // pids cgroup: named even when the guest's own timeouts then ended the run cleanly.
  const forks = processLimit(exit);
  if (forks) problem = problem ? `${problem}; ${forks}` : forks;
  const crashReason = crashed ?? (problem ? 'timeout' : undefined);
  const result = stream.end(crashReason ?? undefined);
  flush();
  await chain;
  if (storeError) throw storeError;
  if (!reader.found) {
    throw new StageError('boot', `kernel printed no KTAP (${problem ?? describeExit(exit)})${crashed ? `: ${crashed}` : ''}`);
  }
  return { result, problem: problem ?? (crashed ? `kernel crashed: ${crashed}` : null), ktapLines, exit };
}
