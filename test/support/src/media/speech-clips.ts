import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaFixtureError } from './errors.js';
import { mediaCacheDir } from './generate.js';
import { audibleSpans, SPEECH_SAMPLE_RATE, synthesizeSpeech, toPcm16 } from './speech.js';

/**
 * Bump when a clip's samples change for the same spec (synthesis arguments, resampler, noise, mixing), so
 * that goldens made from the old generator are known to be stale.
 */
export const SPEECH_CLIP_GENERATOR_VERSION = 1;

/** The clips' sample rate: Whisper's (and live.audio.v1's). */
export const SPEECH_CLIP_SAMPLE_RATE = SPEECH_SAMPLE_RATE;

/** One sentence spoken by espeak-ng. */
export interface SpeechClipLine {
  /** What is said, as written: also the reference text for word error rates. One line. */
  readonly text: string;
  /** An espeak-ng voice, optionally with a variant (`'en-us'`, `'en-gb-x-rp'`, `'en-us+f3'`, `'cmn'`). @default 'en-us' */
  readonly voice?: string;
  /** espeak-ng `-s`, words per minute. @default 165 */
  readonly wordsPerMinute?: number;
}

/** A speech clip: sentences one after the other with silence around and between, optionally noisy. */
export interface SpeechClipSpec {
  /** A name for reports and goldens (`'en-save20'`). */
  readonly name: string;
  /** The Whisper language code of the speech (`'en'`, `'zh'`). */
  readonly language: string;
  readonly lines: readonly SpeechClipLine[];
  /** Silence before the first line, seconds. @default 0.5 */
  readonly leadS?: number;
  /** Silence between lines (on top of espeak-ng's own few ms), seconds. @default 0.6 */
  readonly gapS?: number;
  /** Silence after the last line, seconds. @default 0.5 */
  readonly tailS?: number;
  /**
   * Gaussian-like white noise over the whole clip at this SNR against the speech's RMS (measured over the
   * voiced spans), from a fixed seed.
   */
  readonly noise?: { readonly snrDb: number; readonly seed?: number };
  /** Gain applied to the whole clip (speech and noise), dB. @default 0 */
  readonly gainDb?: number;
}

/** A spec with every default filled in: what goldens store and the cache key hashes. */
export interface NormalisedSpeechClipSpec {
  readonly name: string;
  readonly language: string;
  readonly lines: readonly Required<SpeechClipLine>[];
  readonly leadS: number;
  readonly gapS: number;
  readonly tailS: number;
  readonly noise: { readonly snrDb: number; readonly seed: number } | null;
  readonly gainDb: number;
}

/** Where a line landed in the clip, seconds. */
export interface PlacedSpeechLine {
  readonly text: string;
  /** The synthesized audio's span (espeak-ng adds a little silence at both ends). */
  readonly startS: number;
  readonly endS: number;
  /**
   * Where the voice really is: from the start of the first to the end of the last 10 ms frame at -50 dBFS
   * or more (`audibleSpans` of speech.ts on the clean line, before noise).
   */
  readonly voicedStartS: number;
  readonly voicedEndS: number;
}

/** A generated speech clip: 16 kHz mono s16, in memory and as a WAV file. */
export interface GeneratedSpeechClip {
  readonly spec: NormalisedSpeechClipSpec;
  readonly sampleRate: 16_000;
  /** The PCM, s16. */
  readonly samples: Int16Array;
  /** `samples / 32768`: what Whisper is fed. */
  readonly audio: Float32Array;
  /** sha256 of the s16le bytes (the WAV's data chunk), hex. */
  readonly sha256: string;
  readonly durationS: number;
  /** The lines' texts joined by a space: the reference transcript. */
  readonly text: string;
  readonly lines: readonly PlacedSpeechLine[];
  /** A WAV of the clip in the media cache; never write to it. */
  readonly path: string;
  /** sha256 of the normalised spec and SPEECH_CLIP_GENERATOR_VERSION. */
  readonly key: string;
}

/** Where clips are written; not part of the sample content. */
export interface SpeechClipSettings {
  /** @default mediaCacheDir() */
  readonly cacheDir?: string;
}

const VOICE = /^[a-z0-9+_-]+$/i;

/** Fills in defaults and checks a spec; throws `invalid_options` naming the bad field. */
export function normaliseSpeechClipSpec(spec: SpeechClipSpec): NormalisedSpeechClipSpec {
  const bad = (what: string) =>
    new MediaFixtureError(`generateSpeechClip(${spec.name}): ${what}`, { code: 'invalid_options' });
  if (!/^[a-z]{2,3}$/.test(spec.language))
    throw bad(`language must be a Whisper code, got "${spec.language}"`);
  if (spec.lines.length === 0) throw bad('needs at least one line');
  const seconds = (name: string, value: number | undefined, fallback: number) => {
    const v = value ?? fallback;
    if (!(Number.isFinite(v) && v >= 0 && v <= 60)) throw bad(`${name} must be 0..60 s, got ${v}`);
    return v;
  };
  const lines = spec.lines.map((line, i): Required<SpeechClipLine> => {
    const where = `line ${i} ("${line.text}")`;
    if (line.text.trim() === '' || /[\r\n]/.test(line.text))
      throw bad(`${where}: text must be one non-empty line`);
    const voice = line.voice ?? 'en-us';
    if (!VOICE.test(voice)) throw bad(`${where}: voice must be an espeak-ng voice name, got "${voice}"`);
    const wordsPerMinute = line.wordsPerMinute ?? 165;
    if (!(Number.isInteger(wordsPerMinute) && wordsPerMinute >= 80 && wordsPerMinute <= 450)) {
      throw bad(`${where}: wordsPerMinute must be an integer 80..450, got ${wordsPerMinute}`);
    }
    return { text: line.text, voice, wordsPerMinute };
  });
  let noise: NormalisedSpeechClipSpec['noise'] = null;
  if (spec.noise) {
    const { snrDb } = spec.noise;
    const seed = spec.noise.seed ?? 1;
    if (!(Number.isFinite(snrDb) && snrDb >= -20 && snrDb <= 60))
      throw bad(`noise snrDb must be -20..60, got ${snrDb}`);
    if (!(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32))
      throw bad(`noise seed must be a uint32, got ${seed}`);
    noise = { snrDb, seed };
  }
  const gainDb = spec.gainDb ?? 0;
  if (!(Number.isFinite(gainDb) && gainDb >= -60 && gainDb <= 20))
    throw bad(`gainDb must be -60..20, got ${gainDb}`);
  return {
    name: spec.name,
    language: spec.language,
    lines,
    leadS: seconds('leadS', spec.leadS, 0.5),
    gapS: seconds('gapS', spec.gapS, 0.6),
    tailS: seconds('tailS', spec.tailS, 0.5),
    noise,
    gainDb,
  };
}

/**
 * Synthesizes a speech clip: each line by speech.ts's `synthesizeSpeech` (espeak-ng, resampled to 16 kHz
 * by ffmpeg), laid end to end with the spec's silences, noise added from a seeded generator here (scaled to
 * the SNR, no tool involved), rounded to s16. The same spec gives the same samples with the same espeak-ng
 * and ffmpeg (goldens store the sha256 to tell). Writes the WAV to the media cache (atomically) and returns
 * the samples too.
 */
export async function generateSpeechClip(
  spec: SpeechClipSpec,
  settings: SpeechClipSettings = {},
): Promise<GeneratedSpeechClip> {
  const normalised = normaliseSpeechClipSpec(spec);
  const key = createHash('sha256')
    .update(JSON.stringify({ version: SPEECH_CLIP_GENERATOR_VERSION, spec: normalised }))
    .digest('hex');
  const rate = SPEECH_CLIP_SAMPLE_RATE;
  // One at a time: espeak-ng is quick (tens of ms a line) and the machine is shared.
  const voices: Float32Array[] = [];
  for (const line of normalised.lines) {
    voices.push(
      await synthesizeSpeech(line.text, { voice: line.voice, wordsPerMinute: line.wordsPerMinute }),
    );
  }
  const lead = Math.round(normalised.leadS * rate);
  const gap = Math.round(normalised.gapS * rate);
  const tail = Math.round(normalised.tailS * rate);
  const total = lead + voices.reduce((sum, v) => sum + v.length, 0) + gap * (voices.length - 1) + tail;
  const mix = new Float64Array(total);
  const placed: PlacedSpeechLine[] = [];
  const voicedSpans: [number, number][] = [];
  let at = lead;
  for (const [i, voice] of voices.entries()) {
    mix.set(voice, at);
    const spans = audibleSpans(voice);
    const first = spans[0]?.start ?? 0;
    const last = spans[spans.length - 1]?.end ?? 0;
    voicedSpans.push([at + first, at + last]);
    placed.push({
      text: (normalised.lines[i] as Required<SpeechClipLine>).text,
      startS: at / rate,
      endS: (at + voice.length) / rate,
      voicedStartS: (at + first) / rate,
      voicedEndS: (at + last) / rate,
    });
    at += voice.length + gap;
  }
  if (normalised.noise) {
    let energy = 0;
    let count = 0;
    for (const [from, to] of voicedSpans) {
      for (let i = from; i < to; i++) energy += (mix[i] as number) ** 2;
      count += Math.max(0, to - from);
    }
    const speechRms = Math.sqrt(energy / Math.max(1, count));
    const sigma = speechRms / 10 ** (normalised.noise.snrDb / 20);
    const random = mulberry32(normalised.noise.seed);
    for (let i = 0; i < total; i++) {
      // Irwin-Hall: the sum of 12 uniforms minus 6 has mean 0 and variance 1 (no transcendental functions,
      // so every machine draws the same noise).
      let g = -6;
      for (let j = 0; j < 12; j++) g += random();
      mix[i] = (mix[i] as number) + sigma * g;
    }
  }
  const gain = 10 ** (normalised.gainDb / 20);
  const scaled = new Float32Array(total);
  for (let i = 0; i < total; i++) scaled[i] = (mix[i] as number) * gain;
  const samples = toPcm16(scaled);
  const audio = new Float32Array(total);
  for (let i = 0; i < total; i++) audio[i] = (samples[i] as number) / 32768;
  const pcm = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const sha256 = createHash('sha256').update(pcm).digest('hex');
  const path = await writeWavOnce(
    settings.cacheDir ?? mediaCacheDir(),
    `speech-${key.slice(0, 24)}.wav`,
    pcm,
    rate,
  );
  return {
    spec: normalised,
    sampleRate: 16_000,
    samples,
    audio,
    sha256,
    durationS: total / rate,
    text: normalised.lines.map((l) => l.text).join(' '),
    lines: placed,
    path,
    key,
  };
}

async function writeWavOnce(cacheDir: string, fileName: string, pcm: Buffer, rate: number): Promise<string> {
  const path = join(cacheDir, fileName);
  const wav = Buffer.concat([wavHeader(pcm.length, rate), pcm]);
  try {
    if ((await readFile(path)).equals(wav)) return path;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw MediaFixtureError.from(error);
  }
  await mkdir(cacheDir, { recursive: true });
  // Readers only ever see a finished file: written under a unique name, then renamed into place.
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await writeFile(tmp, wav);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return path;
}

function wavHeader(dataBytes: number, rate: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

/** A deterministic non-speech test signal (see `generateTestSignal`). */
export interface GeneratedTestSignal {
  readonly sampleRate: 16_000;
  readonly samples: Int16Array;
  readonly audio: Float32Array;
  /** sha256 of the s16le bytes, hex. */
  readonly sha256: string;
  /** A WAV of it in the media cache. */
  readonly path: string;
}

/**
 * A signal made here from arithmetic alone (no tool involved, so every machine makes the same samples):
 * 0.5 s of silence, a 100 Hz to 7.9 kHz linear chirp over 6 s, tone bursts at 440 Hz, 1 kHz and 3 kHz
 * (0.5 s each, 0.25 s apart), 2 s of white noise, then 1.5 s of noise 60 dB lower, and 77 samples more so
 * that the length is not a multiple of the 160-sample hop. 16 kHz s16. For front-end (log-mel) goldens.
 */
export async function generateTestSignal(settings: SpeechClipSettings = {}): Promise<GeneratedTestSignal> {
  const rate = SPEECH_CLIP_SAMPLE_RATE;
  const parts: number[] = [];
  const random = mulberry32(12345);
  const seconds = (s: number) => Math.round(s * rate);
  for (let i = 0; i < seconds(0.5); i++) parts.push(0);
  const chirpS = 6;
  for (let i = 0; i < seconds(chirpS); i++) {
    const t = i / rate;
    const k = (7900 - 100) / chirpS;
    parts.push(0.3 * Math.sin(2 * Math.PI * (100 * t + (k * t * t) / 2)));
  }
  for (const hz of [440, 1000, 3000]) {
    for (let i = 0; i < seconds(0.25); i++) parts.push(0);
    for (let i = 0; i < seconds(0.5); i++) parts.push(0.4 * Math.sin((2 * Math.PI * hz * i) / rate));
  }
  for (let i = 0; i < seconds(2); i++) parts.push(0.1 * (random() - 0.5));
  for (let i = 0; i < seconds(1.5) + 77; i++) parts.push(0.0001 * (random() - 0.5));
  const samples = new Int16Array(parts.length);
  for (let i = 0; i < parts.length; i++) samples[i] = Math.round((parts[i] as number) * 32767);
  const audio = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) audio[i] = (samples[i] as number) / 32768;
  const pcm = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const sha256 = createHash('sha256').update(pcm).digest('hex');
  const path = await writeWavOnce(
    settings.cacheDir ?? mediaCacheDir(),
    `test-signal-${sha256.slice(0, 24)}.wav`,
    pcm,
    rate,
  );
  return { sampleRate: 16_000, samples, audio, sha256, path };
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1), the same sequence on every machine. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Live-commerce sentences, spoken by several English voices and rates. */
const EN = {
  save20: 'Use code SAVE20 at checkout.',
  price: 'The price is 29 dollars 99.',
  bio: 'Link in my bio.',
  follow: 'Follow me at live deals for more drops.',
  whatsapp: 'DM me on WhatsApp to order.',
} as const;

/**
 * The ASR clips: what the reference transcribed for test/golden/asr-parity.json, and what the WER and
 * parity tests run. English: the live-commerce sentences in several voices (US, British, RP, variants) and
 * rates (140-230 wpm), a multi-sentence host monologue, two noisy clips (10 and 5 dB SNR) and one longer
 * than a 30 s window. Mandarin (espeak-ng `cmn-latn-pinyin`), for the multilingual model only.
 */
export function asrClipSuite(): SpeechClipSpec[] {
  return [
    { name: 'en-save20', language: 'en', lines: [{ text: EN.save20 }] },
    {
      name: 'en-price-f3',
      language: 'en',
      lines: [{ text: EN.price, voice: 'en-us+f3', wordsPerMinute: 150 }],
    },
    { name: 'en-bio-gb', language: 'en', lines: [{ text: EN.bio, voice: 'en-gb', wordsPerMinute: 140 }] },
    {
      name: 'en-follow-m3',
      language: 'en',
      lines: [{ text: EN.follow, voice: 'en-us+m3', wordsPerMinute: 175 }],
    },
    {
      name: 'en-whatsapp-rp',
      language: 'en',
      lines: [{ text: EN.whatsapp, voice: 'en-gb-x-rp', wordsPerMinute: 160 }],
    },
    {
      name: 'en-fast',
      language: 'en',
      lines: [{ text: 'Only ten left, buy now before the deal ends.', wordsPerMinute: 230 }],
    },
    {
      name: 'en-host',
      language: 'en',
      lines: [
        { text: 'Hi everyone, welcome back to the live.', voice: 'en-us+f2' },
        { text: EN.save20, voice: 'en-us+f2' },
        { text: EN.price, voice: 'en-us+f2' },
        { text: EN.bio, voice: 'en-us+f2' },
      ],
    },
    {
      name: 'en-noisy-10db',
      language: 'en',
      lines: [{ text: 'Use code SAVE20 at checkout, the price is 29 dollars 99.' }],
      noise: { snrDb: 10, seed: 7 },
    },
    {
      name: 'en-noisy-5db',
      language: 'en',
      lines: [{ text: 'DM me on WhatsApp and follow me at live deals.', voice: 'en-gb' }],
      noise: { snrDb: 5, seed: 11 },
    },
    {
      name: 'en-long',
      language: 'en',
      gapS: 0.8,
      lines: [
        { text: 'Good evening and welcome to the Friday night sale.' },
        { text: 'Tonight we have sneakers, handbags and a few surprises.' },
        { text: EN.save20 },
        { text: 'Every order ships tomorrow morning.' },
        { text: EN.price },
        { text: 'That is almost half of the usual price.' },
        { text: 'If you have questions, DM me on WhatsApp.' },
        { text: 'Follow me at live deals so you never miss a drop.' },
        { text: 'The link is in my bio, see you next week.' },
      ],
    },
    // cmn-latn-pinyin, not cmn: Debian's espeak-ng has no Hanzi in the plain cmn voice's dictionary and
    // spells each character out in English with tone digits; cmn-latn-pinyin reads them as Mandarin.
    {
      name: 'zh-welcome',
      language: 'zh',
      lines: [{ text: '欢迎来到直播间。', voice: 'cmn-latn-pinyin', wordsPerMinute: 100 }],
    },
    {
      name: 'zh-price',
      language: 'zh',
      lines: [{ text: '今天的价格是九十九元。', voice: 'cmn-latn-pinyin', wordsPerMinute: 120 }],
    },
    {
      name: 'zh-link',
      language: 'zh',
      lines: [{ text: '点击下方链接购买。', voice: 'cmn-latn-pinyin', wordsPerMinute: 120 }],
    },
  ];
}
