import { describe, expect, it } from 'vitest';
import {
  AudioRing,
  compileVadConfig,
  runVadWindows,
  type SpeechSegment,
  SpeechSegmenter,
  VAD_CONTEXT_SAMPLES,
  VAD_STATE_SIZE,
  VAD_WINDOW_SAMPLES,
  type VadConfig,
  type VadModelStep,
  vadAudioCapacity,
  vadWindowCount,
} from './vad.js';

const W = VAD_WINDOW_SAMPLES;

/** Window probabilities from runs: [probability, windows]. */
function probs(...runs: [number, number][]): number[] {
  return runs.flatMap(([p, n]) => new Array<number>(n).fill(p));
}

/** Feeds the probabilities one window at a time; returns each segment with the window index that closed it. */
function feed(segmenter: SpeechSegmenter, values: number[]): { segment: SpeechSegment; atWindow: number }[] {
  const out: { segment: SpeechSegment; atWindow: number }[] = [];
  values.forEach((p, i) => {
    for (const segment of segmenter.push([p])) out.push({ segment, atWindow: i });
  });
  return out;
}

// Defaults: threshold 0.5 / neg 0.35, min speech 250 ms (4000 samples), min silence 400 ms (6400), pad 200 ms
// (3200), max segment 15 s.
describe('segmenter', () => {
  const config = compileVadConfig();

  it('compiles the defaults to samples', () => {
    expect(config).toEqual({
      threshold: 0.5,
      negThreshold: 0.35,
      minSpeechSamples: 4000,
      minSilenceSamples: 6400,
      speechPadSamples: 3200,
      maxSegmentSamples: 240_000,
      maxSpeechSamples: 233_600,
      splitMinSilenceSamples: 1568,
    });
  });

  it('emits a padded segment once the silence after it reaches minSilence', () => {
    const segmenter = new SpeechSegmenter(config);
    const closed = feed(segmenter, probs([0.1, 10], [0.9, 20], [0.1, 30]));
    expect(closed).toHaveLength(1);
    expect(closed[0]?.segment).toEqual({
      start: 10 * W - 3200,
      end: 30 * W + 3200,
      speechStart: 10 * W,
      speechEnd: 30 * W,
      reason: 'silence',
    });
    // Silence from window 30: 13 windows (6656 samples) are the first ≥ 6400.
    expect(closed[0]?.atWindow).toBe(42);
    expect(segmenter.open).toBeUndefined();
    expect(segmenter.speechRatio).toBeCloseTo(20 / 60, 10);
  });

  it('drops a burst shorter than minSpeech, and counts no speech for it', () => {
    const segmenter = new SpeechSegmenter(config);
    expect(segmenter.push(probs([0.1, 5], [0.95, 7], [0.05, 40]))).toEqual([]);
    expect(segmenter.speechRatio).toBe(0);
    // 8 windows (4096 samples) is enough.
    expect(segmenter.push(probs([0.95, 8], [0.05, 20]))).toHaveLength(1);
  });

  it('holds its state between the two thresholds (hysteresis)', () => {
    const segmenter = new SpeechSegmenter(config);
    // 0.4 never starts a segment...
    expect(segmenter.push(probs([0.4, 50]))).toEqual([]);
    expect(segmenter.open).toBeUndefined();
    // ...nor ends one: 30 windows at 0.4 inside speech are still speech.
    const closed = segmenter.push(probs([0.8, 10], [0.4, 30], [0.8, 10], [0.1, 20]));
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ speechStart: 50 * W, speechEnd: 100 * W });
  });

  it('keeps one segment across pauses shorter than minSilence', () => {
    const segmenter = new SpeechSegmenter(config);
    const closed = segmenter.push(probs([0.9, 20], [0.1, 12], [0.9, 20], [0.1, 13]));
    expect(closed).toEqual([
      { start: 0, end: 52 * W + 3200, speechStart: 0, speechEnd: 52 * W, reason: 'silence' },
    ]);
  });

  it('clips the padding at the stream start and between close segments (no overlap)', () => {
    const short = compileVadConfig({ minSilenceMs: 100, speechPadMs: 200 });
    const segmenter = new SpeechSegmenter(short, 1000);
    const closed = segmenter.push(probs([0.9, 10], [0.1, 4], [0.9, 10], [0.1, 10]));
    expect(closed).toHaveLength(2);
    const [a, b] = closed as [SpeechSegment, SpeechSegment];
    expect(a.start).toBe(1000); // not before the stream's first sample
    expect(a.speechStart).toBe(1000);
    // The end pad is clipped to what was analysed when it closed (4 silent windows = 2048 samples).
    expect(a.end).toBe(a.speechEnd + 4 * W);
    expect(b.start).toBe(a.end);
    expect(b.speechStart - b.start).toBeLessThan(3200);
  });

  it('splits at the longest pause of its second half when a segment reaches maxSegment', () => {
    const small = compileVadConfig({ maxSegmentMs: 3000 }); // max speech 48000 - 6400 = 41600 = 81.25 windows
    const segmenter = new SpeechSegmenter(small);
    // Pauses of 4 and 6 windows (both > 98 ms, both < minSilence); the longer one is the split point.
    const closed = segmenter.push(probs([0.9, 20], [0.1, 4], [0.9, 20], [0.1, 6], [0.9, 45]));
    expect(closed).toHaveLength(1);
    const [first] = closed as [SpeechSegment];
    expect(first).toMatchObject({ start: 0, speechStart: 0, speechEnd: 44 * W, reason: 'max_length' });
    // The 6-window gap is shared: each side gets half of it (less than the 200 ms pad).
    expect(first.end).toBe(47 * W);
    expect(segmenter.open).toMatchObject({ start: 47 * W, speechStart: 50 * W });
    const [second] = segmenter.flush() as [SpeechSegment];
    expect(second).toMatchObject({ start: 47 * W, speechStart: 50 * W, speechEnd: 95 * W, reason: 'flush' });
    expect(first.end - first.start).toBeLessThanOrEqual(small.maxSegmentSamples);
  });

  it('prefers a pause late in the segment to a longer one early in it (no sliver before a near-full piece)', () => {
    const small = compileVadConfig({ maxSegmentMs: 3000 }); // halfway: 20800 samples = 40.6 windows
    const segmenter = new SpeechSegmenter(small);
    const closed = segmenter.push(probs([0.9, 10], [0.1, 8], [0.9, 40], [0.1, 4], [0.9, 40]));
    expect(closed).toEqual([
      { start: 0, end: 60 * W, speechStart: 0, speechEnd: 58 * W, reason: 'max_length' },
    ]);
    expect(segmenter.open).toMatchObject({ start: 60 * W, speechStart: 62 * W });
  });

  it('cuts at a short pause in progress rather than hard, and keeps a pause running across the split', () => {
    const small = compileVadConfig({ maxSegmentMs: 3000 });
    const a = new SpeechSegmenter(small);
    // A 2-window dip (64 ms, under splitMinSilence) is in progress at the maximum: cut there.
    expect(a.push(probs([0.9, 80], [0.1, 2]))).toEqual([
      { start: 0, end: 82 * W, speechStart: 0, speechEnd: 80 * W, reason: 'max_length' },
    ]);
    const b = new SpeechSegmenter(small);
    // At the maximum (window 81) a pause began at window 80, shorter than the late pause (windows 60-66):
    // split at the late pause; the pause in progress belongs to the new piece and closes it from window 80.
    const closed = b.push(probs([0.9, 60], [0.1, 6], [0.9, 14], [0.1, 20]));
    expect(closed.map((s) => [s.speechStart / W, s.speechEnd / W, s.reason])).toEqual([
      [0, 60, 'max_length'],
      [66, 80, 'silence'],
    ]);
  });

  it('cuts speech without any pause into contiguous pieces of at most maxSegment', () => {
    const small = compileVadConfig({ maxSegmentMs: 3000 });
    const segmenter = new SpeechSegmenter(small);
    const closed = segmenter.push(probs([0.1, 3], [0.9, 300], [0.1, 20]));
    expect(closed.length).toBeGreaterThanOrEqual(4);
    for (const [i, segment] of closed.entries()) {
      expect(segment.end - segment.start).toBeLessThanOrEqual(small.maxSegmentSamples);
      if (i > 0) expect(segment.start).toBe(closed[i - 1]?.end);
      expect(segment.reason).toBe(i === closed.length - 1 ? 'silence' : 'max_length');
    }
    expect(closed[0]?.speechStart).toBe(3 * W);
    expect(closed[closed.length - 1]?.speechEnd).toBe(303 * W);
    // Every speech sample is in exactly one piece.
    const covered = closed.reduce((sum, s) => sum + (s.speechEnd - s.speechStart), 0);
    expect(covered).toBe(300 * W);
  });

  it('ends at a pause in progress when the maximum arrives during it', () => {
    const small = compileVadConfig({ maxSegmentMs: 3000 });
    const segmenter = new SpeechSegmenter(small);
    // Speech up to window 78, then a pause (3 windows, too short to be a split point by itself) that is still
    // going when the span passes 81 windows: better than a hard cut. The end pad stops at what was analysed.
    const closed = segmenter.push(probs([0.9, 78], [0.1, 10]));
    expect(closed).toEqual([
      { start: 0, end: 82 * W, speechStart: 0, speechEnd: 78 * W, reason: 'max_length' },
    ]);
    expect(segmenter.open).toBeUndefined();
  });

  it('flush closes the open segment at its trailing silence, or at the end of the audio', () => {
    const a = new SpeechSegmenter(config);
    a.push(probs([0.1, 10], [0.9, 30]));
    expect(a.open).toEqual({
      start: 10 * W - 3200,
      speechStart: 10 * W,
      analysedEnd: 40 * W,
      trailingSilenceSamples: 0,
    });
    expect(a.flush(40 * W + 100)).toEqual([
      {
        start: 10 * W - 3200,
        end: 40 * W + 100,
        speechStart: 10 * W,
        speechEnd: 40 * W + 100,
        reason: 'flush',
      },
    ]);
    expect(a.open).toBeUndefined();
    expect(a.flush()).toEqual([]);

    const b = new SpeechSegmenter(config);
    b.push(probs([0.9, 30], [0.1, 5]));
    expect(b.open?.trailingSilenceSamples).toBe(5 * W);
    expect(b.flush()).toEqual([
      { start: 0, end: 35 * W, speechStart: 0, speechEnd: 30 * W, reason: 'flush' },
    ]);
  });

  it('tells how far back the service must keep audio', () => {
    const segmenter = new SpeechSegmenter(config);
    segmenter.push(probs([0.1, 100]));
    expect(segmenter.retainFromSample).toBe(100 * W - 3200);
    segmenter.push(probs([0.9, 10]));
    expect(segmenter.retainFromSample).toBe(100 * W - 3200);
    segmenter.push(probs([0.1, 30]));
    expect(segmenter.retainFromSample).toBe(140 * W - 3200);
  });

  it('measures the speech ratio over all audio, open speech included', () => {
    const segmenter = new SpeechSegmenter(config);
    segmenter.push(probs([0.9, 25], [0.1, 25], [0.9, 25], [0.1, 25]));
    expect(segmenter.speechRatio).toBeCloseTo(0.5, 10);
    segmenter.push(probs([0.9, 100]));
    expect(segmenter.speechRatio).toBeCloseTo(150 / 200, 10);
  });

  it('refuses impossible options with invalid_config', () => {
    expect(() => compileVadConfig({ threshold: 1.2 })).toThrow(/threshold must be in \(0, 1\)/);
    expect(() => compileVadConfig({ threshold: 0.5, negThreshold: 0.6 })).toThrow(/negThreshold/);
    expect(() => compileVadConfig({ minSilenceMs: -1 })).toThrow(/minSilenceMs must be a number ≥ 0/);
    expect(() => compileVadConfig({ maxSegmentMs: 500 })).toThrow(/maxSegmentMs must leave room/);
    try {
      compileVadConfig({ speechPadMs: Number.NaN });
    } catch (error) {
      expect(error).toMatchObject({ code: 'invalid_config' });
    }
  });
});

describe('runVadWindows', () => {
  // A fake model whose output depends on the row and on the state, so that a row mixed up with another one,
  // or a state carried to the wrong stream, changes the numbers.
  const fake: VadModelStep = async (input, state, batch) => {
    const rows = input.length / batch;
    const probabilities = new Float32Array(batch);
    const next = new Float32Array(state.length);
    for (let b = 0; b < batch; b++) {
      let sum = 0;
      for (let j = 0; j < rows; j++) sum += (input[b * rows + j] as number) * ((j % 7) + 1);
      const s0 = state[b * 128] as number;
      const s1 = state[(batch + b) * 128] as number;
      probabilities[b] = sum + 0.5 * s0 - 0.25 * s1;
      for (let k = 0; k < 128; k++) {
        next[b * 128 + k] = s0 * 0.9 + sum * 0.01 + k;
        next[(batch + b) * 128 + k] = s1 * 0.5 + sum;
      }
    }
    return { probabilities, state: next };
  };

  const job = (seed: number, samples: number) => ({
    audio: Int16Array.from({ length: samples }, (_, i) => ((i * 31 + seed * 97) % 2000) - 1000),
    state: Float32Array.from({ length: VAD_STATE_SIZE }, (_, i) => (seed + i) % 5),
  });

  it('gives each stream what it would get alone, in one batched run per step', async () => {
    const jobs = [job(1, 64 + 5 * W + 100), job(2, 64 + 2 * W), job(3, 64 + 9 * W + 511), job(4, 10)];
    const batched = await runVadWindows(jobs, fake);
    expect(batched.runs).toBe(9);
    expect(batched.probabilities.map((p) => p.length)).toEqual([5, 2, 9, 0]);
    for (const [i, one] of jobs.entries()) {
      const alone = await runVadWindows([one], fake);
      expect(batched.probabilities[i]).toEqual(alone.probabilities[0]);
      expect(batched.states[i]).toEqual(alone.states[0]);
    }
    // The caller's states are not touched.
    expect(jobs[0]?.state).toEqual(job(1, 0).state);
  });

  it('counts whole windows after the context', () => {
    expect(vadWindowCount(VAD_CONTEXT_SAMPLES - 1)).toBe(0);
    expect(vadWindowCount(VAD_CONTEXT_SAMPLES + W - 1)).toBe(0);
    expect(vadWindowCount(VAD_CONTEXT_SAMPLES + W)).toBe(1);
    expect(vadWindowCount(VAD_CONTEXT_SAMPLES + 3 * W + 10)).toBe(3);
  });
});

describe('AudioRing', () => {
  const ramp = (from: number, n: number) => Int16Array.from({ length: n }, (_, i) => (from + i) % 30000);

  it('slices by timeline position across the wrap, and forgets the oldest samples', () => {
    const ring = new AudioRing(1000, 5000);
    ring.append(ramp(5000, 700));
    ring.append(ramp(5700, 700));
    expect(ring.startSample).toBe(5400);
    expect(ring.endSample).toBe(6400);
    expect(ring.slice(5900, 6100)).toEqual(ramp(5900, 200));
    expect(ring.slice(5400, 6400)).toEqual(ramp(5400, 1000));
    expect(() => ring.slice(5399, 5500)).toThrow(/not all held/);
    expect(() => ring.slice(6300, 6401)).toThrow(/not all held/);
  });

  it('takes PCM bytes (s16le) and chunks longer than itself', () => {
    const ring = new AudioRing(300);
    const pcm = ramp(0, 1000);
    const bytes = new Uint8Array(pcm.byteLength + 1);
    bytes.set(new Uint8Array(pcm.buffer), 1); // an odd byte offset, as in a protobuf bytes field
    ring.append(bytes.subarray(1));
    expect(ring.startSample).toBe(700);
    expect(ring.slice(700, 1000)).toEqual(ramp(700, 300));
  });

  it('sizes itself for the longest segment, its closing silence and a chunk', () => {
    const config: VadConfig = compileVadConfig();
    expect(vadAudioCapacity(config, 16_000)).toBe(240_000 + 6400 + 16_000 + 4 * W);
  });
});
