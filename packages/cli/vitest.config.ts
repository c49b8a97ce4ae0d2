import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The whole-pipeline test shares the real broker and Redis of the suite (test/support), started once.
    globalSetup: ['@livelens/test-support/global-setup'],
    // One file at a time: the whole-pipeline test holds its tags to a 10 s bound on a 2-core machine, and the
    // detached-stack test starts four more services.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 600_000,
  },
});
