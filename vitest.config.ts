import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The companion's default ports stay taken during the run, as beside an `npm start`: no test may need them.
    globalSetup: ['test/support/hold-default-ports.ts'],
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration and e2e tests start real processes and browsers on a 2-core machine.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
