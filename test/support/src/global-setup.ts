import type { TestProject } from 'vitest/node';
import { resolveInfrastructure } from './infrastructure.js';

import './provided.js';

/**
 * Vitest global setup: resolves the real broker and Redis once per test run and hands their addresses to
 * the tests (`inject('kafkaBrokers')`, or `testInfrastructure()`).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const infra = await resolveInfrastructure();
  project.provide('kafkaBrokers', infra.kafkaBrokers);
  project.provide('redisUrl', infra.redisUrl);
  return infra.stop;
}
