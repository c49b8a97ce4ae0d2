import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../index.js';
import { MediaFixtureError } from './errors.js';
import {
  asrClipSuite,
  generateSpeechClip,
  generateTestSignal,
  normaliseSpeechClipSpec,
  type SpeechClipSpec,
} from './speech-clips.js';

describe('generateSpeechClip', () => {
  const scratch = join(tmpdir(), uniqueName('livelens-speech-clips'));
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  const spec: SpeechClipSpec = {
    name: 'int-test',
    language: 'en',
    lines: [{ text: 'Link in my bio.' }, { text: 'Use code SAVE20.', voice: 'en-gb', wordsPerMinute: 140 }],
    leadS: 0.3,
    gapS: 0.5,
    tailS: 0.4,
  };

  it('lays the lines end to end with the silences asked, the same samples every time, and writes a WAV', async () => {
    const clip = await generateSpeechClip(spec, { cacheDir: scratch });
    const again = await generateSpeechClip(spec, { cacheDir: scratch });
    expect(again.sha256).toBe(clip.sha256);
    expect(clip.text).toBe('Link in my bio. Use code SAVE20.');
    const [first, second] = clip.lines;
    if (!first || !second) throw new Error('two lines expected');
    expect(first.startS).toBe(0.3);
    expect(second.startS).toBeCloseTo(first.endS + 0.5, 6);
    expect(clip.durationS).toBeCloseTo(second.endS + 0.4, 6);
    for (const line of clip.lines) {
      expect(line.voicedStartS).toBeGreaterThanOrEqual(line.startS);
      expect(line.voicedEndS).toBeLessThanOrEqual(line.endS);
      expect(line.voicedEndS - line.voicedStartS).toBeGreaterThan(0.5);
    }
    // Silence outside the lines is digital zero (no noise asked).
    expect(clip.samples.subarray(0, Math.round(0.3 * 16_000)).every((s) => s === 0)).toBe(true);
    const wav = await readFile(clip.path);
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(24)).toBe(16_000);
    expect(wav.subarray(44).equals(Buffer.from(clip.samples.buffer))).toBe(true);
    expect(clip.audio[1000]).toBe((clip.samples[1000] as number) / 32768);
  });

  it('adds seeded noise at the SNR asked against the voiced parts', async () => {
    const clean = await generateSpeechClip(spec, { cacheDir: scratch });
    const noisy = await generateSpeechClip({ ...spec, noise: { snrDb: 10, seed: 3 } }, { cacheDir: scratch });
    expect(
      (await generateSpeechClip({ ...spec, noise: { snrDb: 10, seed: 3 } }, { cacheDir: scratch })).sha256,
    ).toBe(noisy.sha256);
    let speech = 0;
    let noise = 0;
    let count = 0;
    for (const line of clean.lines) {
      for (let i = Math.round(line.voicedStartS * 16_000); i < Math.round(line.voicedEndS * 16_000); i++) {
        const s = clean.audio[i] as number;
        speech += s * s;
        noise += ((noisy.audio[i] as number) - s) ** 2;
        count++;
      }
    }
    const snrDb = 10 * Math.log10(speech / count / (noise / count));
    expect(snrDb).toBeGreaterThan(9.5);
    expect(snrDb).toBeLessThan(10.5);
  });

  it('refuses specs it cannot make', () => {
    const bad = (s: Partial<SpeechClipSpec>) => () => normaliseSpeechClipSpec({ ...spec, ...s });
    expect(bad({ lines: [] })).toThrow(MediaFixtureError);
    expect(bad({ lines: [{ text: 'x', voice: 'en-us; rm -rf' }] })).toThrow(/voice/);
    expect(bad({ lines: [{ text: 'two\nlines' }] })).toThrow(/one non-empty line/);
    expect(bad({ noise: { snrDb: 100 } })).toThrow(/snrDb/);
    expect(bad({ language: 'english' })).toThrow(/language/);
  });

  it('has a suite of distinct, valid clips and a tool-free test signal', async () => {
    const suite = asrClipSuite();
    expect(new Set(suite.map((s) => s.name)).size).toBe(suite.length);
    for (const s of suite) expect(() => normaliseSpeechClipSpec(s)).not.toThrow();
    const signal = await generateTestSignal({ cacheDir: scratch });
    expect(signal.samples.length % 160).not.toBe(0);
    expect((await generateTestSignal({ cacheDir: scratch })).sha256).toBe(signal.sha256);
  });
});
