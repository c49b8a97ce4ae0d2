import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The global setup also installs what the media tests need (ffmpeg, fonts) on a fresh machine.
    globalSetup: ['@livelens/test-support/global-setup'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
  },
});
