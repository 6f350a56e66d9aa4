/** Prometheus metrics: request latencies, jobs submitted, and the queue's depth read at scrape time. */
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: { jobsSubmitted: Counter<'kind' | 'mmu'>; registry: Registry };
  }
}

export const metricsPlugin = fp(async (app) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const http = new Histogram({
    name: 'nommu_ci_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.02, 0.1, 0.5, 2, 10],
    registers: [registry],
  });
  const jobsSubmitted = new Counter({
    name: 'nommu_ci_jobs_submitted_total',
    help: 'Jobs accepted by the API',
    labelNames: ['kind', 'mmu'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'nommu_ci_queue_jobs',
    help: 'Jobs in the BullMQ queue by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const { prioritized = 0, ...counts } = await app.deps.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed');
      // Fairly scheduled jobs (plugins/quota.ts) wait with a priority: waiting all the same.
      counts.waiting = (counts.waiting ?? 0) + prioritized;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  app.decorate('metrics', { jobsSubmitted, registry });
  app.addHook('onResponse', async (req, reply) => {
    // Streams end long after they start; their latency is not a request latency.
    if (req.routeOptions.url?.endsWith('/tap') || req.routeOptions.url?.endsWith('/events')) return;
    http.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: reply.statusCode }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    void reply.type(registry.contentType);
    return registry.metrics();
  });
});
