import { describe, expect, it } from 'vitest';
import { FrameMatcher, type FrameMatcherOptions } from './frame-matcher.js';
import type { SplitJpeg } from './jpeg-splitter.js';
import type { FrameMeta } from './stderr.js';
import type { SampledFrame } from './types.js';

function jpeg(tag: number): SplitJpeg {
  return { jpeg: Buffer.from([tag]), width: 640, height: 360 };
}

function record(index: number, ptsSeconds: number | null, sceneScore?: number): FrameMeta {
  return { index, ptsSeconds, sceneScore };
}

function setup(overrides: Partial<FrameMatcherOptions> = {}) {
  const frames: SampledFrame[] = [];
  const warnings: string[] = [];
  const matcher = new FrameMatcher({
    frameRateFps: 2,
    sceneChangeThreshold: 0.3,
    emit: (frame) => frames.push(frame),
    warn: (message) => warnings.push(message),
    now: () => 0,
    ...overrides,
  });
  const summary = () => frames.map((f) => [f.jpeg[0], f.ptsMs, f.reason]);
  return { matcher, frames, warnings, summary };
}

describe('FrameMatcher', () => {
  it('pairs in order whichever pipe is read first', () => {
    const { matcher, summary, warnings } = setup();
    matcher.addRecord(record(0, 0, 0));
    matcher.addJpeg(jpeg(0), 1);
    matcher.addJpeg(jpeg(1), 2); // JPEG before its line
    matcher.addJpeg(jpeg(2), 3);
    matcher.addRecord(record(1, 0.52, 0.01));
    matcher.addRecord(record(2, 1, 0));
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [1, 520, 'interval'],
      [2, 1000, 'interval'],
    ]);
    expect(warnings).toEqual([]);
  });

  it("marks a frame 'scene_change' only when the interval grid would not have taken it", () => {
    const { matcher, summary, frames } = setup();
    matcher.addRecord(record(0, 0, 0));
    matcher.addRecord(record(1, 0.5, 0.02));
    matcher.addRecord(record(2, 0.72, 0.9)); // cut inside slot 1: scene
    matcher.addRecord(record(3, 1.0, 0.8)); // new slot and a high score: interval
    for (let i = 0; i < 4; i += 1) matcher.addJpeg(jpeg(i), i);
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [1, 500, 'interval'],
      [2, 720, 'scene_change'],
      [3, 1000, 'interval'],
    ]);
    expect(frames[2]!.sceneScore).toBe(0.9);
  });

  it('estimates the pts of a JPEG whose line was lost once a later line shows up', () => {
    const { matcher, summary, warnings } = setup();
    matcher.addRecord(record(0, 0, 0));
    matcher.addJpeg(jpeg(0), 0);
    matcher.addJpeg(jpeg(1), 0);
    expect(summary()).toHaveLength(1); // 1 waits for its line
    matcher.addRecord(record(2, 1.04, 0)); // the line for 1 never came
    matcher.addJpeg(jpeg(2), 0);
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [1, 500, 'interval'],
      [2, 1040, 'interval'],
    ]);
    expect(warnings).toEqual(['no ffmpeg frame record for a JPEG; estimating its pts']);
    expect(matcher.estimated).toBe(1);
  });

  it('never hangs: a JPEG waits at most maxWaitMs, and a late line is then discarded', () => {
    const { matcher, summary } = setup({ maxWaitMs: 2000 });
    matcher.addJpeg(jpeg(0), 10_000);
    matcher.tick(11_999);
    expect(summary()).toEqual([]);
    matcher.tick(12_000);
    expect(summary()).toEqual([[0, 0, 'interval']]);
    matcher.addRecord(record(0, 5, 0)); // too late: already sent
    matcher.addRecord(record(1, 0.5, 0));
    matcher.addJpeg(jpeg(1), 12_001);
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [1, 500, 'interval'],
    ]);
  });

  it('skips the index of a dropped JPEG so later frames keep their own lines', () => {
    const { matcher, summary } = setup();
    matcher.addRecord(record(0, 0, 0));
    matcher.addRecord(record(1, 0.5, 0));
    matcher.addRecord(record(2, 1, 0));
    matcher.addJpeg(jpeg(0), 0);
    matcher.addDropped();
    matcher.addJpeg(jpeg(2), 0);
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [2, 1000, 'interval'],
    ]);
  });

  it('keeps pts strictly increasing, and estimates for NOPTS', () => {
    const { matcher, summary, warnings } = setup();
    matcher.addRecord(record(0, 3, 0));
    matcher.addRecord(record(1, 1, 0)); // went backwards
    matcher.addRecord(record(2, null, 0));
    for (let i = 0; i < 3; i += 1) matcher.addJpeg(jpeg(i), 0);
    expect(summary().map((s) => s[1])).toEqual([3000, 3001, 3501]);
    expect(warnings).toContain('ffmpeg frame pts went backwards; clamping');
  });

  it('gives up matching (estimates from then on) when records run far ahead of the JPEGs', () => {
    const { matcher, summary, warnings } = setup({ maxAheadRecords: 4 });
    for (let i = 0; i < 5; i += 1) matcher.addRecord(record(i, i, 0));
    expect(warnings).toEqual(['ffmpeg frame records disagree with the JPEGs; estimating pts from now on']);
    matcher.addJpeg(jpeg(0), 0);
    matcher.addJpeg(jpeg(1), 0);
    matcher.addRecord(record(5, 5, 0));
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [1, 500, 'interval'],
    ]);
  });

  it('flushes whatever waits when the process ends', () => {
    const { matcher, summary } = setup();
    matcher.addJpeg(jpeg(0), 0);
    matcher.addJpeg(jpeg(1), 0);
    matcher.flush(1);
    expect(summary()).toEqual([
      [0, 0, 'interval'],
      [1, 500, 'interval'],
    ]);
  });
});
