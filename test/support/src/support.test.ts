import { afterEach, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from './index.js';
import { resolveInfrastructure } from './infrastructure.js';

describe('test support', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('uses KAFKA_BROKERS and REDIS_URL when both are set, starting nothing', async () => {
    process.env.KAFKA_BROKERS = 'h1:9092,h2:9092';
    process.env.REDIS_URL = 'redis://h3:6379';
    const lines: string[] = [];
    const infra = await resolveInfrastructure((line) => lines.push(line));
    expect(infra).toMatchObject({
      kafkaBrokers: ['h1:9092', 'h2:9092'],
      redisUrl: 'redis://h3:6379',
      source: 'env',
    });
    expect(lines).toEqual([]);
  });

  it('makes names no other test uses', () => {
    const names = new Set(Array.from({ length: 1000 }, () => uniqueName('t')));
    expect(names.size).toBe(1000);
    expect([...names][0]).toMatch(/^t-[a-z0-9]+-[0-9a-f]{8}$/);
  });

  it('waits for a value, and fails naming what it waited for', async () => {
    let n = 0;
    expect(await waitFor('n to reach 3', () => (++n >= 3 ? n : undefined), { intervalMs: 1 })).toBe(3);
    await expect(waitFor('never', () => undefined, { timeoutMs: 20, intervalMs: 5 })).rejects.toThrow(
      'timed out after 20 ms waiting for never',
    );
  });
});
