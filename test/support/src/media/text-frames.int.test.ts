import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../index.js';
import { MediaFixtureError } from './errors.js';
import { probeMedia } from './probe.js';
import { ffmpegPids, runTool } from './process.js';
import {
  generateTextFrame,
  ocrAccuracySuite,
  ocrParitySuite,
  type TextFrameSpec,
  textFrameLineBoxes,
} from './text-frames.js';

// Characters drawtext would treat as syntax without textfile + expansion=none.
const HOSTILE_TEXT = "100% off: 'SAVE20' \\ shop.example.com/deal?a=1&b=%{n}";

describe('generateTextFrame', () => {
  // Every test writes into its own cache so that "not cached yet" is true on a warm machine too.
  const scratch = join(tmpdir(), uniqueName('livelens-text-frames'));
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  const spec: TextFrameSpec = {
    name: 'int-test',
    background: { noise: { seed: 3 } },
    lines: [
      { text: '限时秒杀 ¥199', font: 'wqy-microhei', sizePx: 48, x: 100, y: 100 },
      {
        text: HOSTILE_TEXT,
        font: 'dejavu-sans-mono',
        sizePx: 20,
        color: '#ffd700',
        x: 100,
        y: 300,
        box: true,
      },
    ],
  };

  it('renders a 1280x720 JPEG with the text in it, then serves it from the cache', async () => {
    const cacheDir = join(scratch, 'a');
    const first = await generateTextFrame(spec, { cacheDir });
    expect(first.cached).toBe(false);
    expect(first.path.startsWith(cacheDir)).toBe(true);
    expect(first.path.endsWith('.jpg')).toBe(true);
    expect(first.bytes.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(await readFile(first.path)).toEqual(first.bytes);
    expect(first.spec).toMatchObject({ width: 1280, height: 720, format: 'jpeg' });
    expect(first.spec.lines[1]).toMatchObject({
      text: HOSTILE_TEXT,
      box: { color: 'black@0.6', borderPx: 5 },
    });

    const { streams } = await probeMedia(first.path);
    expect(streams[0]).toMatchObject({ codec_name: 'mjpeg', width: 1280, height: 720 });

    // The text is drawn where the spec says: the box's rows are dark, the glyph rows have bright pixels.
    const gray = await runTool('ffmpeg', [
      '-v',
      'error',
      '-i',
      first.path,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'gray',
      '-',
    ]);
    expect(gray.length).toBe(1280 * 720);
    const rowMax = (y: number, x1: number, x2: number) =>
      Math.max(...gray.subarray(y * 1280 + x1, y * 1280 + x2));
    expect(rowMax(125, 100, 400)).toBeGreaterThan(200); // white CJK glyphs on a #505050 background
    expect(rowMax(600, 100, 400)).toBeLessThan(160); // noise only

    // Cached: no ffmpeg runs, same bytes and path.
    const again = await generateTextFrame({ ...spec }, { cacheDir });
    expect(again).toMatchObject({ cached: true, path: first.path, key: first.key, sha256: first.sha256 });
    expect(again.bytes).toEqual(first.bytes);
    expect(ffmpegPids({ childrenOf: process.pid })).toEqual([]);
    expect((await readdir(cacheDir)).filter((e) => e.startsWith('.tmp-'))).toEqual([]);
  }, 30_000);

  it('is deterministic: a fresh cache renders the same bytes, noise included', async () => {
    const a = await generateTextFrame(spec, { cacheDir: join(scratch, 'a') });
    const b = await generateTextFrame(spec, { cacheDir: join(scratch, 'b') });
    expect(b.cached).toBe(false);
    expect(b.sha256).toBe(a.sha256);
    const otherSeed = await generateTextFrame(
      { ...spec, background: { noise: { seed: 4 } } },
      { cacheDir: join(scratch, 'b') },
    );
    expect(otherSeed.key).not.toBe(a.key);
    expect(otherSeed.sha256).not.toBe(a.sha256);
  }, 30_000);

  it('writes lossless PNG on request', async () => {
    const png = await generateTextFrame(
      {
        name: 'png',
        background: 'smptebars',
        format: 'png',
        lines: [{ text: 'SAVE20', sizePx: 64, x: 10, y: 10 }],
      },
      { cacheDir: join(scratch, 'c') },
    );
    expect(png.path.endsWith('.png')).toBe(true);
    expect(png.bytes.subarray(1, 4).toString('ascii')).toBe('PNG');
    const { streams } = await probeMedia(png.path);
    expect(streams[0]).toMatchObject({ codec_name: 'png', width: 1280, height: 720, pix_fmt: 'rgb24' });
  }, 30_000);

  it('rejects specs it cannot draw, naming the field', async () => {
    const line = { text: 'x', sizePx: 20, x: 0, y: 0 };
    const bad = (s: TextFrameSpec) => generateTextFrame(s, { cacheDir: join(scratch, 'd') });
    await expect(bad({ name: 'odd', width: 641, background: 'testsrc', lines: [line] })).rejects.toThrow(
      /even integers/,
    );
    await expect(
      bad({ name: 'nl', background: 'testsrc', lines: [{ ...line, text: 'a\nb' }] }),
    ).rejects.toThrow(/one non-empty line/);
    await expect(bad({ name: 'low', background: 'testsrc', lines: [{ ...line, y: 710 }] })).rejects.toThrow(
      /outside the 1280x720 frame/,
    );
    await expect(
      bad({ name: 'color', background: { color: 'red;drawbox' }, lines: [line] }),
    ).rejects.toBeInstanceOf(MediaFixtureError);
  });
});

describe('OCR suites', () => {
  it('keeps every suite line inside the frame and apart', async () => {
    const suite = ocrAccuracySuite();
    expect(suite.length).toBeGreaterThanOrEqual(12);
    expect(new Set(suite.map((s) => s.name)).size).toBe(suite.length);
    for (const spec of suite) {
      expect(spec.lines.length, spec.name).toBeGreaterThanOrEqual(2);
      expect(spec.lines.length, spec.name).toBeLessThanOrEqual(4);
      const boxes = await textFrameLineBoxes(spec);
      for (const [i, { outer, ink }] of boxes.entries()) {
        const where = `${spec.name} line ${i}`;
        expect(outer.x1, where).toBeGreaterThanOrEqual(0);
        expect(outer.y1, where).toBeGreaterThanOrEqual(0);
        expect(outer.x2, where).toBeLessThan(spec.width ?? 1280);
        expect(outer.y2, where).toBeLessThan(spec.height ?? 720);
        // The ink is at least half the font size tall: the glyphs were there (no missing-glyph boxes
        // would pass this either, so Chinese lines must use wqy-microhei: checked by name below).
        expect(ink.y2 - ink.y1, where).toBeGreaterThanOrEqual((spec.lines[i]?.sizePx ?? 0) / 2);
        for (const other of boxes.slice(i + 1)) {
          const apart =
            outer.x2 + 4 < other.outer.x1 ||
            other.outer.x2 + 4 < outer.x1 ||
            outer.y2 + 4 < other.outer.y1 ||
            other.outer.y2 + 4 < outer.y1;
          expect(apart, `${where} overlaps "${other.text}"`).toBe(true);
        }
      }
      for (const line of spec.lines) {
        if (/[\u4e00-\u9fff]/.test(line.text))
          expect(line.font, `${spec.name}: ${line.text}`).toBe('wqy-microhei');
      }
      // Busy patterns get a box, flat and noisy backgrounds none (see ocrAccuracySuite).
      const busy = typeof spec.background === 'string';
      expect(
        spec.lines.every((l) => Boolean(l.box) === busy),
        spec.name,
      ).toBe(true);
    }
    const sizes = new Set(suite.flatMap((s) => s.lines.map((l) => l.sizePx)));
    expect([...sizes].sort((a, b) => a - b)).toEqual([16, 20, 24, 32, 40, 48, 64]);
    const fonts = new Set(suite.flatMap((s) => s.lines.map((l) => l.font)));
    expect(fonts.size).toBe(5);
  }, 60_000);

  it('takes its parity frames from the accuracy suite, one of them as PNG too', () => {
    const accuracy = new Map(ocrAccuracySuite().map((s) => [s.name, s]));
    const parity = ocrParitySuite();
    expect(parity.length).toBeGreaterThanOrEqual(6);
    for (const spec of parity) {
      const source = accuracy.get(spec.name.replace(/-png$/, ''));
      expect(source, spec.name).toBeDefined();
      expect(spec.lines).toEqual(source?.lines);
    }
    expect(parity.filter((s) => s.format === 'png').length).toBe(1);
  });
});
