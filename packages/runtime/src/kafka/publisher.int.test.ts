import { renameTopic, topics } from '@livelens/contracts';
import { uniqueName } from '@livelens/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, testKafka } from '../../test/fixtures.js';
import { LiveLensError } from '../errors.js';
import type { Publisher } from './publisher.js';

describe('publisher on the real broker', () => {
  const { client, registry } = testKafka('publisher');
  let publisher: Publisher;

  beforeAll(async () => {
    publisher = client.publisher({ service: 'publisher' });
    await publisher.connect();
  });
  afterAll(() => publisher.disconnect());

  it('pins the partition of a key to the one Java clients choose (murmur2), K6', async () => {
    const spec = renameTopic(topics.frames, uniqueName('test.partitioner'));
    await client.admin().ensureTopics([spec], { partitions: 8 });
    // Expected partitions computed with org.apache.kafka.common.utils.Utils.murmur2 from kafka-clients 4.4.0:
    // toPositive(murmur2(utf8(key))) % 8.
    const expected: Record<string, number> = {
      'shop-1': 6,
      'shop-2': 1,
      'live-ABC.123': 4,
      'stream_with-all.chars': 2,
      a: 4,
    };
    for (const [key, partition] of Object.entries(expected)) {
      const [landed] = await publisher.publish(spec, { message: frame(key, 0) });
      expect({ key, partition: landed?.partition }).toEqual({ key, partition });
    }
  });

  it('refuses to send to a topic that does not exist instead of creating it (K10)', async () => {
    const missing = renameTopic(topics.frames, uniqueName('test.missing'));
    const quick = client.publisher({ service: 'publisher', sendTimeoutMs: 3_000 });
    await quick.connect();
    try {
      const error = await quick.publish(missing, { message: frame('shop-1', 0) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LiveLensError);
      expect((error as LiveLensError).retriable).toBe(true);
      expect(['unavailable', 'deadline_exceeded']).toContain((error as LiveLensError).code);
    } finally {
      await quick.disconnect();
    }
    const check = await client
      .admin()
      .assertTopicsExist([missing.name])
      .catch((e: LiveLensError) => e);
    expect(check).toBeInstanceOf(LiveLensError);
    expect((check as LiveLensError).code).toBe('failed_precondition');
    expect((check as LiveLensError).message).toContain(missing.name);
  });

  it('refuses an invalid message before it reaches the broker, and counts acknowledged sends', async () => {
    const spec = renameTopic(topics.frames, uniqueName('test.invalid'));
    await client.admin().ensureTopics([spec], { partitions: 1 });
    const bad = frame('shop-1', 0);
    bad.jpeg = new Uint8Array();
    await expect(publisher.publish(spec, { message: bad })).rejects.toThrow(/jpeg is empty/);
    await publisher.publish(spec, [{ message: frame('shop-1', 1) }, { message: frame('shop-1', 2) }]);
    expect((await client.admin().endOffsets(spec.name)).get(0)).toBe('2');
    const produced = await registry.getSingleMetric('livelens_publisher_producer_messages_total')?.get();
    expect(produced?.values.find((v) => v.labels.topic === spec.name)?.value).toBe(2);
  });
});
