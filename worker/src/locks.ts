/**
 * Cross-process locks on cache entries (base build directories, series trees, kselftest
 * programs) that several workers sharing one cache directory may want to create at once: on one
 * host, or in several containers on one volume.
 *
 * The lock is flock(2) on `<target>.flock`, held by a small `flock` process whose stdin is a pipe
 * from the worker. The kernel drops the lock when that process exits, and it exits when the
 * worker closes the pipe: on release, or when the worker dies, SIGKILL included. So a lock is
 * never taken from a live holder however long its build stalls (an mtime lock refreshed by a
 * timer was: under load it went stale and two workers built, and removed, the same directory),
 * and never outlives a dead one. Lock files stay: removing one while another process has it open
 * would let two processes hold "the" lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { throwIfAborted } from './errors.js';
import { sleep } from './exec.js';

/** flock's exit code when the lock is held by another process (--conflict-exit-code). */
const HELD = 75;

export const lockPath = (target: string): string => `${target}.flock`;

/** A held lock; release() lets it go. */
export interface Held {
  release(): Promise<void>;
}

/** Takes `<target>.flock` if nobody holds it (null if someone does). */
export function tryLock(target: string): Promise<Held | null> {
  const file = lockPath(target);
  mkdirSync(path.dirname(file), { recursive: true });
  return new Promise((resolve, reject) => {
    // `exec cat` keeps the lock until stdin closes; "held" on stdout says it was taken.
    const c: ChildProcess = spawn('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', String(HELD), file, 'sh', '-c', 'echo held; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let err = '';
    c.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    c.stdin!.on('error', () => undefined); // EPIPE if it died first: reported by 'exit'
    c.stdout!.once('data', () => {
      const gone = new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
      resolve({
        release: async () => {
          c.stdin!.end();
          await gone;
        },
      });
    });
    c.once('error', reject);
    c.once('exit', (code) => {
      if (code === HELD) resolve(null);
      else reject(new Error(`flock ${file} failed (exit ${code}): ${err.trim()}`));
    });
  });
}

/** Holds `<target>.flock` while fn runs; waits (abortably) while another process holds it. */
export async function withLock<T>(target: string, signal: AbortSignal | undefined, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  let held: Held | null = null;
  let waited = false;
  for (;;) {
    throwIfAborted(signal);
    held = await tryLock(target);
    if (held) break;
    if (!waited) onWait?.();
    waited = true;
    await sleep(1000, signal);
  }
  try {
    return await fn();
  } finally {
    await held.release();
  }
}
