import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The shared setup starts the local stack, whose install step brings promtool (Debian's prometheus);
    // no test here uses the broker or Redis.
    globalSetup: ['@livelens/test-support/global-setup'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
  },
});
