import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import './provided.js';

export { type Infrastructure, repoRoot, resolveInfrastructure } from './infrastructure.js';

/** The broker and Redis that global setup resolved for this run. */
export function testInfrastructure(): { kafkaBrokers: string[]; redisUrl: string } {
  return { kafkaBrokers: inject('kafkaBrokers'), redisUrl: inject('redisUrl') };
}

/** A name no other test (or earlier run) uses: for topics, consumer groups, stream ids and Redis keys. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
