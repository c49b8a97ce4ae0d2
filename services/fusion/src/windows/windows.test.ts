import { describe, expect, it } from 'vitest';
import {
  checkWindowSpec,
  NO_WATERMARK,
  streamWatermark,
  windowAt,
  windowsEndingIn,
  windowsTouching,
} from './windows.js';

const spec = { sizeMs: 10_000, hopMs: 5_000 };

describe('fusion windows', () => {
  it('places points and spans in every window they touch (start inclusive, end exclusive)', () => {
    expect(windowsTouching(spec, 0, 0)).toEqual([0]);
    expect(windowsTouching(spec, 4_999, 4_999)).toEqual([0]);
    expect(windowsTouching(spec, 5_000, 5_000)).toEqual([0, 1]);
    expect(windowsTouching(spec, 12_000, 12_000)).toEqual([1, 2]);
    // A span [9.5 s, 10.5 s) touches windows 0 ([0,10)), 1 ([5,15)) and 2 ([10,20)).
    expect(windowsTouching(spec, 9_500, 10_500)).toEqual([0, 1, 2]);
    // A span ending exactly at 10 s does not reach window 2.
    expect(windowsTouching(spec, 9_500, 10_000)).toEqual([0, 1]);
    for (const k of windowsTouching(spec, 12_000, 12_000)) {
      const w = windowAt(spec, k);
      expect(w.startMs <= 12_000 && 12_000 < w.endMs).toBe(true);
    }
    // Tumbling windows (hop = size): each point in exactly one.
    expect(windowsTouching({ sizeMs: 5_000, hopMs: 5_000 }, 7_000, 7_000)).toEqual([1]);
  });

  it('lists the windows a watermark completes, each exactly once as it moves', () => {
    expect(windowsEndingIn(spec, NO_WATERMARK, 9_999)).toEqual([]);
    expect(windowsEndingIn(spec, NO_WATERMARK, 10_000)).toEqual([0]);
    expect(windowsEndingIn(spec, 10_000, 14_999)).toEqual([]);
    expect(windowsEndingIn(spec, 10_000, 25_000)).toEqual([1, 2, 3]);
    expect(windowsEndingIn(spec, 25_000, 25_000)).toEqual([]);
    const seen: number[] = [];
    let last = NO_WATERMARK;
    for (const wm of [...Array.from({ length: 47 }, (_, i) => i * 1_300), 60_000]) {
      seen.push(...windowsEndingIn(spec, last, wm));
      last = wm;
    }
    expect(seen).toEqual(Array.from({ length: 11 }, (_, k) => k));
  });

  it('follows the slower input, but never more than the skew bound behind the faster one', () => {
    expect(streamWatermark([], 8_000)).toBe(NO_WATERMARK);
    expect(streamWatermark([NO_WATERMARK, NO_WATERMARK], 8_000)).toBe(NO_WATERMARK);
    expect(streamWatermark([20_000, 17_000], 8_000)).toBe(17_000);
    // Transcripts quiet (no speech) since 2 s: frames at 30 s lead them by 28 s, so 30 - 8.
    expect(streamWatermark([30_000, 2_000], 8_000)).toBe(22_000);
    // An input never seen counts as quiet.
    expect(streamWatermark([30_000, NO_WATERMARK], 8_000)).toBe(22_000);
  });

  it('refuses window specs that would leave gaps or make no sense', () => {
    expect(() => checkWindowSpec({ sizeMs: 10_000, hopMs: 5_000 })).not.toThrow();
    expect(() => checkWindowSpec({ sizeMs: 5_000, hopMs: 10_000 })).toThrow(/hop .* at most the size/);
    expect(() => checkWindowSpec({ sizeMs: 0, hopMs: 0 })).toThrow(/size must be a positive integer/);
  });
});
