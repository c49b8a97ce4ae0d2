import { create } from '@bufbuild/protobuf';
import { FrameSampleSchema, recordIds, topics } from '@livelens/contracts';
import { createLogger, LiveLensError, type Publisher } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import { PublishLane } from './publish-lane.js';

const logger = createLogger({ service: 'lane-test', level: 'silent' });
const frame = (seq: number) =>
  create(FrameSampleSchema, {
    streamId: 's',
    seq: BigInt(seq),
    frameId: recordIds.frame('s', 'e', seq),
    width: 2,
    height: 2,
    jpeg: new Uint8Array([1]),
  });

/** A publisher stand-in for this unit test only: records sends, fails or blocks on command. */
function fakePublisher() {
  const sent: number[][] = [];
  let failNext = 0;
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  const publisher = {
    async publish(_topic: unknown, records: { message: ReturnType<typeof frame> }[]) {
      await gate;
      if (failNext > 0) {
        failNext -= 1;
        throw new LiveLensError('broker down', { code: 'unavailable' });
      }
      sent.push(records.map((r) => Number(r.message.seq)));
      return [];
    },
  } as unknown as Publisher;
  return {
    publisher,
    sent,
    failTimes: (n: number) => {
      failNext = n;
    },
    block: () => {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    unblock: () => open(),
  };
}

describe('PublishLane', () => {
  it('keeps order, batches what queued meanwhile, and never holds more than its bound', async () => {
    const fake = fakePublisher();
    const lane = new PublishLane({
      topic: topics.frames,
      publisher: fake.publisher,
      logger,
      maxQueued: 5,
      maxBatch: 3,
    });
    fake.block();
    const accepted = Array.from({ length: 8 }, (_, i) => lane.offer({ message: frame(i), capturedAtMs: 0 }));
    expect(accepted).toEqual([true, true, true, true, true, false, false, false]); // bounded at 5
    expect(lane.size).toBe(5);
    fake.unblock();
    await lane.flushed();
    // The first offer starts a send at once; what queued behind it goes in batches of at most 3.
    expect(fake.sent).toEqual([[0], [1, 2, 3], [4]]);
  });

  it('bounds the bytes waiting too, always letting one item in', async () => {
    const fake = fakePublisher();
    const lane = new PublishLane({
      topic: topics.frames,
      publisher: fake.publisher,
      logger,
      maxQueued: 100,
      maxQueuedBytes: 250,
      sizeOf: () => 100,
    });
    fake.block();
    const accepted = Array.from({ length: 4 }, (_, i) => lane.offer({ message: frame(i), capturedAtMs: 0 }));
    expect(accepted).toEqual([true, true, false, false]); // 200 bytes queued; a third would make 300
    fake.unblock();
    await lane.flushed();
    expect(lane.offer({ message: frame(9), capturedAtMs: 0 })).toBe(true); // bytes were given back
    await lane.flushed();
    expect(fake.sent.flat()).toEqual([0, 1, 9]);
  });

  it('retries a retriable failure until the broker takes the batch, reporting each error', async () => {
    const fake = fakePublisher();
    const errors: string[] = [];
    const lane = new PublishLane({
      topic: topics.frames,
      publisher: fake.publisher,
      logger,
      maxQueued: 10,
      onError: (e) => errors.push(e.code),
    });
    fake.failTimes(2);
    lane.offer({ message: frame(0), capturedAtMs: 0 });
    await lane.flushed();
    expect(fake.sent).toEqual([[0]]);
    expect(errors).toEqual(['unavailable', 'unavailable']);
  });

  it('reports what it could not send when closed, so the caller can record a gap', async () => {
    const fake = fakePublisher();
    const dropped: number[] = [];
    const lane = new PublishLane({
      topic: topics.frames,
      publisher: fake.publisher,
      logger,
      maxQueued: 10,
      onDropped: (items) => dropped.push(...items.map((i) => Number(i.message.seq))),
    });
    fake.block();
    for (let i = 0; i < 4; i += 1) lane.offer({ message: frame(i), capturedAtMs: 0 });
    const closing = lane.close(50);
    await new Promise((resolve) => setTimeout(resolve, 100));
    fake.unblock();
    expect(await closing).toBe(3); // the first batch was in flight; the other three were still queued
    expect(dropped).toEqual([1, 2, 3]);
    expect(fake.sent).toEqual([[0]]); // the in-flight one was sent, and not reported as dropped too
    expect(lane.offer({ message: frame(9), capturedAtMs: 0 })).toBe(false);
  });
});
