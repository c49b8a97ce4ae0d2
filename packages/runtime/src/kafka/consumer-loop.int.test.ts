import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { FrameSampleSchema, TopicSpec } from '@livelens/contracts';
import { uniqueName, waitFor } from '@livelens/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { frame, testKafka, uniqueTopics } from '../../test/fixtures.js';
import { LiveLensError } from '../errors.js';
import type { ConsumedRecord, ConsumerLoop } from './consumer-loop.js';
import type { Publisher } from './publisher.js';

type FrameRecord = ConsumedRecord<typeof FrameSampleSchema>;

describe('consumer loop on the real broker', () => {
  const { client, registry } = testKafka('loop');
  let publisher: Publisher;
  const running: ConsumerLoop<typeof FrameSampleSchema>[] = [];

  beforeAll(async () => {
    publisher = client.publisher({ service: 'loop' });
    await publisher.connect();
    return () => publisher.disconnect();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((loop) => loop.drain(5_000)));
  });

  /** Reads every record of `topic` (all partitions, from the start) through a throwaway loop. */
  async function readAll<D extends DescMessage>(
    spec: TopicSpec<D>,
    count: number,
  ): Promise<MessageShape<D>[]> {
    const seen: MessageShape<D>[] = [];
    const loop = client.consumerLoop(spec, async (r) => void seen.push(r.message), {
      groupId: uniqueName('reader'),
      service: 'loop',
      deadLetters: publisher,
    });
    running.push(loop as unknown as ConsumerLoop<typeof FrameSampleSchema>);
    await loop.start();
    await waitFor(`${count} records on ${spec.name}`, () => (seen.length >= count ? true : undefined));
    return seen;
  }

  it('round-trips protobuf through a topic and commits exactly past the last processed offset (K4, T16)', async () => {
    const { frames, dlq } = await uniqueTopics(client, 2);
    const groupId = uniqueName('group');
    const sent = Array.from({ length: 20 }, (_, i) => frame(i % 2 === 0 ? 'shop-1' : 'shop-2', i));
    await publisher.publish(
      frames,
      sent.map((message) => ({ message })),
    );
    const got: FrameRecord[] = [];
    const loop = client.consumerLoop(frames, async (r) => void got.push(r), {
      groupId,
      service: 'loop',
      deadLetters: publisher,
      dlqTopic: dlq,
    });
    running.push(loop);
    await loop.start();
    await waitFor('20 frames', () => (got.length >= 20 ? true : undefined));
    const byId = new Map(got.map((r) => [r.message.frameId, r.message]));
    for (const original of sent) {
      const copy = byId.get(original.frameId);
      expect(copy?.seq).toBe(original.seq);
      expect(copy?.ptsMs).toBe(original.ptsMs);
      expect(Array.from(copy?.jpeg ?? [])).toEqual(Array.from(original.jpeg));
    }
    expect(got.every((r) => r.key === r.message.streamId)).toBe(true);
    // Committed offsets equal the end offsets: everything processed, nothing skipped, nothing re-read.
    const end = await client.admin().endOffsets(frames.name);
    await waitFor('commits to reach the end offsets', async () => {
      const committed = await client.admin().committedOffsets(groupId, frames.name);
      return [...end].every(([p, high]) => committed.get(p) === high) ? true : undefined;
    });
  });

  it('dead-letters garbage with its reason and source, and goes on with the next record', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    await publisher.publish(frames, { message: frame('shop-1', 0) });
    await publisher.sendRaw(frames.name, [
      { key: 'shop-1', value: Buffer.from('\x08\x96\x01 not a frame \xff\xff') },
    ]);
    await publisher.sendRaw(frames.name, [{ key: 'shop-1', value: Buffer.alloc(0) }]);
    await publisher.publish(frames, { message: frame('shop-1', 1) });
    const processed: number[] = [];
    const loop = client.consumerLoop(frames, async (r) => void processed.push(Number(r.message.seq)), {
      groupId: uniqueName('group'),
      service: 'loop',
      deadLetters: publisher,
      dlqTopic: dlq,
    });
    running.push(loop);
    await loop.start();
    await waitFor('both valid frames', () => (processed.length >= 2 ? true : undefined));
    expect(processed).toEqual([0, 1]);

    const letters = await readAll(dlq, 2);
    const bySourceOffset = new Map(letters.map((l) => [l.sourceOffset, l]));
    const garbage = bySourceOffset.get(1n);
    expect(garbage?.sourceTopic).toBe(frames.name);
    expect(garbage?.sourcePartition).toBe(0);
    expect(garbage?.errorCode).toMatch(/decode_failed|invalid_message/);
    expect(garbage?.reason).toContain(frames.name);
    expect(Buffer.from(garbage?.value ?? []).toString('latin1')).toContain('not a frame');
    expect(garbage?.deadLetterId).toBe(`${frames.name}/0/1`);
    expect(new TextDecoder().decode(garbage?.key)).toBe('shop-1');
    expect(bySourceOffset.get(2n)?.reason).toMatch(/empty record value/);
    const metric = await registry.getSingleMetric('livelens_loop_dlq_messages_total')?.get();
    expect(
      metric?.values.filter((v) => v.labels.topic === frames.name).reduce((a, v) => a + v.value, 0),
    ).toBe(2);
  });

  it('dead-letters a record whose handler fails for good, retries one that fails for a while', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    await publisher.publish(
      frames,
      [0, 1, 2].map((i) => ({ message: frame('shop-1', i) })),
    );
    const attempts = new Map<number, number>();
    const done: number[] = [];
    const loop = client.consumerLoop(
      frames,
      async (r) => {
        const seq = Number(r.message.seq);
        attempts.set(seq, (attempts.get(seq) ?? 0) + 1);
        if (seq === 0) throw new LiveLensError('cannot ever process this', { code: 'invalid_argument' });
        if (seq === 1 && (attempts.get(1) ?? 0) < 3)
          throw new LiveLensError('broker hiccup', { code: 'unavailable' });
        done.push(seq);
      },
      { groupId: uniqueName('group'), service: 'loop', deadLetters: publisher, dlqTopic: dlq },
    );
    running.push(loop);
    await loop.start();
    await waitFor('records 1 and 2', () => (done.length >= 2 ? true : undefined));
    expect(done).toEqual([1, 2]);
    expect(attempts.get(0)).toBe(1);
    expect(attempts.get(1)).toBe(3);
    const [dead] = await readAll(dlq, 1);
    expect(dead?.errorCode).toBe('invalid_argument');
    expect(dead?.reason).toBe('cannot ever process this');
    expect(dead?.sourceOffset).toBe(0n);
  });

  it('pauses fetching past maxInFlight and still processes everything once', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    const streams = ['s1', 's2', 's3', 's4', 's5', 's6'];
    await publisher.publish(
      frames,
      Array.from({ length: 60 }, (_, i) => ({ message: frame(streams[i % streams.length] ?? 's1', i) })),
    );
    let concurrent = 0;
    let maxConcurrent = 0;
    let sawPaused = false;
    const done: number[] = [];
    const loop = client.consumerLoop(
      frames,
      async (r) => {
        concurrent += 1;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        const paused = await registry.getSingleMetric('livelens_loop_consumer_paused')?.get();
        sawPaused ||= paused?.values.some((v) => v.labels.topic === frames.name && v.value === 1) ?? false;
        await new Promise((resolve) => setTimeout(resolve, 20));
        concurrent -= 1;
        done.push(Number(r.message.seq));
      },
      {
        groupId: uniqueName('group'),
        service: 'loop',
        deadLetters: publisher,
        dlqTopic: dlq,
        maxInFlight: 3,
      },
    );
    running.push(loop);
    await loop.start();
    await waitFor('60 frames', () => (done.length >= 60 ? true : undefined));
    expect(maxConcurrent).toBe(3); // different keys ran concurrently, never more than the bound
    expect(sawPaused).toBe(true); // fetching was paused at the bound...
    await waitFor('fetching to resume', async () => {
      const paused = await registry.getSingleMetric('livelens_loop_consumer_paused')?.get();
      return paused?.values.find((v) => v.labels.topic === frames.name)?.value === 0 ? true : undefined;
    }); // ...and resumed once work drained
    expect(loop.inFlight).toBe(0);
    expect([...done].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    // Per key, completion order is the offset order.
    for (const s of streams) {
      const seqs = done.filter((seq) => seq % streams.length === streams.indexOf(s));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it('keeps per-key order and loses nothing when a second member joins and the first leaves', async () => {
    const { frames, dlq } = await uniqueTopics(client, 4);
    const groupId = uniqueName('group');
    const keys = Array.from({ length: 8 }, (_, i) => `stream-${i}`);
    const perKey = 60;
    const log: { member: string; key: string; seq: number }[] = [];
    const assignments: Record<string, number[][]> = { a: [], b: [] };
    const rebalancing: Record<string, number> = { a: 0, b: 0 };
    // a gets a client (and registry) of its own, so its exported lag can be told from b's.
    const own = testKafka('loop-a');
    const member = (name: string) =>
      (name === 'a' ? own.client : client).consumerLoop(
        frames,
        async (r) => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          log.push({ member: name, key: r.message.streamId, seq: Number(r.message.seq) });
        },
        {
          groupId,
          service: 'loop',
          deadLetters: publisher,
          dlqTopic: dlq,
          heartbeatIntervalMs: 500,
          sessionTimeoutMs: 10_000,
          onAssignment: (partitions) => assignments[name]?.push([...partitions]),
          onRebalancing: () => {
            rebalancing[name] = (rebalancing[name] ?? 0) + 1;
          },
        },
      );
    const producing = (async () => {
      for (let seq = 0; seq < perKey; seq += 1) {
        await publisher.publish(
          frames,
          keys.map((key) => ({ message: frame(key, seq) })),
        );
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const a = member('a');
    running.push(a);
    await a.start();
    await waitFor('a to process some', () => (log.length > 50 ? true : undefined));
    const b = member('b');
    running.push(b);
    await b.start();
    await waitFor('b to process some', () => (log.some((e) => e.member === 'b') ? true : undefined), {
      timeoutMs: 45_000,
    });
    await producing;
    await a.drain(10_000); // a leaves: its partitions move to b
    await waitFor(
      'every record of every key',
      () =>
        keys.every((k) => new Set(log.filter((e) => e.key === k).map((e) => e.seq)).size === perKey)
          ? true
          : undefined,
      { timeoutMs: 45_000 },
    );
    for (const key of keys) {
      const seqs = log.filter((e) => e.key === key).map((e) => e.seq);
      // First occurrences in processing order are exactly 0..perKey-1: in order, none lost. A record processed
      // but not yet committed when its partition moved may be seen again (at-least-once), never out of order.
      const firsts = seqs.filter((seq, i) => seqs.indexOf(seq) === i);
      expect(firsts).toEqual(Array.from({ length: perKey }, (_, i) => i));
      for (let i = 1; i < seqs.length; i += 1) {
        const prev = seqs[i - 1] ?? 0;
        const cur = seqs[i] ?? 0;
        // Order within a member's ownership: next is prev+1, or a replay restart from an earlier point.
        if (cur !== prev + 1) expect(cur).toBeLessThanOrEqual(prev);
      }
    }
    expect(new Set(log.map((e) => e.member))).toEqual(new Set(['a', 'b']));
    // onAssignment after every rebalance: a owned all 4, then shared them with b (disjoint halves that cover
    // every partition); once a left, b owns all 4.
    expect(assignments.a?.[0]).toEqual([0, 1, 2, 3]);
    const aShared = assignments.a?.at(-1) ?? [];
    const bShared = assignments.b?.[0] ?? [];
    expect(aShared.length).toBeGreaterThan(0);
    expect(bShared.length).toBeGreaterThan(0);
    expect([...aShared, ...bShared].sort()).toEqual([0, 1, 2, 3]);
    // a was told that the group was rebalancing (before its partitions moved) when b joined.
    expect(rebalancing.a).toBeGreaterThan(0);
    // a exports lag only for the partitions it still owns: the ones that moved to b were removed.
    const aLag = (
      (await own.registry.getSingleMetric('livelens_loop_consumer_lag_messages')?.get())?.values ?? []
    )
      .filter((v) => v.labels.topic === frames.name)
      .map((v) => Number(v.labels.partition));
    expect(aLag.length).toBeGreaterThan(0);
    for (const p of aLag) expect(aShared).toContain(p);
    await waitFor('b to own every partition', () =>
      JSON.stringify(assignments.b?.at(-1)) === '[0,1,2,3]' ? true : undefined,
    );
    // b owns everything now: its commits reach the end offsets, nothing was dead-lettered, no slot leaked.
    const end = await client.admin().endOffsets(frames.name);
    await waitFor('b to commit every partition to its end', async () => {
      const committed = await client.admin().committedOffsets(groupId, frames.name);
      return [...end].every(([p, high]) => committed.get(p) === high) ? true : undefined;
    });
    expect((await client.admin().endOffsets(dlq.name)).get(0)).toBe('0');
    expect(b.inFlight).toBe(0);
  }, 120_000);
});
