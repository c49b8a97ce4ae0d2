import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, testKafka, uniqueTopics } from '../../test/fixtures.js';
import type { Publisher } from './publisher.js';

describe('KafkaClient.readRange', () => {
  const { client } = testKafka('reader');
  let publisher: Publisher;
  beforeAll(async () => {
    publisher = client.publisher({ service: 'reader' });
    await publisher.connect();
  });
  afterAll(() => publisher.disconnect());

  it('reads what a topic holds since a time, to its end, decoding what it can, then stops', async () => {
    const { frames } = await uniqueTopics(client, 2);
    expect(await client.readRange(frames, { sinceUnixMs: 0 })).toEqual([]);
    await publisher.publish(frames, [{ message: frame('a', 0) }, { message: frame('b', 0) }]);
    await sleep(1_100); // broker timestamps are per ms: leave a clear gap
    const since = Date.now();
    await publisher.publish(frames, [{ message: frame('a', 1) }, { message: frame('b', 1) }]);
    await publisher.sendRaw(frames.name, [{ key: 'a', value: Buffer.from('not a frame') }]);

    const all = await client.readRange(frames, { sinceUnixMs: 0 });
    expect(all).toHaveLength(5);
    const recent = await client.readRange(frames, { sinceUnixMs: since });
    expect(recent).toHaveLength(3);
    const decoded = recent.filter((r) => r.message).map((r) => `${r.message?.streamId}/${r.message?.seq}`);
    expect(decoded.sort()).toEqual(['a/1', 'b/1']);
    const garbage = recent.find((r) => !r.message);
    expect(garbage?.error).toMatch(/decode|parse|invalid/i);
    expect(garbage?.value.toString()).toBe('not a frame');
    expect(garbage?.key?.toString()).toBe('a');
    for (const r of recent) expect(r.timestampMs).toBeGreaterThanOrEqual(since);

    expect(await client.readRange(frames, { sinceUnixMs: 0, limit: 2 })).toHaveLength(2);
    expect(await client.readRange(frames, { sinceUnixMs: Date.now() + 60_000 })).toEqual([]);
  }, 60_000);

  it('says clearly when the topic does not exist', async () => {
    const { frames } = await uniqueTopics(client, 1);
    const missing = { ...frames, name: `${frames.name}-missing` };
    await expect(client.readRange(missing, { sinceUnixMs: 0 })).rejects.toThrow(/missing|topic|partition/i);
  }, 60_000);
});
