import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The whole-pipeline test shares the real broker and Redis of the suite (test/support), started once.
    globalSetup: ['@livelens/test-support/global-setup'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
  },
});
