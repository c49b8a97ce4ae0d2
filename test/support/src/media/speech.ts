// Speech audio with known boundaries, for VAD and ASR tests: espeak-ng sentences placed at known times in
// 16 kHz mono PCM, with optional noise, and where each sentence's sound really starts and ends, measured on
// the synthesized audio itself (espeak-ng adds silence of its own around each line).
import { MediaFixtureError } from './errors.js';
import { runTool } from './process.js';

/** The rate of everything here: live.audio.v1's. */
export const SPEECH_SAMPLE_RATE = 16_000;

/** One espeak-ng line. */
export interface TimedSpeechLine {
  readonly text: string;
  /** Where the synthesized audio (its leading silence included) is placed, seconds. */
  readonly atS: number;
  /** An espeak-ng voice. @default 'en-us' */
  readonly voice?: string;
  /** espeak-ng `-s`. @default 165 */
  readonly wordsPerMinute?: number;
  /** Linear gain on the line. @default 1 */
  readonly gain?: number;
}

/** Noise from ffmpeg's anoisesrc under the whole clip (seeded: the same every time). */
export interface TimedSpeechNoise {
  readonly color: 'white' | 'pink' | 'brown';
  /** anoisesrc amplitude (peak, 0..1). */
  readonly amplitude: number;
  /** @default 7 */
  readonly seed?: number;
}

export interface TimedSpeechClipOptions {
  readonly durationS: number;
  readonly lines: readonly TimedSpeechLine[];
  readonly noise?: TimedSpeechNoise;
}

/** A span of samples, `end` exclusive. */
export interface SampleSpan {
  readonly start: number;
  readonly end: number;
}

/** A line as placed in the clip. */
export interface PlacedUtterance {
  readonly text: string;
  /** Where the line's audio was placed. */
  readonly atSample: number;
  /** Samples of the line's audio (with espeak-ng's own silence at both ends). */
  readonly lengthSamples: number;
  /** Where its sound starts and ends in the clip (`audibleSpans` of the clean line, first to last). */
  readonly speech: SampleSpan;
  /** The sounding parts of the line (`audibleSpans` defaults: pauses of 200 ms or more between them). */
  readonly spans: readonly SampleSpan[];
}

/** A 16 kHz mono clip: floats in [-1, 1], the same as PCM s16le, and its lines. */
export interface TimedSpeechClip {
  readonly sampleRate: 16000;
  readonly samples: Float32Array;
  readonly pcm: Int16Array;
  readonly utterances: readonly PlacedUtterance[];
}

/** Decodes whatever ffmpeg reads (`args` before `-i`'s output options) to 16 kHz mono floats. */
async function decode16k(inputArgs: readonly string[], input?: Buffer): Promise<Float32Array> {
  const pcm = await runTool(
    'ffmpeg',
    [
      '-nostdin',
      '-v',
      'error',
      ...inputArgs,
      '-ac',
      '1',
      '-ar',
      String(SPEECH_SAMPLE_RATE),
      '-f',
      's16le',
      'pipe:1',
    ],
    input === undefined ? {} : { input },
  );
  const samples = new Float32Array(pcm.length >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = pcm.readInt16LE(i * 2) / 32768;
  return samples;
}

/** One line spoken by espeak-ng (text on stdin), resampled to 16 kHz mono. */
export async function synthesizeSpeech(
  text: string,
  { voice = 'en-us', wordsPerMinute = 165 }: { voice?: string; wordsPerMinute?: number } = {},
): Promise<Float32Array> {
  if (!/^[a-z0-9+_-]+$/i.test(voice)) {
    throw new MediaFixtureError(`voice must be an espeak-ng voice name, got "${voice}"`, {
      code: 'invalid_options',
    });
  }
  const wav = await runTool('espeak-ng', ['-v', voice, '-s', String(wordsPerMinute), '--stdout', '--stdin'], {
    input: text,
  });
  return decode16k(['-f', 'wav', '-i', 'pipe:0'], wav);
}

/**
 * A recording on disk (any container ffmpeg reads, or headerless PCM s16le at `rawSampleRate` Hz mono),
 * resampled to 16 kHz mono floats.
 */
export async function readSpeechFile(
  path: string,
  { rawSampleRate }: { rawSampleRate?: number } = {},
): Promise<Float32Array> {
  const raw = rawSampleRate === undefined ? [] : ['-f', 's16le', '-ar', String(rawSampleRate), '-ac', '1'];
  return decode16k([...raw, '-i', path]);
}

/**
 * A lavfi audio source rendered to 16 kHz mono floats, e.g. `anoisesrc=color=pink:amplitude=0.02:seed=1` or
 * an `aevalsrc` melody. The source string goes to ffmpeg as one argument (no shell).
 */
export async function renderLavfiAudio(source: string, durationS: number): Promise<Float32Array> {
  return decode16k(['-f', 'lavfi', '-t', String(durationS), '-i', source]);
}

/**
 * The sounding parts of `samples`: 10 ms frames whose RMS is at least `thresholdDb` dBFS, joined across
 * quieter gaps shorter than `minGapMs`. The default threshold is ~40 dB under espeak-ng's speech level.
 */
export function audibleSpans(
  samples: Float32Array,
  { thresholdDb = -50, minGapMs = 200 }: { thresholdDb?: number; minGapMs?: number } = {},
): SampleSpan[] {
  const frame = SPEECH_SAMPLE_RATE / 100;
  const minGap = (minGapMs * SPEECH_SAMPLE_RATE) / 1000;
  const spans: { start: number; end: number }[] = [];
  for (let at = 0; at < samples.length; at += frame) {
    const end = Math.min(samples.length, at + frame);
    let sum = 0;
    for (let i = at; i < end; i++) sum += (samples[i] as number) ** 2;
    if (10 * Math.log10(sum / (end - at) + 1e-20) < thresholdDb) continue;
    const last = spans[spans.length - 1];
    if (last && at - last.end < minGap) last.end = end;
    else spans.push({ start: at, end });
  }
  return spans;
}

/** Floats in [-1, 1] to PCM s16 (rounded, clipped). */
export function toPcm16(samples: Float32Array): Int16Array {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    pcm[i] = Math.max(-32768, Math.min(32767, Math.round((samples[i] as number) * 32768)));
  }
  return pcm;
}

/**
 * Places espeak-ng lines at known times over silence (or seeded noise) in a 16 kHz mono clip, and reports
 * where each line's sound starts and ends, measured on the clean line before noise is added. Lines must not
 * overlap or run past the end. Quick (espeak-ng and ffmpeg run once per line); nothing is cached.
 */
export async function composeSpeechClip(options: TimedSpeechClipOptions): Promise<TimedSpeechClip> {
  const total = Math.round(options.durationS * SPEECH_SAMPLE_RATE);
  const bad = (what: string) =>
    new MediaFixtureError(`composeSpeechClip: ${what}`, { code: 'invalid_options' });
  if (!(total > 0)) throw bad(`durationS must be > 0, got ${options.durationS}`);
  const samples = new Float32Array(total);
  const utterances: PlacedUtterance[] = [];
  let busyUntil = 0;
  for (const line of [...options.lines].sort((a, b) => a.atS - b.atS)) {
    const audio = await synthesizeSpeech(line.text, {
      ...(line.voice ? { voice: line.voice } : {}),
      ...(line.wordsPerMinute ? { wordsPerMinute: line.wordsPerMinute } : {}),
    });
    const at = Math.round(line.atS * SPEECH_SAMPLE_RATE);
    if (at < busyUntil) throw bad(`"${line.text}" at ${line.atS}s overlaps the line before it`);
    if (at + audio.length > total) {
      throw bad(
        `"${line.text}" at ${line.atS}s runs past the end (${(audio.length / SPEECH_SAMPLE_RATE).toFixed(2)} s long)`,
      );
    }
    const gain = line.gain ?? 1;
    for (let i = 0; i < audio.length; i++) samples[at + i] = (audio[i] as number) * gain;
    const spans = audibleSpans(audio).map((s) => ({ start: at + s.start, end: at + s.end }));
    const first = spans[0];
    const last = spans[spans.length - 1];
    if (!first || !last) throw bad(`espeak-ng made no audible sound for "${line.text}"`);
    utterances.push({
      text: line.text,
      atSample: at,
      lengthSamples: audio.length,
      speech: { start: first.start, end: last.end },
      spans,
    });
    busyUntil = at + audio.length;
  }
  if (options.noise) {
    const { color, amplitude, seed = 7 } = options.noise;
    const noise = await renderLavfiAudio(
      `anoisesrc=color=${color}:amplitude=${amplitude}:seed=${seed}:sample_rate=${SPEECH_SAMPLE_RATE}`,
      options.durationS,
    );
    for (let i = 0; i < total; i++) samples[i] = (samples[i] as number) + (noise[i] ?? 0);
  }
  const pcm = toPcm16(samples);
  // The floats the VAD sees are the PCM's, not the unquantised mix.
  for (let i = 0; i < total; i++) samples[i] = (pcm[i] as number) / 32768;
  return { sampleRate: SPEECH_SAMPLE_RATE, samples, pcm, utterances };
}
