import { testInfrastructure } from '@livelens/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { testKafka } from '../test/fixtures.js';
import { createMetricsRegistry, startHealthServer } from './health.js';
import { connectRedis, createRedis, fromRedisError } from './redis.js';

describe('health server with the real broker and Redis', () => {
  const { client, logger } = testKafka('health');
  const redis = createRedis({ url: testInfrastructure().redisUrl }, logger);
  // A Redis on a port where nothing listens: readiness must say so, fast, without crashing anything.
  const deadRedis = createRedis(
    { url: 'redis://127.0.0.1:1', connectTimeoutMs: 300, commandTimeoutMs: 300 },
    logger,
  );
  afterAll(() => {
    redis.disconnect();
    deadRedis.disconnect();
  });

  it('serves metrics with the service prefix, liveness, and readiness that reflects Redis and Kafka', async () => {
    await connectRedis(redis);
    const registry = createMetricsRegistry('health_test');
    let live = true;
    const server = await startHealthServer(
      {
        port: 0,
        host: '127.0.0.1',
        registry,
        live: () => ({ ok: live, reason: live ? undefined : 'consumer failed' }),
        readiness: {
          kafka: () => client.admin().ping(2_000),
          redis: async () => {
            await redis.ping();
          },
        },
      },
      logger,
    );
    const base = `http://127.0.0.1:${server.port}`;
    try {
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^livelens_health_test_process_cpu_seconds_total /m);

      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        status: 'ready',
        checks: [
          { name: 'kafka', ok: true },
          { name: 'redis', ok: true },
        ],
      });

      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      live = false;
      const dead = await fetch(`${base}/healthz`);
      expect(dead.status).toBe(503);
      expect(await dead.json()).toMatchObject({ status: 'failed', reason: 'consumer failed' });
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('reports not ready, with the reason, when Redis is unreachable; commands fail fast and retriably', async () => {
    const registry = createMetricsRegistry('health_dead');
    const server = await startHealthServer(
      {
        port: 0,
        host: '127.0.0.1',
        registry,
        readiness: {
          redis: async () => {
            await connectRedis(deadRedis);
          },
        },
      },
      logger,
    );
    try {
      const started = Date.now();
      const response = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(response.status).toBe(503);
      const body = (await response.json()) as { checks: { name: string; ok: boolean; reason?: string }[] };
      expect(body.checks[0]).toMatchObject({ name: 'redis', ok: false });
      expect(body.checks[0]?.reason).toMatch(/Redis:/);
    } finally {
      await server.close();
    }
    const error = await deadRedis.get('k').catch((e: unknown) => fromRedisError(e));
    expect(error).toMatchObject({ code: 'unavailable', retriable: true });
  });

  it('round-trips a value through the real Redis', async () => {
    const key = `livelens:test:${Date.now()}:${Math.random()}`;
    await redis.set(key, 'v', 'EX', 60);
    expect(await redis.get(key)).toBe('v');
    await redis.del(key);
  });
});
