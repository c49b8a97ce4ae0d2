import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { JpegSplitter, type SplitResult } from './jpeg-splitter.js';

const SOI = [0xff, 0xd8];
const EOI = [0xff, 0xd9];

function segment(code: number, payload: number[]): number[] {
  const length = payload.length + 2;
  return [0xff, code, length >> 8, length & 0xff, ...payload];
}

function sof(code: number, width: number, height: number): number[] {
  return segment(code, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]);
}

const SOS = segment(0xda, [1, 1, 0, 0, 63, 0]);

/** A structurally valid JPEG whose segments and scan data are full of marker look-alikes. */
function trickyJpeg(width: number, height: number): Buffer {
  const thumbnail = [...SOI, ...sof(0xc0, 8, 8), ...SOS, 0x01, 0x02, ...EOI];
  return Buffer.from([
    ...SOI,
    ...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 0xff, 0xd9, 0xff, 0xd8]), // APP0 holding FFD9 and FFD8
    ...segment(0xe1, [0x45, 0x78, 0x69, 0x66, 0, 0, ...thumbnail]), // APP1 with a whole embedded JPEG
    ...segment(
      0xdb,
      Array.from({ length: 65 }, (_, i) => (i === 10 ? 0xff : i)),
    ),
    ...segment(0xc4, [0x00, 0xff, 0xd9, 0x00]), // DHT (0xC4 is not an SOF)
    ...sof(0xc0, width, height),
    ...segment(0xdd, [0x00, 0x04]), // DRI
    ...SOS,
    0x12,
    0xff,
    0x00, // stuffed FF
    0x34,
    0xff,
    0xd0, // RST0
    0x56,
    0xff,
    0xff,
    0x00, // fill byte, then stuffed FF
    0x78,
    ...EOI,
  ]);
}

/** Progressive: two scans with a DHT between them, SOF2. */
function progressiveJpeg(width: number, height: number): Buffer {
  return Buffer.from([
    ...SOI,
    ...sof(0xc2, width, height),
    ...SOS,
    0x11,
    0xff,
    0x00,
    ...segment(0xc4, [0x10, 0x01]),
    ...SOS,
    0x22,
    0x33,
    ...EOI,
  ]);
}

function pushAll(splitter: JpegSplitter, chunks: Buffer[]): SplitResult[] {
  return [...chunks.flatMap((chunk) => splitter.push(chunk)), ...splitter.end()];
}

function frames(results: SplitResult[]): Buffer[] {
  return results.flatMap((r) => (r.kind === 'frame' ? [r.frame.jpeg] : []));
}

let real: Buffer[] = [];

beforeAll(() => {
  // Three real frames from ffmpeg's mjpeg encoder, as image2pipe writes them.
  const result = spawnSync(
    'ffmpeg',
    [
      '-nostdin',
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=s=96x54:r=3:d=1',
      '-c:v',
      'mjpeg',
      '-q:v',
      '5',
      '-f',
      'image2pipe',
      'pipe:1',
    ],
    { maxBuffer: 10 * 1024 * 1024 },
  );
  expect(result.status).toBe(0);
  const stream = result.stdout;
  // Cut at each SOI that follows an EOI (ffmpeg writes them back to back).
  let start = 0;
  for (let i = 2; i < stream.length - 1; i += 1) {
    if (stream[i - 2] === 0xff && stream[i - 1] === 0xd9 && stream[i] === 0xff && stream[i + 1] === 0xd8) {
      real.push(stream.subarray(start, i));
      start = i;
    }
  }
  real.push(stream.subarray(start));
  real = real.map((b) => Buffer.from(b));
  expect(real).toHaveLength(3);
});

describe('JpegSplitter', () => {
  it('splits real ffmpeg JPEGs back to back and reads their size', () => {
    const results = pushAll(new JpegSplitter(1 << 20), [Buffer.concat(real)]);
    expect(results.map((r) => r.kind)).toEqual(['frame', 'frame', 'frame']);
    results.forEach((r, i) => {
      if (r.kind !== 'frame') throw new Error('not a frame');
      expect(r.frame.width).toBe(96);
      expect(r.frame.height).toBe(54);
      expect(r.frame.jpeg.equals(real[i]!)).toBe(true);
    });
  });

  it('gives the same frames for every split point of a stream (markers and lengths cut across reads)', () => {
    const stream = Buffer.concat([real[0]!, trickyJpeg(320, 240), real[1]!]);
    const expected = [real[0]!, trickyJpeg(320, 240), real[1]!];
    for (let cut = 1; cut < stream.length; cut += 1) {
      const got = frames(pushAll(new JpegSplitter(1 << 20), [stream.subarray(0, cut), stream.subarray(cut)]));
      expect(got.length, `cut at ${cut}`).toBe(3);
      for (const [i, jpeg] of got.entries()) {
        expect(jpeg.equals(expected[i]!), `cut at ${cut}, frame ${i}`).toBe(true);
      }
    }
  });

  it('works one byte at a time', () => {
    const stream = Buffer.concat([trickyJpeg(17, 9), real[2]!]);
    const bytes = [...stream].map((b) => Buffer.from([b]));
    const results = pushAll(new JpegSplitter(1 << 20), bytes);
    expect(results.map((r) => (r.kind === 'frame' ? [r.frame.width, r.frame.height] : r.kind))).toEqual([
      [17, 9],
      [96, 54],
    ]);
  });

  it('is not fooled by FFD9 or a whole JPEG inside segments, stuffed bytes or restart markers', () => {
    const jpeg = trickyJpeg(640, 360);
    const results = pushAll(new JpegSplitter(1 << 20), [jpeg]);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ kind: 'frame', frame: { width: 640, height: 360 } });
    expect((results[0] as { frame: { jpeg: Buffer } }).frame.jpeg.equals(jpeg)).toBe(true);
  });

  it('handles progressive JPEGs (SOF2, several scans)', () => {
    const results = pushAll(new JpegSplitter(1 << 20), [progressiveJpeg(1280, 720)]);
    expect(results).toMatchObject([{ kind: 'frame', frame: { width: 1280, height: 720 } }]);
  });

  it('skips garbage before, between and after frames', () => {
    const noise = Buffer.from([0x00, 0xff, 0x00, 0xd8, 0xff, 0xff, 0x12, 0xd9]);
    const results = pushAll(new JpegSplitter(1 << 20), [
      Buffer.concat([noise, real[0]!, noise, real[1]!, noise]),
    ]);
    expect(frames(results).map((j) => j.length)).toEqual([real[0]!.length, real[1]!.length]);
    expect(results.every((r) => r.kind === 'frame')).toBe(true);
  });

  it('drops a frame over maxFrameBytes without keeping it, reports its size and resyncs', () => {
    const big = trickyJpeg(64, 64);
    const limit = 100;
    expect(big.length).toBeGreaterThan(limit);
    const splitter = new JpegSplitter(limit);
    const small = progressiveJpeg(8, 8);
    const results: SplitResult[] = [];
    for (const byte of Buffer.concat([big, small])) {
      results.push(...splitter.push(Buffer.from([byte])));
      const kept = (splitter as unknown as { chunks: Buffer[] }).chunks.reduce((n, c) => n + c.length, 0);
      expect(kept).toBeLessThanOrEqual(limit);
    }
    expect(results).toEqual([
      { kind: 'too_large', bytes: big.length },
      { kind: 'frame', frame: { jpeg: small, width: 8, height: 8 } },
    ]);
  });

  it('reports a structural error as corrupt and restarts at the next SOI', () => {
    const broken = Buffer.from([...SOI, ...sof(0xc0, 4, 4), 0x12, 0x34]); // a non-marker where a marker must be
    const results = pushAll(new JpegSplitter(1 << 20), [Buffer.concat([broken, real[0]!])]);
    expect(results.map((r) => r.kind)).toEqual(['corrupt', 'frame']);
  });

  it('treats an SOI inside a frame as the start of the next one', () => {
    const cut = Buffer.from([...SOI, ...sof(0xc0, 4, 4), ...SOS, 0x01, 0x02]);
    const results = pushAll(new JpegSplitter(1 << 20), [Buffer.concat([cut, real[0]!])]);
    expect(results.map((r) => r.kind)).toEqual(['corrupt', 'frame']);
    expect(frames(results)[0]!.equals(real[0]!)).toBe(true);
  });

  it('reports a frame without SOF as corrupt, and a frame cut short at the end', () => {
    const noSof = Buffer.from([...SOI, ...SOS, 0x01, ...EOI]);
    expect(pushAll(new JpegSplitter(1 << 20), [noSof])).toMatchObject([{ kind: 'corrupt' }]);
    expect(pushAll(new JpegSplitter(1 << 20), [real[0]!.subarray(0, 200)])).toMatchObject([
      { kind: 'corrupt', why: 'truncated at end of stream' },
    ]);
  });

  it('keeps memory bounded on random garbage', () => {
    const limit = 4096;
    const splitter = new JpegSplitter(limit);
    for (let i = 0; i < 16; i += 1) {
      const results = splitter.push(randomBytes(64 * 1024));
      expect(results.every((r) => r.kind !== 'frame')).toBe(true);
      const kept = (splitter as unknown as { chunks: Buffer[] }).chunks.reduce((n, c) => n + c.length, 0);
      expect(kept).toBeLessThanOrEqual(limit);
    }
  });
});
