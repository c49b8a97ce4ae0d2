import { readFile } from 'node:fs/promises';
import { generateSpeechClip, generateTestSignal, type SpeechClipSpec } from '@livelens/test-support/media';
import { describe, expect, it } from 'vitest';
import { type LogMel, whisperFeatures } from './mel.js';

/** One entry of test/golden/asr-mel.json (asr_reference.py `features`). */
interface MelGolden {
  clip: string;
  nMels: number;
  sha256: string;
  samples: number;
  shape: [number, number];
  content_frames: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  frame_means: number[];
  bin_means: number[];
  columns: Record<string, number[]>;
  float64: { max_abs_diff: number; columns: Record<string, number[]>; frame_means: number[] };
}

// Tolerances on the normalised log-mel ((log10 + 4) / 4), set from what was measured on the golden inputs
// (the report printed below gives each run's numbers):
// - against faster-whisper's own float32 features (the stored columns, frame means, bin means, min, max,
//   mean, std): ≤ 1.9e-6 measured. Over the whole array the distance is that of faster-whisper's float32
//   arithmetic from the exact value, which the golden records as float64.max_abs_diff: ≤ 6.2e-6;
// - against the same recipe in float64 (numpy): ≤ 5.2e-8 measured, i.e. our float32 output's rounding.
const TOLERANCE_VS_FASTER_WHISPER = 2e-5;
const TOLERANCE_VS_FLOAT64 = 5e-7;

const maxAbsDiff = (a: readonly number[], b: readonly number[]) =>
  a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - (b[i] as number))), 0);

function column(mel: LogMel, frame: number): number[] {
  return Array.from({ length: mel.nMels }, (_, m) => mel.data[m * mel.nFrames + frame] as number);
}

function frameMeans(mel: LogMel): number[] {
  const means = new Array<number>(mel.nFrames).fill(0);
  for (let m = 0; m < mel.nMels; m++) {
    for (let t = 0; t < mel.nFrames; t++)
      means[t] = (means[t] as number) + (mel.data[m * mel.nFrames + t] as number);
  }
  return means.map((s) => s / mel.nMels);
}

function binMeans(mel: LogMel): number[] {
  return Array.from({ length: mel.nMels }, (_, m) => {
    let sum = 0;
    for (let t = 0; t < mel.nFrames; t++) sum += mel.data[m * mel.nFrames + t] as number;
    return sum / mel.nFrames;
  });
}

describe('log-mel parity with faster-whisper 1.2.1 (FeatureExtractor, padding 160; test/golden/asr-mel.json)', () => {
  it('matches the reference features on speech, noise and a test signal, 80 and 128 bins', async () => {
    const golden = JSON.parse(
      await readFile(new URL('../../test/golden/asr-mel.json', import.meta.url), 'utf8'),
    ) as { features: MelGolden[] };
    const parity = JSON.parse(
      await readFile(new URL('../../test/golden/asr-parity.json', import.meta.url), 'utf8'),
    ) as { clips: { name: string; spec: SpeechClipSpec }[] };
    const report: string[] = [];
    let compared = 0;
    for (const g of golden.features) {
      const where = `${g.clip} (${g.nMels} bins)`;
      const spec = parity.clips.find((c) => c.name === g.clip)?.spec;
      const input =
        g.clip === 'test-signal' ? await generateTestSignal() : spec && (await generateSpeechClip(spec));
      if (!input) throw new Error(`no clip ${g.clip} in asr-parity.json`);
      const { mel, contentFrames } = whisperFeatures(input.audio, { nMels: g.nMels });
      expect([mel.nMels, mel.nFrames], where).toEqual(g.shape);
      expect(contentFrames, where).toBe(g.content_frames);
      if (input.sha256 !== g.sha256) {
        // espeak-ng or ffmpeg elsewhere made other samples: the features cannot be compared.
        report.push(`${where}: audio differs from the golden's (sha256), not compared`);
        continue;
      }
      compared++;
      let vsReference = 0;
      let vsFloat64 = 0;
      for (const [frame, values] of Object.entries(g.columns)) {
        const ours = column(mel, Number(frame));
        vsReference = Math.max(vsReference, maxAbsDiff(ours, values));
        vsFloat64 = Math.max(vsFloat64, maxAbsDiff(ours, g.float64.columns[frame] as number[]));
      }
      const means = frameMeans(mel);
      const framesVsReference = maxAbsDiff(means, g.frame_means);
      const framesVsFloat64 = maxAbsDiff(means, g.float64.frame_means);
      const bins = maxAbsDiff(binMeans(mel), g.bin_means);
      const values = Array.from(mel.data);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
      report.push(
        `${where}: columns max |Δ| ${vsReference.toExponential(2)} vs faster-whisper, ` +
          `${vsFloat64.toExponential(2)} vs float64; frame means ${framesVsReference.toExponential(2)} / ` +
          `${framesVsFloat64.toExponential(2)}; bin means ${bins.toExponential(2)} ` +
          `(faster-whisper's own float32 vs float64: ${g.float64.max_abs_diff.toExponential(2)})`,
      );
      expect(vsReference, `${where} columns vs faster-whisper`).toBeLessThanOrEqual(
        TOLERANCE_VS_FASTER_WHISPER,
      );
      expect(vsFloat64, `${where} columns vs float64`).toBeLessThanOrEqual(TOLERANCE_VS_FLOAT64);
      expect(framesVsReference, `${where} frame means`).toBeLessThanOrEqual(TOLERANCE_VS_FASTER_WHISPER);
      expect(framesVsFloat64, `${where} frame means vs float64`).toBeLessThanOrEqual(TOLERANCE_VS_FLOAT64);
      expect(bins, `${where} bin means`).toBeLessThanOrEqual(TOLERANCE_VS_FASTER_WHISPER);
      const max = values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
      const min = values.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
      expect(Math.abs(max - g.max), `${where} max`).toBeLessThanOrEqual(TOLERANCE_VS_FASTER_WHISPER);
      expect(Math.abs(min - g.min), `${where} min`).toBeLessThanOrEqual(TOLERANCE_VS_FASTER_WHISPER);
      expect(Math.abs(mean - g.mean), `${where} mean`).toBeLessThanOrEqual(TOLERANCE_VS_FASTER_WHISPER);
      expect(Math.abs(std - g.std), `${where} std`).toBeLessThanOrEqual(TOLERANCE_VS_FASTER_WHISPER);
    }
    console.info(`[mel parity]\n  ${report.join('\n  ')}`);
    // The test signal is made without any tool, so at least it is always compared.
    expect(compared).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
