/**
 * A base result measured before. The base half of a run (the kernel without the series) is the
 * same for every series on that kernel, config and no-MMU series; an unpatched job that may
 * reuse it (`reuse_base_result`, set by runs) takes the suites of an earlier identical job
 * instead of running them again. Identical means the same key: kernel source and version,
 * no-MMU series, final .config, everything in the request that selects or runs tests, the
 * compiler, and the format of what is stored. Only suites that passed (or skipped) are taken, and a
 * suite that ever failed or crashed in a stored base result is always run again (a flaky test
 * is not trusted on one good result); results older than NOMMU_CI_BASE_RESULT_MAX_AGE_S are not used.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TestNode } from '@nommu-ci/shared';

export const BASE_RESULT_MAX_AGE_S = Number(process.env.NOMMU_CI_BASE_RESULT_MAX_AGE_S ?? 24 * 3600);
/** Bump when what a stored result means changes (parser, runner). */
const FORMAT = 1;
const TTL_S = 7 * 24 * 3600;

export interface StoredBase {
  job: string;
  at: number;
  suites: Record<string, { node: TestNode; lines: string[] }>;
  /** Suites that failed or crashed in any stored base result with this key. */
  untrusted: string[];
}

export function baseKey(parts: Record<string, unknown>): string {
  const canonical = JSON.stringify(Object.keys(parts).sort().map((k) => [k, parts[k] ?? null]));
  return `nci:kunit:base:${createHash('sha256').update(`${FORMAT}\n${canonical}`).digest('hex')}`;
}

const trusted = (n: TestNode): boolean => n.status !== 'fail' && n.status !== 'crash' && n.children.every(trusted);

/** The suites a job with this key may take as they are, or null when there is nothing fresh. */
export async function reusableSuites(redis: Redis, key: string, maxAgeS = BASE_RESULT_MAX_AGE_S): Promise<{ from: string; suites: Map<string, { node: TestNode; lines: string[] }> } | null> {
  const s = await redis.get(key);
  if (!s) return null;
  const stored = JSON.parse(s) as StoredBase;
  if (Date.now() - stored.at > maxAgeS * 1000) return null;
  const untrusted = new Set(stored.untrusted);
  const suites = new Map(Object.entries(stored.suites).filter(([name, v]) => !untrusted.has(name) && trusted(v.node)));
  return { from: stored.job, suites };
}

/** Stores a base job's result; suites that failed now or before stay untrusted. */
export async function storeBase(redis: Redis, key: string, job: string, tests: readonly TestNode[], blocks: ReadonlyMap<string, string[]>): Promise<void> {
  const prev = await redis.get(key);
  const untrusted = new Set(prev ? (JSON.parse(prev) as StoredBase).untrusted : []);
  const suites: StoredBase['suites'] = {};
  for (const t of tests) {
    if (!trusted(t)) untrusted.add(t.name);
    const lines = blocks.get(t.name);
    if (lines) suites[t.name] = { node: t, lines };
  }
  const value: StoredBase = { job, at: Date.now(), suites, untrusted: [...untrusted] };
  await redis.set(key, JSON.stringify(value), 'EX', TTL_S);
}
