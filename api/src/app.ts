/**
 * The HTTP API as a Fastify instance with its dependencies passed in, so tests build it on a
 * real Redis with their own queue name and the server entry point builds it from the environment.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { fastifySSE as sse } from '@fastify/sse';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { MAX_PATCH_BYTES, type BootSelftest, type JobStore, type KernelSource, type QueueJobData, type SeriesApplyFailure, type SeriesInfo } from '@nommu-ci/shared';
import { formatSchemaErrors, HttpError } from './errors.js';
import { metricsPlugin } from './plugins/metrics.js';
import { authPlugin, authSettingsFromEnv, type AuthSettings } from './plugins/auth.js';
import { quotaPlugin } from './plugins/quota.js';
import { tokenRoutes } from './routes/tokens.js';
import { jobRoutes } from './routes/jobs.js';
import { runRoutes } from './routes/runs.js';
import { streamRoutes } from './routes/streams.js';
import { kernelRoutes } from './routes/kernels.js';
import { healthRoutes } from './routes/health.js';
import { bootSelftestRoutes } from './routes/boot-selftests.js';
import { kselftestRoutes } from './routes/kselftests.js';
import { dashboardRoutes } from './dashboard/routes.js';

export interface AppDeps {
  redis: Redis;
  store: JobStore;
  queue: Queue<QueueJobData>;
  /** Kernel sources jobs may name; re-read per request so an operator's edit needs no restart. */
  catalog: () => KernelSource[];
  /** The no-MMU series mmu:false jobs on `kernel` apply (the default kernel's without one). */
  series: (kernel?: KernelSource) => SeriesInfo | null;
  /**
   * Whether that series applies to the kernel's tree: the first failing patch and hunk, or null.
   * server.ts passes SeriesApplicability's cached git check; without it no-MMU POSTs are not gated.
   */
  seriesApplies?: (kernel: KernelSource, series: SeriesInfo) => Promise<SeriesApplyFailure | null>;
  bootSelftests: () => BootSelftest[];
  /** Tokens, quotas, rate limits; default from the environment (authSettingsFromEnv). */
  auth?: AuthSettings;
  /** Fastify's own pino logger: false in tests, a level in production. */
  logger?: boolean | { level: string };
}

declare module 'fastify' {
  interface FastifyInstance {
    deps: AppDeps;
  }
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger ?? false,
    // A patch series plus the JSON around it.
    bodyLimit: MAX_PATCH_BYTES + 1024 * 1024,
    // Unknown fields are rejected, not silently dropped, and "true" is not a boolean.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, discriminator: true } },
    schemaErrorFormatter: formatSchemaErrors,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('deps', deps);
  app.setErrorHandler((err: Error, req, reply) => {
    if (redisUnavailable(err)) {
      req.log.warn(`redis unavailable: ${err.message}`);
      const message = 'the job store (Redis) is unavailable; try again shortly';
      void reply.code(503).header('retry-after', '5').send({ statusCode: 503, error: httpReason(503), message });
      return;
    }
    const status = err instanceof HttpError ? err.statusCode : (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const message = status >= 500 ? 'internal error; see the server log' : err.message;
    void reply.code(status).send({ statusCode: status, error: httpReason(status), message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${req.method} ${req.url}` });
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'nommu-ci', version: '1.0.0', description: 'Build, boot and test User-Mode Linux kernels, with and without an MMU.' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(sse, { heartbeatInterval: 15000 });
  await app.register(metricsPlugin);
  const authSettings = deps.auth ?? authSettingsFromEnv();
  await app.register(authPlugin, { settings: authSettings });
  await app.register(quotaPlugin, { settings: authSettings });
  await app.register(tokenRoutes);
  await app.register(healthRoutes);
  await app.register(kernelRoutes);
  await app.register(jobRoutes);
  await app.register(runRoutes);
  await app.register(bootSelftestRoutes);
  await app.register(kselftestRoutes);
  await app.register(streamRoutes);
  await app.register(dashboardRoutes);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app as unknown as FastifyInstance;
}

/** ioredis's errors for a command that could not reach Redis (the connection fails fast, server.ts). */
function redisUnavailable(err: Error): boolean {
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /enableOfflineQueue options is false|Connection is closed|connect ECONNREFUSED|read ECONNRESET/.test(err.message)
  );
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 406: 'Not Acceptable', 409: 'Conflict', 413: 'Payload Too Large',
    415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests', 503: 'Service Unavailable',
  };
  return reasons[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error');
}
