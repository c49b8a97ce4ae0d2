import { readFile } from 'node:fs/promises';
import { createLogger } from '@livelens/runtime';
import {
  asrClipSuite,
  generateSpeechClip,
  readSpeechFile,
  type SpeechClipSpec,
} from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findModel, loadManifest } from '../manifest.js';
import { defaultCacheDir, resolveModel } from '../resolve.js';
import { WhisperAsr } from './whisper.js';

const logger = createLogger({ service: 'asr-accuracy-test', level: 'silent' });
const cacheDir = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../../.livelens', import.meta.url).pathname,
});
const recordingsCache = new URL('../../../../.livelens/recordings', import.meta.url).pathname;
const RECORDINGS_MANIFEST = new URL('../../test/recordings.json', import.meta.url).pathname;

/** A real recording and what is said in it. */
interface Recording {
  set: string;
  name: string;
  audio: Float32Array;
  text: string;
}

/** Sphinx transcription lines: `<s> words </s> (utterance-id)`. */
function parseSphinxTranscription(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^<s>(.*)<\/s>\s*\(([^)]+)\)\s*$/.exec(line.trim());
    if (m) out.set(m[2] as string, (m[1] as string).trim().replace(/\s+/g, ' '));
  }
  return out;
}

/**
 * The real read speech that registry packages ship (test/recordings.json): LibriVox (Sense and Sensibility)
 * and CMU utterances from pocketsphinx's source archive, and whisper.cpp's JFK sample from nodejs-whisper.
 */
async function realRecordings(): Promise<Recording[]> {
  const manifest = await loadManifest(RECORDINGS_MANIFEST);
  const path = (id: string) =>
    resolveModel(findModel(manifest, id), { cacheDir: recordingsCache, fetch: true });
  const out: Recording[] = [];
  const sphinxSet = async (set: string, transcriptId: string, prefix: string) => {
    const transcripts = parseSphinxTranscription(await readFile(await path(transcriptId), 'utf8'));
    for (const entry of manifest.models.filter(
      (m) => m.id.startsWith(prefix) && m.task === 'speech-recording',
    )) {
      const key = entry.file.replace(/\.wav$/, '');
      const text = transcripts.get(key);
      if (!text) throw new Error(`${transcriptId} has no line for ${key}`);
      out.push({ set, name: entry.id, audio: await readSpeechFile(await path(entry.id)), text });
    }
  };
  await sphinxSet('LibriVox read speech', 'librivox-austen-transcription', 'librivox-austen-');
  await sphinxSet('CMU spoken commands', 'cmu-cards-transcription', 'cmu-cards-');
  out.push({
    set: 'CMU spoken commands',
    name: 'cmu-goforward',
    audio: await readSpeechFile(await path('cmu-goforward'), { rawSampleRate: 16_000 }),
    text: 'go forward ten meters',
  });
  out.push({
    set: 'JFK inaugural address (1961)',
    name: 'jfk-inaugural',
    audio: await readSpeechFile(await path('jfk-inaugural')),
    text: 'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.',
  });
  return out;
}

const UNITS = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** Spoken forms of written titles (Whisper writes "Mr.", a transcript "mister"). */
const TITLES: Record<string, string> = { mr: 'mister', mrs: 'missus', dr: 'doctor', st: 'saint' };

/**
 * What WER compares, applied alike to the spoken text and the transcript (a small subset of Whisper's
 * EnglishTextNormalizer): lower case; "$29.99" read as "29 dollars 99"; number words as digits
 * ("twenty-nine" → 29); letters and digits split ("SAVE20" → "save 20", as it is spoken); punctuation and
 * apostrophes dropped.
 */
export function normaliseEnglish(text: string): string[] {
  let t = text.normalize('NFKC').toLowerCase();
  t = t.replace(/\$(\d+)(?:\.(\d+))?/g, (_, d: string, c?: string) => ` ${d} dollars${c ? ` ${c}` : ''} `);
  t = t.replace(/['’]/g, '').replace(/[^a-z0-9]+/g, ' ');
  t = t.replace(/([a-z])(\d)/g, '$1 $2').replace(/(\d)([a-z])/g, '$1 $2');
  const words = t.split(' ').filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < words.length; i += 1) {
    const w = words[i] as string;
    const ten = TENS.indexOf(w);
    if (ten >= 2) {
      const unit = UNITS.indexOf(words[i + 1] ?? '');
      if (unit >= 1 && unit <= 9) {
        out.push(String(ten * 10 + unit));
        i += 1;
      } else out.push(String(ten * 10));
    } else if (UNITS.includes(w)) out.push(String(UNITS.indexOf(w)));
    else out.push(TITLES[w] ?? w);
  }
  return out;
}

/** Levenshtein distance between token sequences. */
function editDistance(a: readonly string[], b: readonly string[]): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1)
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return previous[b.length] as number;
}

let asr: WhisperAsr;
beforeAll(async () => {
  const manifest = await loadManifest();
  const path = (part: string) =>
    resolveModel(findModel(manifest, `whisper-base-onnx-${part}`), { cacheDir, fetch: true });
  asr = await WhisperAsr.create(
    {
      encoderPath: await path('encoder'),
      decoderPath: await path('decoder'),
      tokenizerPath: await path('tokenizer'),
      configPath: await path('generation-config'),
    },
    { modelId: 'whisper-base', intraOpThreads: 2 },
    logger,
  );
}, 600_000);
afterAll(() => asr?.close());

/** Word (or character) errors per named set, and a printable report. */
class ErrorTally {
  readonly #sets = new Map<string, { errors: number; words: number; lines: string[] }>();

  add(set: string, reference: readonly string[], hypothesis: readonly string[], name: string, text: string) {
    const s = this.#sets.get(set) ?? { errors: 0, words: 0, lines: [] };
    const errors = editDistance(reference, hypothesis);
    s.errors += errors;
    s.words += reference.length;
    s.lines.push(`${name} (${errors}/${reference.length}): "${text.trim()}"`);
    this.#sets.set(set, s);
  }

  rate(set: string): number {
    const s = this.#sets.get(set);
    return s ? s.errors / s.words : Number.NaN;
  }

  words(set: string): number {
    return this.#sets.get(set)?.words ?? 0;
  }

  report(prefix: string, { lines = true } = {}): string {
    return [...this.#sets.entries()]
      .map(
        ([name, s]) =>
          `[asr accuracy] ${prefix}${name}: ${((s.errors / s.words) * 100).toFixed(1)}% (${s.errors}/${s.words})${lines ? `\n  ${s.lines.join('\n  ')}` : ''}`,
      )
      .join('\n');
  }
}

describe('speech recognition accuracy (Whisper base, beam 5, temperature fallback)', () => {
  it('has a WER of at most 20% on synthesized English speech (espeak-ng voices and rates), and prints every set and a noise sweep', async () => {
    const tally = new ErrorTally();
    const english: { spec: SpeechClipSpec; words: string[] }[] = [];
    for (const spec of asrClipSuite()) {
      const clip = await generateSpeechClip(spec);
      if (clip.durationS > 30) continue; // one window; longer audio is the service's (VAD-cut) job
      const result = await asr.transcribe(clip.audio, { beamSize: 5, language: spec.language });
      if (spec.language === 'zh') {
        // Characters (CER), script-insensitive comparison is not attempted: traditional vs simplified counts.
        const reference = [...clip.text.replace(/[\s\p{P}]/gu, '')];
        const hypothesis = [...result.text.replace(/[\s\p{P}]/gu, '')];
        tally.add('synthesized Mandarin (CER)', reference, hypothesis, spec.name, result.text);
        continue;
      }
      const set = spec.noise ? 'synthesized English with noise (own sentences)' : 'synthesized English';
      tally.add(set, normaliseEnglish(clip.text), normaliseEnglish(result.text), spec.name, result.text);
      if (!spec.noise) english.push({ spec, words: normaliseEnglish(clip.text) });
    }
    // The same clean English clips under white noise at falling SNRs: how fast accuracy degrades.
    for (const snrDb of [20, 10, 5])
      for (const { spec, words } of english) {
        const clip = await generateSpeechClip({
          ...spec,
          name: `${spec.name}-${snrDb}db`,
          noise: { snrDb, seed: 3 },
        });
        const result = await asr.transcribe(clip.audio, { beamSize: 5, language: 'en' });
        tally.add(
          `synthesized English, white noise ${snrDb} dB SNR`,
          words,
          normaliseEnglish(result.text),
          clip.spec.name,
          result.text,
        );
      }
    console.info(tally.report(''));
    expect(tally.words('synthesized English')).toBeGreaterThan(40);
    expect(tally.rate('synthesized English')).toBeLessThanOrEqual(0.2);
    // The noise sweep is reported, not gated: the 20% target is not met under noise (24% at 20 dB SNR with
    // Whisper base on espeak-ng's voice; see packages/inference/README.md). It only has to be all there.
    for (const snrDb of [20, 10, 5])
      expect(tally.words(`synthesized English, white noise ${snrDb} dB SNR`)).toBe(
        tally.words('synthesized English'),
      );
  }, 900_000);

  it('has a WER of at most 10% on real read speech that registry packages ship, also with a 4 s encoder window', async () => {
    const recordings = await realRecordings();
    const tally = new ErrorTally();
    const encoderMs = { full: 0, padded: 0 };
    for (const [window, encoderPaddingS] of [
      ['full', undefined],
      ['padded', 4],
    ] as const)
      for (const recording of recordings) {
        const result = await asr.transcribe(recording.audio, {
          beamSize: 5,
          language: 'en',
          ...(encoderPaddingS === undefined ? {} : { encoderPaddingS }),
        });
        encoderMs[window] += result.timings.encoderMs;
        const label = window === 'full' ? '30 s window' : 'segment + 4 s window';
        const reference = normaliseEnglish(recording.text);
        tally.add(
          `${label}: ${recording.set}`,
          reference,
          normaliseEnglish(result.text),
          recording.name,
          result.text,
        );
        tally.add(
          `${label}: all sets`,
          reference,
          normaliseEnglish(result.text),
          recording.name,
          result.text,
        );
      }
    console.info(
      `${tally.report('real: ')}\n[asr accuracy] real: encoder time ${encoderMs.full.toFixed(0)} ms with the 30 s window, ${encoderMs.padded.toFixed(0)} ms with segment + 4 s (${(encoderMs.full / encoderMs.padded).toFixed(2)}x)`,
    );
    expect(tally.words('30 s window: all sets')).toBeGreaterThan(100);
    expect(tally.rate('30 s window: all sets')).toBeLessThanOrEqual(0.1);
    expect(tally.rate('segment + 4 s window: all sets')).toBeLessThanOrEqual(0.1);
  }, 900_000);

  it('normalises numbers, prices and codes the same way on both sides', () => {
    expect(normaliseEnglish('The price is 29 dollars 99.')).toEqual(normaliseEnglish(' The price is $29.99'));
    expect(normaliseEnglish('Use code SAVE20')).toEqual(['use', 'code', 'save', '20']);
    expect(normaliseEnglish('Only ten left, twenty-nine')).toEqual(['only', '10', 'left', '29']);
    expect(normaliseEnglish('Mr. John Dashwood')).toEqual(normaliseEnglish('mister john dashwood'));
  });
});
