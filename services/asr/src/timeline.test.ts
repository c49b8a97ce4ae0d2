import { describe, expect, it } from 'vitest';
import { ringCapacity, StreamTimeline, segmentIdOf } from './timeline.js';

/** 1 s of PCM s16le whose sample i is `base + i` (mod 2^15), as the bytes of a record. */
function pcmBytes(samples: number, base: number): Uint8Array {
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++) pcm[i] = (base + i) % 32_768;
  return new Uint8Array(pcm.buffer);
}

const chunk = (seq: number, offset: number) => ({
  topic: 'live.audio.v1',
  partition: 3,
  offset: BigInt(offset),
  chunkId: `s/e/a/${seq}`,
  captureTimeUnixMs: BigInt(1_000 + seq),
  seq: BigInt(seq),
});

const capacity = ringCapacity(15 * 16_000, 400 * 16, 16_000);

describe('StreamTimeline', () => {
  it('starts on the VAD window grid: the first chunk gets the silence from the grid point before it', () => {
    // 60 010 ms = sample 960 160, 160 samples past the grid point 960 000 (= 1875 x 512).
    const t = new StreamTimeline('s', 'e', { seq: 7n, startMs: 60_010n }, capacity, 0);
    expect(t.originSample).toBe(960_000);
    const samples = t.samplesOf(pcmBytes(16_000, 1));
    expect(samples.length).toBe(16_160);
    expect(Array.from(samples.subarray(158, 162))).toEqual([0, 0, 1, 2]);
    t.accept(chunk(7, 100), samples, { retainFromSample: 960_000, open: undefined }, 5);
    expect(t.chunks[0]).toMatchObject({ startSample: 960_000, endSample: 976_160, offset: 100n });
    expect(t.endSample).toBe(976_160);
    expect(t.lastSeq).toBe(7n);
    expect(t.source).toEqual({ topic: 'live.audio.v1', partition: 3 });
    // The next chunk: no silence, straight after.
    const next = t.samplesOf(pcmBytes(16_000, 2));
    expect(next.length).toBe(16_000);
    t.accept(chunk(8, 101), next, { retainFromSample: 970_000, open: undefined }, 6);
    expect(t.chunks[1]).toMatchObject({ startSample: 976_160, endSample: 992_160 });
    expect(t.ring.slice(976_158, 976_162)).toEqual(Int16Array.from([15_999, 16_000, 2, 3]));
  });

  it('classifies the next chunk, redeliveries, gaps and media time going backwards', () => {
    const t = new StreamTimeline('s', 'e', { seq: 0n, startMs: 0n }, capacity, 0);
    t.accept(chunk(0, 0), t.samplesOf(pcmBytes(16_000, 0)), { retainFromSample: 0, open: undefined }, 0);
    const tolerance = 50 * 16;
    expect(t.classify({ seq: 1n, startMs: 1_000n }, tolerance)).toEqual({ kind: 'next' });
    // Jitter within the tolerance continues the timeline (by sample count).
    expect(t.classify({ seq: 1n, startMs: 1_030n }, tolerance)).toEqual({ kind: 'next' });
    expect(t.classify({ seq: 1n, startMs: 970n }, tolerance)).toEqual({ kind: 'next' });
    expect(t.classify({ seq: 0n, startMs: 1_000n }, tolerance)).toEqual({ kind: 'duplicate' });
    expect(t.classify({ seq: 3n, startMs: 3_000n }, tolerance)).toEqual({
      kind: 'gap',
      missingChunks: 2,
      jumpMs: 2_000,
    });
    expect(t.classify({ seq: 1n, startMs: 1_500n }, tolerance)).toEqual({
      kind: 'gap',
      missingChunks: 0,
      jumpMs: 500,
    });
    expect(t.classify({ seq: 1n, startMs: 200n }, tolerance)).toEqual({ kind: 'backwards', byMs: 800 });
  });

  it("closes a segment with its audio, media times, id and chunks; the commit limit is its first chunk's offset", () => {
    const t = new StreamTimeline('shop', 'ep', { seq: 0n, startMs: 0n }, capacity, 0);
    for (let seq = 0; seq < 4; seq++) {
      t.accept(
        chunk(seq, 40 + seq),
        t.samplesOf(pcmBytes(16_000, seq * 16_000)),
        { retainFromSample: 0, open: undefined },
        0,
      );
    }
    const segment = t.close({ start: 20_000, end: 40_800 }, 'silence');
    expect(segment).toMatchObject({
      segmentId: segmentIdOf('shop', 'ep', 1_250),
      startMs: 1_250,
      endMs: 2_550,
      end: 'silence',
      firstOffset: 41n,
      evictedSamples: 0,
    });
    expect(segment.segmentId).toBe('shop/ep/s/1250');
    expect(segment.chunks.map((c) => c.chunkId)).toEqual(['s/e/a/1', 's/e/a/2']);
    expect(segment.audio.length).toBe(20_800);
    expect(segment.audio[0]).toBeCloseTo((20_000 % 32_768) / 32_768, 6);

    // Needed: the chunk holding the earliest sample a future segment may include...
    t.retainFromSample = 45_000;
    expect(t.neededOffset()).toBe(42n);
    // ...or the first chunk of an unpublished segment, whichever is earlier.
    t.pending.push(segment);
    expect(t.neededOffset()).toBe(41n);
    t.trim();
    expect(t.chunks.map((c) => c.offset)).toEqual([42n, 43n]);
    t.pending.shift();
    expect(t.neededOffset()).toBe(42n);
    // Flushed: only what is pending counts.
    t.flushed = true;
    expect(t.neededOffset()).toBeUndefined();
  });

  it('keeps at most its ring of audio: a segment older than the ring comes back short, and says so', () => {
    const small = new StreamTimeline('s', 'e', { seq: 0n, startMs: 0n }, 20_000, 0);
    for (let seq = 0; seq < 3; seq++) {
      small.accept(
        chunk(seq, seq),
        small.samplesOf(pcmBytes(16_000, 0)),
        { retainFromSample: 0, open: undefined },
        0,
      );
    }
    expect(small.ring.startSample).toBe(28_000);
    const segment = small.close({ start: 10_000, end: 40_000 }, 'flush' as never);
    expect(segment.audio.length).toBe(12_000);
    expect(segment.evictedSamples).toBe(18_000);
  });

  it('gives the open segment so far for partials', () => {
    const t = new StreamTimeline('s', 'e', { seq: 0n, startMs: 0n }, capacity, 0);
    expect(t.openAudio()).toBeUndefined();
    t.accept(
      chunk(0, 0),
      t.samplesOf(pcmBytes(16_000, 0)),
      {
        retainFromSample: 3_200,
        open: { start: 3_200, speechStart: 6_400, analysedEnd: 15_872, trailingSilenceSamples: 0 },
      },
      0,
    );
    const open = t.openAudio();
    expect(open?.segment).toEqual({ start: 3_200, end: 15_872 });
    expect(open?.audio.length).toBe(12_672);
  });
});
