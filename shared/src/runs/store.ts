/**
 * Runs in Redis, next to the jobs (JobStore). Keys per run:
 *   nci:run:<id>        hash of JSON fields (the RunRecord, one field per property)
 *   nci:run:<id>:patch  the mbox as submitted
 *   nci:runs            sorted set of run ids by submission time
 *   nci:runs:by:<name>  the same, for the runs a token submitted
 */
import type { Redis } from 'ioredis';
import type { RunRecord } from './model.js';

const P = 'nci:run:';
const RECENT = 'nci:runs';
const BY = 'nci:runs:by:';

export class RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds = 30 * 24 * 3600,
  ) {}

  async create(run: RunRecord, mbox: string): Promise<void> {
    const key = P + run.id;
    const m = this.redis.multi();
    if (run.submitted_by) m.zadd(BY + run.submitted_by, Date.now(), run.id);
    await m
      .hset(key, toHash(run))
      .expire(key, this.ttlSeconds)
      .set(key + ':patch', mbox, 'EX', this.ttlSeconds)
      .zadd(RECENT, Date.now(), run.id)
      .exec();
  }

  async get(id: string): Promise<RunRecord | null> {
    const h = await this.redis.hgetall(P + id);
    if (!h.id) return null;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(h)) out[k] = JSON.parse(v);
    return out as unknown as RunRecord;
  }

  async update(id: string, fields: Partial<RunRecord>): Promise<void> {
    await this.redis.hset(P + id, toHash(fields));
  }

  async patch(id: string): Promise<string | null> {
    return this.redis.get(P + id + ':patch');
  }

  async recent(limit: number, offset = 0, submittedBy?: string): Promise<string[]> {
    return this.redis.zrevrange(submittedBy ? BY + submittedBy : RECENT, offset, offset + limit - 1);
  }

  /** Removes a run that could not be queued (nothing is left half-created). */
  async remove(id: string): Promise<void> {
    await this.redis.multi().del(P + id, P + id + ':patch').zrem(RECENT, id).exec();
    // a by-submitter entry left behind lists nothing: listings skip ids without a record
  }
}

function toHash(obj: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = JSON.stringify(v);
  return out;
}
