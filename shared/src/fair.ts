/**
 * Fair scheduling between tokens with BullMQ priorities. Each token (or "anonymous" on an open
 * service) has a set of its jobs that have not ended; a new job gets priority 1 + the number of
 * them, so the k-th outstanding job of every token is served in round k: a bot that queued 160
 * jobs holds priorities 1..160, and a maintainer's single job gets priority 1 and runs right
 * after the job with priority 1 queued before it. BullMQ serves lower priorities first and equal
 * priorities in order (FIFO), so this is round-robin by token.
 *
 * Why priorities and not groups: BullMQ's groups (round-robin between group keys) exist only in
 * BullMQ Pro, which is not open source; priorities are in BullMQ itself and need no state beyond
 * the set below, which also gives the per-token concurrent-job quota its count.
 *
 * Keys: nci:tok:active:<name>  set of job ids of the token that have not ended (pruned as read)
 */
import type { Redis } from 'ioredis';
import { FINAL_STATES, type JobState } from './job.js';

const ACTIVE = 'nci:tok:active:';
/** BullMQ's highest priority number. */
export const MAX_PRIORITY = 2_097_152;
/** Who an unauthenticated job is counted for on an open service. */
export const ANONYMOUS = 'anonymous';

export class FairShare {
  constructor(private readonly redis: Redis) {}

  /** The token's jobs that have not ended; ended ones are dropped from the set on the way. */
  async active(name: string): Promise<string[]> {
    const ids = await this.redis.smembers(ACTIVE + name);
    if (ids.length === 0) return [];
    const m = this.redis.multi();
    for (const id of ids) m.hget(`nci:job:${id}`, 'state');
    const states = ((await m.exec()) ?? []).map(([, v]) => (typeof v === 'string' ? (JSON.parse(v) as JobState) : null));
    // A job whose record is gone (expired) has ended too.
    const over = (i: number) => states[i] === null || FINAL_STATES.has(states[i]!);
    const ended = ids.filter((_, i) => over(i));
    if (ended.length > 0) await this.redis.srem(ACTIVE + name, ...ended);
    return ids.filter((_, i) => !over(i));
  }

  /** Priorities for `n` new jobs of the token, in submission order. */
  async priorities(name: string, n: number): Promise<number[]> {
    const k = (await this.active(name)).length;
    return Array.from({ length: n }, (_, i) => Math.min(MAX_PRIORITY, k + i + 1));
  }

  /** Counts the jobs as the token's until they end. */
  async track(name: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.sadd(ACTIVE + name, ...ids);
  }

  async untrack(name: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.srem(ACTIVE + name, ...ids);
  }

  /** Names of tokens with jobs counted, for metrics. */
  async names(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${ACTIVE}*`, 'COUNT', 200);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys.map((k) => k.slice(ACTIVE.length));
  }
}
