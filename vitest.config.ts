import { defineConfig } from 'vitest/config';

// Integration tests start real nats-server and node processes; two cores are all CI has, so test
// files run at most two at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    pool: 'forks',
  },
});
