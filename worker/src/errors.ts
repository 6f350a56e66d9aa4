import type { Stage } from '@nommu-ci/shared';

/** A job-level failure: the final result of the job (not retried), at a named stage. */
export class StageError extends Error {
  constructor(
    readonly stage: Stage,
    message: string,
    /** The .config as it came out, when a config failure leaves nothing else to read it from. */
    readonly config?: string,
  ) {
    super(message);
    this.name = 'StageError';
  }
}

/**
 * The host, not the job, failed at a named stage: the cache disk is full. Retried like any
 * infrastructure error (space may come back), and reported at the stage that hit it.
 */
export class InfraError extends Error {
  constructor(
    readonly stage: Stage,
    message: string,
  ) {
    super(message);
    this.name = 'InfraError';
  }
}

const NO_SPACE = /No space left on device|ENOSPC|Disk quota exceeded|EDQUOT/;

/** A tool's output line saying the disk is full, if there is one. */
export function noSpaceLine(output: string): string | null {
  return output.split('\n').find((l) => NO_SPACE.test(l))?.trim() ?? null;
}

/** Node's own ENOSPC (writing a log, copying a tree). */
export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Why a job's AbortSignal fired. */
export class JobAborted extends Error {
  constructor(readonly why: 'cancel' | 'timeout' | 'shutdown', message?: string) {
    super(message ?? why);
    this.name = 'JobAborted';
  }
}

export function abortReason(signal: AbortSignal | undefined): JobAborted | null {
  if (!signal?.aborted) return null;
  const r: unknown = signal.reason;
  return r instanceof JobAborted ? r : new JobAborted('cancel', String(r));
}

/** Throws the signal's JobAborted if it has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  const r = abortReason(signal);
  if (r) throw r;
}
