/**
 * What the patchwork bot remembers, in Redis, so a restarted bot picks up where it stopped and
 * never posts a check twice. Keys, under nci:bot:pw:<sha1 of patchwork URL and project>:
 *   since          the oldest series date the bot looks at (set on its first start)
 *   series:<id>    hash: run (the run id), posted:<patch id> (the state posted), mailed, done
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface SeriesState {
  run: string | null;
  posted: Record<string, string>;
  mailed: boolean;
  done: string | null;
}

export class BotState {
  private readonly p: string;

  constructor(
    private readonly redis: Redis,
    patchworkUrl: string,
    project: string,
  ) {
    this.p = `nci:bot:pw:${createHash('sha1').update(`${patchworkUrl}\n${project}`).digest('hex').slice(0, 16)}:`;
  }

  /** The stored start date, or `initial` stored as it when there is none yet. */
  async since(initial: string): Promise<string> {
    await this.redis.set(this.p + 'since', initial, 'NX');
    return (await this.redis.get(this.p + 'since')) ?? initial;
  }

  async series(id: number): Promise<SeriesState> {
    const h = await this.redis.hgetall(`${this.p}series:${id}`);
    const posted: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) if (k.startsWith('posted:')) posted[k.slice(7)] = v;
    return { run: h.run ?? null, posted, mailed: h.mailed === '1', done: h.done ?? null };
  }

  async setRun(id: number, run: string): Promise<void> {
    await this.redis.hset(`${this.p}series:${id}`, 'run', run);
  }

  async posted(id: number, patch: number, state: string): Promise<void> {
    await this.redis.hset(`${this.p}series:${id}`, `posted:${patch}`, state);
  }

  async mailed(id: number): Promise<void> {
    await this.redis.hset(`${this.p}series:${id}`, 'mailed', '1');
  }

  /** `how`: what the bot did with the series, e.g. "checked" or "skipped: ...". */
  async done(id: number, how: string): Promise<void> {
    await this.redis.hset(`${this.p}series:${id}`, 'done', how);
  }
}
