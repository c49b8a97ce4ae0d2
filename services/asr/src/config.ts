import { compileVadConfig, type VadOptions } from '@livelens/inference';
import { type ConfigOf, commonConfigFields, env, field, LiveLensError, loadConfig } from '@livelens/runtime';
import { z } from 'zod';

/** The Whisper models the service can run (manifest ids `<model>-onnx-*` in packages/inference/models.json). */
export const WHISPER_MODELS = ['whisper-base', 'whisper-tiny-en'] as const;
export type WhisperModel = (typeof WHISPER_MODELS)[number];

const EXECUTION_PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;

/** A comma-separated list whose items must each be one of `values` (no repeats, at least one). */
const listOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .transform((v) => [
      ...new Set(
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ])
    .pipe(
      z
        .array(z.enum(values, { message: `expected a comma-separated list of ${values.join(', ')}` }))
        .min(1, `expected a comma-separated list of ${values.join(', ')}`),
    );

/** The ASR service's configuration: the shared fields plus its own (the README table is generated from these). */
export const asrConfigFields = {
  ...commonConfigFields,
  modelsDir: field(
    'ASR_MODELS_DIR',
    z.string(),
    'Where the verified models are (`npm run models` puts them there). Empty = $LIVELENS_MODELS_DIR, else $LIVELENS_HOME/models, else ./.livelens/models.',
    '',
  ),
  whisperModel: field(
    'ASR_WHISPER_MODEL',
    env.oneOf(WHISPER_MODELS),
    'Speech recognition model: whisper-base (multilingual, language detection) or whisper-tiny-en (English only, about 3x faster).',
    'whisper-base',
  ),
  language: field(
    'ASR_LANGUAGE',
    z.string().regex(/^([a-z]{2,3})?$/, 'expected a Whisper language code (en, zh, ...) or empty'),
    'Language of the speech, as a Whisper code. Empty = detected per segment (multilingual model; tiny.en is always en).',
    '',
  ),
  beamSize: field(
    'ASR_BEAM_SIZE',
    env.int(1, 10),
    'Beam width of the Whisper decoder; 1 = greedy (fastest).',
    '1',
  ),
  encoderPaddingS: field(
    'ASR_ENCODER_WINDOW',
    z
      .string()
      .regex(/^(full|\d+(\.\d+)?)$/, 'expected full, or seconds of silence after the segment (e.g. 4)')
      .transform((v) => (v === 'full' ? undefined : Number(v)))
      .pipe(z.number().max(30, 'expected at most 30 s of padding').optional()),
    'Encoder input per segment: full = padded to a 30 s window (Whisper as trained); a number = the segment plus that many seconds of silence (with 4 and whisper-base on English: 2.9x less CPU for about the same WER; Mandarin and tiny.en loop, so tiny.en refuses it; docs/benchmarks.md).',
    'full',
  ),
  executionProviders: field(
    'ASR_EXECUTION_PROVIDERS',
    listOf(EXECUTION_PROVIDERS),
    'ONNX Runtime execution providers of Whisper, tried in order (tensorrt, cuda, cpu); the VAD always runs on cpu.',
    'cpu',
  ),
  intraOpThreads: field(
    'ASR_INTRA_OP_THREADS',
    env.int(1, 64),
    'Threads one Whisper inference may use (CPU provider; the VAD uses 1).',
    '2',
  ),
  vadThreshold: field(
    'ASR_VAD_THRESHOLD',
    env.number(0.01, 0.99),
    'Speech probability at or above which a 32 ms window is speech (Silero VAD v5).',
    '0.5',
  ),
  vadMinSpeechMs: field(
    'ASR_VAD_MIN_SPEECH_MS',
    env.int(0, 10_000),
    'A segment with less speech than this is dropped as a click or a cough.',
    '250',
  ),
  vadMinSilenceMs: field(
    'ASR_VAD_MIN_SILENCE_MS',
    env.int(32, 10_000),
    'Silence that closes a segment (and publishes it as final).',
    '400',
  ),
  vadSpeechPadMs: field(
    'ASR_VAD_SPEECH_PAD_MS',
    env.int(0, 2_000),
    'Audio kept before and after the detected speech of a segment.',
    '200',
  ),
  maxSegmentMs: field(
    'ASR_MAX_SEGMENT_MS',
    env.int(2_000, 30_000),
    'The longest segment, padding included; longer speech is split at its longest pause (Whisper reads at most 30 s).',
    '15000',
  ),
  partialIntervalMs: field(
    'ASR_PARTIAL_INTERVAL_MS',
    env.int(0, 30_000),
    'A segment still open this long gets a partial transcript (final=false), and again every interval. 0 = no partials.',
    '3000',
  ),
  idleFlushMs: field(
    'ASR_IDLE_FLUSH_MS',
    env.int(500, 3_600_000),
    'A stream with no chunk for this long is ended: its open segment is published as final and its state freed.',
    '5000',
  ),
  maxStreams: field(
    'ASR_MAX_STREAMS',
    env.int(1, 100_000),
    "Streams one replica holds at once; a further stream's chunks are dead-lettered (resource_exhausted) until one ends.",
    '256',
  ),
  maxChunkMs: field(
    'ASR_MAX_CHUNK_MS',
    env.int(100, 30_000),
    'Longest audio chunk accepted (sizes the per-stream audio ring); a longer one is dead-lettered.',
    '5000',
  ),
  gapToleranceMs: field(
    'ASR_GAP_TOLERANCE_MS',
    env.int(0, 1_000),
    'A chunk starting within this of where the previous one ended continues it; further is a gap (the open segment is ended and a new timeline starts).',
    '50',
  ),
  vadMaxBatchSize: field(
    'ASR_VAD_MAX_BATCH_SIZE',
    env.int(1, 1_024),
    'Chunks (of different streams) per VAD model run at most.',
    '32',
  ),
  vadMaxBatchWaitMs: field(
    'ASR_VAD_MAX_BATCH_WAIT_MS',
    env.int(0, 10_000),
    'How long the first chunk of a VAD batch waits for others before the batch runs anyway.',
    '10',
  ),
  maxInFlight: field(
    'ASR_MAX_IN_FLIGHT',
    env.int(1, 4_096),
    'Chunks being processed at once (consumed, handler not done); past it the consumer pauses fetching.',
    '64',
  ),
  partitionsConcurrently: field(
    'ASR_PARTITIONS_CONCURRENTLY',
    env.int(1, 1_024),
    'Partitions processed at once.',
    '16',
  ),
  groupId: field('ASR_GROUP_ID', env.string(), 'Kafka consumer group of the ASR replicas.', 'livelens-asr'),
  sessionTimeoutMs: field(
    'ASR_SESSION_TIMEOUT_MS',
    env.int(6_000, 300_000),
    "Kafka consumer session timeout: how soon a crashed replica's partitions move to the others.",
    '30000',
  ),
  createTopics: field(
    'ASR_CREATE_TOPICS',
    env.bool(),
    'Create missing topics at start (dev; production pre-creates).',
    'true',
  ),
  topicPartitions: field('ASR_TOPIC_PARTITIONS', env.int(1, 1_024), 'Partitions of topics it creates.', '8'),
} as const;

export type AsrConfig = ConfigOf<typeof asrConfigFields>;

/** The VAD options of a config (the segmenter's, in ms). */
export function vadOptionsOf(
  config: Pick<
    AsrConfig,
    'vadThreshold' | 'vadMinSpeechMs' | 'vadMinSilenceMs' | 'vadSpeechPadMs' | 'maxSegmentMs'
  >,
): VadOptions {
  return {
    threshold: config.vadThreshold,
    minSpeechMs: config.vadMinSpeechMs,
    minSilenceMs: config.vadMinSilenceMs,
    speechPadMs: config.vadSpeechPadMs,
    maxSegmentMs: config.maxSegmentMs,
  };
}

/** Reads and validates the ASR config from the environment (main.ts is its only caller). */
export function loadAsrConfig(source: Readonly<Record<string, string | undefined>> = process.env): AsrConfig {
  const config = loadConfig(asrConfigFields, source);
  // Fields that are each valid can still be impossible together: say which variables, as loadConfig does.
  try {
    compileVadConfig(vadOptionsOf(config));
  } catch (error) {
    throw new LiveLensError(
      `invalid configuration:\n  ASR_MAX_SEGMENT_MS, ASR_VAD_SPEECH_PAD_MS, ASR_VAD_MIN_SPEECH_MS: ${(error as Error).message}`,
      { code: 'invalid_config', retriable: false, cause: error },
    );
  }
  if (config.executionProviders.includes('tensorrt') && config.encoderPaddingS !== undefined) {
    // TensorRT builds an engine per input shape: every new segment length would build one (minutes).
    throw new LiveLensError(
      'invalid configuration:\n  ASR_EXECUTION_PROVIDERS, ASR_ENCODER_WINDOW: tensorrt needs the fixed 30 s encoder window (a new input length rebuilds its engine)',
      { code: 'invalid_config', retriable: false },
    );
  }
  if (config.whisperModel === 'whisper-tiny-en' && config.encoderPaddingS !== undefined) {
    // Measured (bench:asr): tiny.en loops on short encoder windows (209 % WER against 29 % with 30 s).
    throw new LiveLensError(
      `invalid configuration:\n  ASR_WHISPER_MODEL, ASR_ENCODER_WINDOW: whisper-tiny-en needs the full 30 s encoder window (it repeats itself on shorter ones), got ASR_ENCODER_WINDOW=${config.encoderPaddingS}`,
      { code: 'invalid_config', retriable: false },
    );
  }
  return config;
}
