import { StreamState } from '@livelens/contracts';
import { connectRedis, createLogger, createRedis } from '@livelens/runtime';
import { testInfrastructure, uniqueName } from '@livelens/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Leases } from './leases.js';
import { pendingStatus, type StreamSpec, StreamStore } from './stream-store.js';

const logger = createLogger({ service: 'ingest-test', level: 'warn' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ownership on the real Redis', () => {
  const redis = createRedis({ url: testInfrastructure().redisUrl }, logger);
  beforeAll(() => connectRedis(redis));
  afterAll(() => redis.disconnect());

  it('gives a lease to one replica at a time; only the holder renews or releases it; it expires', async () => {
    const prefix = `${uniqueName('test-lease')}:`;
    const a = new Leases(redis, 'replica-a', 600, prefix);
    const b = new Leases(redis, 'replica-b', 600, prefix);
    expect(await a.acquire('s1')).toBe(true);
    expect(await b.acquire('s1')).toBe(false);
    expect(await a.holder('s1')).toBe('replica-a');
    expect(await b.renew('s1')).toBe(false);
    await b.release('s1'); // not b's: nothing happens
    expect(await a.holder('s1')).toBe('replica-a');
    await sleep(400);
    expect(await a.renew('s1')).toBe(true); // pushed the expiry out again
    await sleep(400);
    expect(await a.holder('s1')).toBe('replica-a'); // 800 ms after acquire, alive thanks to the renewal
    await sleep(700); // a died: no renewal
    expect(await a.holder('s1')).toBeUndefined();
    expect(await b.acquire('s1')).toBe(true); // the takeover
    expect(await a.renew('s1')).toBe(false); // a zombie cannot take it back
    await b.release('s1');
    expect(await b.holder('s1')).toBeUndefined();
  });

  it('stores desired state: create once, repeat by request id, refuse a duplicate, stop, list, capacity', async () => {
    const store = new StreamStore(redis);
    const id = uniqueName('stream');
    const requestId = uniqueName('req');
    const spec: StreamSpec = {
      streamId: id,
      sourceUrl: 'rtmp://user:secret@example.com/live/key',
      redactedUrl: 'rtmp://***@example.com/live/key',
      options: { frameRateFps: 1, sceneChangeThreshold: 0, maxHeight: 720, audioChunkMs: 1000 },
      labels: { shop: 'a' },
      requestId,
      createdAtMs: Date.now(),
    };
    expect(await store.create(spec, pendingStatus())).toEqual({ outcome: 'created', streamId: id });
    expect(await store.create({ ...spec, streamId: `${id}-other` }, pendingStatus())).toEqual({
      outcome: 'repeated_request',
      streamId: id,
    });
    expect(await store.create({ ...spec, requestId: '' }, pendingStatus())).toEqual({
      outcome: 'exists',
      streamId: id,
    });
    expect(await store.desiredIds()).toContain(id);
    const stored = await store.get(id);
    expect(stored?.spec.labels).toEqual({ shop: 'a' });
    expect(stored?.desired).toBe('running');
    expect(stored?.status.state).toBe(StreamState.STARTING);

    await store.writeStatus(id, {
      ...pendingStatus(),
      state: StreamState.RUNNING,
      ownerReplicaId: 'r1',
      framesPublished: 5,
    });
    expect((await store.list()).find((s) => s.spec.streamId === id)?.status.framesPublished).toBe(5);

    expect(await store.markStopped(id)).toBe(true);
    expect(await store.desiredIds()).not.toContain(id);
    expect((await store.get(id))?.desired).toBe('stopped');
    expect(await store.markStopped(uniqueName('unknown'))).toBe(false);
    // An ended stream's id can be started again.
    expect((await store.create({ ...spec, requestId: '' }, pendingStatus())).outcome).toBe('created');
    await store.markStopped(id);

    await store.heartbeat(uniqueName('replica'), 3, 5_000);
    expect(await store.capacity(5_000)).toBeGreaterThanOrEqual(3);
  });
});
