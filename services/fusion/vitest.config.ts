import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests share one real broker and Redis, resolved once per run (test/support).
    globalSetup: ['@livelens/test-support/global-setup'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
