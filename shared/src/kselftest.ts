/**
 * The kselftest job request: which tools/testing/selftests targets (and optionally which of their
 * programs) to build from the job's tree and run under our init on the UML kernel; one member of
 * the JobRequest union in job.ts.
 */
import { Type, type Static } from '@sinclair/typebox';

// Copies of job.ts's KernelName, KconfigLine and MAX_PATCH_BYTES: job.ts imports this module for
// its JobRequest union, so importing them from job.ts would be a cycle whose constants are not yet
// initialized when this module runs.
const MAX_PATCH_BYTES = 8 * 1024 * 1024;
const KernelName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'kernel source name from GET /v1/kernels' });
const KconfigLine = Type.String({
  pattern: '^(CONFIG_[A-Za-z0-9_]+=(y|n|m|-?[0-9]+|0x[0-9a-fA-F]+|"([^"\\\\\\n]|\\\\.)*")|# CONFIG_[A-Za-z0-9_]+ is not set)$',
  description: 'one Kconfig assignment, e.g. CONFIG_KASAN=y',
});

/** `coverage` of every job kind (here rather than in job.ts for the same reason). */
export const CoverageFlag = Type.Boolean({
  description:
    "build with gcov (UML's CONFIG_GCOV) and collect line coverage of the tests: the record's `coverage`, the artifact coverage.info (lcov tracefile) and an HTML report at /v1/jobs/:id/coverage/index.html",
});

/** A target: a directory under tools/testing/selftests ("mm", "timers", "drivers/net"); never `..`. */
export const KSELFTEST_TARGET_PATTERN = '^(?!.*(^|/)\\.\\.?(/|$))[a-z0-9][a-z0-9_.+-]{0,63}(/[a-z0-9][a-z0-9_.+-]{0,63}){0,3}$';
/** "target:test", the test one file name inside the target. */
export const KSELFTEST_TEST_PATTERN = '^(?!.*(^|/)\\.\\.?(/|:|$))[a-z0-9][a-z0-9_.+-]{0,63}(/[a-z0-9][a-z0-9_.+-]{0,63}){0,3}:[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$';

export const KselftestJobRequest = Type.Object(
  {
    kind: Type.Literal('kselftest'),
    targets: Type.Array(Type.String({ pattern: KSELFTEST_TARGET_PATTERN }), {
      minItems: 1,
      maxItems: 32,
      uniqueItems: true,
      description: 'selftest targets from GET /v1/kselftests, e.g. ["timers", "mm"]; each runs its default tests unless `tests` names some of it',
    }),
    tests: Type.Optional(
      Type.Array(Type.String({ pattern: KSELFTEST_TEST_PATTERN }), {
        minItems: 1,
        maxItems: 512,
        uniqueItems: true,
        description: 'only these tests of their targets, as "target:name", e.g. ["mm:mremap_test"]; may name non-default programs (TEST_GEN_FILES)',
      }),
    ),
    kernel: Type.Optional(KernelName),
    mmu: Type.Optional(Type.Boolean({ description: 'run on the MMU kernel (true) or the no-MMU kernel (false)' })),
    kconfig_add: Type.Optional(Type.Array(KconfigLine, { maxItems: 256 })),
    patch: Type.Optional(
      Type.String({ minLength: 1, maxLength: MAX_PATCH_BYTES, description: 'mbox from git format-patch / b4, or a unified diff; applies to the kernel and the selftests' }),
    ),
    timeout_s: Type.Optional(Type.Integer({ minimum: 30, maximum: 14400, description: 'whole-job timeout in seconds' })),
    coverage: Type.Optional(CoverageFlag),
    test_timeout_s: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 3600, description: "per-test timeout; default: the target's settings file, else 45 s" }),
    ),
  },
  { additionalProperties: false },
);
export type KselftestJobRequest = Static<typeof KselftestJobRequest>;

/** GET /v1/kselftests: one test of a target. */
export const KselftestTestInfo = Type.Object({
  name: Type.String(),
  kind: Type.Union(['prog', 'custom', 'script', 'extended', 'file'].map((k) => Type.Literal(k)), {
    description: 'prog/custom: TEST_GEN_PROGS/TEST_CUSTOM_PROGS; script: TEST_PROGS; extended: TEST_GEN_PROGS_EXTENDED; file: TEST_GEN_FILES',
  }),
  default: Type.Boolean({ description: 'run when the job names only the target' }),
  nommu: Type.Boolean({ description: 'can run on the no-MMU kernel (heuristic on its source)' }),
  nommu_blocker: Type.Union([Type.String(), Type.Null()], { description: 'why not, if not' }),
});

export const KselftestTargetInfo = Type.Object({
  name: Type.String(),
  timeout_s: Type.Integer({ description: "per-test timeout from the target's settings file (0: none)" }),
  tests: Type.Array(KselftestTestInfo),
});
export type KselftestTargetInfo = Static<typeof KselftestTargetInfo>;
