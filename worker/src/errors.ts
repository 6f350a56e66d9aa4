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
