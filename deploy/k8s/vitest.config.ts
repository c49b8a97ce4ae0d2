import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Builds kustomize and kubeconform (Go module proxy) and fetches the schemas (PyPI, Go module proxy) on the
    // first run, into <repo>/.livelens; later runs find them cached. No Kafka or cluster is needed.
    globalSetup: ['./src/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
  },
});
