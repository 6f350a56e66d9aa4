import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Suites too long for `npm test` (CI's time limit), run by their own scripts: the chaos suite
 * (`npm run chaos`). Naming a file on the command line runs it regardless.
 */
const LONG = ['worker/test/chaos.test.ts'];
const named = process.argv.slice(2).some((a) => LONG.some((f) => a.endsWith(f)));

export default defineConfig({
  test: {
    include: ['{shared,api,worker,cli,infra,kernel-images}/**/*.test.ts'],
    exclude: named ? configDefaults.exclude : [...configDefaults.exclude, ...LONG],
    // Kernel builds share two cores: test files that build run one at a time.
    fileParallelism: false,
    reporters: ['default', './infra/summary-reporter.ts'],
    testTimeout: 30_000,
    // KUnit jobs in tests run serially unless a test asks for shards: a sharded job's kernel has
    // time-travel support, so a config of its own to build; worker/test/shards.test.ts checks the
    // sharded runner, with `shards` set in each request.
    env: { NOMMU_CI_KUNIT_SHARDS: process.env.NOMMU_CI_KUNIT_SHARDS ?? '1' },
    hookTimeout: 60_000,
  },
});
