import { connectRedis, createLogger, createRedis } from '@livelens/runtime';
import { testInfrastructure, uniqueName } from '@livelens/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { FusionStore } from './store.js';
import { emptyStreamState } from './windows/stream-fusion.js';

// The state store on the real Redis: compare-and-set versions, expiry, and states of an older shape.
describe('fusion state store (real Redis)', () => {
  const redis = createRedis(
    { url: testInfrastructure().redisUrl, connectionName: 'fusion-store-test' },
    createLogger({ service: 'store-test', level: 'silent' }),
  );
  const store = new FusionStore(redis, { prefix: `${uniqueName('fusion')}:`, ttlSeconds: 60 });
  afterAll(() => redis.disconnect());

  it('writes only over the version it read: the second of two writers from the same version loses', async () => {
    await connectRedis(redis);
    const empty = await store.load('s1');
    expect(empty.version).toBe('');
    const a = { ...empty.state, watermarkMs: 1_000 };
    const b = { ...empty.state, watermarkMs: 2_000 };
    const v1 = await store.save('s1', empty.version, a);
    expect(v1).toMatch(/^[0-9a-f-]{36}$/);
    expect(await store.save('s1', empty.version, b)).toBeUndefined();
    const read = await store.load('s1');
    expect(read).toMatchObject({ version: v1, state: { watermarkMs: 1_000 } });
    const v2 = await store.save('s1', v1 as string, b);
    expect(v2).toBeDefined();
    expect(v2).not.toBe(v1);
    expect((await store.load('s1')).state.watermarkMs).toBe(2_000);
    // A copy read before the key was lost and rebuilt cannot win: versions are never reused.
    await redis.del(store.key('s1'));
    const rebuilt = await store.save('s1', '', a);
    expect(await store.save('s1', v1 as string, b)).toBeUndefined();
    expect((await store.load('s1')).version).toBe(rebuilt);
    const ttl = await redis.ttl(store.key('s1'));
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('fills fields a newer state shape added when it reads an older one', async () => {
    const { summary: _dropped, ...older } = emptyStreamState('s2');
    await redis.hset(store.key('s2'), 'v', '7', 's', JSON.stringify(older));
    const read = await store.load('s2');
    expect(read.version).toBe('7');
    expect(read.state.summary).toEqual({});
  });
});
