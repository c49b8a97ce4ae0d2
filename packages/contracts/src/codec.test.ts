import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from './codec.js';
import { ContractError } from './errors.js';
import { FrameSampleSchema, SamplingReason } from './gen/livelens/v1/media_pb.js';
import { StreamEventSchema, StreamState } from './gen/livelens/v1/stream_pb.js';
import { recordIds } from './ids.js';
import { allTopics, prefixedTopics, topics } from './topics.js';

function frame() {
  return create(FrameSampleSchema, {
    streamId: 'shop-1',
    sessionEpoch: 'e1',
    seq: 7n,
    frameId: recordIds.frame('shop-1', 'e1', 7n),
    ptsMs: 7000n,
    captureTimeUnixMs: 1_764_000_000_000n,
    width: 1280,
    height: 720,
    jpeg: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
    sceneChangeScore: 0.5,
    samplingReason: SamplingReason.INTERVAL,
  });
}

describe('codec', () => {
  it('round-trips a frame with every field intact', () => {
    const decoded = decodeRecord(topics.frames, encodeRecord(topics.frames, frame()));
    expect(decoded.frameId).toBe('shop-1/e1/f/7');
    expect(decoded.seq).toBe(7n);
    expect(decoded.captureTimeUnixMs).toBe(1_764_000_000_000n);
    expect(Array.from(decoded.jpeg)).toEqual([0xff, 0xd8, 0xff, 0xd9]);
    expect(decoded.sceneChangeScore).toBe(0.5);
    expect(topics.frames.key(decoded)).toBe('shop-1');
  });

  it('rejects bytes that are not protobuf with decode_failed', () => {
    const err = (() => {
      try {
        decodeRecord(topics.frames, new TextEncoder().encode('\xff\xff\xff garbage {not protobuf}'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ContractError);
    expect((err as ContractError).code).toBe('decode_failed');
    expect((err as ContractError).retriable).toBe(false);
  });

  it('rejects an empty value with decode_failed', () => {
    expect(() => decodeRecord(topics.frames, new Uint8Array())).toThrow(
      /empty record value on live.frames.v1/,
    );
  });

  it('rejects a well-formed message of the wrong shape with invalid_message naming the problem', () => {
    // Valid protobuf, but a frame without its image: a producer bug that must not reach the analyzers.
    const bytes = toBinary(
      FrameSampleSchema,
      create(FrameSampleSchema, { streamId: 'shop-1', frameId: 'x', width: 2, height: 2 }),
    );
    expect(() => decodeRecord(topics.frames, bytes)).toThrow(
      /invalid livelens.v1.FrameSample.*jpeg is empty/,
    );
  });

  it('keeps state changes and gaps apart on the stream-events topic', () => {
    const event = create(StreamEventSchema, {
      streamId: 'shop-1',
      kind: { case: 'stateChange', value: { state: StreamState.RUNNING } },
    });
    const decoded = decodeRecord(topics.streamEvents, encodeRecord(topics.streamEvents, event));
    expect(decoded.kind.case).toBe('stateChange');
    expect(decoded.kind.case === 'stateChange' && decoded.kind.value.state).toBe(StreamState.RUNNING);
    expect(() =>
      encodeRecord(topics.streamEvents, create(StreamEventSchema, { streamId: 'shop-1' })),
    ).toThrow(/kind is not set/);
  });

  it('refuses to encode an invalid message', () => {
    const bad = frame();
    bad.streamId = 'has spaces/and slashes';
    expect(() => encodeRecord(topics.frames, bad)).toThrow(/stream_id .* is not/);
  });

  it('prefixes every topic name for a deployment namespace, keeping the contracts', () => {
    const staged = prefixedTopics('staging.');
    expect(staged.frames.name).toBe('staging.live.frames.v1');
    expect(staged.dlq.name).toBe('staging.live.dlq.v1');
    expect(staged.frames.schema).toBe(topics.frames.schema);
    expect(prefixedTopics('')).toBe(topics);
  });

  it('declares every topic with a versioned name and unique names', () => {
    const names = allTopics.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^live\.[a-z-]+\.v\d+$/);
  });
});
