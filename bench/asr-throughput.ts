// Speech recognition throughput per core: our Silero VAD + Whisper on ONNX Runtime (@livelens/inference)
// against the reference runtime (faster-whisper 1.2.1 on CTranslate2 4.8.5, the same weights), same audio,
// same run.
//
//   npm run bench:asr [-- --seconds 60 --speech 0.5 --models base,tiny-en --beams 1,5 --threads 1
//                        --vad-rounds 3 --full-beams 1 --whole-beams 1 --providers cpu --encoder-windows full,4]
//
// Audio: one live stream of `--seconds` of 16 kHz mono, composed by composeSpeechClip (test-support): live-
// commerce sentences in six espeak-ng voices and several rates, laid out with silences of varied length
// so that voiced audio (audibleSpans of each line) is `--speech` of the stream.
//
// Ours: SileroVad (1 intra-op thread) over the stream in 1 s chunks, as the ASR service feeds it, then
// WhisperAsr transcribing each segment the VAD closed, one call per segment (what the service does with a
// final segment), with `--threads` intra-op threads, language "en" given (no detection: faster-whisper would
// otherwise run the encoder twice for it), temperatures [0] (no fallback: the two runtimes then do the same
// work; the segments where fallback would have run are counted from the thresholds), word timestamps on.
// One untimed call first per model and beam size; the VAD runs `--vad-rounds` times over the stream (it is
// cheap, so once would be too short to time well). CPU is process.cpuUsage() of the whole process (main
// thread, the model workers and ONNX Runtime's threads) around each timed part; latency is each transcribe()
// call's wall time; memory the highest VmRSS sampled every 100 ms while a model ran.
//
// Reference: packages/inference/reference/asr_bench.py in a child Python, on the same PCM and the same
// segments (our VAD's), one transcribe() per segment with the same settings (beam, temperature 0, language,
// without_timestamps, word_timestamps, cpu_threads = --threads, float32), of which only the first window is
// consumed: the same work as ours (one encoder pass, decoding, word alignment). That is the main ratio.
// `--full-beams` also consumes every window, i.e. transcribe() as it is, which with word timestamps seeks
// back to the last word and decodes the segment's tail as another window (see asr_bench.py). Its CPU is
// getrusage(RUSAGE_SELF) taken around each timed part inside the process (model load and warm-up excluded);
// its VAD is faster-whisper's own (get_speech_timestamps, Silero v6, offline over the whole audio);
// `--whole-beams` runs faster-whisper the way its users do, on the whole audio with vad_filter=True, which
// packs the speech into 30 s windows instead of one window per segment.
//
// Real-time factor (RTF) per core = CPU seconds / stream seconds; streams per core = 1 / RTF per core (a live
// stream needs its share of a core to keep up); RTF wall = wall seconds / stream seconds. The ratios use CPU.
// Prints Markdown tables and writes bench/results/asr-throughput.json.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  defaultCacheDir,
  type ExecutionProvider,
  findModel,
  loadManifest,
  type ModelManifest,
  resolveModel,
  SileroVad,
  type SpeechSegment,
  WhisperAsr,
  type WhisperPaths,
  type WhisperTranscript,
} from '@livelens/inference';
import { createLogger } from '@livelens/runtime';
import { repoRoot } from '@livelens/test-support';
import {
  audibleSpans,
  composeSpeechClip,
  SPEECH_SAMPLE_RATE,
  synthesizeSpeech,
  type TimedSpeechClip,
  type TimedSpeechLine,
} from '@livelens/test-support/media';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : fallback;
};
const list = (value: string) => value.split(',').filter((v) => v !== '');
const seconds = Number(arg('seconds', '60'));
const speechFraction = Number(arg('speech', '0.5'));
const modelNames = list(arg('models', 'base,tiny-en')) as ModelName[];
const beams = list(arg('beams', '1,5')).map(Number);
const threadCounts = list(arg('threads', '1')).map(Number);
const vadRounds = Number(arg('vad-rounds', '3'));
const fullBeams = list(arg('full-beams', '1')).map(Number);
const wholeBeams = list(arg('whole-beams', '1')).map(Number);
const providers = list(arg('providers', 'cpu')) as ExecutionProvider[];
/** Encoder inputs of ours: `full` (30 s windows, as Whisper was trained) or seconds of padding after a segment. */
const encoderWindows = list(arg('encoder-windows', 'full,4'));
for (const w of encoderWindows)
  if (w !== 'full' && !(Number(w) >= 0 && Number(w) <= 30))
    throw new Error(`--encoder-windows: ${w} is neither full nor 0..30 seconds`);
const paddingOf = (window: string) => (window === 'full' ? undefined : Number(window));
if (!(seconds >= 10 && seconds <= 600)) throw new Error('--seconds must be 10..600');
if (!(speechFraction > 0.1 && speechFraction < 0.9)) throw new Error('--speech must be in (0.1, 0.9)');
for (const m of modelNames)
  if (m !== 'base' && m !== 'tiny-en') throw new Error(`--models: unknown model ${m} (base, tiny-en)`);
for (const [name, values] of Object.entries({
  beams,
  threads: threadCounts,
  'full-beams': fullBeams,
  'whole-beams': wholeBeams,
}))
  if (!values.every((v) => Number.isInteger(v) && v >= 1)) throw new Error(`--${name} must be integers >= 1`);
if (!(Number.isInteger(vadRounds) && vadRounds >= 1)) throw new Error('--vad-rounds must be an integer >= 1');

type ModelName = 'base' | 'tiny-en';
type Row = Record<string, number | string>;

const round = (value: number, digits: number) => +value.toFixed(digits);
/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}
const sum = (values: readonly number[]) => values.reduce((s, v) => s + v, 0);
function rssMb(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}
function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

// ---------------------------------------------------------------------------------------------- audio

/** What a live seller says, spoken by several voices and rates (asrClipSuite's sentences and more). */
const SENTENCES: readonly Omit<TimedSpeechLine, 'atS'>[] = [
  { text: 'Hi everyone, welcome back to the live.', voice: 'en-us+f2' },
  { text: 'Use code SAVE20 at checkout.', voice: 'en-us' },
  { text: 'The price is 29 dollars 99.', voice: 'en-us+f3', wordsPerMinute: 150 },
  { text: 'Link in my bio.', voice: 'en-gb', wordsPerMinute: 140 },
  { text: 'Follow me at live deals for more drops.', voice: 'en-us+m3', wordsPerMinute: 175 },
  { text: 'DM me on WhatsApp to order.', voice: 'en-gb-x-rp', wordsPerMinute: 160 },
  { text: 'Only ten left, buy now before the deal ends.', voice: 'en-us', wordsPerMinute: 190 },
  { text: 'Tonight we have sneakers, handbags and a few surprises.', voice: 'en-us+f2' },
  { text: 'Every order ships tomorrow morning.', voice: 'en-gb', wordsPerMinute: 150 },
  { text: 'That is almost half of the usual price.', voice: 'en-us+m3' },
  { text: 'This jacket comes in black, blue and red.', voice: 'en-us+f3', wordsPerMinute: 170 },
  { text: 'Tap the cart button to add it to your order.', voice: 'en-gb-x-rp' },
  { text: 'Shipping is free on orders over 50 dollars.', voice: 'en-us', wordsPerMinute: 150 },
  { text: 'Drop a heart if you want to see the next one.', voice: 'en-us+f2', wordsPerMinute: 180 },
  { text: 'The flash sale ends in five minutes.', voice: 'en-gb' },
  { text: 'Sizes small to extra large are all in stock.', voice: 'en-us+m3', wordsPerMinute: 160 },
];
/** Relative lengths of the silences after each line (cycled): short pauses and long ones, as a host talks. */
const GAP_WEIGHTS = [1.6, 0.6, 1.1, 0.45, 1.0, 2.2, 0.7, 1.3, 0.5, 0.9];

interface StreamAudio {
  clip: TimedSpeechClip;
  durationS: number;
  /** Voiced seconds (first to last audible 10 ms frame of each line) over the stream. */
  voicedFraction: number;
  text: string;
}

/**
 * Lines taken in turn until their voiced time reaches the target fraction of the stream, with the rest of
 * the stream spread over the gaps between them by GAP_WEIGHTS (0.5 s of silence before the first and after
 * the last line).
 */
async function composeStream(durationS: number, fraction: number): Promise<StreamAudio> {
  const rate = SPEECH_SAMPLE_RATE;
  const chosen: { line: Omit<TimedSpeechLine, 'atS'>; samples: number; voiced: number }[] = [];
  let voiced = 0;
  for (let i = 0; voiced < fraction * durationS * rate; i += 1) {
    const line = SENTENCES[i % SENTENCES.length] as Omit<TimedSpeechLine, 'atS'>;
    const audio = await synthesizeSpeech(line.text, {
      ...(line.voice ? { voice: line.voice } : {}),
      ...(line.wordsPerMinute ? { wordsPerMinute: line.wordsPerMinute } : {}),
    });
    const spans = audibleSpans(audio);
    const v = (spans[spans.length - 1]?.end ?? 0) - (spans[0]?.start ?? 0);
    // Stop at whichever count lands nearer the target.
    if (voiced + v > fraction * durationS * rate && voiced + v / 2 > fraction * durationS * rate) break;
    chosen.push({ line, samples: audio.length, voiced: v });
    voiced += v;
  }
  const edge = Math.round(0.5 * rate);
  const total = Math.round(durationS * rate);
  const free = total - 2 * edge - sum(chosen.map((c) => c.samples));
  const weights = chosen.slice(0, -1).map((_, i) => GAP_WEIGHTS[i % GAP_WEIGHTS.length] as number);
  if (free < 0.3 * rate * weights.length)
    throw new Error(`--seconds ${durationS} leaves too little silence for --speech ${fraction}`);
  const lines: TimedSpeechLine[] = [];
  let at = edge;
  for (const [i, c] of chosen.entries()) {
    lines.push({ ...c.line, atS: at / rate });
    at += c.samples + Math.floor((free * (weights[i] ?? 0)) / sum(weights));
  }
  const clip = await composeSpeechClip({ durationS: total / rate, lines });
  const voicedSamples = sum(clip.utterances.map((u) => u.speech.end - u.speech.start));
  return {
    clip,
    durationS: total / rate,
    voicedFraction: voicedSamples / total,
    text: clip.utterances.map((u) => u.text).join(' '),
  };
}

/** Lower case, letters and digits: the words a word error rate counts. */
function words(text: string): string[] {
  const cleaned = text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
  return cleaned === '' ? [] : cleaned.split(/\s+/);
}
/** Word error rate of `hypothesis` against `reference` (Levenshtein over words / reference words). */
function wer(reference: string, hypothesis: string): number {
  const r = words(reference);
  const h = words(hypothesis);
  let previous = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= h.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (r[i - 1] === h[j - 1] ? 0 : 1);
      current[j] = Math.min(substitution, (previous[j] as number) + 1, (current[j - 1] as number) + 1);
    }
    previous = current;
  }
  return r.length === 0 ? 0 : (previous[h.length] as number) / r.length;
}

// ---------------------------------------------------------------------------------------------- ours

interface VadRun {
  segments: SpeechSegment[];
  /** Per round. */
  cpuS: number;
  wallS: number;
  speechRatio: number;
  peakRssMb: number;
}

/** The stream through the VAD in 1 s chunks, `rounds` times (a new stream id each), after a warm-up chunk. */
async function runVad(vad: SileroVad, pcm: Int16Array, rounds: number): Promise<VadRun> {
  const chunk = SPEECH_SAMPLE_RATE;
  await vad.process([{ streamId: 'warm-up', pcm: pcm.subarray(0, chunk) }]);
  vad.drop('warm-up');
  let peakRss = rssMb('VmRSS');
  let segments: SpeechSegment[] = [];
  let speechRatio = 0;
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  for (let r = 0; r < rounds; r += 1) {
    const streamId = `bench-${r}`;
    const found: SpeechSegment[] = [];
    for (let at = 0; at < pcm.length; at += chunk) {
      const [result] = await vad.process([{ streamId, pcm: pcm.subarray(at, at + chunk) }]);
      found.push(...(result?.segments ?? []));
    }
    const end = await vad.flush(streamId);
    found.push(...end.segments);
    speechRatio = end.speechRatio;
    if (r > 0 && JSON.stringify(found) !== JSON.stringify(segments))
      throw new Error('the VAD found different segments on the same audio');
    segments = found;
    peakRss = Math.max(peakRss, rssMb('VmRSS'));
  }
  return {
    segments,
    cpuS: cpuSince(cpuStart) / rounds,
    wallS: (performance.now() - wallStart) / 1000 / rounds,
    speechRatio,
    peakRssMb: peakRss,
  };
}

interface WhisperRun {
  model: ModelName;
  beam: number;
  /** `full`, or seconds of encoder padding after each segment. */
  window: string;
  threads: number;
  cpuS: number;
  wallS: number;
  latencyMs: number[];
  texts: string[];
  /** Sums over the segments, ms. */
  timings: WhisperTranscript['timings'];
  /** Segments whose temperature-0 result fails the fallback thresholds (compression > 2.4, log-prob < -1). */
  wouldFallBack: number;
  peakRssMb: number;
  provider: string;
}

async function runWhisper(
  asr: WhisperAsr,
  model: ModelName,
  threads: number,
  beam: number,
  segments: readonly Float32Array[],
  window: string,
): Promise<WhisperRun> {
  const encoderPaddingS = paddingOf(window);
  const options = {
    beamSize: beam,
    language: 'en',
    temperatures: [0],
    ...(encoderPaddingS === undefined ? {} : { encoderPaddingS }),
  };
  await asr.transcribe(segments[0] as Float32Array, options);
  let peakRss = rssMb('VmRSS');
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMb('VmRSS'));
  }, 100);
  const latencyMs: number[] = [];
  const results: WhisperTranscript[] = [];
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  try {
    for (const audio of segments) {
      const start = performance.now();
      results.push(await asr.transcribe(audio, options));
      latencyMs.push(performance.now() - start);
    }
  } finally {
    clearInterval(sampler);
  }
  const wallS = (performance.now() - wallStart) / 1000;
  const cpuS = cpuSince(cpuStart);
  const timing = (key: keyof WhisperTranscript['timings']) => sum(results.map((r) => r.timings[key]));
  return {
    model,
    beam,
    window,
    threads,
    cpuS,
    wallS,
    latencyMs,
    texts: results.map((r) => r.text.trim()),
    timings: {
      featuresMs: timing('featuresMs'),
      encoderMs: timing('encoderMs'),
      decodeMs: timing('decodeMs'),
      alignMs: timing('alignMs'),
    },
    wouldFallBack: results.filter((r) => !r.noSpeech && (r.compressionRatio > 2.4 || r.avgLogProb < -1))
      .length,
    peakRssMb: Math.max(peakRss, rssMb('VmRSS')),
    provider: asr.provider,
  };
}

// ----------------------------------------------------------------------------------------- reference

interface ReferenceSegmentsRun {
  beam: number;
  cpu_s: number;
  wall_s: number;
  latency_ms: number[];
  texts: string[];
  /** Windows decoded over all segments. */
  windows: number;
}
interface ReferenceOutput {
  reference: Record<string, unknown>;
  audio_s: number;
  vad: { rounds: number; cpu_s: number; wall_s: number; chunks: [number, number][] };
  segments: ReferenceSegmentsRun[];
  full: ReferenceSegmentsRun[];
  whole: { beam: number; cpu_s: number; wall_s: number; text: string; segments: number }[];
  peak_rss_mb: number;
}

function execute(command: string, argv: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      // The reference's progress lines (one per timed part) go to our stderr as they come.
      process.stderr.write(chunk);
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${argv.slice(0, 3).join(' ')} … exited with ${code}:\n${stderr}`));
    });
  });
}

/** The CTranslate2 files of each model (base's model.bin comes in two parts, concatenated here). */
const CT2_IDS: Record<ModelName, string[]> = {
  base: [
    'whisper-base-ct2-model-part1',
    'whisper-base-ct2-model-part2',
    'whisper-base-ct2-config',
    'whisper-base-ct2-tokenizer',
    'whisper-base-ct2-vocabulary',
  ],
  'tiny-en': [
    'whisper-tiny-en-ct2-model',
    'whisper-tiny-en-ct2-config',
    'whisper-tiny-en-ct2-tokenizer',
    'whisper-tiny-en-ct2-vocabulary',
  ],
};

async function ct2Dir(
  manifest: ModelManifest,
  resolve: (id: string) => Promise<string>,
  model: ModelName,
  into: string,
): Promise<string> {
  const dir = join(into, model);
  await mkdir(dir, { recursive: true });
  const ids = CT2_IDS[model];
  const parts = ids.filter((id) => /-model(-part\d)?$/.test(id)).sort();
  // Each part was checked against its sha256 by resolveModel; the whole is what CTranslate2 loads.
  const bytes = await Promise.all(parts.map(async (id) => readFile(await resolve(id))));
  await writeFile(join(dir, 'model.bin'), Buffer.concat(bytes));
  for (const id of ids.filter((i) => !parts.includes(i)))
    await copyFile(await resolve(id), join(dir, findModel(manifest, id).file));
  return dir;
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const logger = createLogger({ service: 'bench-asr', level: 'warn' });
  const loadBefore = loadavg();
  const manifest = await loadManifest();
  const cacheDir = defaultCacheDir({
    ...process.env,
    LIVELENS_HOME: process.env.LIVELENS_HOME ?? join(repoRoot, '.livelens'),
  });
  const resolve = (id: string) => resolveModel(findModel(manifest, id), { cacheDir, fetch: true });
  const onnxPaths = async (model: ModelName): Promise<WhisperPaths> => ({
    encoderPath: await resolve(`whisper-${model}-onnx-encoder`),
    decoderPath: await resolve(`whisper-${model}-onnx-decoder`),
    tokenizerPath: await resolve(`whisper-${model}-onnx-tokenizer`),
    configPath: await resolve(`whisper-${model}-onnx-generation-config`),
  });
  const setup = await execute('bash', [join(repoRoot, 'packages/inference/reference/setup.sh')]);
  const python = setup.stdout.trim().split('\n').pop() ?? '';

  const stream = await composeStream(seconds, speechFraction);
  const audioS = stream.durationS;
  console.error(
    `stream: ${audioS.toFixed(1)} s, ${stream.clip.utterances.length} lines, voiced ${(100 * stream.voicedFraction).toFixed(1)} %`,
  );

  const work = await mkdtemp(join(tmpdir(), 'livelens-bench-asr-'));
  try {
    const pcmPath = join(work, 'stream.s16');
    const pcm = stream.clip.pcm;
    await writeFile(pcmPath, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));

    const rows: Row[] = [];
    const ratios: Row[] = [];
    const agreement: string[] = [];
    const raw: Record<string, unknown>[] = [];
    let referenceVersion: Record<string, unknown> = {};
    let vadProvider = '';
    let whisperProvider = '';

    // ---- VAD (ours; the segments feed both Whisper runtimes)
    const vad = await SileroVad.create(
      await resolve('silero-vad-v5'),
      { intraOpThreads: 1, executionProviders: providers },
      logger,
    );
    let vadRun: VadRun;
    try {
      vadRun = await runVad(vad, pcm, vadRounds);
      vadProvider = vad.provider;
    } finally {
      await vad.close();
    }
    const spans = vadRun.segments.map((s) => [s.start, s.end] as [number, number]);
    if (spans.length === 0) throw new Error('the VAD found no speech');
    const segmentAudio = spans.map(([s, e]) => stream.clip.samples.slice(s, e));
    const segmentS = sum(spans.map(([s, e]) => e - s)) / SPEECH_SAMPLE_RATE;
    const segmentsPath = join(work, 'segments.json');
    await writeFile(segmentsPath, JSON.stringify(spans));
    console.error(
      `VAD: ${spans.length} segments, ${segmentS.toFixed(1)} s to transcribe (speech ratio ${vadRun.speechRatio.toFixed(3)}), ${(vadRun.cpuS * 1000).toFixed(0)} ms CPU per pass`,
    );

    const streamRow = (
      part: string,
      implementation: string,
      model: string,
      beam: number | string,
      threads: number | string,
      cpuS: number,
      wallS: number,
      extra: Partial<Row> = {},
    ): Row => ({
      part,
      implementation,
      model,
      beam,
      threads,
      'RTF per core (CPU)': round(cpuS / audioS, 4),
      'RTF wall': round(wallS / audioS, 4),
      'streams per core': round(audioS / cpuS, 1),
      'CPU s per segment-s': extra['CPU s per segment-s'] ?? '',
      'latency p50 ms': extra['latency p50 ms'] ?? '',
      'latency p95 ms': extra['latency p95 ms'] ?? '',
      'peak RSS MB': extra['peak RSS MB'] ?? '',
      'WER vs script': extra['WER vs script'] ?? '',
    });

    const oursVadLabel = `ours (Silero v5, onnxruntime-node ${vadProvider}, 1 s chunks)`;
    rows.push(
      streamRow('VAD', oursVadLabel, 'silero-vad-v5', '', 1, vadRun.cpuS, vadRun.wallS, {
        'peak RSS MB': round(vadRun.peakRssMb, 0),
      }),
    );
    let vadReferenceAdded = false;
    const combined: Row[] = [];

    for (const threads of threadCounts) {
      for (const model of modelNames) {
        const ct2 = await ct2Dir(manifest, resolve, model, work);
        const reference = JSON.parse(
          (
            await execute(python, [
              join(repoRoot, 'packages/inference/reference/asr_bench.py'),
              '--model-dir',
              ct2,
              '--pcm',
              pcmPath,
              '--segments',
              segmentsPath,
              '--beams',
              beams.join(','),
              '--threads',
              String(threads),
              '--language',
              'en',
              '--vad-rounds',
              String(vadRounds),
              '--full-beams',
              fullBeams.join(','),
              '--whole-beams',
              wholeBeams.join(','),
            ])
          ).stdout,
        ) as ReferenceOutput;
        referenceVersion = reference.reference;
        const refVadCpuS = reference.vad.cpu_s / reference.vad.rounds;
        const refVadWallS = reference.vad.wall_s / reference.vad.rounds;
        if (!vadReferenceAdded) {
          vadReferenceAdded = true;
          rows.push(
            streamRow(
              'VAD',
              'reference (faster-whisper get_speech_timestamps, Silero v6, offline)',
              'silero-vad-v6',
              '',
              1,
              refVadCpuS,
              refVadWallS,
            ),
          );
          agreement.push(
            `VAD: ours ${spans.length} segments, faster-whisper's own VAD ${reference.vad.chunks.length} chunks on the same audio`,
          );
        }
        await rm(ct2, { recursive: true, force: true });

        const rssBeforeModelMb = rssMb('VmRSS');
        const asr = await WhisperAsr.create(
          await onnxPaths(model),
          { modelId: `whisper-${model}`, intraOpThreads: threads, executionProviders: providers },
          logger,
        );
        const ours: WhisperRun[] = [];
        try {
          for (const beam of beams)
            for (const window of encoderWindows) {
              const run = await runWhisper(asr, model, threads, beam, segmentAudio, window);
              whisperProvider = run.provider;
              ours.push(run);
              console.error(
                `ours ${model} beam ${beam} window ${window} threads ${threads}: ${run.cpuS.toFixed(2)} CPU s, ${run.wallS.toFixed(2)} s wall`,
              );
            }
        } finally {
          await asr.close();
        }

        for (const run of ours) {
          const ref = reference.segments.find((r) => r.beam === run.beam);
          const windowLabel = run.window === 'full' ? '' : `, segment + ${run.window} s encoder window`;
          // The reference rows once per beam (with its first run of ours).
          const firstOfBeam = run === ours.find((o) => o.beam === run.beam);
          if (!ref) throw new Error(`the reference has no beam ${run.beam} run`);
          const modelLabel = model === 'base' ? 'whisper-base' : 'whisper-tiny.en';
          rows.push(
            streamRow(
              'Whisper',
              `ours (onnxruntime-node, ${run.provider}${windowLabel})`,
              modelLabel,
              run.beam,
              threads,
              run.cpuS,
              run.wallS,
              {
                'CPU s per segment-s': round(run.cpuS / segmentS, 3),
                'latency p50 ms': round(percentile(run.latencyMs, 50), 0),
                'latency p95 ms': round(percentile(run.latencyMs, 95), 0),
                'peak RSS MB': round(run.peakRssMb, 0),
                'WER vs script': `${round(100 * wer(stream.text, run.texts.join(' ')), 1)} %`,
              },
            ),
          );
          const referenceRow = (label: string, r: ReferenceSegmentsRun) =>
            streamRow('Whisper', label, modelLabel, r.beam, threads, r.cpu_s, r.wall_s, {
              'CPU s per segment-s': round(r.cpu_s / segmentS, 3),
              'latency p50 ms': round(percentile(r.latency_ms, 50), 0),
              'latency p95 ms': round(percentile(r.latency_ms, 95), 0),
              'peak RSS MB': round(reference.peak_rss_mb, 0),
              'WER vs script': `${round(100 * wer(stream.text, r.texts.join(' ')), 1)} %`,
            });
          if (firstOfBeam)
            rows.push(referenceRow('reference (faster-whisper, first window per segment)', ref));
          const full = reference.full.find((r) => r.beam === run.beam);
          if (full && firstOfBeam)
            rows.push(
              referenceRow(
                `reference (faster-whisper transcribe() as is: ${full.windows} windows for ${spans.length} segments)`,
                full,
              ),
            );
          const oursTotal = vadRun.cpuS + run.cpuS;
          const refTotal = refVadCpuS + ref.cpu_s;
          combined.push(
            streamRow(
              'VAD + Whisper',
              `ours${windowLabel}`,
              modelLabel,
              run.beam,
              threads,
              oursTotal,
              vadRun.wallS + run.wallS,
            ),
          );
          if (firstOfBeam)
            combined.push(
              streamRow(
                'VAD + Whisper',
                'reference (its VAD + the same segments)',
                modelLabel,
                run.beam,
                threads,
                refTotal,
                refVadWallS + ref.wall_s,
              ),
            );
          const whole = reference.whole.find((w) => w.beam === run.beam);
          if (whole && firstOfBeam)
            combined.push(
              streamRow(
                'VAD + Whisper',
                'reference, vad_filter=True on the whole stream (packed 30 s windows)',
                modelLabel,
                run.beam,
                threads,
                whole.cpu_s,
                whole.wall_s,
                { 'WER vs script': `${round(100 * wer(stream.text, whole.text), 1)} %` },
              ),
            );
          ratios.push({
            model: modelLabel,
            beam: run.beam,
            'encoder window': run.window === 'full' ? '30 s' : `segment + ${run.window} s`,
            threads,
            'Whisper, same segments': round(ref.cpu_s / run.cpuS, 2),
            'Whisper, same segments (wall)': round(ref.wall_s / run.wallS, 2),
            'VAD + Whisper': round(refTotal / oursTotal, 2),
            'Whisper vs transcribe() as is': full ? round(full.cpu_s / run.cpuS, 2) : 'n/a',
            'vs faster-whisper vad_filter=True (packed)': whole ? round(whole.cpu_s / oursTotal, 2) : 'n/a',
          });
          const same = run.texts.filter((t, i) => t === ref.texts[i]).length;
          const differ = run.texts
            .map((t, i) => ({ i, t, r: ref.texts[i] ?? '' }))
            .filter((d) => d.t !== d.r)
            .map((d) => `#${d.i} ours "${d.t}" vs "${d.r}"`);
          agreement.push(
            `${modelLabel} beam ${run.beam}${windowLabel} (${threads} thread${threads > 1 ? 's' : ''}): ${same}/${run.texts.length} segments with identical text${differ.length ? ` (differ: ${differ.join('; ')})` : ''}; temperature fallback would retry ${run.wouldFallBack}`,
          );
          if (full && firstOfBeam) {
            const extra = full.texts
              .map((t, i) => ({ i, t, first: ref.texts[i] ?? '' }))
              .filter((d) => d.t !== d.first)
              .map((d) => `#${d.i} "${d.t.slice(d.first.length).trim()}"`);
            agreement.push(
              `${modelLabel} beam ${run.beam}: faster-whisper's transcribe() as is decoded ${full.windows} windows for ${spans.length} segments; text added by the extra windows: ${extra.length ? extra.join('; ') : 'none'}`,
            );
          }
          raw.push({
            model,
            beam: run.beam,
            threads,
            ours: { ...run, rssBeforeModelMb },
            reference: ref,
            referenceFull: full ?? null,
            referenceWhole: whole ?? null,
          });
        }
      }
    }
    rows.push(...combined);

    const table = (items: Row[]) => {
      const headers = Object.keys(items[0] ?? {});
      return [
        `| ${headers.join(' | ')} |`,
        `|${headers.map(() => '---').join('|')}|`,
        ...items.map((r) => `| ${headers.map((h) => r[h]).join(' | ')} |`),
      ].join('\n');
    };
    const loadAfter = loadavg();
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
    const versions = `onnxruntime-node ${readPackageVersion('onnxruntime-node')} (${whisperProvider}) vs faster-whisper ${String(referenceVersion.faster_whisper)} / CTranslate2 ${String(referenceVersion.ctranslate2)} (Python ${String(referenceVersion.python)})`;
    const load = `load average ${loadBefore[0]?.toFixed(2)} before, ${loadAfter[0]?.toFixed(2)} after (1 min)`;
    const audio = `${audioS.toFixed(1)} s stream, ${stream.clip.utterances.length} lines, ${(100 * stream.voicedFraction).toFixed(1)} % voiced; VAD: ${spans.length} segments, ${segmentS.toFixed(1)} s transcribed (${(100 * (segmentS / audioS)).toFixed(1)} % of the stream, padding included)`;
    console.log(
      `\nASR throughput per core, VAD + Whisper (float32, language en, temperature 0, word timestamps) on one live stream ` +
        `(${audio}; ${machine}; ${versions}; ${load})\n\n${table(rows)}\n\n` +
        `Ratios, reference CPU / ours CPU (> 1: ours needs less CPU per stream second; same run):\n\n${table(ratios)}\n\n` +
        `Output check:\n${agreement.map((a) => `- ${a}`).join('\n')}`,
    );
    mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
    writeFileSync(
      join(repoRoot, 'bench/results/asr-throughput.json'),
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine,
          versions,
          reference: referenceVersion,
          settings: {
            seconds,
            speechFraction,
            models: modelNames,
            beams,
            threads: threadCounts,
            vadRounds,
            fullBeams,
            wholeBeams,
            providers,
            vadProvider,
            whisperProvider,
          },
          stream: {
            durationS: audioS,
            voicedFraction: stream.voicedFraction,
            lines: stream.clip.utterances.map((u) => ({
              text: u.text,
              speechS: [u.speech.start / SPEECH_SAMPLE_RATE, u.speech.end / SPEECH_SAMPLE_RATE],
            })),
            vadSegments: vadRun.segments,
            vadSpeechRatio: vadRun.speechRatio,
            segmentS,
          },
          loadAverage: { before: loadBefore, after: loadAfter },
          rows,
          ratios,
          agreement,
          raw,
        },
        null,
        2,
      ),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function readPackageVersion(name: string): string {
  try {
    const path = join(repoRoot, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
