import { describe, expect, it } from 'vitest';
import { PCM_BYTES_PER_MS, PcmChunker } from './pcm-chunker.js';
import type { PcmChunk } from './types.js';

/** s16le samples 0, 1, 2, ... so any reordering or loss shows. */
function ramp(samples: number, from = 0): Buffer {
  const buf = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i += 1) buf.writeInt16LE((from + i) % 32768, i * 2);
  return buf;
}

describe('PcmChunker', () => {
  it('is 32 bytes per ms', () => {
    expect(PCM_BYTES_PER_MS).toBe(32);
  });

  it('cuts exact chunks with contiguous startMs, carrying odd bytes across reads', () => {
    const chunker = new PcmChunker(100); // 3200 bytes
    const stream = ramp(16_000 * 2 + 123); // 2 s and a bit
    const chunks: PcmChunk[] = [];
    // Odd read sizes, so samples are split between reads.
    const sizes = [1, 7, 3199, 2, 4001, 333, 9999, 5];
    let offset = 0;
    let i = 0;
    while (offset < stream.length) {
      const size = sizes[i % sizes.length]!;
      chunks.push(...chunker.push(stream.subarray(offset, offset + size), 1000 + i));
      offset += size;
      i += 1;
    }
    expect(chunks).toHaveLength(20);
    chunks.forEach((chunk, n) => {
      expect(chunk.pcm.length).toBe(3200);
      expect(chunk.durationMs).toBe(100);
      expect(chunk.startMs).toBe(n * 100);
    });
    expect(Buffer.concat(chunks.map((c) => c.pcm)).equals(stream.subarray(0, 20 * 3200))).toBe(true);
    expect(chunker.bufferedBytes).toBe(246);
    const [last] = chunker.flush(99);
    // 123 samples, padded with 5 samples of silence to 8 ms: duration_ms is a whole number on the wire.
    expect(last).toMatchObject({ startMs: 2000, durationMs: 8, receivedAtMs: 99 });
    expect(last!.pcm.length).toBe(8 * 32);
    expect(last!.pcm.subarray(0, 246).equals(stream.subarray(20 * 3200))).toBe(true);
    expect(last!.pcm.subarray(246).every((b) => b === 0)).toBe(true);
    expect(chunker.flush(100)).toEqual([]);
  });

  it('emits several chunks from one large read, each its own copy', () => {
    const chunker = new PcmChunker(10);
    const data = ramp(16 * 35);
    const chunks = chunker.push(data, 5);
    expect(chunks.map((c) => c.startMs)).toEqual([0, 10, 20]);
    data.fill(0);
    expect(chunks[1]!.pcm.readInt16LE(0)).toBe(160);
  });

  it('drops a trailing odd byte at flush and emits nothing for an empty tail', () => {
    const chunker = new PcmChunker(10);
    chunker.push(Buffer.from([1, 2, 3]), 0);
    expect(chunker.flush(0)).toMatchObject([{ durationMs: 1, startMs: 0 }]);
    const empty = new PcmChunker(10);
    empty.push(Buffer.from([1]), 0);
    expect(empty.flush(0)).toEqual([]);
  });

  it('rejects a chunk length that is not a whole positive number of ms', () => {
    expect(() => new PcmChunker(0)).toThrow(RangeError);
    expect(() => new PcmChunker(2.5)).toThrow(RangeError);
  });
});
