/**
 * The targets and tests a tree offers. The reader lives in shared/ (the API lists them too, GET
 * /v1/kselftests); see shared/src/kselftest-targets.ts for how Makefiles are read and how the
 * no-MMU heuristic decides.
 */
export * from '../../../shared/src/kselftest-targets.js';
