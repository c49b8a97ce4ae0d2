import { type ConfigOf, commonConfigFields, env, field, loadConfig } from '@livelens/runtime';
import { z } from 'zod';

/** The models the analyzer can run on a frame. */
export const ANALYSIS_MODELS = ['ocr', 'nsfw'] as const;
export type AnalysisModel = (typeof ANALYSIS_MODELS)[number];

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

/** The frame analyzer's configuration: the shared fields plus its own (the README table is generated from these). */
export const frameAnalyzerConfigFields = {
  ...commonConfigFields,
  modelsDir: field(
    'FRAME_ANALYZER_MODELS_DIR',
    z.string(),
    'Where the verified models are (`npm run models` puts them there). Empty = $LIVELENS_MODELS_DIR, else $LIVELENS_HOME/models, else ./.livelens/models.',
    '',
  ),
  models: field(
    'FRAME_ANALYZER_MODELS',
    listOf(ANALYSIS_MODELS),
    'Models run on every frame: ocr (PP-OCRv4 text), nsfw (open_nsfw image risk).',
    'ocr,nsfw',
  ),
  executionProviders: field(
    'FRAME_ANALYZER_EXECUTION_PROVIDERS',
    listOf(EXECUTION_PROVIDERS),
    'ONNX Runtime execution providers, tried in order (tensorrt, cuda, cpu); the one that loads is logged and reported in every analysis.',
    'cpu',
  ),
  intraOpThreads: field(
    'FRAME_ANALYZER_INTRA_OP_THREADS',
    env.int(1, 64),
    'Threads one inference may use in each OCR model session (CPU provider; open_nsfw uses 1).',
    '2',
  ),
  maxBatchSize: field(
    'FRAME_ANALYZER_MAX_BATCH_SIZE',
    env.int(1, 256),
    'Frames per model batch at most; a batch starts as soon as this many wait.',
    '8',
  ),
  maxBatchWaitMs: field(
    'FRAME_ANALYZER_MAX_BATCH_WAIT_MS',
    env.int(0, 10_000),
    'How long the first frame of a batch waits for others before the batch runs anyway.',
    '50',
  ),
  maxFrameAgeMs: field(
    'FRAME_ANALYZER_MAX_FRAME_AGE_MS',
    env.int(0, 86_400_000),
    'A frame captured longer ago than this when its batch is about to run is shed (SHED_STALE, no model runs). 0 = never shed.',
    '10000',
  ),
  maxInFlight: field(
    'FRAME_ANALYZER_MAX_IN_FLIGHT',
    env.int(1, 4096),
    'Frames being processed at once (consumed, not yet acknowledged); past it the consumer pauses fetching.',
    '32',
  ),
  partitionsConcurrently: field(
    'FRAME_ANALYZER_PARTITIONS_CONCURRENTLY',
    env.int(1, 1024),
    'Partitions processed at once; streams of partitions not being processed cannot join a batch.',
    '16',
  ),
  groupId: field(
    'FRAME_ANALYZER_GROUP_ID',
    env.string(),
    'Kafka consumer group of the analyzer replicas.',
    'livelens-frame-analyzer',
  ),
  sessionTimeoutMs: field(
    'FRAME_ANALYZER_SESSION_TIMEOUT_MS',
    env.int(6_000, 300_000),
    "Kafka consumer session timeout: how soon a crashed replica's partitions move to the others.",
    '30000',
  ),
  ocrDetMaxSide: field(
    'FRAME_ANALYZER_OCR_DET_MAX_SIDE',
    env.int(32, 4096),
    'OCR text detection input: longer side scaled down to at most this (then to multiples of 32).',
    '960',
  ),
  ocrMinConfidence: field(
    'FRAME_ANALYZER_OCR_MIN_CONFIDENCE',
    env.number(0, 1),
    'OCR lines recognised with a lower confidence are dropped.',
    '0.5',
  ),
  createTopics: field(
    'FRAME_ANALYZER_CREATE_TOPICS',
    env.bool(),
    'Create missing topics at start (dev; production pre-creates).',
    'true',
  ),
  topicPartitions: field(
    'FRAME_ANALYZER_TOPIC_PARTITIONS',
    env.int(1, 1024),
    'Partitions of topics it creates.',
    '8',
  ),
} as const;

export type FrameAnalyzerConfig = ConfigOf<typeof frameAnalyzerConfigFields>;

/** Reads and validates the frame analyzer config from the environment (main.ts is its only caller). */
export function loadFrameAnalyzerConfig(
  source: Readonly<Record<string, string | undefined>> = process.env,
): FrameAnalyzerConfig {
  return loadConfig(frameAnalyzerConfigFields, source);
}
