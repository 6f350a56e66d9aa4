import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (worker/test/chaos.test.ts) runs its short cases, on cached kernels, in npm test;
 * `npm run chaos` (NOMMU_CI_CHAOS=full) runs all of them.
 */
export default defineConfig({
  test: {
    include: ['{shared,api,worker,cli,infra,kernel-images}/**/*.test.ts'],
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
