/**
 * Cuts ffmpeg's s16le 16 kHz mono byte stream into chunks of exactly `chunkMs` (32 bytes per ms). Reads
 * split anywhere, odd byte included: bytes are carried across reads, never lost or reordered. `startMs` counts
 * samples (samples / 16), so it is exact and gapless by construction; ffmpeg's `aresample=async=1` keeps the
 * samples themselves gapless against the input timestamps.
 */
import type { PcmChunk } from './types.js';

export const PCM_SAMPLE_RATE = 16_000;
export const PCM_BYTES_PER_SAMPLE = 2;
export const PCM_BYTES_PER_MS = (PCM_SAMPLE_RATE / 1000) * PCM_BYTES_PER_SAMPLE;

export class PcmChunker {
  private readonly chunkBytes: number;
  private parts: Buffer[] = [];
  private buffered = 0;
  private samplesEmitted = 0;

  constructor(private readonly chunkMs: number) {
    if (!Number.isInteger(chunkMs) || chunkMs <= 0)
      throw new RangeError(`chunkMs must be a positive integer, got ${chunkMs}`);
    this.chunkBytes = chunkMs * PCM_BYTES_PER_MS;
  }

  /** Bytes waiting for a full chunk (always < one chunk between calls). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(data: Buffer, receivedAtMs: number): PcmChunk[] {
    if (data.length === 0) return [];
    this.parts.push(data);
    this.buffered += data.length;
    const chunks: PcmChunk[] = [];
    if (this.buffered < this.chunkBytes) return chunks;
    let all = this.parts.length === 1 ? data : Buffer.concat(this.parts, this.buffered);
    let offset = 0;
    while (all.length - offset >= this.chunkBytes) {
      // A copy: a subarray would keep the whole read buffer alive for as long as the consumer holds the chunk.
      const pcm = Buffer.from(all.subarray(offset, offset + this.chunkBytes));
      chunks.push(this.chunk(pcm, this.chunkMs, receivedAtMs));
      offset += this.chunkBytes;
    }
    all = all.subarray(offset);
    this.parts = all.length > 0 ? [Buffer.from(all)] : [];
    this.buffered = all.length;
    return chunks;
  }

  /**
   * End of stream: the last, shorter chunk (whole samples only; a trailing odd byte is dropped), padded with
   * silence to a whole ms (at most 15 samples): `duration_ms` is a whole number on the wire (media.proto), and
   * the samples must match it.
   */
  flush(receivedAtMs: number): PcmChunk[] {
    const usable = this.buffered - (this.buffered % PCM_BYTES_PER_SAMPLE);
    const all = Buffer.concat(this.parts, this.buffered);
    this.parts = [];
    this.buffered = 0;
    if (usable === 0) return [];
    const durationMs = Math.ceil(usable / PCM_BYTES_PER_MS);
    const pcm = Buffer.alloc(durationMs * PCM_BYTES_PER_MS); // zeros: silence
    all.copy(pcm, 0, 0, usable);
    return [this.chunk(pcm, durationMs, receivedAtMs)];
  }

  private chunk(pcm: Buffer, durationMs: number, receivedAtMs: number): PcmChunk {
    const startMs = (this.samplesEmitted * 1000) / PCM_SAMPLE_RATE;
    this.samplesEmitted += pcm.length / PCM_BYTES_PER_SAMPLE;
    return { pcm, startMs, durationMs, receivedAtMs };
  }
}
