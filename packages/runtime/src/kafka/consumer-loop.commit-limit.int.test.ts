import type { FrameSampleSchema } from '@livelens/contracts';
import { uniqueName, waitFor } from '@livelens/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { frame, testKafka, uniqueTopics } from '../../test/fixtures.js';
import type { ConsumerLoop } from './consumer-loop.js';
import type { Publisher } from './publisher.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// commitLimit: a handler that keeps state across records (the ASR service's open speech segment) says which
// record it still needs; the loop never commits past it, and a new member replays from there.
describe('consumer loop commit limit on the real broker', () => {
  const { client } = testKafka('limit');
  let publisher: Publisher;
  const running: ConsumerLoop<typeof FrameSampleSchema>[] = [];

  beforeAll(async () => {
    publisher = client.publisher({ service: 'limit' });
    await publisher.connect();
    return () => publisher.disconnect();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((loop) => loop.drain(5_000)));
  });

  it('holds the commit at the limit per partition, moves it when the limit moves, and a new member replays from it', async () => {
    const { frames, dlq } = await uniqueTopics(client, 2);
    const groupId = uniqueName('group');
    // Two keys on (most likely) different partitions; whatever the partitioner does, each partition's limit
    // is checked against that partition's own offsets.
    await publisher.publish(
      frames,
      Array.from({ length: 10 }, (_, i) => ({ message: frame(i % 2 === 0 ? 'held-1' : 'free-1', i) })),
    );
    let heldPartition = -1;
    const processed: { seq: number; offset: string }[] = [];
    // The handler "needs" the held stream's records from its third one on (an open segment): the limit is
    // that record's offset; the other partition has no limit.
    let limit: string | undefined;
    let holdFromSeq = 4;
    const calls: { topic: string; partition: number }[] = [];
    const loop = client.consumerLoop(
      frames,
      async (r) => {
        processed.push({ seq: Number(r.message.seq), offset: r.offset });
        if (r.message.streamId === 'held-1') heldPartition = r.partition;
        if (r.message.streamId === 'held-1' && Number(r.message.seq) === holdFromSeq) limit = r.offset;
      },
      {
        groupId,
        service: 'limit',
        deadLetters: publisher,
        dlqTopic: dlq,
        commitIntervalMs: 100,
        commitLimit: (topic, partition) => {
          calls.push({ topic, partition });
          return partition === heldPartition ? limit : undefined;
        },
      },
    );
    running.push(loop);
    await loop.start();
    await waitFor('10 records', () => (processed.length >= 10 ? true : undefined));
    const heldOffset = limit;
    expect(heldOffset).toBeDefined();
    const end = await client.admin().endOffsets(frames.name);
    // The held partition's commit stops at the limit: the record the handler still needs is the next one a
    // restart reads. Every other partition is committed to its end.
    await waitFor('commits: held partition at the limit, the others at their end', async () => {
      const committed = await client.admin().committedOffsets(groupId, frames.name);
      return [...end].every(([p, high]) =>
        p === heldPartition ? committed.get(p) === heldOffset : high === '0' || committed.get(p) === high,
      )
        ? true
        : undefined;
    });
    expect(calls.every((c) => c.topic === frames.name)).toBe(true);
    // It stays there (no later commit moves it past the limit).
    await sleep(500);
    expect((await client.admin().committedOffsets(groupId, frames.name)).get(heldPartition)).toBe(heldOffset);

    // A limit above what was completed does not commit anything not yet processed: min(prefix + 1, limit).
    limit = '1000000';
    await publisher.publish(frames, { message: frame('held-1', 10) });
    await waitFor('record 10', () => (processed.some((p) => p.seq === 10) ? true : undefined));
    const end2 = await client.admin().endOffsets(frames.name);
    await waitFor('the held partition committed to its end, not to the limit', async () => {
      const committed = await client.admin().committedOffsets(groupId, frames.name);
      return committed.get(heldPartition) === end2.get(heldPartition) ? true : undefined;
    });

    // Hold it again (from the first of four new records), drain: the drain's last commit honours the limit.
    holdFromSeq = 11;
    const [batch] = await publisher.publish(
      frames,
      [11, 12, 13, 14].map((seq) => ({ message: frame('held-1', seq) })),
    );
    expect(batch?.partition).toBe(heldPartition);
    await waitFor('records 11..14', () => (processed.some((p) => p.seq === 14) ? true : undefined));
    await loop.drain(5_000);
    expect((await client.admin().committedOffsets(groupId, frames.name)).get(heldPartition)).toBe(
      batch?.baseOffset,
    );

    // A new member of the group replays the held partition from the limit: records 11..14, nothing before.
    const replayed: number[] = [];
    const next = client.consumerLoop(
      frames,
      async (r) => {
        if (r.partition === heldPartition) replayed.push(Number(r.message.seq));
      },
      { groupId, service: 'limit', deadLetters: publisher, dlqTopic: dlq },
    );
    running.push(next);
    await next.start();
    await waitFor('the replay', () => (replayed.length >= 4 ? true : undefined));
    await sleep(300);
    expect(replayed).toEqual([11, 12, 13, 14]);
  });

  it('fails the batch (and replays it) when the limit is not an offset, never committing garbage', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    const groupId = uniqueName('group');
    await publisher.publish(
      frames,
      [0, 1, 2].map((seq) => ({ message: frame('bad-limit', seq) })),
    );
    let bad = true;
    const seen: number[] = [];
    const loop = client.consumerLoop(frames, async (r) => void seen.push(Number(r.message.seq)), {
      groupId,
      service: 'limit',
      deadLetters: publisher,
      dlqTopic: dlq,
      commitLimit: () => (bad ? 'not-an-offset' : undefined),
    });
    running.push(loop);
    await loop.start();
    await waitFor('the records, at least once', () => (seen.includes(2) ? true : undefined));
    await sleep(500);
    expect((await client.admin().committedOffsets(groupId, frames.name)).get(0)).toBe('-1');
    bad = false;
    // The failed batch is replayed (kafkajs restarts the consumer) and now commits.
    await waitFor(
      'the commit after the limit is fixed',
      async () =>
        (await client.admin().committedOffsets(groupId, frames.name)).get(0) === '3' ? true : undefined,
      { timeoutMs: 45_000 },
    );
    expect(new Set(seen)).toEqual(new Set([0, 1, 2]));
  }, 60_000);
});
