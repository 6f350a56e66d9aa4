/**
 * Progress of a long stage, in the job's record and as `progress` events: objects compiled of
 * those expected (the count an earlier build of the same config compiled, kept in Redis), suites
 * finished of those planned. Written at most once a second, and once more at the end.
 */
import type { Redis } from 'ioredis';
import type { JobEvent, Progress } from '@nommu-ci/shared';

const INTERVAL_MS = 1000;

export class ProgressReporter {
  private pending: Progress | null = null;
  private last = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly write: (p: Progress | null) => Promise<unknown>) {}

  set(p: Progress): void {
    this.pending = p;
    const wait = this.last + INTERVAL_MS - Date.now();
    if (wait <= 0) this.send();
    else this.timer ??= setTimeout(() => this.send(), wait);
  }

  private send(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.last = Date.now();
    this.chain = this.chain.then(() => this.write(p)).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Sends what is pending and waits for the writes. */
  async flush(): Promise<void> {
    this.send();
    await this.chain;
  }
}

/** kbuild's quiet output names each object it compiles: `  CC      mm/nommu.o`. */
const COMPILED = /^ {2}(CC|AS|CC \[M\])\s+\S+\.o$/gm;

/** Counts compiled objects in make's output as it streams. */
export class BuildCounter {
  count = 0;
  private partial = '';

  push(chunk: Buffer): number {
    const text = this.partial + chunk.toString('utf8');
    const cut = text.lastIndexOf('\n');
    this.partial = text.slice(cut + 1);
    this.count += (text.slice(0, cut + 1).match(COMPILED) ?? []).length;
    return this.count;
  }
}

const objectsKey = (fragmentHash: string): string => `nci:build-objects:${fragmentHash}`;

/** Objects a full build of this config compiled last time, or null. */
export async function expectedObjects(redis: Redis, fragmentHash: string): Promise<number | null> {
  const v = await redis.get(objectsKey(fragmentHash));
  return v === null ? null : Number(v);
}

export async function recordObjects(redis: Redis, fragmentHash: string, n: number): Promise<void> {
  if (n > 0) await redis.set(objectsKey(fragmentHash), String(n), 'EX', 180 * 24 * 3600);
}

/** A serial run's suites done, of the top-level plan (`1..N`) the kernel printed. */
export class SuiteCounter {
  private total: number | null = null;
  private done = 0;

  constructor(private readonly report: (done: number, total: number) => void) {}

  tap(lines: readonly string[]): void {
    if (this.total !== null) return;
    for (const l of lines) {
      const m = /^1\.\.([0-9]+)$/.exec(l);
      if (m) {
        this.total = Number(m[1]);
        this.report(this.done, this.total);
        return;
      }
    }
  }

  event(e: JobEvent): void {
    if (e.type !== 'test' || e.path.length !== 1 || this.total === null) return;
    this.report(++this.done, this.total);
  }
}
