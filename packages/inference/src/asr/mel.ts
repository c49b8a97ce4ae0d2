/**
 * Whisper's log-mel spectrogram, as faster-whisper 1.2.1 (`faster_whisper/feature_extractor.py`) and openai
 * whisper (`whisper/audio.py`) compute it, for the ONNX encoder's `input_features` [n_mels, 3000].
 *
 * Recipe (every step pinned by `mel.test.ts` against test/golden/asr-parity.json, which the reference
 * wrote from faster-whisper's own FeatureExtractor):
 *
 * 1. Mono float32 audio at 16 kHz in [-1, 1] (PCM s16 / 32768).
 * 2. `paddingSamples` zeros appended (faster-whisper's `padding=160`; see "Padding" below).
 * 3. STFT: n_fft 400, hop 160, periodic Hann (`np.hanning(401)[:-1]`, rounded to float32 as the reference
 *    does), center=True with **reflect** padding of 200 samples each side, one-sided: 201 bins.
 *    L samples give 1 + ⌊L/160⌋ frames; the **last frame is dropped**, leaving ⌊L/160⌋.
 * 4. Power |X|², then the Slaney mel filterbank (librosa `filters.mel(sr=16000, n_fft=400, n_mels)` with
 *    htk=False, norm='slaney'; built here the way faster-whisper builds it, weights rounded to float32).
 * 5. log10(max(mel, 1e-10)); floor at (global max − 8); (x + 4) / 4. The max is over the **whole array
 *    computed in one call** (the whole file in faster-whisper's non-batched transcribe).
 *
 * Arithmetic is float64 throughout (the reference is float32 numpy: its rounding, not ours, dominates the
 * measured difference); the output is float32.
 *
 * Padding (the convention chosen, and why). faster-whisper 1.2.1's non-batched `WhisperModel.transcribe`
 * computes `feature_extractor(audio)` once for the whole input with `padding=160` (160 zero samples,
 * not 30 s: the 30 s audio padding, `padding=N_SAMPLES`, is what openai does and what faster-whisper did
 * before 1.1), takes `content_frames = n_frames - 1` (so the frame that overlaps the 160 appended zeros
 * the most is never decoded), slices each window `features[:, seek : seek + min(3000, content_frames -
 * seek)]` and `pad_or_trim`s it to 3000 frames with **0.0 in the normalised log-mel domain**. That is what
 * `whisperFeatures` + `melWindow` reproduce. It matches openai's `transcribe()` frame for frame: openai
 * appends 480 000 zero samples instead of 160, but frame k < ⌊N/160⌋ reaches at most 40 samples past the
 * audio's end either way, so every content frame sees the same samples; the global max differs only if
 * the loudest frame is the one faster-whisper drops (or one of openai's all-zero-tail frames, which cannot
 * be the max); openai's window padding is also 0.0 (`pad_or_trim` on the log-mel). The HF /
 * transformers.js convention is different: audio zero-padded to 480 000 samples before the mel, so the
 * padding is the log-mel of silence (≈ (max − 8 + 4)/4), and the max is per 30 s chunk; get it with
 * `logMelSpectrogram(padTo480000(audio), { paddingSamples: 0 })` and the first 3000 frames.
 *
 * Language detection in faster-whisper uses `pad_or_trim(features[:, :3000])`, i.e. content_frames + 1
 * frames (the last, dropped-for-transcription frame included) for a clip under 30 s: `melWindow(mel, 0,
 * Math.min(mel.nFrames, 3000))`.
 */

/** Whisper's sample rate, Hz. */
export const WHISPER_SAMPLE_RATE = 16_000;
/** STFT size: 25 ms. */
export const WHISPER_N_FFT = 400;
/** STFT hop: 10 ms, so 100 frames a second. */
export const WHISPER_HOP_LENGTH = 160;
/** Frames in one encoder window (30 s): the encoder's input is [n_mels, 3000]. */
export const WHISPER_WINDOW_FRAMES = 3000;
/** Samples in one 30 s window. */
export const WHISPER_WINDOW_SAMPLES = 480_000;
/** The samples faster-whisper's non-batched transcribe appends before the mel. */
export const FASTER_WHISPER_PADDING_SAMPLES = 160;

/** A log-mel spectrogram, row-major [nMels, nFrames] like the numpy array (mel bin major). */
export interface LogMel {
  readonly data: Float32Array;
  readonly nMels: number;
  readonly nFrames: number;
}

export interface LogMelOptions {
  /** Mel bins: 80 for every Whisper up to large-v2, 128 for large-v3. @default 80 */
  readonly nMels?: number;
  /**
   * Zero samples appended to the audio before the STFT (faster-whisper's `padding`). @default 160
   * (faster-whisper's non-batched transcribe; openai's transcribe uses 480 000, HF 0 after padding the audio
   * to 30 s).
   */
  readonly paddingSamples?: number;
}

/** faster-whisper's `max_mel` for fmax = 8000 Hz: the Slaney mel of 8 kHz. */
const MAX_MEL = 45.245640471924965;

const filterCache = new Map<number, SparseFilterBank>();

/**
 * The Slaney mel filterbank [nMels, nFft/2 + 1] for 16 kHz and n_fft 400 (fmin 0, fmax 8000, area
 * normalised), exactly as faster-whisper's `FeatureExtractor.get_mel_filters` computes it (float64), and
 * rounded to float32 as it stores it. Row-major.
 */
export function melFilterBank(nMels = 80): Float64Array {
  if (!(Number.isInteger(nMels) && nMels >= 1 && nMels <= 512)) {
    throw new RangeError(`nMels must be an integer 1..512, got ${nMels}`);
  }
  const nBins = WHISPER_N_FFT / 2 + 1;
  const fftFreqs = new Float64Array(nBins);
  // np.fft.rfftfreq(n=400, d=1/16000): k * (1 / (n * d)), 40 Hz apart (same rounding as numpy's).
  const binHz = 1 / (WHISPER_N_FFT * (1 / WHISPER_SAMPLE_RATE));
  for (let k = 0; k < nBins; k++) fftFreqs[k] = k * binHz;
  // np.linspace(0, max_mel, nMels + 2): start + step * i, the last point set to max_mel exactly.
  const nPoints = nMels + 2;
  const step = MAX_MEL / (nPoints - 1);
  const freqs = new Float64Array(nPoints);
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logStep = Math.log(6.4) / 27;
  for (let i = 0; i < nPoints; i++) {
    const mel = i === nPoints - 1 ? MAX_MEL : i * step;
    freqs[i] = mel >= minLogMel ? minLogHz * Math.exp(logStep * (mel - minLogMel)) : fSp * mel;
  }
  const weights = new Float64Array(nMels * nBins);
  for (let m = 0; m < nMels; m++) {
    const f0 = freqs[m] as number;
    const f1 = freqs[m + 1] as number;
    const f2 = freqs[m + 2] as number;
    const enorm = 2 / (f2 - f0);
    for (let k = 0; k < nBins; k++) {
      const f = fftFreqs[k] as number;
      const lower = -(f0 - f) / (f1 - f0);
      const upper = (f2 - f) / (f2 - f1);
      const w = Math.max(0, Math.min(lower, upper));
      weights[m * nBins + k] = Math.fround(w * enorm);
    }
  }
  return weights;
}

/** The filterbank with each row's non-zero span, so the product skips the zeros (each row has ~2-12). */
interface SparseFilterBank {
  readonly nMels: number;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly weights: Float64Array;
}

function sparseFilterBank(nMels: number): SparseFilterBank {
  const cached = filterCache.get(nMels);
  if (cached) return cached;
  const dense = melFilterBank(nMels);
  const nBins = WHISPER_N_FFT / 2 + 1;
  const starts = new Int32Array(nMels);
  const ends = new Int32Array(nMels);
  for (let m = 0; m < nMels; m++) {
    let start = nBins;
    let end = 0;
    for (let k = 0; k < nBins; k++) {
      if ((dense[m * nBins + k] as number) !== 0) {
        if (k < start) start = k;
        end = k + 1;
      }
    }
    starts[m] = start < end ? start : 0;
    ends[m] = start < end ? end : 0;
  }
  const bank = { nMels, starts, ends, weights: dense };
  filterCache.set(nMels, bank);
  return bank;
}

/**
 * A complex FFT of a fixed size n (mixed radix 2/3/4/5 with a generic radix for other primes), float64,
 * decimation in time with the input permutation and every stage's twiddles precomputed.
 */
class ComplexFft {
  readonly n: number;
  private readonly factors: number[];
  private readonly permutation: Int32Array;
  /** Per stage: cos/sin of -2π j k / L for j < p, k < L/p, laid out [k * p + j]. */
  private readonly twiddles: { re: Float64Array; im: Float64Array }[];
  private readonly scratchRe: Float64Array;
  private readonly scratchIm: Float64Array;

  constructor(n: number) {
    if (!(Number.isInteger(n) && n >= 1))
      throw new RangeError(`FFT size must be a positive integer, got ${n}`);
    this.n = n;
    const factors: number[] = [];
    let rest = n;
    for (const p of [4, 2, 3, 5]) {
      while (rest % p === 0) {
        factors.push(p);
        rest /= p;
      }
    }
    for (let p = 7; rest > 1; p += 2) {
      while (rest % p === 0) {
        factors.push(p);
        rest /= p;
      }
    }
    this.factors = factors;
    // Output position -> input index: the leaves of the recursive DIT split (stride grows by each factor).
    this.permutation = new Int32Array(n);
    const fill = (out: number, offset: number, stride: number, len: number, depth: number): void => {
      if (len === 1) {
        this.permutation[out] = offset;
        return;
      }
      const p = factors[depth] as number;
      const sub = len / p;
      for (let j = 0; j < p; j++) fill(out + j * sub, offset + j * stride, stride * p, sub, depth + 1);
    };
    fill(0, 0, 1, n, 0);
    // Stages run from the innermost split (last factor, short transforms) to the outermost.
    this.twiddles = [];
    let len = 1;
    for (let s = factors.length - 1; s >= 0; s--) {
      const p = factors[s] as number;
      len *= p;
      const sub = len / p;
      const re = new Float64Array(sub * p);
      const im = new Float64Array(sub * p);
      for (let k = 0; k < sub; k++) {
        for (let j = 0; j < p; j++) {
          const angle = (-2 * Math.PI * j * k) / len;
          re[k * p + j] = Math.cos(angle);
          im[k * p + j] = Math.sin(angle);
        }
      }
      this.twiddles.push({ re, im });
    }
    const maxP = Math.max(1, ...factors);
    this.scratchRe = new Float64Array(maxP);
    this.scratchIm = new Float64Array(maxP);
  }

  /** In place: (re, im) hold the input in natural order and get the transform (no scaling). */
  transform(re: Float64Array, im: Float64Array, workRe: Float64Array, workIm: Float64Array): void {
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const from = this.permutation[i] as number;
      workRe[i] = re[from] as number;
      workIm[i] = im[from] as number;
    }
    let len = 1;
    for (let stage = 0; stage < this.factors.length; stage++) {
      const p = this.factors[this.factors.length - 1 - stage] as number;
      const sub = len;
      len *= p;
      const tw = this.twiddles[stage] as { re: Float64Array; im: Float64Array };
      // One radix-p butterfly per (block, k): the inputs at base + j * sub (j < p) are the k-th outputs of
      // the p sub-transforms; they are twiddled by W_len^(j k) and combined by the p-point DFT into the
      // outputs at base + q * sub. Radix 2, 4 and 5 are written out (they are all n_fft 400 needs).
      if (p === 2) radix2(workRe, workIm, n, len, sub, tw.re, tw.im);
      else if (p === 4) radix4(workRe, workIm, n, len, sub, tw.re, tw.im);
      else if (p === 5) radix5(workRe, workIm, n, len, sub, tw.re, tw.im);
      else radixGeneric(workRe, workIm, n, len, sub, p, tw.re, tw.im, this.scratchRe, this.scratchIm);
    }
    re.set(workRe);
    im.set(workIm);
  }
}

function radix2(
  re: Float64Array,
  im: Float64Array,
  n: number,
  len: number,
  sub: number,
  twRe: Float64Array,
  twIm: Float64Array,
): void {
  for (let block = 0; block < n; block += len) {
    for (let k = 0; k < sub; k++) {
      const a = block + k;
      const b = a + sub;
      const wr = twRe[k * 2 + 1] as number;
      const wi = twIm[k * 2 + 1] as number;
      const br = re[b] as number;
      const bi = im[b] as number;
      const tr = br * wr - bi * wi;
      const ti = br * wi + bi * wr;
      const ar = re[a] as number;
      const ai = im[a] as number;
      re[a] = ar + tr;
      im[a] = ai + ti;
      re[b] = ar - tr;
      im[b] = ai - ti;
    }
  }
}

function radix4(
  re: Float64Array,
  im: Float64Array,
  n: number,
  len: number,
  sub: number,
  twRe: Float64Array,
  twIm: Float64Array,
): void {
  for (let block = 0; block < n; block += len) {
    for (let k = 0; k < sub; k++) {
      const i0 = block + k;
      const i1 = i0 + sub;
      const i2 = i1 + sub;
      const i3 = i2 + sub;
      const t = k * 4;
      const r0 = re[i0] as number;
      const m0 = im[i0] as number;
      let wr = twRe[t + 1] as number;
      let wi = twIm[t + 1] as number;
      let xr = re[i1] as number;
      let xi = im[i1] as number;
      const r1 = xr * wr - xi * wi;
      const m1 = xr * wi + xi * wr;
      wr = twRe[t + 2] as number;
      wi = twIm[t + 2] as number;
      xr = re[i2] as number;
      xi = im[i2] as number;
      const r2 = xr * wr - xi * wi;
      const m2 = xr * wi + xi * wr;
      wr = twRe[t + 3] as number;
      wi = twIm[t + 3] as number;
      xr = re[i3] as number;
      xi = im[i3] as number;
      const r3 = xr * wr - xi * wi;
      const m3 = xr * wi + xi * wr;
      const ar = r0 + r2;
      const ai = m0 + m2;
      const br = r0 - r2;
      const bi = m0 - m2;
      const cr = r1 + r3;
      const ci = m1 + m3;
      // -i (x1 - x3)
      const dr = m1 - m3;
      const di = r3 - r1;
      re[i0] = ar + cr;
      im[i0] = ai + ci;
      re[i1] = br + dr;
      im[i1] = bi + di;
      re[i2] = ar - cr;
      im[i2] = ai - ci;
      re[i3] = br - dr;
      im[i3] = bi - di;
    }
  }
}

// cos and sin of 2π/5 and 4π/5, for the 5-point DFT.
const C1 = Math.cos((2 * Math.PI) / 5);
const C2 = Math.cos((4 * Math.PI) / 5);
const S1 = Math.sin((2 * Math.PI) / 5);
const S2 = Math.sin((4 * Math.PI) / 5);

function radix5(
  re: Float64Array,
  im: Float64Array,
  n: number,
  len: number,
  sub: number,
  twRe: Float64Array,
  twIm: Float64Array,
): void {
  for (let block = 0; block < n; block += len) {
    for (let k = 0; k < sub; k++) {
      const i0 = block + k;
      const i1 = i0 + sub;
      const i2 = i1 + sub;
      const i3 = i2 + sub;
      const i4 = i3 + sub;
      const t = k * 5;
      const r0 = re[i0] as number;
      const m0 = im[i0] as number;
      let wr = twRe[t + 1] as number;
      let wi = twIm[t + 1] as number;
      let xr = re[i1] as number;
      let xi = im[i1] as number;
      const r1 = xr * wr - xi * wi;
      const m1 = xr * wi + xi * wr;
      wr = twRe[t + 2] as number;
      wi = twIm[t + 2] as number;
      xr = re[i2] as number;
      xi = im[i2] as number;
      const r2 = xr * wr - xi * wi;
      const m2 = xr * wi + xi * wr;
      wr = twRe[t + 3] as number;
      wi = twIm[t + 3] as number;
      xr = re[i3] as number;
      xi = im[i3] as number;
      const r3 = xr * wr - xi * wi;
      const m3 = xr * wi + xi * wr;
      wr = twRe[t + 4] as number;
      wi = twIm[t + 4] as number;
      xr = re[i4] as number;
      xi = im[i4] as number;
      const r4 = xr * wr - xi * wi;
      const m4 = xr * wi + xi * wr;
      // By symmetric pairs: a = x1 + x4, b = x1 - x4, c = x2 + x3, d = x2 - x3.
      const ar = r1 + r4;
      const ai = m1 + m4;
      const br = r1 - r4;
      const bi = m1 - m4;
      const cr = r2 + r3;
      const ci = m2 + m3;
      const dr = r2 - r3;
      const di = m2 - m3;
      const e1r = r0 + C1 * ar + C2 * cr;
      const e1i = m0 + C1 * ai + C2 * ci;
      const e2r = r0 + C2 * ar + C1 * cr;
      const e2i = m0 + C2 * ai + C1 * ci;
      // f1 = -i (S1 b + S2 d), f2 = -i (S2 b - S1 d)
      const f1r = S1 * bi + S2 * di;
      const f1i = -(S1 * br + S2 * dr);
      const f2r = S2 * bi - S1 * di;
      const f2i = -(S2 * br - S1 * dr);
      re[i0] = r0 + ar + cr;
      im[i0] = m0 + ai + ci;
      re[i1] = e1r + f1r;
      im[i1] = e1i + f1i;
      re[i4] = e1r - f1r;
      im[i4] = e1i - f1i;
      re[i2] = e2r + f2r;
      im[i2] = e2i + f2i;
      re[i3] = e2r - f2r;
      im[i3] = e2i - f2i;
    }
  }
}

/** Radix 3 and any other prime: the direct p-point DFT after the twiddles. */
function radixGeneric(
  re: Float64Array,
  im: Float64Array,
  n: number,
  len: number,
  sub: number,
  p: number,
  twRe: Float64Array,
  twIm: Float64Array,
  xr: Float64Array,
  xi: Float64Array,
): void {
  for (let block = 0; block < n; block += len) {
    for (let k = 0; k < sub; k++) {
      const base = block + k;
      for (let j = 0; j < p; j++) {
        const at = base + j * sub;
        const wr = twRe[k * p + j] as number;
        const wi = twIm[k * p + j] as number;
        const ar = re[at] as number;
        const ai = im[at] as number;
        xr[j] = ar * wr - ai * wi;
        xi[j] = ar * wi + ai * wr;
      }
      for (let q = 0; q < p; q++) {
        let sr = 0;
        let si = 0;
        for (let j = 0; j < p; j++) {
          const angle = (-2 * Math.PI * ((j * q) % p)) / p;
          const c = Math.cos(angle);
          const s = Math.sin(angle);
          sr += (xr[j] as number) * c - (xi[j] as number) * s;
          si += (xr[j] as number) * s + (xi[j] as number) * c;
        }
        re[base + q * sub] = sr;
        im[base + q * sub] = si;
      }
    }
  }
}

/**
 * The power spectrum |X[k]|², k = 0..n/2, of a real frame of even length n, through one complex FFT of n/2
 * points on (x[2m], x[2m+1]) and the usual split: X[k] = E[k] + W_n^k O[k].
 */
export class RealPowerSpectrum {
  readonly n: number;
  private readonly fft: ComplexFft;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  private readonly workRe: Float64Array;
  private readonly workIm: Float64Array;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;

  constructor(n: number) {
    if (!(Number.isInteger(n) && n >= 2 && n % 2 === 0)) {
      throw new RangeError(`real FFT size must be an even integer >= 2, got ${n}`);
    }
    this.n = n;
    const half = n / 2;
    this.fft = new ComplexFft(half);
    this.re = new Float64Array(half);
    this.im = new Float64Array(half);
    this.workRe = new Float64Array(half);
    this.workIm = new Float64Array(half);
    this.cos = new Float64Array(half + 1);
    this.sin = new Float64Array(half + 1);
    for (let k = 0; k <= half; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
  }

  /** `frame` (length n) in, `power` (length n/2 + 1) out. */
  compute(frame: Float64Array, power: Float64Array): void {
    const half = this.n / 2;
    const { re, im } = this;
    for (let m = 0; m < half; m++) {
      re[m] = frame[2 * m] as number;
      im[m] = frame[2 * m + 1] as number;
    }
    this.fft.transform(re, im, this.workRe, this.workIm);
    for (let k = 0; k <= half; k++) {
      const a = k === half ? 0 : k;
      const b = k === 0 ? 0 : half - k;
      const zr = re[a] as number;
      const zi = im[a] as number;
      const cr = re[b] as number;
      const ci = -(im[b] as number); // conj(Z[half - k])
      // E = (Z[k] + conj Z[half-k]) / 2, O = -i (Z[k] - conj Z[half-k]) / 2
      const er = 0.5 * (zr + cr);
      const ei = 0.5 * (zi + ci);
      const or = 0.5 * (zi - ci);
      const oi = -0.5 * (zr - cr);
      const wr = this.cos[k] as number;
      const wi = this.sin[k] as number;
      const xr = er + (or * wr - oi * wi);
      const xi = ei + (or * wi + oi * wr);
      power[k] = xr * xr + xi * xi;
    }
  }
}

let hannWindow: Float64Array | undefined;

/** Periodic Hann of 400 points (np.hanning(401)[:-1]), rounded to float32 as faster-whisper and torch hold it. */
function hann(): Float64Array {
  if (!hannWindow) {
    hannWindow = new Float64Array(WHISPER_N_FFT);
    for (let i = 0; i < WHISPER_N_FFT; i++) {
      hannWindow[i] = Math.fround(0.5 - 0.5 * Math.cos((2 * Math.PI * i) / WHISPER_N_FFT));
    }
  }
  return hannWindow;
}

const spectra = new Map<number, RealPowerSpectrum>();

/** numpy 'reflect' padding: the index into [0, length) of padded position i (any integer), period 2(length-1). */
function reflectIndex(i: number, length: number): number {
  if (length === 1) return 0;
  const period = 2 * (length - 1);
  let r = i % period;
  if (r < 0) r += period;
  return r < length ? r : period - r;
}

/**
 * The log-mel spectrogram of `audio` (16 kHz mono float32 in [-1, 1]) with `paddingSamples` zeros appended,
 * as faster-whisper's `FeatureExtractor.__call__(audio, padding)`: [nMels, ⌊(N + padding)/160⌋] float32,
 * normalised with the max of this whole array (see the module comment).
 */
export function logMelSpectrogram(audio: Float32Array, options: LogMelOptions = {}): LogMel {
  const nMels = options.nMels ?? 80;
  const padding = options.paddingSamples ?? FASTER_WHISPER_PADDING_SAMPLES;
  if (!(Number.isInteger(padding) && padding >= 0)) {
    throw new RangeError(`paddingSamples must be an integer >= 0, got ${padding}`);
  }
  const length = audio.length + padding;
  if (length < 1) throw new RangeError('logMelSpectrogram needs at least one sample (audio plus padding)');
  const nFft = WHISPER_N_FFT;
  const hop = WHISPER_HOP_LENGTH;
  const half = nFft / 2;
  const nFrames = Math.floor(length / hop); // 1 + ⌊length/hop⌋ STFT frames, the last one dropped
  const bank = sparseFilterBank(nMels);
  const nBins = half + 1;
  let spectrum = spectra.get(nFft);
  if (!spectrum) {
    spectrum = new RealPowerSpectrum(nFft);
    spectra.set(nFft, spectrum);
  }
  const window = hann();
  const sample = (i: number): number => (i < audio.length ? (audio[i] as number) : 0);
  const frame = new Float64Array(nFft);
  const power = new Float64Array(nBins);
  const logMel = new Float64Array(nMels * nFrames);
  let max = Number.NEGATIVE_INFINITY;
  for (let t = 0; t < nFrames; t++) {
    // Frame t covers padded positions [t*hop, t*hop + nFft), i.e. signal positions start..start+nFft-1.
    const start = t * hop - half;
    if (start >= 0 && start + nFft <= audio.length) {
      for (let i = 0; i < nFft; i++) frame[i] = (audio[start + i] as number) * (window[i] as number);
    } else if (start >= 0 && start + nFft <= length) {
      for (let i = 0; i < nFft; i++) frame[i] = sample(start + i) * (window[i] as number);
    } else {
      for (let i = 0; i < nFft; i++)
        frame[i] = sample(reflectIndex(start + i, length)) * (window[i] as number);
    }
    spectrum.compute(frame, power);
    for (let m = 0; m < nMels; m++) {
      let sum = 0;
      const row = m * nBins;
      for (let k = bank.starts[m] as number, end = bank.ends[m] as number; k < end; k++) {
        sum += (bank.weights[row + k] as number) * (power[k] as number);
      }
      const value = Math.log10(Math.max(sum, 1e-10));
      logMel[m * nFrames + t] = value;
      if (value > max) max = value;
    }
  }
  const floor = max - 8;
  const data = new Float32Array(nMels * nFrames);
  for (let i = 0; i < data.length; i++) {
    const v = logMel[i] as number;
    data[i] = (Math.max(v, floor) + 4) / 4;
  }
  return { data, nMels, nFrames };
}

/** The features of one input as faster-whisper's non-batched transcribe sees them. */
export interface WhisperFeatures {
  readonly mel: LogMel;
  /**
   * Frames of real content: ⌊N / 160⌋ for N samples (`features.shape[-1] - 1` in faster-whisper). Windows
   * cover [0, contentFrames); frame `contentFrames` (the one over the appended zeros) is never decoded.
   */
  readonly contentFrames: number;
}

/** `logMelSpectrogram(audio)` with faster-whisper's 160 samples of padding, and its content frame count. */
export function whisperFeatures(
  audio: Float32Array,
  options: Pick<LogMelOptions, 'nMels'> = {},
): WhisperFeatures {
  const mel = logMelSpectrogram(audio, { ...options, paddingSamples: FASTER_WHISPER_PADDING_SAMPLES });
  return { mel, contentFrames: mel.nFrames - 1 };
}

/**
 * One encoder window: frames [startFrame, startFrame + frameCount) of `mel`, then 0.0 up to `windowFrames`
 * (faster-whisper's and openai's `pad_or_trim` on the log-mel), row-major [nMels, windowFrames] float32.
 * For transcription `frameCount` is `min(3000, contentFrames - seek)`.
 */
export function melWindow(
  mel: LogMel,
  startFrame: number,
  frameCount: number,
  windowFrames: number = WHISPER_WINDOW_FRAMES,
): Float32Array {
  if (!(Number.isInteger(startFrame) && startFrame >= 0 && Number.isInteger(frameCount) && frameCount >= 0)) {
    throw new RangeError(
      `melWindow: startFrame and frameCount must be integers >= 0, got ${startFrame}, ${frameCount}`,
    );
  }
  const count = Math.min(frameCount, windowFrames, Math.max(0, mel.nFrames - startFrame));
  const out = new Float32Array(mel.nMels * windowFrames);
  for (let m = 0; m < mel.nMels; m++) {
    const from = m * mel.nFrames + startFrame;
    out.set(mel.data.subarray(from, from + count), m * windowFrames);
  }
  return out;
}
