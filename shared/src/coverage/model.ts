/**
 * Coverage as the API serves it and runs store it (TypeBox: validation, serialization and the
 * OpenAPI document from one definition).
 */
import { Type, type Static } from '@sinclair/typebox';

export const CoverageTotalsSchema = Type.Object({
  files: Type.Integer({ description: 'source files compiled with coverage (records in the tracefile)' }),
  lines_found: Type.Integer({ description: 'instrumented lines (lcov LF)' }),
  lines_hit: Type.Integer({ description: 'instrumented lines executed at least once (lcov LH)' }),
});
export type CoverageTotals = Static<typeof CoverageTotalsSchema>;

const Range = Type.Tuple([Type.Integer(), Type.Integer()], { description: 'first and last line, inclusive' });

export const ChangedFileCoverageSchema = Type.Object({
  file: Type.String({ description: 'path in the kernel tree' }),
  built: Type.Boolean({ description: 'the file has a record in the tracefile: it was compiled into this kernel' }),
  changed_lines: Type.Integer({ description: 'lines the patch adds or modifies' }),
  instrumented_lines: Type.Integer({ description: 'changed lines with code (a DA record)' }),
  executed_lines: Type.Integer({ description: 'changed lines executed at least once' }),
  executed: Type.Array(Range),
  not_executed: Type.Array(Range, { description: 'changed lines with code that no test executed' }),
  not_instrumented: Type.Array(Range, { description: 'changed lines without code: comments, declarations, branches not compiled' }),
});
export type ChangedFileCoverage = Static<typeof ChangedFileCoverageSchema>;

export const JobCoverageSchema = Type.Object({
  totals: CoverageTotalsSchema,
  changed: Type.Union([Type.Array(ChangedFileCoverageSchema), Type.Null()], {
    description: 'per C source or header the job\'s patch adds or modifies lines of; null for a job without a patch',
  }),
});
export type JobCoverage = Static<typeof JobCoverageSchema>;

/** One kernel of a run: its series job's tracefile against the series' changed lines. */
export const KernelCoverageSchema = Type.Object({
  mmu: Type.Boolean(),
  job: Type.String({ description: "the series KUnit job whose tracefile this is (with, for a series that touches mm/, the lines its nommu-ci/mm job executed on the same kernel)" }),
  totals: Type.Union([CoverageTotalsSchema, Type.Null()]),
  files: Type.Array(ChangedFileCoverageSchema),
  missing: Type.Union([Type.String(), Type.Null()], { description: 'why there is no measurement (no tracefile, or an unreadable one); null when measured' }),
});
export type KernelCoverage = Static<typeof KernelCoverageSchema>;

export const RunCoverageSchema = Type.Object({
  /** Files with changed lines, in the order the series first touches them. */
  files: Type.Array(Type.String()),
  kernels: Type.Array(KernelCoverageSchema),
});
export type RunCoverage = Static<typeof RunCoverageSchema>;
