/**
 * The job as a client submits it and as the service stores it. The TypeBox schemas give the
 * API its validation, its serialization and its OpenAPI document from one definition.
 */
import { Type, type Static } from '@sinclair/typebox';
import { emptySummary, type Summary } from './result.js';
import { CoverageFlag, KselftestJobRequest } from './kselftest.js';
import { CoverageTotalsSchema } from './coverage/model.js';

export const MAX_PATCH_BYTES = 8 * 1024 * 1024;

/** A catalog name, never a path: jobs pick a kernel source the operator configured. */
export const KernelName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'kernel source name from GET /v1/kernels' });

/** kunit's glob: suite or suite.test, with * and ?; no spaces, so it cannot inject boot arguments. */
export const FilterGlob = Type.String({ pattern: '^[A-Za-z0-9_*?.\\-\\[\\]]{1,256}$', description: 'kunit.filter_glob, e.g. "list-kunit-test" or "maple_tree.*"' });

export const KconfigLine = Type.String({
  pattern: '^(CONFIG_[A-Za-z0-9_]+=(y|n|m|-?[0-9]+|0x[0-9a-fA-F]+|"([^"\\\\\\n]|\\\\.)*")|# CONFIG_[A-Za-z0-9_]+ is not set)$',
  description: 'one Kconfig assignment, e.g. CONFIG_KASAN=y',
});

const common = {
  kernel: Type.Optional(KernelName),
  mmu: Type.Optional(Type.Boolean({ description: 'build with CONFIG_MMU=y (true) or the no-MMU kernel (false)' })),
  kconfig_add: Type.Optional(Type.Array(KconfigLine, { maxItems: 256 })),
  patch: Type.Optional(
    Type.String({ minLength: 1, maxLength: MAX_PATCH_BYTES, description: 'mbox from git format-patch / b4, or a unified diff' }),
  ),
  timeout_s: Type.Optional(Type.Integer({ minimum: 30, maximum: 14400, description: 'whole-job timeout in seconds' })),
  coverage: Type.Optional(CoverageFlag),
};

/** kunit.py's attribute filter (--filter): `attr op value` terms, comma-separated; quoted on the command line by us. */
export const AttrFilter = Type.String({
  pattern: '^[A-Za-z0-9_.<>=!, -]{1,256}$',
  description: 'kunit.filter, e.g. "speed>slow" or "module=list_test, speed!=slow" (kunit.py --filter)',
});

/** How a KUnit job runs its suites (kunit.py run's options, and the service's own sharding). */
export const kunitRunOptions = {
  filter: Type.Optional(AttrFilter),
  filter_action: Type.Optional(Type.Literal('skip', { description: 'run the tests the filter leaves out as skipped (kunit.py --filter_action=skip)' })),
  isolate: Type.Optional(
    Type.Union([Type.Literal('suite'), Type.Literal('test')], { description: 'a fresh kernel per suite or per test (kunit.py --run_isolated)' }),
  ),
  list_only: Type.Optional(Type.Boolean({ description: 'list the tests the config would run (suite.test per KTAP line), without running them (kunit.py --list_tests)' })),
  shards: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 16, description: 'kernels run side by side, suites split between them; 1 is one kernel running every suite in turn; default: the worker\'s NOMMU_CI_KUNIT_SHARDS' }),
  ),
  reuse_base_result: Type.Optional(
    Type.Boolean({ description: 'an unpatched job may take the suites that passed in an earlier identical job instead of running them again (runs set it for their base jobs)' }),
  ),
};

export const KunitJobRequest = Type.Object(
  {
    kind: Type.Literal('kunit'),
    ...common,
    kunitconfig: Type.Optional(Type.String({ maxLength: 65536, description: 'kunitconfig text; default: the tree\'s default KUnit config' })),
    filter_glob: Type.Optional(FilterGlob),
    ...kunitRunOptions,
  },
  { additionalProperties: false },
);
export type KunitJobRequest = Static<typeof KunitJobRequest>;

export const BootSelftestJobRequest = Type.Object(
  {
    kind: Type.Literal('boot-selftest'),
    ...common,
    selftests: Type.Array(Type.String({ pattern: '^[a-z0-9_]{1,64}$' }), {
      minItems: 1,
      maxItems: 64,
      uniqueItems: true,
      description: 'names from GET /v1/boot-selftests, e.g. ["maple_tree", "xarray"]',
    }),
  },
  { additionalProperties: false },
);
export type BootSelftestJobRequest = Static<typeof BootSelftestJobRequest>;

export type JobRequest = KunitJobRequest | BootSelftestJobRequest | KselftestJobRequest;
export const JOB_KINDS = ['kunit', 'boot-selftest', 'kselftest'] as const;
/** `kind` picks the schema, so an error names the field of that kind rather than every kind's. */
export const JobRequest = Type.Unsafe<JobRequest>({
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: [KunitJobRequest, BootSelftestJobRequest, KselftestJobRequest],
});

export const JOB_STATES = ['queued', 'building', 'booting', 'running', 'passed', 'failed', 'error', 'canceled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['passed', 'failed', 'error', 'canceled']);

/** Pipeline stages in order; the one a failed job names is where it stopped. */
export const STAGES = ['source', 'patch', 'config', 'build', 'boot', 'test', 'infra'] as const;
export type Stage = (typeof STAGES)[number];

const literals = <T extends readonly string[]>(xs: T) => Type.Union(xs.map((x) => Type.Literal(x)));

export const SummarySchema = Type.Object({
  passed: Type.Integer(),
  failed: Type.Integer(),
  skipped: Type.Integer(),
  crashed: Type.Integer(),
});

export const TimingsSchema = Type.Object({
  queued_at: Type.String({ format: 'date-time' }),
  started_at: Type.Optional(Type.String({ format: 'date-time' })),
  finished_at: Type.Optional(Type.String({ format: 'date-time' })),
  /** Milliseconds spent in each stage that ran. */
  stages: Type.Record(Type.String(), Type.Integer(), { description: 'milliseconds per stage' }),
});
export type Timings = Static<typeof TimingsSchema>;

export const KernelInfoSchema = Type.Object({
  name: Type.String(),
  version: Type.String({ description: 'source version, e.g. 7.2.12-1 for Debian linux-source-7.2' }),
  series: Type.Union([Type.String(), Type.Null()], { description: 'no-MMU series applied, as <name>@<hash>' }),
});
export type KernelInfo = Static<typeof KernelInfoSchema>;

export const ConfigInfoSchema = Type.Object({
  hash: Type.String({ description: 'sha256 of the final .config' }),
  mmu: Type.Boolean({ description: 'CONFIG_MMU as read from the built .config' }),
});
export type ConfigInfo = Static<typeof ConfigInfoSchema>;

/** How far a long stage is: objects compiled, suites finished. `total` null when not known. */
export const ProgressSchema = Type.Object({
  stage: Type.Union([Type.Literal('build'), Type.Literal('test')]),
  done: Type.Integer(),
  total: Type.Union([Type.Integer(), Type.Null()]),
  unit: Type.Union([Type.Literal('objects'), Type.Literal('suites')]),
});
export type Progress = Static<typeof ProgressSchema>;

/** What GET /v1/jobs/:id returns; the request itself is kept separately (patches are large). */
export const JobRecordSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  state: literals(JOB_STATES),
  stage: Type.Union([literals(STAGES), Type.Null()], { description: 'the stage running now, or the one that failed' }),
  message: Type.Union([Type.String(), Type.Null()]),
  summary: SummarySchema,
  timings: TimingsSchema,
  kernel: Type.Union([KernelInfoSchema, Type.Null()]),
  config: Type.Union([ConfigInfoSchema, Type.Null()]),
  attempt: Type.Integer(),
  submitted_by: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'name of the token that submitted the job; null when the service is open' })),
  progress: Type.Optional(Type.Union([ProgressSchema, Type.Null()])),
  coverage: Type.Optional(
    Type.Union([CoverageTotalsSchema, Type.Null()], {
      description: 'coverage jobs only: line totals once collected; null when none could be (the job\'s message says why, e.g. every kernel was killed before it wrote its .gcda files)',
    }),
  ),
});
export interface JobRecord extends Omit<Static<typeof JobRecordSchema>, 'state' | 'stage' | 'summary'> {
  kind: JobRequest['kind'];
  state: JobState;
  stage: Stage | null;
  summary: Summary;
}


export type JobEvent =
  | { type: 'state'; state: JobState; stage: Stage | null; message: string | null }
  | ({ type: 'progress' } & Progress)
  | { type: 'test'; path: string[]; status: import('./result.js').TestStatus; reason?: string };

export const ARTIFACTS = ['build.log', 'console.log', 'config', 'patch.log', 'coverage.info'] as const;
export type ArtifactName = (typeof ARTIFACTS)[number];

/** A fresh job record, as POST /v1/jobs makes it. */
export function newJobRecord(id: string, kind: JobRequest['kind']): JobRecord {
  return {
    id,
    kind,
    state: 'queued',
    stage: null,
    message: null,
    summary: emptySummary(),
    timings: { queued_at: new Date().toISOString(), stages: {} },
    kernel: null,
    config: null,
    attempt: 0,
  };
}
