import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{shared,api,worker,cli,infra,kernel-images}/**/*.test.ts'],
    // Kernel builds share two cores: test files that build run one at a time.
    fileParallelism: false,
    reporters: ['default', './infra/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
