#!/usr/bin/env bash
# The whole test suite: what `npm test` and CI (.ci/run) run.
#   1. lint and format check (Biome) over the repo;
#   2. per package, through Turborepo: build dependencies → typecheck → vitest (unit and integration).
# Integration tests get a real Kafka broker and Redis from KAFKA_BROKERS/REDIS_URL, testcontainers when a
# Docker engine answers, or the native stack (deploy/local/stack.sh up), started once and left running.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
echo "== lint (biome)"
npx biome ci .

echo "== build, typecheck, test (turbo)"
# One package's suite at a time: the Kafka integration tests share one broker on a 2-core machine.
find packages services deploy test -name test-results.json -not -path '*/node_modules/*' -delete 2>/dev/null || true
status=0
npx turbo run test --concurrency=1 --output-logs=new-only "$@" -- --reporter=default --reporter=json \
  --outputFile.json=test-results.json || status=$?

# One closing line over every package's vitest run (each wrote test-results.json in its folder).
node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const file of process.argv.slice(1)) {
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' $(find packages services deploy test -name test-results.json -not -path "*/node_modules/*" 2>/dev/null)
echo "== $([ "$status" = 0 ] && echo 'all tests passed' || echo 'FAILED') in $(( $(date +%s) - started )) s"
exit "$status"
