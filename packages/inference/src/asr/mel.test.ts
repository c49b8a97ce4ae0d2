import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  FASTER_WHISPER_PADDING_SAMPLES,
  logMelSpectrogram,
  melFilterBank,
  melWindow,
  RealPowerSpectrum,
  WHISPER_WINDOW_FRAMES,
  whisperFeatures,
} from './mel.js';

const melGolden = async () =>
  JSON.parse(await readFile(new URL('../../test/golden/asr-mel.json', import.meta.url), 'utf8')) as {
    melFiltersFloat32Sha256: Record<string, string>;
  };

/** A reproducible signal: two tones, a slow envelope and a little hash noise. */
function signal(samples: number): Float32Array {
  const out = new Float32Array(samples);
  for (let i = 0; i < samples; i++) {
    const noise = (((i * 2654435761) >>> 0) / 4294967296 - 0.5) * 0.01;
    out[i] = 0.3 * Math.sin(i * 0.05) * Math.sin(i * 0.0007) + 0.1 * Math.sin(i * 0.9) + noise;
  }
  return out;
}

/** The recipe straight from its definition: direct DFT, dense filterbank, float64 (slow; short inputs only). */
function naiveLogMel(audio: Float32Array, nMels: number, padding: number): Float64Array {
  const x = [...audio, ...new Array<number>(padding).fill(0)];
  const n = x.length;
  const reflect = (i: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  const frames = Math.floor(n / 160);
  const filters = melFilterBank(nMels);
  const out = new Float64Array(nMels * frames);
  for (let t = 0; t < frames; t++) {
    const frame = Array.from({ length: 400 }, (_, k) => {
      const hann = Math.fround(0.5 - 0.5 * Math.cos((2 * Math.PI * k) / 400));
      return (x[reflect(t * 160 - 200 + k)] as number) * hann;
    });
    const power = Array.from({ length: 201 }, (_, f) => {
      let re = 0;
      let im = 0;
      for (let k = 0; k < 400; k++) {
        re += (frame[k] as number) * Math.cos((2 * Math.PI * f * k) / 400);
        im -= (frame[k] as number) * Math.sin((2 * Math.PI * f * k) / 400);
      }
      return re * re + im * im;
    });
    for (let m = 0; m < nMels; m++) {
      let sum = 0;
      for (let f = 0; f < 201; f++) sum += (filters[m * 201 + f] as number) * (power[f] as number);
      out[m * frames + t] = Math.log10(Math.max(sum, 1e-10));
    }
  }
  const max = Math.max(...out);
  return out.map((v) => (Math.max(v, max - 8) + 4) / 4);
}

describe('log-mel front end (mel.ts)', () => {
  it('computes the power spectrum of a real frame exactly as a direct DFT (radix 2, 3, 4, 5 and 7)', () => {
    // 400 = Whisper's n_fft (200 = 4·2·5·5 inside); 84 (42 = 2·3·7) and 30 take the generic radix.
    for (const n of [400, 84, 30, 2]) {
      const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) + ((i * 7919) % 13) / 13 - 0.5);
      const power = new Float64Array(n / 2 + 1);
      new RealPowerSpectrum(n).compute(x, power);
      for (let k = 0; k <= n / 2; k++) {
        let re = 0;
        let im = 0;
        for (let t = 0; t < n; t++) {
          re += (x[t] as number) * Math.cos((2 * Math.PI * k * t) / n);
          im -= (x[t] as number) * Math.sin((2 * Math.PI * k * t) / n);
        }
        const want = re * re + im * im;
        expect(Math.abs((power[k] as number) - want), `n=${n} bin ${k}`).toBeLessThan(
          1e-9 * Math.max(1, want),
        );
      }
    }
  });

  it('builds the Slaney mel filterbank bit for bit as faster-whisper does (80 and 128 bins, as float32)', async () => {
    const golden = await melGolden();
    for (const nMels of [80, 128]) {
      // + 0: zeros as +0.0 on both sides (numpy leaves one -0.0; see asr_reference.py).
      const bank = Float32Array.from(melFilterBank(nMels), (w) => w + 0);
      const sha = createHash('sha256').update(Buffer.from(bank.buffer)).digest('hex');
      expect(sha, `${nMels} bins`).toBe(golden.melFiltersFloat32Sha256[String(nMels)]);
    }
  });

  it('frames ⌊(N + 160)/160⌋ columns with faster-whisper padding and counts ⌊N/160⌋ content frames', () => {
    for (const n of [0, 1, 159, 160, 161, 16_000, 16_077]) {
      const { mel, contentFrames } = whisperFeatures(signal(n));
      expect(mel.nFrames, `N=${n}`).toBe(Math.floor((n + FASTER_WHISPER_PADDING_SAMPLES) / 160));
      expect(contentFrames, `N=${n}`).toBe(Math.floor(n / 160));
      expect(mel.data.length).toBe(80 * mel.nFrames);
    }
    expect(logMelSpectrogram(signal(1600), { paddingSamples: 0 }).nFrames).toBe(10);
    expect(logMelSpectrogram(signal(1600), { nMels: 128 }).nMels).toBe(128);
    expect(() => logMelSpectrogram(new Float32Array(0), { paddingSamples: 0 })).toThrow(RangeError);
  });

  it('gives (log10(1e-10) + 4) / 4 = -1.5 everywhere for digital silence', () => {
    const { data } = logMelSpectrogram(new Float32Array(8000));
    expect(new Set(data)).toEqual(new Set([-1.5]));
  });

  it('matches the recipe computed from its definition (direct DFT, dense filters) within 1e-6', () => {
    // A short input keeps the naive O(N·n_fft·bins) reference quick; the start and end exercise the
    // reflect padding, 1777 samples is not a multiple of the hop.
    const audio = signal(1777);
    const ours = logMelSpectrogram(audio);
    const want = naiveLogMel(audio, 80, FASTER_WHISPER_PADDING_SAMPLES);
    let worst = 0;
    for (let i = 0; i < want.length; i++)
      worst = Math.max(worst, Math.abs((ours.data[i] as number) - (want[i] as number)));
    expect(ours.data.length).toBe(want.length);
    expect(worst).toBeLessThan(1e-6);
  });

  it('cuts a 3000-frame encoder window and pads it with 0.0 in the log-mel domain', () => {
    const { mel, contentFrames } = whisperFeatures(signal(16_000 * 4 + 33));
    const window = melWindow(mel, 0, contentFrames);
    expect(window.length).toBe(80 * WHISPER_WINDOW_FRAMES);
    for (const m of [0, 41, 79]) {
      for (const t of [0, 17, contentFrames - 1]) {
        expect(window[m * WHISPER_WINDOW_FRAMES + t]).toBe(mel.data[m * mel.nFrames + t]);
      }
      // The frame over the appended zeros (index contentFrames) is not part of the window: 0.0 from there on.
      for (const t of [contentFrames, contentFrames + 1, WHISPER_WINDOW_FRAMES - 1]) {
        expect(window[m * WHISPER_WINDOW_FRAMES + t]).toBe(0);
      }
    }
    // A window that starts later (seek) takes the frames from there.
    const later = melWindow(mel, 100, 50, 64);
    expect(later.length).toBe(80 * 64);
    expect(later[3 * 64 + 0]).toBe(mel.data[3 * mel.nFrames + 100]);
    expect(later[3 * 64 + 50]).toBe(0);
    expect(() => melWindow(mel, -1, 10)).toThrow(RangeError);
  });

  it('computes the mel of 30 s of audio in well under 50 ms', () => {
    const audio = signal(480_000);
    logMelSpectrogram(audio); // warm-up: JIT and the cached window, filters and FFT plan
    const times: number[] = [];
    let frames = 0;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      frames = logMelSpectrogram(audio).nFrames;
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const median = times[2] as number;
    console.info(`[mel] 30 s of audio (${frames} frames, 80 bins): median ${median.toFixed(1)} ms of 5 runs`);
    expect(frames).toBe(3001);
    // Measured ~17 ms on the 2-core dev machine; the bound leaves room for a loaded CI machine.
    expect(median).toBeLessThan(150);
  });
});
