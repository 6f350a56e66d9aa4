/**
 * Where jobs live between the API and the workers: Redis, so that any worker on any host can
 * run a job and any API instance can serve it. Keys per job:
 *   nci:job:<id>            hash of JSON fields (the JobRecord, split so updates are atomic per field)
 *   nci:job:<id>:request    the request as submitted (patches included)
 *   nci:job:<id>:results    the parsed test tree
 *   nci:job:<id>:tap:<n>    stream of KTAP lines of attempt n, ended by an `eof` entry
 *   nci:job:<id>:events     stream of JobEvents, ended by an `eof` entry
 *   nci:job:<id>:art:<name> gzip of an artifact
 *   nci:job:<id>:coverage   hash: a coverage job's HTML report, file path -> gzip of the file
 *   nci:job:<id>:dirs       set of the working directories of its attempts not yet removed
 *                           (paths on the host that ran them, their owner in their names)
 *   nci:jobs                sorted set of ids by submission time
 *   nci:jobs:by:<name>      the same, for the jobs a token submitted (GET /v1/jobs?submitted_by=)
 */
import { gzipSync, gunzipSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import type { ArtifactName, JobEvent, JobRecord, JobRequest } from './job.js';
import type { TestNode } from './result.js';

const P = 'nci:job:';
const RECENT = 'nci:jobs';
const BY = 'nci:jobs:by:';
export const CANCEL_CHANNEL = 'nci:cancel';

/** How much of an artifact is kept: the head and the tail, which is where build and boot errors are. */
export const ARTIFACT_LIMIT = 16 * 1024 * 1024;

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** A job's hash as its record; null for the empty hash of a job that does not exist. */
const recordOf = (h: Record<string, string>): JobRecord | null => (h.id ? (fromHash(h) as unknown as JobRecord) : null);

export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds = 30 * 24 * 3600,
  ) {}

  async create(record: JobRecord, request: JobRequest): Promise<void> {
    const key = P + record.id;
    const m = this.redis.multi();
    m.hset(key, toHash(record));
    m.set(key + ':request', JSON.stringify(request), 'EX', this.ttlSeconds);
    m.expire(key, this.ttlSeconds);
    m.zadd(RECENT, Date.now(), record.id);
    if (record.submitted_by) m.zadd(BY + record.submitted_by, Date.now(), record.id);
    await m.exec();
  }

  async get(id: string): Promise<JobRecord | null> {
    return recordOf(await this.redis.hgetall(P + id));
  }

  /** The records of `ids` in one round trip, null where there is none. */
  async getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(P + id);
    return ((await p.exec()) ?? []).map(([err, h]) => {
      if (err) throw err;
      return recordOf(h as Record<string, string>);
    });
  }

  async request(id: string): Promise<JobRequest | null> {
    const s = await this.redis.get(P + id + ':request');
    return s ? (JSON.parse(s) as JobRequest) : null;
  }

  async update(id: string, fields: Partial<JobRecord>): Promise<void> {
    await this.redis.hset(P + id, toHash(fields));
  }

  /** Ids of the most recent jobs, newest first. */
  async recent(limit: number, offset = 0, submittedBy?: string): Promise<string[]> {
    return this.redis.zrevrange(submittedBy ? BY + submittedBy : RECENT, offset, offset + limit - 1);
  }

  async setResults(id: string, tests: TestNode[]): Promise<void> {
    await this.redis.set(P + id + ':results', JSON.stringify(tests), 'EX', this.ttlSeconds);
  }

  async results(id: string): Promise<TestNode[] | null> {
    const s = await this.redis.get(P + id + ':results');
    return s ? (JSON.parse(s) as TestNode[]) : null;
  }

  tapKey(id: string, attempt: number): string {
    return `${P}${id}:tap:${attempt}`;
  }

  eventsKey(id: string): string {
    return `${P}${id}:events`;
  }

  async appendTap(id: string, attempt: number, lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const key = this.tapKey(id, attempt);
    const m = this.redis.multi();
    for (const l of lines) m.xadd(key, '*', 'l', l);
    m.expire(key, this.ttlSeconds);
    await m.exec();
  }

  /**
   * Ends an attempt's stream; `retry` tells readers that attempt n+1 follows, and `lostIn` (field
   * `lost_in`) the stage the attempt was in when it was lost: where the retry started over from.
   */
  async endTap(id: string, attempt: number, retry: boolean, lostIn?: string | null): Promise<void> {
    const key = this.tapKey(id, attempt);
    const fields = ['eof', retry ? 'retry' : 'done', ...(retry && lostIn ? ['lost_in', lostIn] : [])];
    await this.redis.multi().xadd(key, '*', ...fields).expire(key, this.ttlSeconds).exec();
  }

  async appendEvent(id: string, event: JobEvent): Promise<void> {
    const key = this.eventsKey(id);
    await this.redis.multi().xadd(key, '*', 'e', JSON.stringify(event)).expire(key, this.ttlSeconds).exec();
  }

  async endEvents(id: string): Promise<void> {
    await this.redis.xadd(this.eventsKey(id), '*', 'eof', 'done');
  }

  /**
   * Reads a stream after `after` ('0' for everything so far), waiting up to `blockMs` for new
   * entries. The caller needs its own connection: a blocking read holds it.
   */
  static async readStream(conn: Redis, key: string, after: string, blockMs: number): Promise<StreamEntry[]> {
    const res = (await conn.xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', key, after)) as
      | [string, [string, string[]][]][]
      | null;
    if (!res || res.length === 0) return [];
    return res[0]![1].map(([eid, kv]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < kv.length; i += 2) fields[kv[i]!] = kv[i + 1]!;
      return { id: eid, fields };
    });
  }

  async putArtifact(id: string, name: ArtifactName, data: Buffer): Promise<void> {
    // A tracefile cut in the middle is no tracefile: it is kept whole (a whole kernel's is ~20 MB, 2 MB gzipped).
    const kept = name === 'coverage.info' ? data : clip(data);
    await this.redis.set(`${P}${id}:art:${name}`, gzipSync(kept), 'EX', this.ttlSeconds);
  }

  /** Stores a coverage job's HTML report: its files by path relative to the report's root. */
  async putCoverageReport(id: string, files: ReadonlyMap<string, Buffer>): Promise<void> {
    const key = `${P}${id}:coverage`;
    const m = this.redis.multi().del(key);
    for (const [name, data] of files) m.hset(key, name, gzipSync(data));
    await m.expire(key, this.ttlSeconds).exec();
  }

  /** One file of a coverage job's HTML report, or null. */
  async coverageReportFile(id: string, name: string): Promise<Buffer | null> {
    const b = await this.redis.hgetBuffer(`${P}${id}:coverage`, name);
    return b ? gunzipSync(b) : null;
  }

  async artifact(id: string, name: ArtifactName): Promise<Buffer | null> {
    const b = await this.redis.getBuffer(`${P}${id}:art:${name}`);
    return b ? gunzipSync(b) : null;
  }

  async addWorkDir(id: string, dir: string): Promise<void> {
    const key = `${P}${id}:dirs`;
    await this.redis.multi().sadd(key, dir).expire(key, this.ttlSeconds).exec();
  }

  async workDirs(id: string): Promise<string[]> {
    return this.redis.smembers(`${P}${id}:dirs`);
  }

  async dropWorkDir(id: string, dir: string): Promise<void> {
    await this.redis.srem(`${P}${id}:dirs`, dir);
  }

  /** Marks a job canceled and tells every worker; the one running it kills its build or kernel. */
  async requestCancel(id: string): Promise<void> {
    await this.redis.hset(P + id, 'cancel_requested', '1');
    await this.redis.publish(CANCEL_CHANNEL, id);
  }

  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(P + id, 'cancel_requested')) === '1';
  }
}

function clip(data: Buffer): Buffer {
  if (data.length <= ARTIFACT_LIMIT) return data;
  const half = ARTIFACT_LIMIT / 2;
  const note = Buffer.from(`\n[... ${data.length - ARTIFACT_LIMIT} bytes cut by nommu-ci ...]\n`);
  return Buffer.concat([data.subarray(0, half), note, data.subarray(data.length - half)]);
}

function toHash(obj: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = JSON.stringify(v);
  return out;
}

function fromHash(h: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) if (k !== 'cancel_requested') out[k] = JSON.parse(v);
  return out;
}
