/**
 * A run: one patch series tested against its base on both kernels. It is four ordinary jobs,
 * the matrix {base, base + series} x {no-MMU, MMU}, plus (with `per_patch`) jobs for prefixes of
 * the series when the run has to find the patch that introduced a failure. The run keeps only
 * references to its jobs; the verdict is computed from the jobs' records and results when they
 * are done (see verdict.ts) and stored with the run.
 */
import { Type, type Static } from '@sinclair/typebox';
import { FilterGlob, KconfigLine, KernelName, type JobRecord } from '../job.js';
import type { RunCoverage } from '../coverage/model.js';
import type { Verdict } from './verdict.js';

/** BullMQ queue of run parents (one job per run, its cell jobs as children). */
export const RUNS_QUEUE = 'nommu-ci-runs';
/** BullMQ queue of webhook deliveries (attempts with exponential backoff). */
export const WEBHOOKS_QUEUE = 'nommu-ci-webhooks';
/** Header carrying `sha256=<hex HMAC-SHA256 of the body>` on webhook POSTs. */
export const SIGNATURE_HEADER = 'X-Nommu-CI-Signature';

/**
 * Whether the operator allows POSTing reports to `url`: NOMMU_CI_WEBHOOK_ALLOW is a comma-separated
 * list of URL prefixes (e.g. `https://ci.example.org/hooks/,http://127.0.0.1:`); unset allows any
 * http(s) URL. The service POSTs from inside the operator's network: this keeps callbacks off
 * internal addresses.
 */
export function webhookAllowed(url: string, env = process.env): boolean {
  const allow = env.NOMMU_CI_WEBHOOK_ALLOW?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!allow || allow.length === 0) return /^https?:\/\//.test(url);
  return allow.some((p) => url.startsWith(p));
}

export const RunRequestSchema = Type.Object(
  {
    patch: Type.String({ description: 'mbox from git format-patch or b4 (cover letter skipped), or a unified diff' }),
    kunitconfig: Type.Optional(Type.String({ maxLength: 65536, description: "kunitconfig text; default: the tree's default KUnit config" })),
    kconfig_add: Type.Optional(Type.Array(KconfigLine, { maxItems: 256 })),
    filter_glob: Type.Optional(FilterGlob),
    kernel: Type.Optional(KernelName),
    per_patch: Type.Optional(Type.Boolean({ description: 'narrow a failing run to the first patch that introduced the failure' })),
    callback_url: Type.Optional(
      Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: 'POSTed the JSON report when the run ends, signed (X-Nommu-CI-Signature)' }),
    ),
    timeout_s: Type.Optional(Type.Integer({ minimum: 30, maximum: 14400, description: 'timeout of each job of the run, in seconds' })),
    fresh_base: Type.Optional(
      Type.Boolean({ description: 'run the base jobs in full; by default they take the suites that passed in an identical base job measured before (NOMMU_CI_BASE_RESULT_MAX_AGE_S)' }),
    ),
    coverage: Type.Optional(
      Type.Boolean({ description: 'build every job of the run with gcov; the report says, per file and kernel, which lines the series changes were executed' }),
    ),
  },
  { additionalProperties: false },
);
export type RunRequest = Static<typeof RunRequestSchema>;

export const RUN_STATES = ['queued', 'running', 'passed', 'failed', 'error'] as const;
export type RunState = (typeof RUN_STATES)[number];
export const FINAL_RUN_STATES: ReadonlySet<RunState> = new Set(['passed', 'failed', 'error']);

export type CellKey = 'base-nommu' | 'base-mmu' | 'series-nommu' | 'series-mmu';
export const CELL_KEYS: readonly CellKey[] = ['base-nommu', 'base-mmu', 'series-nommu', 'series-mmu'];

export interface Cell {
  key: CellKey;
  /** The series applied (true) or the base alone (false). */
  series: boolean;
  mmu: boolean;
  job: string;
}

/** A job of the per-patch narrowing: the first `patches` patches of the series on one kernel. */
export interface PrefixCell {
  patches: number;
  mmu: boolean;
  job: string;
}

export interface SeriesPatchInfo {
  index: number;
  total: number;
  subject: string;
  rawSubject: string;
  messageId: string | null;
  from: string | null;
  files: string[];
  /** sha256 of the diff as applied (KCIDB patchset_hash is built from these). */
  sha256: string;
}

export interface RunSeries {
  cover: { subject: string; rawSubject: string; messageId: string | null; from: string | null } | null;
  patches: SeriesPatchInfo[];
  version: number | null;
  /** For the reply: the cover letter's Message-ID, else the first patch's. */
  inReplyTo: string | null;
  references: string[];
}

export interface Blame {
  /** What was narrowed: the kernel(s) and the failure that the search followed. */
  mmu: boolean;
  what: string;
  /** 1-based index of the first patch with which the failure appears (the last patch when only the whole series shows it); null if the prefixes could not tell (their jobs did not finish). */
  patch: number | null;
  subject: string | null;
  /** Prefix lengths tried and whether each showed the failure. */
  tried: { patches: number; failed: boolean; job: string }[];
}

export interface RunRecord {
  id: string;
  state: RunState;
  created_at: string;
  finished_at: string | null;
  /** The resolved kernel catalog name. */
  kernel: string;
  options: {
    kunitconfig?: string;
    kconfig_add?: string[];
    filter_glob?: string;
    per_patch: boolean;
    callback_url?: string;
    timeout_s?: number;
    fresh_base?: boolean;
    coverage?: boolean;
  };
  series: RunSeries;
  cells: Cell[];
  /** Kselftest jobs some runs add (extras.ts); their results join the cells' when loaded. Absent: none. */
  extras?: import('./extras.js').ExtraCell[];
  prefixes: PrefixCell[];
  verdict: Verdict | null;
  /** With per_patch, once narrowed: the first bad patch of each kernel's first regression. */
  blame: Blame[] | null;
  /** Filled when the run ends: environment facts reports print (compiler version). */
  environment: { compiler: string | null } | null;
  webhook: { state: 'pending' | 'delivered' | 'failed'; attempts: number; last_error: string | null; status: number | null } | null;
  /** With the `coverage` option, once the run ended: the series' changed lines against each series job's tracefile. */
  coverage?: RunCoverage | null;
  /** Name of the token that submitted the run; null (or absent, for older runs) when the service is open. */
  submitted_by?: string | null;
}

/** What a cell's verdict is computed from: the job's record and results as the store has them. */
export interface CellData {
  cell: Cell | PrefixCell;
  record: JobRecord | null;
  results: import('../result.js').TestNode[] | null;
  /** build.log, when the job failed at build: the compiler's errors are read from it too. */
  buildLog: string | null;
}
