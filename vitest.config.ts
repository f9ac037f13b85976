import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real servers on loopback; two cores. Files run in parallel, tests in a file in order.
    pool: 'forks',
    maxWorkers: 2,
  },
});
