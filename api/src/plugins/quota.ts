/**
 * Per-token quotas and fair scheduling of what POST /v1/jobs and POST /v1/runs queue.
 *
 * Before the handler runs: a token over its concurrent-job limit (jobs queued or running) or its
 * jobs-per-hour limit gets 429 with Retry-After and the limit named; then the request gets the
 * BullMQ priorities its jobs are queued with (shared/src/fair.ts: round-robin by token). After a
 * 202 the new jobs are counted as the token's until they end. The operator's NOMMU_CI_ADMIN_TOKEN
 * and an open service (no token) have no quota, but their jobs are scheduled fairly too.
 *
 * Keys: nci:tok:hour:<name>  sorted set, one member per job accepted in the last hour
 */
import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { ANONYMOUS, FairShare, MAX_PRIORITY } from '@nommu-ci/shared';
import { HttpError } from '../errors.js';
import { ADMIN_PRINCIPAL_NAME } from '../tokens.js';
import type { AuthSettings } from './auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on job-submitting requests: who the jobs count for and the priority of each. */
    submission: { name: string; priorities: number[]; window: string[] } | null;
  }
}

/** Jobs a request queues: a run is four (its per-patch jobs come later, counted by the worker). */
const SUBMITTING: Record<string, number> = { '/v1/jobs': 1, '/v1/runs': 4 };
const HOUR_MS = 3600_000;
/** A concurrent-job limit frees up when a job ends; this is a guess at when to look again. */
const CONCURRENT_RETRY_S = 60;

// Drops entries older than an hour and adds ARGV[3..] unless that would pass the limit ARGV[2];
// returns -1 when added, else the score (time) of the oldest entry still counted.
const HOURLY = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - ${HOUR_MS})
local n = redis.call('ZCARD', KEYS[1])
if n + #ARGV - 2 > tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2] or ARGV[1])
end
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ${HOUR_MS})
return -1`;

export const quotaPlugin = fp<{ settings: AuthSettings }>(async (app, opts) => {
  const fair = new FairShare(app.deps.redis);
  const { settings } = opts;
  const submitted = new Counter({
    name: 'nommu_ci_token_jobs_submitted_total',
    help: 'Jobs accepted, by token ("anonymous" on an open service)',
    labelNames: ['token'] as const,
    registers: [app.metrics.registry],
  });
  const overQuota = new Counter({
    name: 'nommu_ci_token_quota_rejections_total',
    help: 'Submissions refused with 429, by token and limit',
    labelNames: ['token', 'limit'] as const,
    registers: [app.metrics.registry],
  });
  new Gauge({
    name: 'nommu_ci_token_active_jobs',
    help: 'Jobs queued or running, by token',
    labelNames: ['token'] as const,
    registers: [app.metrics.registry],
    async collect() {
      this.reset();
      for (const name of await fair.names()) this.set({ token: name }, (await fair.active(name)).length);
    },
  });

  const refuse = (req: FastifyRequest, limit: string, retryS: number, message: string): never => {
    overQuota.inc({ token: req.principal!.name, limit });
    throw Object.assign(new HttpError(429, message), { retryAfter: Math.max(1, Math.ceil(retryS)) });
  };

  app.decorateRequest('submission', null);
  app.addHook('preHandler', async (req, reply) => {
    const n = req.method === 'POST' ? SUBMITTING[req.routeOptions.url ?? ''] : undefined;
    if (n === undefined) return;
    const p = req.principal;
    const name = p?.name ?? ANONYMOUS;
    const quota = p !== null && p.name !== ADMIN_PRINCIPAL_NAME;
    const active = await fair.active(name);
    let window: string[] = [];
    try {
      if (quota) {
        const maxConcurrent = p.limits.max_concurrent ?? settings.maxConcurrent;
        if (active.length + n > maxConcurrent) {
          refuse(req, 'max_concurrent', CONCURRENT_RETRY_S,
            `token "${name}" has ${active.length} jobs queued or running and this request adds ${n}; its limit is ${maxConcurrent} concurrent jobs (max_concurrent)`);
        }
        const maxPerHour = p.limits.max_per_hour ?? settings.maxPerHour;
        window = Array.from({ length: n }, () => randomUUID());
        const now = Date.now();
        const oldest = (await app.deps.redis.eval(HOURLY, 1, `nci:tok:hour:${name}`, now, maxPerHour, ...window)) as number;
        if (oldest !== -1) {
          window = [];
          refuse(req, 'max_per_hour', (oldest + HOUR_MS - now) / 1000,
            `token "${name}" reached its limit of ${maxPerHour} jobs per hour (max_per_hour); this request adds ${n}`);
        }
      }
    } catch (e) {
      const retry = (e as { retryAfter?: number }).retryAfter;
      if (retry !== undefined) void reply.header('retry-after', String(retry));
      throw e;
    }
    req.submission = { name, priorities: Array.from({ length: n }, (_, i) => Math.min(active.length + i + 1, MAX_PRIORITY)), window };
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const s = req.submission;
    if (!s) return payload;
    if (reply.statusCode !== 202) {
      // Not queued: it does not count against the hour.
      if (s.window.length > 0) await app.deps.redis.zrem(`nci:tok:hour:${s.name}`, ...s.window);
      return payload;
    }
    const body = JSON.parse(String(payload)) as { id: string; jobs?: string[] };
    const ids = body.jobs ?? [body.id];
    await fair.track(s.name, ids);
    submitted.inc({ token: s.name }, ids.length);
    return payload;
  });
});
