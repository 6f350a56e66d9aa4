/** Submitting, reading, listing and canceling jobs. */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import {
  ARTIFACTS,
  COVERAGE_ARTIFACT,
  FINAL_STATES,
  JobRecordSchema,
  JobRequest,
  availability,
  defaultMmu,
  jobCoverage,
  newJobRecord,
  junitXml,
  kunitJson,
  parseKconfig,
  REPO_DIR,
  summarize,
  TracefileError,
  type JobRecord,
  type TestNode,
} from '@nommu-ci/shared';
import { HttpError } from '../errors.js';
import { parsePatchField } from '../patch-field.js';
import { assertSeriesApplies } from '../series-gate.js';
import { listPage, listQuery } from './list-query.js';

const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$', description: 'job id' }) });
const ErrorBody = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() });
const TestNodeSchema = Type.Recursive((Self) =>
  Type.Object({
    name: Type.String(),
    status: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('skip'), Type.Literal('crash')]),
    reason: Type.Optional(Type.String()),
    diagnostics: Type.Array(Type.String()),
    children: Type.Array(Self),
    planned: Type.Optional(Type.Integer()),
  }),
);

/** Checks what the schema cannot: Kconfig text line by line, the kernel name, the patch's shape. */
function validateRequest(req: JobRequest, app: Parameters<FastifyPluginAsync>[0]): void {
  if (req.kind === 'kunit' && req.kunitconfig !== undefined) {
    const { errors } = parseKconfig(req.kunitconfig);
    if (errors.length > 0) {
      const e = errors[0]!;
      throw new HttpError(400, `body.kunitconfig line ${e.line} ("${e.text}"): ${e.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`);
    }
  }
  if (req.kind === 'boot-selftest') {
    const known = new Set(app.deps.bootSelftests().map((t) => t.name));
    const unknown = req.selftests.filter((n) => !known.has(n));
    if (unknown.length > 0) throw new HttpError(400, `body.selftests: unknown ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${[...known].join(', ')}`);
    if (req.mmu === false) {
      const tree = app.deps.catalog().find((k) => k.name === (req.kernel ?? app.deps.catalog()[0]!.name));
      const needMmu = tree?.available ? app.deps.bootSelftests().filter((t) => req.selftests.includes(t.name) && !availability(t, tree.path).nommu) : [];
      if (needMmu.length > 0) {
        throw new HttpError(422, `body.selftests: ${needMmu.map((t) => t.name).join(', ')} depend on MMU in lib/Kconfig.debug and cannot run with "mmu": false`);
      }
    }
  }
  if (req.kind === 'kunit' && req.filter_action !== undefined && req.filter === undefined) {
    throw new HttpError(400, 'body.filter_action: applies to the tests body.filter leaves out, and there is no body.filter');
  }
  if (req.kernel !== undefined) {
    const known = app.deps.catalog().map((k) => k.name);
    if (!known.includes(req.kernel)) throw new HttpError(400, `body.kernel: unknown kernel "${req.kernel}"; known: ${known.join(', ')}`);
  }
  const kernel = app.deps.catalog().find((k) => k.name === (req.kernel ?? app.deps.catalog()[0]!.name))!;
  if (req.mmu === false && app.deps.series(kernel) === null) {
    throw new HttpError(422, `body.mmu: false needs the no-MMU series of kernel "${kernel.name}" (${path.relative(REPO_DIR, kernel.seriesDir)}/series), which this server does not have`);
  }
  if (req.patch !== undefined) parsePatchField(req.patch);
}

export const jobRoutes: FastifyPluginAsync = async (app) => {
  app.post(
    '/v1/jobs',
    {
      schema: {
        summary: 'Queue a job',
        body: JobRequest,
        response: { 202: Type.Object({ id: Type.String() }), 400: ErrorBody, 413: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const body = req.body as JobRequest;
      validateRequest(body, app);
      const kernel = app.deps.catalog().find((k) => k.name === (body.kernel ?? app.deps.catalog()[0]!.name))!;
      const series = app.deps.series(kernel);
      // The stored request is resolved: the worker and the reports see what actually ran.
      const resolved: JobRequest = { ...body, kernel: kernel.name, mmu: body.mmu ?? defaultMmu(series) };
      if (!resolved.mmu) await assertSeriesApplies(app, kernel, series!);
      const id = randomUUID();
      await app.deps.store.create({ ...newJobRecord(id, body.kind), submitted_by: req.principal?.name ?? null }, resolved);
      const priority = req.submission?.priorities[0];
      try {
        await app.deps.queue.add(body.kind, { id }, { jobId: id, ...(priority ? { priority } : {}) });
      } catch (err) {
        await app.deps.store.update(id, { state: 'error', stage: 'infra', message: `could not queue: ${(err as Error).message}` });
        throw new HttpError(503, `queue unavailable: ${(err as Error).message}`);
      }
      app.metrics.jobsSubmitted.inc({ kind: body.kind, mmu: String(resolved.mmu) });
      return reply.code(202).header('location', `/v1/jobs/${id}`).send({ id });
    },
  );

  app.get(
    '/v1/jobs',
    {
      schema: {
        summary: 'Recent jobs, newest first',
        querystring: listQuery('jobs'),
        response: { 200: Type.Array(JobRecordSchema) },
      },
    },
    async (req) => {
      const page = listPage(req.query);
      const ids = await app.deps.store.recent(page.limit, page.offset, page.submittedBy);
      return (await app.deps.store.getMany(ids)).filter((r): r is JobRecord => r !== null);
    },
  );

  app.get(
    '/v1/jobs/:id',
    { schema: { summary: 'A job: state, stage, counts, timings, kernel and config', params: IdParams, response: { 200: JobRecordSchema, 404: ErrorBody } } },
    async (req) => {
      const { id } = req.params as { id: string };
      const record = await app.deps.store.get(id);
      if (!record) throw new HttpError(404, `no job ${id}`);
      return record;
    },
  );

  app.get(
    '/v1/jobs/:id/results',
    {
      schema: {
        summary: 'The parsed test tree of a finished job; or, with ?format=, kunit.py\'s --json document, JUnit XML, or a coverage job\'s line coverage (JobCoverage)',
        params: IdParams,
        querystring: Type.Object(
          {
            format: Type.Optional(
              Type.Unsafe<ResultsFormat>({
                type: 'string',
                enum: ['tree', 'kunit-json', 'junit', 'coverage'],
                description:
                  'tree (default): our test tree; kunit-json: what kunit.py run --json writes; junit: JUnit XML for Jenkins/GitLab; ' +
                  'coverage: a coverage job\'s totals and, for a job with a patch, per changed file the changed lines executed, not executed and not instrumented',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(TestNodeSchema), 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const { format = 'tree' } = req.query as { format?: ResultsFormat };
      const record = await app.deps.store.get(id);
      if (!record) throw new HttpError(404, `no job ${id}`);
      if (format === 'coverage') {
        const coverage = await coverageOf(app, record);
        // A string, as kunit-json is: the response schema describes the tree (the shape is JobCoverageSchema).
        return reply.type('application/json; charset=utf-8').send(JSON.stringify(coverage));
      }
      const results = await app.deps.store.results(id);
      if (!results) throw new HttpError(409, `job ${id} has no results (state ${record.state}${record.stage ? `, stage ${record.stage}` : ''})`);
      if (format === 'kunit-json') {
        // Strings skip the response schema's serializer (which describes the tree).
        const doc = kunitJson(results, plannedOf(record, results), { buildEnvironment: `nommu-ci job ${id}` });
        return reply.type('application/json; charset=utf-8').send(JSON.stringify(doc, null, 4));
      }
      if (format === 'junit') return reply.type('application/xml; charset=utf-8').send(junitXml(results, `nommu-ci job ${id}`));
      return results;
    },
  );

  app.delete(
    '/v1/jobs/:id',
    {
      schema: {
        summary: 'Cancel a job: a queued job is dropped, a running build or kernel is killed',
        params: IdParams,
        response: { 202: Type.Object({ id: Type.String(), state: Type.String() }), 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const record = await app.deps.store.get(id);
      if (!record) throw new HttpError(404, `no job ${id}`);
      if (FINAL_STATES.has(record.state)) throw new HttpError(409, `job ${id} already ended (${record.state})`);
      await app.deps.store.requestCancel(id);
      const queued = await app.deps.queue.getJob(id);
      // A job no worker holds yet is ended here; a running one is ended by its worker.
      // Fairly scheduled jobs wait in the prioritized state (plugins/quota.ts).
      if (queued && ['waiting', 'delayed', 'prioritized'].includes(await queued.getState()) && (await removed(queued))) {
        await app.deps.store.update(id, { state: 'canceled', message: 'canceled before it started' });
        await app.deps.store.appendEvent(id, { type: 'state', state: 'canceled', stage: null, message: 'canceled before it started' });
        await app.deps.store.endTap(id, Math.max(1, record.attempt), false);
        await app.deps.store.endEvents(id);
        return reply.code(202).send({ id, state: 'canceled' });
      }
      return reply.code(202).send({ id, state: record.state });
    },
  );

  app.get(
    '/v1/jobs/:id/artifacts/:name',
    {
      schema: {
        summary: 'A log or the final .config of a job',
        params: Type.Object({ id: IdParams.properties.id, name: Type.Union(ARTIFACTS.map((a) => Type.Literal(a))) }),
        produces: ['text/plain'],
      },
    },
    async (req, reply) => {
      const { id, name } = req.params as { id: string; name: (typeof ARTIFACTS)[number] };
      if (!(await app.deps.store.get(id))) throw new HttpError(404, `no job ${id}`);
      const data = await app.deps.store.artifact(id, name);
      if (!data) throw new HttpError(404, `job ${id} has no ${name} (yet)`);
      return reply.type('text/plain; charset=utf-8').send(data);
    },
  );

  app.get(
    '/v1/jobs/:id/coverage/*',
    {
      schema: {
        summary: "A file of a coverage job's HTML line coverage report (genhtml); start at index.html",
        params: Type.Object({ id: IdParams.properties.id, '*': Type.String({ description: 'path inside the report; empty for index.html' }) }),
        produces: ['text/html', 'text/css', 'image/png'],
      },
    },
    async (req, reply) => {
      const { id, '*': rest } = req.params as { id: string; '*': string };
      const name = reportPath(rest);
      if (!(await app.deps.store.get(id))) throw new HttpError(404, `no job ${id}`);
      const data = await app.deps.store.coverageReportFile(id, name);
      if (!data) throw new HttpError(404, `job ${id} has no coverage report file ${name} (a job has a report once it ran with coverage: true)`);
      // The report shows kernel source a patch may have written: it is shown, never run.
      reply.header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; sandbox");
      return reply.type(REPORT_TYPES[path.extname(name)] ?? 'application/octet-stream').send(data);
    },
  );
};

const REPORT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

/** A path inside a coverage report: relative, plain segments only (no `..`, `.`, empty or hidden ones). */
export function reportPath(raw: string): string {
  if (raw === '' || raw.endsWith('/')) raw += 'index.html';
  if (raw.length > 1024) throw new HttpError(400, 'params.*: coverage report path longer than 1024 characters');
  for (const seg of raw.split('/')) {
    if (seg === '' || seg.startsWith('.')) throw new HttpError(400, `params.*: coverage report path ${JSON.stringify(raw)}: segment ${JSON.stringify(seg)} is empty or starts with a dot`);
    if (!/^[A-Za-z0-9_.,+=@-]+$/.test(seg)) throw new HttpError(400, `params.*: coverage report path ${JSON.stringify(raw)}: segment ${JSON.stringify(seg)} has characters other than letters, digits and _.,+=@-`);
  }
  return raw;
}

type ResultsFormat = 'tree' | 'kunit-json' | 'junit' | 'coverage';

/** A coverage job's totals and its patch's changed lines against its tracefile. */
async function coverageOf(app: Parameters<FastifyPluginAsync>[0], record: JobRecord) {
  const trace = await app.deps.store.artifact(record.id, COVERAGE_ARTIFACT);
  if (!trace) {
    throw new HttpError(409, `job ${record.id} has no ${COVERAGE_ARTIFACT}: not a coverage job, or it has not finished its tests (state ${record.state}${record.stage ? `, stage ${record.stage}` : ''})`);
  }
  const request = await app.deps.store.request(record.id);
  try {
    return jobCoverage(trace.toString('utf8'), request?.patch);
  } catch (e) {
    if (e instanceof TracefileError) throw new HttpError(409, `job ${record.id}: its ${COVERAGE_ARTIFACT} cannot be read: ${e.message}`);
    throw e;
  }
}

/**
 * The top-level plan of a stored result: the record's summary counted suites that never reported
 * as crashed (summarize(tests, planned)), the tree has only those that did.
 */
function plannedOf(record: JobRecord, tests: TestNode[]): number {
  return tests.length + Math.max(0, record.summary.crashed - summarize(tests).crashed);
}

/** False when a worker took the job in the meantime: then the worker sees the cancel flag. */
async function removed(job: { remove(): Promise<void> }): Promise<boolean> {
  try {
    await job.remove();
    return true;
  } catch {
    return false;
  }
}
