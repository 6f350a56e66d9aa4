/**
 * Runs: a patch series against its base, on the no-MMU and the MMU kernel, as four ordinary jobs
 * (see ../submit.ts), and what changed, in the forms bots and maintainers post it.
 *
 *   POST /v1/runs                      queue a run → 202 {id}
 *   GET  /v1/runs                      recent runs
 *   GET  /v1/runs/:id                  state, cells (job ids and their states), verdict when done
 *   GET  /v1/runs/:id/report?format=   markdown | email | patchwork | kcidb | json
 *   GET  /v1/runs/:id/patches/:n       patch n of the series as applied (KCIDB patchset_files)
 *   DELETE /v1/runs/:id                cancel the run's jobs that have not ended
 *
 * Everything is validated before anything is created: a bad request leaves nothing queued.
 */
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import {
  liveRun,
  loadCell,
  loadCells,
  MAX_PATCH_BYTES,
  parseKconfig,
  parseMbox,
  renderReport,
  REPORT_FORMATS,
  RunRequestSchema,
  REPO_DIR,
  RunStore,
  type CellData,
  type ReportFormat,
  type RunRecord,
  type RunRequest,
  webhookAllowed,
} from '@nommu-ci/shared';
import { HttpError } from '../errors.js';
import { parsePatchField } from '../patch-field.js';
import { assertSeriesApplies } from '../series-gate.js';
import { makeFlowProducer, queueRun } from '../submit.js';
import { listPage, listQuery } from './list-query.js';

const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$', description: 'run id' }) });
const ErrorBody = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() });

/** Where this service is reachable, for links in reports. */
export function publicUrl(req: FastifyRequest): string {
  return process.env.NOMMU_CI_PUBLIC_URL ?? `${req.protocol}://${req.host}`;
}

function validate(body: RunRequest, app: Parameters<FastifyPluginAsync>[0]) {
  if (Buffer.byteLength(body.patch, 'utf8') > MAX_PATCH_BYTES) {
    throw new HttpError(413, `body.patch: the mbox is ${Buffer.byteLength(body.patch, 'utf8')} bytes; the limit is ${MAX_PATCH_BYTES}`);
  }
  if (body.kunitconfig !== undefined) {
    const { errors } = parseKconfig(body.kunitconfig);
    if (errors.length > 0) {
      const e = errors[0]!;
      throw new HttpError(400, `body.kunitconfig line ${e.line} ("${e.text}"): ${e.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`);
    }
  }
  const catalog = app.deps.catalog();
  if (body.kernel !== undefined && !catalog.some((k) => k.name === body.kernel)) {
    throw new HttpError(400, `body.kernel: unknown kernel "${body.kernel}"; known: ${catalog.map((k) => k.name).join(', ')}`);
  }
  if (body.callback_url !== undefined && !webhookAllowed(body.callback_url)) {
    throw new HttpError(400, `body.callback_url: not allowed by this server (allowed prefixes: ${process.env.NOMMU_CI_WEBHOOK_ALLOW})`);
  }
  const kernel = catalog.find((k) => k.name === (body.kernel ?? catalog[0]!.name))!;
  if (app.deps.series(kernel) === null) {
    throw new HttpError(422, `a run tests the no-MMU and the MMU kernel, and this server has no no-MMU series for kernel "${kernel.name}" (${path.relative(REPO_DIR, kernel.seriesDir)}/series)`);
  }
  return parsePatchField(body.patch);
}

export const runRoutes: FastifyPluginAsync = async (app) => {
  const runs = new RunStore(app.deps.redis);
  const flow = makeFlowProducer(app.deps.queue, app.deps.redis);
  app.addHook('onClose', async () => {
    await flow.close();
  });

  async function load(id: string): Promise<{ run: RunRecord; cells: CellData[]; prefixes: CellData[] }> {
    const stored = await runs.get(id);
    if (!stored) throw new HttpError(404, `no run ${id}`);
    const cells = await loadCells(app.deps.store, stored);
    const prefixes = await Promise.all(stored.prefixes.map((p) => loadCell(app.deps.store, p)));
    return { run: liveRun(stored, cells, prefixes), cells, prefixes };
  }

  const view = ({ run, cells, prefixes }: { run: RunRecord; cells: CellData[]; prefixes: CellData[] }) => {
    const state = (d: CellData) => ({
      state: d.record?.state ?? 'missing',
      stage: d.record?.stage ?? null,
      message: d.record?.message ?? null,
      summary: d.record?.summary ?? null,
    });
    return {
      ...run,
      cells: run.cells.map((c, i) => ({ ...c, ...state(cells[i]!) })),
      prefixes: run.prefixes.map((p, i) => ({ ...p, ...state(prefixes[i]!) })),
    };
  };

  app.post(
    '/v1/runs',
    {
      schema: {
        summary: 'Queue a run: the series against its base, on the no-MMU and the MMU kernel',
        body: RunRequestSchema,
        response: { 202: Type.Object({ id: Type.String(), jobs: Type.Array(Type.String()) }), 400: ErrorBody, 413: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const body = req.body as RunRequest;
      const parsed = validate(body, app);
      const source = app.deps.catalog().find((k) => k.name === (body.kernel ?? app.deps.catalog()[0]!.name))!;
      await assertSeriesApplies(app, source, app.deps.series(source)!);
      const kernel = source.name;
      let run: RunRecord;
      try {
        run = await queueRun(
          { redis: app.deps.redis, store: app.deps.store, runs, queue: app.deps.queue, flow },
          {
            mbox: body.patch,
            parsed,
            kernel,
            submittedBy: req.principal?.name ?? null,
            priorities: req.submission?.priorities,
            options: {
              per_patch: body.per_patch ?? false,
              ...(body.kunitconfig !== undefined ? { kunitconfig: body.kunitconfig } : {}),
              ...(body.kconfig_add ? { kconfig_add: body.kconfig_add } : {}),
              ...(body.filter_glob ? { filter_glob: body.filter_glob } : {}),
              ...(body.callback_url ? { callback_url: body.callback_url } : {}),
              ...(body.timeout_s ? { timeout_s: body.timeout_s } : {}),
              ...(body.fresh_base ? { fresh_base: true } : {}),
              ...(body.coverage ? { coverage: true } : {}),
            },
          },
        );
      } catch (err) {
        throw new HttpError(503, `queue unavailable: ${(err as Error).message}`);
      }
      for (const c of run.cells) app.metrics.jobsSubmitted.inc({ kind: 'kunit', mmu: String(c.mmu) });
      for (const c of run.extras ?? []) app.metrics.jobsSubmitted.inc({ kind: 'kselftest', mmu: String(c.mmu) });
      return reply.code(202).header('location', `/v1/runs/${run.id}`).send({ id: run.id, jobs: [...run.cells, ...(run.extras ?? [])].map((c) => c.job) });
    },
  );

  app.get(
    '/v1/runs',
    {
      schema: {
        summary: 'Recent runs, newest first',
        querystring: listQuery('runs'),
      },
    },
    async (req) => {
      const page = listPage(req.query);
      const ids = await runs.recent(page.limit, page.offset, page.submittedBy);
      const out = [];
      for (const id of ids) {
        const stored = await runs.get(id);
        if (!stored) continue;
        const r = stored.finished_at ? stored : liveRun(stored, await loadCells(app.deps.store, stored));
        out.push({ id: r.id, state: r.state, created_at: r.created_at, kernel: r.kernel, title: r.series.cover?.subject ?? r.series.patches[0]?.subject, headline: r.verdict?.headline ?? null, submitted_by: r.submitted_by ?? null });
      }
      return out;
    },
  );

  app.get('/v1/runs/:id', { schema: { summary: 'A run: state, cells with their jobs, verdict when done', params: IdParams } }, async (req) => {
    const { id } = req.params as { id: string };
    return view(await load(id));
  });

  app.get(
    '/v1/runs/:id/report',
    {
      schema: {
        summary: 'The run as a report: markdown (MR/PR comment), email (reply to the series), patchwork (check), kcidb (KCIDB I/O JSON), json (full model)',
        params: IdParams,
        querystring: Type.Object(
          {
            format: Type.Optional(Type.String({ description: REPORT_FORMATS.join(' | ') })),
            patch: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: 'patchwork: the check of patch n of the series' })),
          },
          { additionalProperties: false },
        ),
        produces: ['text/markdown', 'text/plain', 'application/json'],
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const q = req.query as { format?: string; patch?: string };
      const format = q.format ?? 'markdown';
      if (!(REPORT_FORMATS as readonly string[]).includes(format)) {
        throw new HttpError(400, `querystring.format: unknown report format "${format}"; one of ${REPORT_FORMATS.join(', ')}`);
      }
      const { run, cells } = await load(id);
      if (q.patch !== undefined && Number(q.patch) > run.series.patches.length) throw new HttpError(400, `querystring.patch: the series has ${run.series.patches.length} patches`);
      const r = renderReport(format as ReportFormat, run, cells, { baseUrl: publicUrl(req) }, q.patch === undefined ? undefined : Number(q.patch));
      return reply.type(r.type).send(r.body);
    },
  );

  app.delete(
    '/v1/runs/:id',
    { schema: { summary: "Cancel a run: each of its jobs that has not ended is canceled as DELETE /v1/jobs/:id does", params: IdParams } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const run = await runs.get(id);
      if (!run) throw new HttpError(404, `no run ${id}`);
      if (run.finished_at) throw new HttpError(409, `run ${id} already ended (${run.state})`);
      const jobs: { id: string; state: string }[] = [];
      for (const c of [...run.cells, ...(run.extras ?? []), ...run.prefixes]) {
        // The job route's own cancel: a queued job is dropped (and leaves the run's flow), a running one is killed.
        const res = await app.inject({ method: 'DELETE', url: `/v1/jobs/${c.job}`, headers: req.headers.authorization ? { authorization: req.headers.authorization } : {} });
        if (res.statusCode === 202) jobs.push(res.json() as { id: string; state: string });
      }
      return reply.code(202).send({ id, jobs });
    },
  );

  app.get(
    '/v1/runs/:id/patches/:n',
    { schema: { summary: 'Patch n of the series, as applied', params: Type.Object({ id: IdParams.properties.id, n: Type.String({ pattern: '^[1-9][0-9]{0,3}$' }) }), produces: ['text/plain'] } },
    async (req, reply) => {
      const { id, n } = req.params as { id: string; n: string };
      const mbox = await runs.patch(id);
      if (mbox === null) throw new HttpError(404, `no run ${id}`);
      const p = parseMbox(mbox).patches[Number(n) - 1];
      if (!p) throw new HttpError(404, `run ${id} has no patch ${n}`);
      return reply.type('text/x-diff; charset=utf-8').send(p.diff);
    },
  );
};
