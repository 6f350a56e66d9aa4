/**
 * Per-suite wall times of earlier runs, kept in Redis per kernel and .config (the same suites
 * take about as long on the same kernel built the same way): the shard planner places the
 * longest first. `__boot__` is what a boot costs before its first suite starts.
 */
import type { Redis } from 'ioredis';

const key = (kernel: string, configHash: string): string => `nci:kunit:suite-ms:${kernel}:${configHash}`;
const TTL_S = 90 * 24 * 3600;

export async function loadDurations(redis: Redis, kernel: string, configHash: string): Promise<Map<string, number>> {
  const h = await redis.hgetall(key(kernel, configHash));
  return new Map(Object.entries(h).map(([k, v]) => [k, Number(v)]));
}

export async function saveDurations(redis: Redis, kernel: string, configHash: string, ms: ReadonlyMap<string, number>): Promise<void> {
  if (ms.size === 0) return;
  const k = key(kernel, configHash);
  await redis.multi().hset(k, Object.fromEntries([...ms].map(([s, v]) => [s, String(Math.round(v))]))).expire(k, TTL_S).exec();
}
