/**
 * Makes the ASR goldens of packages/inference from the Python reference (faster-whisper; see README.md):
 *
 *   npx tsx packages/inference/reference/make-asr-goldens.ts
 *
 * 1. synthesizes the clips of asrClipSuite() with generateSpeechClip (espeak-ng, 16 kHz s16 WAVs);
 * 2. resolves the CTranslate2 Whisper files (fetching them if missing) and assembles one model directory
 *    per model in a temp dir (base's model.bin is the concatenation of its two parts);
 * 3. builds or reuses the reference venv (setup.sh) and runs asr_reference.py: `transcribe` with tiny.en
 *    on the English clips, with base on every clip (language detected) and on the Chinese clips again with
 *    the language given (greedy, word timestamps, with and without timestamp tokens, twice, and the two runs
 *    must agree), `features` on three clips (80 bins) and one (128 bins),
 *    `tokenizer` on both tokenizer.json files;
 * 4. writes test/golden/asr-parity.json (clip specs, sha256 of the PCM, reference texts, transcripts),
 *    asr-mel.json and asr-tokenizer.json, and prints each transcript with its word error rate against the
 *    text spoken.
 *
 * Run it again only when the clips, the models or the reference change, and commit the result: Python is
 * never needed by the tests.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  asrClipSuite,
  type GeneratedSpeechClip,
  generateSpeechClip,
  generateTestSignal,
  SPEECH_CLIP_GENERATOR_VERSION,
} from '@livelens/test-support/media';
import { findModel, loadManifest, type ModelManifest } from '../src/manifest.js';
import { defaultCacheDir, resolveModel } from '../src/resolve.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, '..');
const repoRoot = resolve(packageDir, '../..');
const goldenDir = join(packageDir, 'test', 'golden');

/** The two models: their manifest ids, and how the CT2 directory is put together. */
const MODELS = {
  'whisper-base': {
    ids: [
      'whisper-base-ct2-model-part1',
      'whisper-base-ct2-model-part2',
      'whisper-base-ct2-config',
      'whisper-base-ct2-tokenizer',
      'whisper-base-ct2-vocabulary',
    ],
    languages: 'all',
  },
  'whisper-tiny-en': {
    ids: [
      'whisper-tiny-en-ct2-model',
      'whisper-tiny-en-ct2-config',
      'whisper-tiny-en-ct2-tokenizer',
      'whisper-tiny-en-ct2-vocabulary',
    ],
    languages: 'en',
  },
} as const;
type ModelName = keyof typeof MODELS;

/**
 * Clips whose log-mel features are stored (summaries), with the mel bins. `test-signal` is
 * generateTestSignal() (made without any tool, so comparable on any machine).
 */
const MEL_CLIPS: { clip: string; nMels: number }[] = [
  { clip: 'test-signal', nMels: 80 },
  { clip: 'en-save20', nMels: 80 },
  { clip: 'en-noisy-10db', nMels: 80 },
  { clip: 'en-long', nMels: 80 },
  { clip: 'en-save20', nMels: 128 },
];

/** Tokenizer cases: byte-level BPE edge cases (CJK and emoji split inside a character, whitespace, specials). */
const TOKENIZER_CASES = {
  strings: [
    'use code SAVE20 at checkout',
    ' Use code SAVE20 at checkout.',
    ' The price is $29.99 — 20% off!!',
    ' Link in my bio, follow @live_deals and DM me on WhatsApp #sale',
    '欢迎来到直播间',
    ' 今天的价格是九十九元。',
    '点击下方链接购买！',
    '🔥🔥 limited drop 🛍️',
    '👩‍👩‍👧 🇺🇸 ✅',
    'こんにちは世界',
    ' สวัสดีครับ',
    ' مرحبا بكم',
    'naïve café déjà vu, Ünïcödé ß',
    "it's we'll they're I'M",
    '  multiple   spaces\tand\nnewlines  ',
    'a\u00a0b \u0085c\ufeffd x\u3000y',
    'hello <|endoftext|> world<|notimestamps|>',
    '1234567890 3.14159',
    '♪♪ [MUSIC] (laughs) ♫',
    '   ',
  ],
  timestamped: [' Use code SAVE20 at checkout.', '欢迎来到直播间'],
  words: [
    { text: ' Use code SAVE20 at checkout, the price is $29.99!', language: 'en' },
    { text: " it's a deal-breaker... (laughs) DM me", language: 'en' },
    { text: ' 🔥🔥 limited drop, 欢迎!', language: 'en' },
    { text: ' 欢迎来到直播间，今天的价格是九十九元。', language: 'zh' },
    { text: ' こんにちは、世界！', language: 'ja' },
    { text: ' สวัสดีครับ', language: 'th' },
  ],
};

interface RefWord {
  word: string;
  start: number;
  end: number;
  probability: number;
}
interface RefSegment {
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  avg_logprob: number;
  no_speech_prob: number;
  compression_ratio: number;
  temperature: number;
  words: RefWord[];
}
interface RefTranscript {
  clip: string;
  sha256: string;
  without_timestamps: boolean;
  language_forced: boolean;
  language: string;
  language_probability: number;
  top_languages: [string, number][];
  duration: number;
  text: string;
  segments: RefSegment[];
  seconds_runs: number[];
}
interface ReferenceOutput<R> {
  reference: Record<string, unknown>;
  results: R[];
}

async function python(args: string[]): Promise<string> {
  const { stdout } = await run('bash', [join(here, 'setup.sh')], { encoding: 'utf8' });
  const interpreter = stdout.trim().split('\n').pop() ?? '';
  const result = await run(interpreter, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  process.stderr.write(result.stderr);
  return result.stdout;
}

async function toolVersion(command: string, args: string[]): Promise<string> {
  const { stdout } = await run(command, args, { encoding: 'utf8' });
  return stdout.split('\n')[0]?.trim() ?? '';
}

function modelInfo(manifest: ModelManifest, id: string) {
  const entry = findModel(manifest, id);
  return { id, version: entry.version, file: entry.file, sha256: entry.sha256 };
}

/** A CT2 model directory from the cached files: model.bin (base: part1 + part2), config, tokenizer, vocabulary. */
async function assembleModelDir(manifest: ModelManifest, name: ModelName, into: string): Promise<string> {
  const cacheDir = defaultCacheDir({
    ...process.env,
    LIVELENS_HOME: process.env.LIVELENS_HOME ?? join(repoRoot, '.livelens'),
  });
  const dir = join(into, name);
  await mkdir(dir, { recursive: true });
  const paths = new Map<string, string>();
  for (const id of MODELS[name].ids) {
    paths.set(id, await resolveModel(findModel(manifest, id), { cacheDir, fetch: true }));
  }
  const parts = [...paths.entries()]
    .filter(([id]) => /-model(-part\d)?$/.test(id))
    .sort(([a], [b]) => a.localeCompare(b));
  // Each part was checked against its sha256 by resolveModel; the whole is what CTranslate2 loads.
  await writeFile(
    join(dir, 'model.bin'),
    Buffer.concat(await Promise.all(parts.map(([, path]) => readFile(path)))),
  );
  for (const [id, path] of paths) {
    if (parts.some(([p]) => p === id)) continue;
    await copyFile(path, join(dir, findModel(manifest, id).file));
  }
  return dir;
}

/** Lower case, letters and digits only: words for English, characters for Chinese. */
function werUnits(text: string, language: string): string[] {
  const cleaned = text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
  if (language === 'zh') return [...cleaned.replace(/\s+/g, '')];
  return cleaned === '' ? [] : cleaned.split(/\s+/);
}

/** Word (or, for Chinese, character) error rate: Levenshtein distance over reference length. */
function errorRate(reference: string, hypothesis: string, language: string): number {
  const r = werUnits(reference, language);
  const h = werUnits(hypothesis, language);
  let previous = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const current = [i];
    for (let j = 1; j <= h.length; j++) {
      const substitution = (previous[j - 1] as number) + (r[i - 1] === h[j - 1] ? 0 : 1);
      current[j] = Math.min(substitution, (previous[j] as number) + 1, (current[j - 1] as number) + 1);
    }
    previous = current;
  }
  return r.length === 0 ? 0 : (previous[h.length] as number) / r.length;
}

async function writeGolden(name: string, value: unknown): Promise<string> {
  const path = join(goldenDir, name);
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
  return path;
}

function segmentGolden(s: RefSegment) {
  return {
    seek: s.seek,
    start: s.start,
    end: s.end,
    text: s.text,
    tokens: s.tokens,
    avgLogprob: s.avg_logprob,
    noSpeechProb: s.no_speech_prob,
    compressionRatio: s.compression_ratio,
    temperature: s.temperature,
    words: s.words,
  };
}

async function main(): Promise<void> {
  const manifest = await loadManifest();
  const specs = asrClipSuite();
  const clips = new Map<string, GeneratedSpeechClip>();
  for (const spec of specs) clips.set(spec.name, await generateSpeechClip(spec));
  const clip = (name: string) => {
    const c = clips.get(name);
    if (!c) throw new Error(`no clip ${name}`);
    return c;
  };
  const byPath = new Map([...clips.values()].map((c) => [c.path, c]));
  const signal = await generateTestSignal();
  const melInputs = new Map<string, { sha256: string; name: string }>([
    [signal.path, { sha256: signal.sha256, name: 'test-signal' }],
  ]);
  for (const c of clips.values()) melInputs.set(c.path, { sha256: c.sha256, name: c.spec.name });
  const melPath = (name: string) => (name === 'test-signal' ? signal.path : clip(name).path);
  const work = await mkdtemp(join(tmpdir(), 'livelens-asr-goldens-'));
  try {
    const dirs = {
      'whisper-base': await assembleModelDir(manifest, 'whisper-base', work),
      'whisper-tiny-en': await assembleModelDir(manifest, 'whisper-tiny-en', work),
    };
    const generator = {
      speechClipGeneratorVersion: SPEECH_CLIP_GENERATOR_VERSION,
      espeakNg: await toolVersion('espeak-ng', ['--version']),
    };

    // Transcripts: tiny.en on English clips, base on all; both timestamp modes; two runs that must agree.
    const transcripts: ({ model: ModelName } & RefTranscript)[] = [];
    let transcribeReference: Record<string, unknown> = {};
    // With base, the Chinese clips also with the language given (espeak-ng's Mandarin is often detected as
    // Thai or English), so that parity covers Chinese output whatever the detection says.
    const runs: { model: ModelName; language?: string; clips: string[] }[] = [
      { model: 'whisper-tiny-en', clips: specs.filter((s) => s.language === 'en').map((s) => s.name) },
      { model: 'whisper-base', clips: specs.map((s) => s.name) },
      {
        model: 'whisper-base',
        language: 'zh',
        clips: specs.filter((s) => s.language === 'zh').map((s) => s.name),
      },
    ];
    for (const { model, language, clips: names } of runs) {
      const out = JSON.parse(
        await python([
          join(here, 'asr_reference.py'),
          'transcribe',
          '--model-dir',
          dirs[model],
          '--threads',
          '2',
          '--repeat',
          '2',
          ...(language ? ['--language', language] : []),
          ...names.map((n) => clip(n).path),
        ]),
      ) as ReferenceOutput<RefTranscript>;
      const { multilingual: _m, repeat: _r, ...reference } = out.reference;
      transcribeReference = reference;
      for (const r of out.results) {
        if (byPath.get(r.clip)?.sha256 !== r.sha256)
          throw new Error(`transcribe: ${r.clip} changed under us`);
        transcripts.push({ model, ...r });
      }
    }

    const parityPath = await writeGolden('asr-parity.json', {
      $comment:
        'Generated by packages/inference/reference/make-asr-goldens.ts from faster-whisper (asr_reference.py ' +
        'transcribe); do not edit. Each clip is generateSpeechClip(spec) from @livelens/test-support/media; ' +
        'sha256 is of its s16le PCM (espeak-ng output resampled in TypeScript), fed as pcm / 32768.',
      generator,
      reference: transcribeReference,
      models: Object.fromEntries(
        (Object.keys(MODELS) as ModelName[]).map((name) => [
          name,
          { files: MODELS[name].ids.map((id) => modelInfo(manifest, id)) },
        ]),
      ),
      clips: specs.map((spec) => {
        const c = clip(spec.name);
        return {
          name: spec.name,
          language: spec.language,
          text: c.text,
          spec: c.spec,
          sha256: c.sha256,
          samples: c.samples.length,
          durationS: c.durationS,
          lines: c.lines,
        };
      }),
      transcripts: transcripts.map((t) => ({
        clip: byPath.get(t.clip)?.spec.name,
        model: t.model,
        withoutTimestamps: t.without_timestamps,
        languageForced: t.language_forced,
        language: t.language,
        languageProbability: t.language_probability,
        topLanguages: t.top_languages,
        text: t.text,
        segments: t.segments.map(segmentGolden),
      })),
    });

    // Log-mel features.
    const mel: Record<string, unknown>[] = [];
    let melReference: Record<string, unknown> = {};
    let filters: Record<string, string> = {};
    for (const nMels of [80, 128]) {
      const names = MEL_CLIPS.filter((m) => m.nMels === nMels).map((m) => m.clip);
      const out = JSON.parse(
        await python([
          join(here, 'asr_reference.py'),
          'features',
          '--n-mels',
          String(nMels),
          ...names.map(melPath),
        ]),
      ) as ReferenceOutput<Record<string, unknown> & { clip: string; sha256: string; ms: number }> & {
        mel_filters_float32_sha256: Record<string, string>;
      };
      melReference = out.reference;
      filters = out.mel_filters_float32_sha256;
      for (const r of out.results) {
        const c = melInputs.get(r.clip);
        if (c?.sha256 !== r.sha256) throw new Error(`features: ${r.clip} changed under us`);
        const { clip: _clip, ms, ...rest } = r;
        console.log(`features ${c.name} (${nMels} bins): faster-whisper ${ms.toFixed(1)} ms`);
        mel.push({ clip: c.name, nMels, ...rest });
      }
    }
    const { feature_extractor: _fe, ...melRef } = melReference;
    const melGoldenPath = await writeGolden('asr-mel.json', {
      $comment:
        'Generated by packages/inference/reference/make-asr-goldens.ts from faster-whisper FeatureExtractor ' +
        '(asr_reference.py features, padding=160); do not edit. Clips are in asr-parity.json (test-signal is ' +
        'generateTestSignal()). columns[frame] ' +
        'is the whole mel column; float64 is the same recipe in float64 arithmetic.',
      reference: melRef,
      melFiltersFloat32Sha256: filters,
      features: mel,
    });

    // Tokenizer.
    const casesPath = join(work, 'tokenizer-cases.json');
    await writeFile(casesPath, JSON.stringify(TOKENIZER_CASES));
    const tokenizers: Record<string, unknown> = {};
    for (const name of Object.keys(MODELS) as ModelName[]) {
      tokenizers[name] = JSON.parse(
        await python([
          join(here, 'asr_reference.py'),
          'tokenizer',
          '--model-dir',
          dirs[name],
          '--cases',
          casesPath,
        ]),
      );
    }
    const tokenizerPath = await writeGolden('asr-tokenizer.json', {
      $comment:
        'Generated by packages/inference/reference/make-asr-goldens.ts from the tokenizers library and ' +
        'faster_whisper.tokenizer (asr_reference.py tokenizer) on each model’s tokenizer.json; do not edit.',
      models: Object.fromEntries(
        (Object.keys(MODELS) as ModelName[]).map((name) => [
          name,
          modelInfo(manifest, MODELS[name].ids.find((id) => id.endsWith('-tokenizer')) as string),
        ]),
      ),
      tokenizers,
    });

    await run('npx', ['biome', 'format', '--write', parityPath, melGoldenPath, tokenizerPath], {
      cwd: repoRoot,
    });

    console.log(`\nreference: ${JSON.stringify(transcribeReference)}`);
    for (const t of transcripts) {
      const c = byPath.get(t.clip) as GeneratedSpeechClip;
      const rate = errorRate(c.text, t.text, c.spec.language);
      const times = t.seconds_runs.map((s) => s.toFixed(2)).join('/');
      console.log(
        `${c.spec.name.padEnd(15)} ${t.model.padEnd(15)} ts=${t.without_timestamps ? 'off' : 'on '} ` +
          `${t.language}${t.language_forced ? '!' : ' '} ${t.language_probability.toFixed(2)} ${c.spec.language === 'zh' ? 'CER' : 'WER'} ` +
          `${(100 * rate).toFixed(1).padStart(5)}%  ${JSON.stringify(t.text)}  (${times} s)`,
      );
    }
    console.log(`\nwrote ${parityPath}\nwrote ${melGoldenPath}\nwrote ${tokenizerPath}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await mkdir(goldenDir, { recursive: true });
await main();
