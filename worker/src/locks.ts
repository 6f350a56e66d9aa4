/**
 * Cross-process locks (proper-lockfile: an mkdir lock refreshed while held, stale after a worker
 * dies) on cache entries that several workers, on one host, may want to create at once.
 */
import lockfile from 'proper-lockfile';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { throwIfAborted } from './errors.js';
import { sleep } from './exec.js';

/** Holds `<target>.lock` while fn runs; waits (abortably) while another holder has it. */
export async function withLock<T>(target: string, signal: AbortSignal | undefined, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  mkdirSync(path.dirname(target), { recursive: true });
  let release: (() => Promise<void>) | null = null;
  let waited = false;
  for (;;) {
    throwIfAborted(signal);
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        lockfilePath: `${target}.lock`,
        stale: 30_000,
        update: 5_000,
        retries: 0,
        onCompromised: (e) => {
          // Our lock was taken over (we stalled for 30 s); the other holder will redo the work.
          console.error(`nommu-ci: lock ${target} compromised: ${e.message}`);
        },
      });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      if (!waited) onWait?.();
      waited = true;
      await sleep(1000, signal);
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
