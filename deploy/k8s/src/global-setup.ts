import { ensureTools } from './tools.js';

/** Vitest global setup: the tools and schemas, built or fetched once, before any test. */
export default async function setup(): Promise<void> {
  await ensureTools((line) => console.log(`[deploy/k8s] ${line}`));
}
