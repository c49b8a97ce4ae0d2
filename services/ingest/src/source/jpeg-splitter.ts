/**
 * Splits ffmpeg's `image2pipe` mjpeg byte stream into JPEGs by walking the JPEG marker structure, not by
 * searching for FFD9: marker segments (APPn, DQT, DHT, SOFn, SOS, ...) are skipped by their length, so bytes
 * inside them (an EXIF thumbnail carries a whole JPEG) are never taken for markers; in entropy-coded data a
 * literal FF is always stuffed as FF00, and FFD0..FFD7 are restart markers, so the first other FFxx there is
 * a real marker. The state machine works byte by byte across chunk boundaries, so a marker or a length split
 * between two reads is handled (jpeg-splitter.test.ts "every split point").
 *
 * Memory is bounded: bytes before an SOI are discarded as they come; a frame's bytes are kept only up to
 * `maxFrameBytes`, after which the frame is parsed on without keeping its bytes and reported as too large at
 * its EOI. A structural error ends the frame as corrupt and the scan restarts at that byte, looking for SOI.
 */

/** One complete JPEG. */
export interface SplitJpeg {
  jpeg: Buffer;
  /** From the first SOF segment (baseline, progressive, ...). */
  width: number;
  height: number;
}

/** What the splitter found; every frame that started with an SOI ends as exactly one of these. */
export type SplitResult =
  | { kind: 'frame'; frame: SplitJpeg }
  | { kind: 'too_large'; bytes: number }
  | { kind: 'corrupt'; bytes: number; why: string };

type State =
  /** Looking for FF D8 (SOI); `sawFF` says whether the previous byte was FF. */
  | 'seek'
  /** Expecting FF (the start of the next marker). */
  | 'marker'
  /** After FF: the marker code (more FFs are fill bytes). */
  | 'code'
  | 'length_hi'
  | 'length_lo'
  /** Inside a marker segment's payload. */
  | 'segment'
  /** Entropy-coded data after SOS. */
  | 'entropy'
  /** FF seen in entropy-coded data. */
  | 'entropy_ff';

/** SOFn codes: C0-C3, C5-C7, C9-CB, CD-CF (C4 is DHT, C8 is JPG, CC is DAC). */
function isSof(code: number): boolean {
  return code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc;
}

/** Markers without a length: TEM, RST0-7, SOI, EOI. */
function isStandalone(code: number): boolean {
  return code === 0x01 || (code >= 0xd0 && code <= 0xd9);
}

export class JpegSplitter {
  private state: State = 'seek';
  private sawFF = false;
  /** Bytes of the current frame so far (kept or not). */
  private frameBytes = 0;
  /** Slices of the current frame, while it fits in maxFrameBytes. */
  private chunks: Buffer[] = [];
  /** False once the frame outgrew maxFrameBytes: its bytes are counted, not kept. */
  private keeping = true;
  /** Where the current frame starts in the chunk being pushed (-1: it started in an earlier chunk). */
  private frameStartInChunk = -1;
  private marker = 0;
  private segmentLeft = 0;
  private segmentOffset = 0;
  private sof: number[] = [];
  private width = 0;
  private height = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Feeds a chunk of stdout; returns what completed in it, in order. */
  push(chunk: Buffer): SplitResult[] {
    const results: SplitResult[] = [];
    this.frameStartInChunk = this.inFrame() ? 0 : -1;
    let i = 0;
    while (i < chunk.length) {
      const state = this.state;
      if (state === 'seek') {
        i = this.seek(chunk, i);
        continue;
      }
      if (state === 'entropy') {
        // Fast path: only an FF can end entropy-coded data.
        const ff = chunk.indexOf(0xff, i);
        if (ff < 0) {
          this.count(chunk.length - i);
          i = chunk.length;
          continue;
        }
        this.count(ff + 1 - i);
        i = ff + 1;
        this.state = 'entropy_ff';
        continue;
      }
      if (state === 'segment') {
        const take = Math.min(this.segmentLeft, chunk.length - i);
        if (isSof(this.marker)) {
          for (let k = 0; k < take && this.segmentOffset + k < 5; k += 1) this.sof.push(chunk[i + k]!);
          if (this.sof.length === 5 && this.width === 0) {
            this.height = (this.sof[1]! << 8) | this.sof[2]!;
            this.width = (this.sof[3]! << 8) | this.sof[4]!;
          }
        }
        this.segmentLeft -= take;
        this.segmentOffset += take;
        this.count(take);
        i += take;
        if (this.segmentLeft === 0) this.state = this.marker === 0xda ? 'entropy' : 'marker';
        continue;
      }
      const byte = chunk[i]!;
      const afterFF = state === 'code' || state === 'entropy_ff';
      this.count(1);
      i += 1;
      const failure = this.step(byte);
      if (failure === 'eoi') {
        results.push(this.finish(chunk, i));
      } else if (failure !== undefined) {
        // Give the offending byte back and rescan from it: FF D8 inside a frame starts the next one.
        this.uncount(1);
        i -= 1;
        results.push(this.abandon(failure));
        this.sawFF = afterFF;
      }
    }
    if (this.inFrame() && this.keeping) {
      const from = Math.max(this.frameStartInChunk, 0);
      if (from < chunk.length) this.chunks.push(chunk.subarray(from, chunk.length));
    }
    return results;
  }

  /** At end of stream: a frame cut short is reported as corrupt. */
  end(): SplitResult[] {
    if (!this.inFrame()) return [];
    return [this.abandon('truncated at end of stream')];
  }

  private inFrame(): boolean {
    return this.state !== 'seek';
  }

  private seek(chunk: Buffer, from: number): number {
    let i = from;
    while (i < chunk.length) {
      const byte = chunk[i]!;
      i += 1;
      if (this.sawFF && byte === 0xd8) {
        this.sawFF = false;
        this.startFrame(i - 2);
        return i;
      }
      this.sawFF = byte === 0xff;
    }
    return i;
  }

  private startFrame(soiAt: number): void {
    this.state = 'marker';
    this.keeping = true;
    this.chunks = [];
    this.width = 0;
    this.height = 0;
    if (soiAt >= 0) {
      this.frameStartInChunk = soiAt;
      this.frameBytes = 2;
    } else {
      // The FF was the last byte of the previous chunk.
      this.frameStartInChunk = 0;
      this.chunks.push(Buffer.from([0xff]));
      this.frameBytes = 2;
    }
  }

  /** One byte in the marker states; returns 'eoi', a failure reason, or undefined to go on. */
  private step(byte: number): 'eoi' | string | undefined {
    switch (this.state) {
      case 'marker':
        if (byte !== 0xff) return `expected a marker, got 0x${byte.toString(16)}`;
        this.state = 'code';
        return undefined;
      case 'code':
      case 'entropy_ff': {
        const inEntropy = this.state === 'entropy_ff';
        if (byte === 0xff) return undefined; // fill byte
        if (inEntropy && (byte === 0x00 || (byte >= 0xd0 && byte <= 0xd7))) {
          this.state = 'entropy'; // stuffed FF or restart marker
          return undefined;
        }
        if (byte === 0xd9) return 'eoi';
        if (byte === 0xd8) return 'SOI inside a frame';
        if (byte === 0x00) return 'FF00 outside entropy-coded data';
        if (isStandalone(byte)) {
          this.state = 'marker';
          return undefined;
        }
        this.marker = byte;
        this.state = 'length_hi';
        return undefined;
      }
      case 'length_hi':
        this.segmentLeft = byte << 8;
        this.state = 'length_lo';
        return undefined;
      case 'length_lo': {
        const length = this.segmentLeft | byte;
        if (length < 2) return `segment length ${length}`;
        if (isSof(this.marker) && this.width === 0 && length < 2 + 5) return 'SOF segment too short';
        this.segmentLeft = length - 2;
        this.segmentOffset = 0;
        this.sof = [];
        this.state = this.segmentLeft === 0 ? (this.marker === 0xda ? 'entropy' : 'marker') : 'segment';
        return undefined;
      }
      default:
        return `unexpected state ${this.state}`;
    }
  }

  private count(bytes: number): void {
    if (!this.inFrame()) return;
    this.frameBytes += bytes;
    if (this.keeping && this.frameBytes > this.maxFrameBytes) {
      this.keeping = false;
      this.chunks = [];
    }
  }

  private uncount(bytes: number): void {
    this.frameBytes -= bytes;
  }

  /** EOI: the byte before `end` in `chunk` was D9. */
  private finish(chunk: Buffer, end: number): SplitResult {
    const bytes = this.frameBytes;
    let result: SplitResult;
    if (!this.keeping) {
      result = { kind: 'too_large', bytes };
    } else if (this.width === 0 || this.height === 0) {
      result = { kind: 'corrupt', bytes, why: 'no SOF segment with a size' };
    } else {
      const from = Math.max(this.frameStartInChunk, 0);
      this.chunks.push(chunk.subarray(from, end));
      const jpeg = this.chunks.length === 1 ? Buffer.from(this.chunks[0]!) : Buffer.concat(this.chunks);
      result = { kind: 'frame', frame: { jpeg, width: this.width, height: this.height } };
    }
    this.reset();
    return result;
  }

  private abandon(why: string): SplitResult {
    const result: SplitResult = this.keeping
      ? { kind: 'corrupt', bytes: this.frameBytes, why }
      : { kind: 'too_large', bytes: this.frameBytes };
    this.reset();
    return result;
  }

  private reset(): void {
    this.state = 'seek';
    this.sawFF = false;
    this.chunks = [];
    this.keeping = true;
    this.frameBytes = 0;
    this.frameStartInChunk = -1;
  }
}
