/**
 * The web dashboard, served by the API process at `/` next to the JSON API at `/v1`.
 *
 * Every page and asset is registered inside this one plugin, so that whatever guards reads of
 * the JSON API (an `onRequest`/`preHandler` hook for read access) is added here once and covers
 * the whole dashboard. The pages read the same store the /v1 routes read; links to logs, KTAP and
 * JSON go to the /v1 routes themselves.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import {
  FINAL_STATES,
  JOB_KINDS,
  JOB_STATES,
  liveRun,
  loadCell,
  loadCells,
  RunStore,
  type JobRecord,
  type TestNode,
} from '@nommu-ci/shared';
import { HttpError } from '../errors.js';
import { listing as kselftestListing } from '../routes/kselftests.js';
import { publicUrl } from '../routes/runs.js';
import { loadAssets } from './assets.js';
import { html, layout, type PageOptions } from './html.js';
import { configAskedVsGot, reproducer, suiteDurations } from './job-data.js';
import { jobPage } from './pages/job.js';
import { jobsPage, listJobs, type JobFilters } from './pages/jobs.js';
import { kernelsPage } from './pages/kernels.js';
import { queuePage } from './pages/queue.js';
import { runPage, runsPage } from './pages/run.js';

const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });
const hide = { hide: true };

function send(reply: FastifyReply, o: PageOptions): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(layout(o));
}

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const assets = await loadAssets();
  const runs = new RunStore(app.deps.redis);

  // Errors of pages are pages: the JSON API's errors stay JSON.
  app.setErrorHandler((err: Error, req, reply) => {
    const status = err instanceof HttpError ? err.statusCode : (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'dashboard page failed');
    const message = status >= 500 ? 'internal error; see the server log' : err.message;
    void send(reply.code(status), { title: `Error ${status}`, nav: null, page: 'error', body: html`<h1>Error ${status}</h1><p>${message}</p>` });
  });

  app.get('/assets/:name', { schema: { ...hide, params: Type.Object({ name: Type.String({ pattern: '^[a-z.]{1,40}$' }) }) } }, async (req, reply) => {
    const a = assets.get((req.params as { name: string }).name);
    if (!a) throw new HttpError(404, 'no such asset');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).header('etag', a.etag).header('cache-control', 'no-cache').send(a.body);
  });

  app.get(
    '/',
    {
      schema: {
        ...hide,
        querystring: Type.Object(
          {
            state: Type.Optional(Type.Union([Type.Literal(''), ...JOB_STATES.map((s) => Type.Literal(s))])),
            kind: Type.Optional(Type.Union([Type.Literal(''), ...JOB_KINDS.map((s) => Type.Literal(s))])),
            kernel: Type.Optional(Type.String({ pattern: '^([a-z0-9][a-z0-9._-]{0,63})?$' })),
            mmu: Type.Optional(Type.Union([Type.Literal(''), Type.Literal('mmu'), Type.Literal('nommu')])),
            submitter: Type.Optional(Type.String({ maxLength: 128 })),
            offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const q = req.query as Record<string, string | undefined>;
      const f: JobFilters = {};
      for (const k of ['state', 'kind', 'kernel', 'submitter'] as const) if (q[k]) f[k] = q[k];
      if (q.mmu === 'mmu' || q.mmu === 'nommu') f.mmu = q.mmu;
      if (q.offset) f.offset = Number(q.offset);
      const list = await listJobs(app.deps.store, f);
      return send(reply, { title: 'Jobs', nav: 'jobs', page: 'jobs', body: jobsPage(f, list, app.deps.catalog().map((k) => k.name)) });
    },
  );

  app.get('/jobs/:id', { schema: { ...hide, params: IdParams } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const record = await app.deps.store.get(id);
    if (!record) throw new HttpError(404, `no job ${id}`);
    const [request, results] = await Promise.all([app.deps.store.request(id), app.deps.store.results(id)]);
    const final = FINAL_STATES.has(record.state);
    const [consoleLog, config, suiteMs] = final
      ? await Promise.all([
          results?.some(hasCrash) ? app.deps.store.artifact(id, 'console.log') : null,
          app.deps.store.artifact(id, 'config'),
          suiteDurations(app.deps.redis, app.deps.store, id, record.attempt),
        ])
      : [null, null, new Map<string, number>()];
    const body = jobPage({
      record,
      request,
      results,
      suiteMs,
      consoleLog: consoleLog?.toString('utf8') ?? null,
      config: request ? configAskedVsGot(request, config?.toString('utf8') ?? null, app.deps.bootSelftests()) : null,
      reproducer: request ? reproducer(request, publicUrl(req), id) : null,
    });
    return send(reply, { title: `Job ${id.slice(0, 8)} ${record.state}`, nav: 'jobs', page: final ? 'job-final' : 'job', body });
  });

  app.get('/jobs/:id/patch', { schema: { ...hide, params: IdParams } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const request = await app.deps.store.request(id);
    if (!request) throw new HttpError(404, `no job ${id}`);
    if (!request.patch) throw new HttpError(404, `job ${id} has no patch`);
    return reply.type('text/x-diff; charset=utf-8').send(request.patch);
  });

  app.get('/runs', { schema: hide }, async (_req, reply) => {
    const ids = await runs.recent(50);
    const rows = [];
    for (const id of ids) {
      const stored = await runs.get(id);
      if (stored) rows.push({ run: stored.finished_at ? stored : liveRun(stored, await loadCells(app.deps.store, stored)) });
    }
    return send(reply, { title: 'Runs', nav: 'runs', page: 'runs', body: runsPage(rows) });
  });

  app.get('/runs/:id', { schema: { ...hide, params: IdParams } }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const stored = await runs.get(id);
    if (!stored) throw new HttpError(404, `no run ${id}`);
    const cells = await loadCells(app.deps.store, stored);
    const prefixes = await Promise.all(stored.prefixes.map((p) => loadCell(app.deps.store, p)));
    const run = liveRun(stored, cells, prefixes);
    const final = run.finished_at !== null;
    return send(reply, { title: `Run ${id.slice(0, 8)} ${run.state}`, nav: 'runs', page: final ? 'run-final' : 'run', body: runPage(run, cells, { baseUrl: publicUrl(req) }) });
  });

  app.get('/kernels', { schema: hide }, async (_req, reply) => {
    const body = kernelsPage({
      catalog: app.deps.catalog(),
      series: app.deps.series(),
      selftests: app.deps.bootSelftests(),
      kselftests: (k) => kselftestListing(k.path, k.version),
    });
    return send(reply, { title: 'Kernels', nav: 'kernels', page: 'kernels', body });
  });

  app.get('/queue', { schema: hide }, async (_req, reply) => {
    const q = app.deps.queue;
    const [counts, active, waiting, clients] = await Promise.all([
      q.getJobCounts('active', 'waiting', 'prioritized', 'delayed'),
      q.getJobs(['active'], 0, 99),
      q.getJobs(['waiting', 'prioritized', 'delayed'], 0, 99, true),
      q.getWorkers(),
    ]);
    const record = async (id: string | undefined) => (id ? app.deps.store.get(id) : null);
    const running = [];
    for (const j of active) {
      const r = await record(j.id);
      if (r) running.push({ record: r, worker: j.processedBy ?? null });
    }
    const queued = (await Promise.all(waiting.map((j) => record(j.id)))).filter((r): r is JobRecord => r !== null);
    const workers = clients.map((c) => ({
      name: c.rawname?.split(':w:')[1] ?? 'unnamed',
      addr: c.addr ?? '',
      age: c.age ? `${Math.round(Number(c.age) / 60)} min` : '',
      idle: c.idle ? `${c.idle} s` : '',
    }));
    return send(reply, { title: 'Queue', nav: 'queue', page: 'queue', body: queuePage({ counts, running, waiting: queued, workers }) });
  });
};

/** Only a crash needs the console log (for the excerpt around it). */
const hasCrash = (t: TestNode): boolean => t.status === 'crash' || t.children.some(hasCrash);
