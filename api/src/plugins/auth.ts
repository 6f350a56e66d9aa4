/**
 * Who is asking and whether they may: bearer tokens with roles (tokens.ts), checked on every
 * request before its body is parsed.
 *
 * What a route needs is its `config.role` ('public', 'read', 'submit', 'admin'), else `read`
 * for GET and HEAD and `submit` for everything else; `/healthz`, `/metrics`, `/openapi.json`
 * and `/docs` are public. Writes need a token as soon as NOMMU_CI_ADMIN_TOKEN is set or any
 * token exists; before that the service is open, as a fresh `npm start` on a laptop is. Reads
 * need a token only when anonymous reads are off. The admin endpoints always need an admin
 * token: the first one is NOMMU_CI_ADMIN_TOKEN.
 *
 * Other plugins (the dashboard) check a request the same way with `app.auth.authorize(req, role)`.
 * A submit token cancels only the jobs and runs it submitted.
 * Request rates are limited per token (per address for anonymous requests) with
 * @fastify/rate-limit on Redis, so every API process counts the same requests.
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { HttpError } from '../errors.js';
import { ADMIN_PRINCIPAL_NAME, isAdminToken, roleAtLeast, TokenStore, type Principal, type Role } from '../tokens.js';

export type RouteRole = Role | 'public';

export interface AuthSettings {
  /** NOMMU_CI_ADMIN_TOKEN: the operator's admin token (not stored in Redis). */
  adminToken?: string;
  /** NOMMU_CI_ANONYMOUS_READS (default on): GET without a token once tokens exist. */
  anonymousReads: boolean;
  /** NOMMU_CI_QUOTA_CONCURRENT, NOMMU_CI_QUOTA_PER_HOUR: a token's limits unless it has its own. */
  maxConcurrent: number;
  maxPerHour: number;
  /** NOMMU_CI_RATE_LIMIT: requests per minute per token (anonymous: per address). */
  requestsPerMinute: number;
}

const flag = (v: string | undefined, dflt: boolean) => (v === undefined || v === '' ? dflt : !/^(0|false|no|off)$/i.test(v));
const int = (v: string | undefined, dflt: number) => (v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : dflt);

export function authSettingsFromEnv(env = process.env): AuthSettings {
  return {
    ...(env.NOMMU_CI_ADMIN_TOKEN ? { adminToken: env.NOMMU_CI_ADMIN_TOKEN } : {}),
    anonymousReads: flag(env.NOMMU_CI_ANONYMOUS_READS, true),
    maxConcurrent: int(env.NOMMU_CI_QUOTA_CONCURRENT, 40),
    maxPerHour: int(env.NOMMU_CI_QUOTA_PER_HOUR, 400),
    requestsPerMinute: int(env.NOMMU_CI_RATE_LIMIT, 600),
  };
}

export interface Auth {
  tokens: TokenStore;
  settings: AuthSettings;
  /** Whether writes need a token now (NOMMU_CI_ADMIN_TOKEN set or a token exists). */
  enforced(): Promise<boolean>;
  /** Throws a 401 or 403 naming what is missing when the request may not do what `role` allows. */
  authorize(req: FastifyRequest, role: RouteRole): Promise<void>;
  /** One line for the startup log: open or not, and whether reads are anonymous. */
  describe(): Promise<string>;
}

declare module 'fastify' {
  interface FastifyInstance {
    auth: Auth;
  }
  interface FastifyRequest {
    /** The token's holder; null for an anonymous request. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    role?: RouteRole;
  }
}

const PUBLIC = new Set(['/healthz', '/metrics', '/openapi.json']);
const HOW = 'send "Authorization: Bearer <token>" (nommu-ci --token or NOMMU_CI_TOKEN)';

function routeRole(req: FastifyRequest): RouteRole {
  const configured = req.routeOptions.config?.role;
  if (configured) return configured;
  const url = req.routeOptions.url ?? '';
  if (PUBLIC.has(url) || url === '/docs' || url.startsWith('/docs/')) return 'public';
  return req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'submit';
}

export const authPlugin = fp<{ settings: AuthSettings }>(async (app, opts) => {
  const tokens = new TokenStore(app.deps.redis);
  const settings = opts.settings;
  const rejected = new Counter({
    name: 'nommu_ci_token_rejected_total',
    help: 'Requests refused, by token (address for anonymous requests) and reason',
    labelNames: ['token', 'reason'] as const,
    registers: [app.metrics.registry],
  });
  const requests = new Counter({
    name: 'nommu_ci_token_requests_total',
    help: 'Requests by token ("anonymous" without one)',
    labelNames: ['token'] as const,
    registers: [app.metrics.registry],
  });

  const enforced = async () => settings.adminToken !== undefined || (await tokens.any());

  async function authorize(req: FastifyRequest, need: RouteRole): Promise<void> {
    if (need === 'public') return;
    const what = `${req.method} ${req.routeOptions.url ?? req.url}`;
    const p = req.principal;
    if (need === 'admin') {
      if (!settings.adminToken && !p) throw new HttpError(401, `${what} needs an admin token, and this server has none: set NOMMU_CI_ADMIN_TOKEN and ${HOW}`);
    } else if (need === 'read' && settings.anonymousReads) {
      return; // allowed whether or not tokens exist: no need to ask Redis which
    } else if (!(await enforced())) {
      return; // open local use: no token exists yet
    }
    if (!p) throw new HttpError(401, `${what} needs a token with role ${need}: ${HOW}`);
    if (!roleAtLeast(p.role, need)) throw new HttpError(403, `token "${p.name}" has role ${p.role}; ${what} needs role ${need}`);
  }

  app.decorateRequest('principal', null);
  app.decorate('auth', {
    tokens,
    settings,
    enforced,
    authorize,
    async describe() {
      if (!(await enforced())) return 'auth: open: no NOMMU_CI_ADMIN_TOKEN and no tokens, so anyone who reaches this port can submit jobs';
      return `auth: writes need a token${settings.adminToken ? ' (NOMMU_CI_ADMIN_TOKEN set)' : ''}; anonymous reads ${settings.anonymousReads ? 'on' : 'off'}`;
    },
  } satisfies Auth);

  app.addHook('onRequest', async (req) => {
    const need = routeRole(req);
    const header = req.headers.authorization;
    if (header !== undefined && need !== 'public') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw new HttpError(401, `Authorization header: expected "Bearer <token>"`);
      const presented = m[1]!;
      if (isAdminToken(presented, settings.adminToken)) {
        req.principal = { name: ADMIN_PRINCIPAL_NAME, role: 'admin', limits: { max_concurrent: null, max_per_hour: null } };
      } else {
        const info = await tokens.verify(presented);
        if (!info) {
          rejected.inc({ token: 'anonymous', reason: 'unknown-token' });
          throw new HttpError(401, 'the bearer token is not known to this server (revoked, or mistyped)');
        }
        req.principal = { name: info.name, role: info.role, limits: { max_concurrent: info.max_concurrent, max_per_hour: info.max_per_hour } };
      }
    }
    requests.inc({ token: req.principal?.name ?? 'anonymous' });
    try {
      await authorize(req, need);
    } catch (e) {
      rejected.inc({ token: req.principal?.name ?? 'anonymous', reason: (e as HttpError).statusCode === 401 ? 'unauthenticated' : 'forbidden' });
      throw e;
    }
  });

  // A token cancels its own jobs and runs; an admin cancels any.
  app.addHook('preHandler', async (req) => {
    const p = req.principal;
    const url = req.routeOptions.url;
    if (req.method !== 'DELETE' || !p || p.role === 'admin' || (url !== '/v1/jobs/:id' && url !== '/v1/runs/:id')) return;
    const { id } = req.params as { id: string };
    const what = url.startsWith('/v1/jobs') ? 'job' : 'run';
    const owner = await app.deps.redis.hget(`nci:${what}:${id}`, 'submitted_by');
    const name = owner ? (JSON.parse(owner) as string | null) : null;
    if (name && name !== p.name) throw new HttpError(403, `${what} ${id} was submitted by token "${name}"; only it or an admin token may cancel it`);
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    redis: app.deps.redis,
    nameSpace: 'nci:rl:',
    max: settings.requestsPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => (req.principal ? `token:${req.principal.name}` : `addr:${req.ip}`),
    // The operator's own token and health checks are never throttled.
    allowList: (req) => req.principal?.name === ADMIN_PRINCIPAL_NAME || routeRole(req) === 'public',
    errorResponseBuilder: (req, ctx) => {
      rejected.inc({ token: req.principal?.name ?? 'anonymous', reason: 'rate' });
      const who = req.principal ? `token "${req.principal.name}"` : `address ${req.ip}`;
      return new HttpError(429, `${who} made more than ${ctx.max} requests per minute (NOMMU_CI_RATE_LIMIT); retry in ${ctx.after}`);
    },
  });
});
