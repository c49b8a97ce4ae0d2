import { type AudioChunkSchema, prefixedTopics } from '@livelens/contracts';
import type { ConsumerLoop, KafkaClient, Logger, Publisher } from '@livelens/runtime';
import type { Registry } from 'prom-client';
import type { AsrConfig } from './config.js';
import { type AsrMetrics, createAsrMetrics } from './metrics.js';
import type { AsrModels } from './models.js';
import { AsrPipeline } from './pipeline.js';

export {
  type AsrConfig,
  asrConfigFields,
  loadAsrConfig,
  vadOptionsOf,
  WHISPER_MODELS,
  type WhisperModel,
} from './config.js';
export type { AsrMetrics, TranscriptKind } from './metrics.js';
export {
  type AsrModels,
  closeAsrModels,
  type LoadModelsOptions,
  loadAsrModels,
  type ModelInfo,
  type SpeechRecognizer,
  VAD_MODEL_ID,
  type VoiceActivityDetector,
  WHISPER_PARTS,
  whisperModelIds,
} from './models.js';
export { AsrPipeline, type AsrPipelineDeps, type AsrPipelineOptions } from './pipeline.js';
export {
  type ChunkEntry,
  type Continuity,
  type PendingSegment,
  SAMPLES_PER_MS,
  type SegmentEndReason,
  StreamTimeline,
  segmentIdOf,
} from './timeline.js';

export interface AsrDeps {
  /** Builds the consumer loop over the audio topic. */
  kafka: KafkaClient;
  /** Publishes transcripts and dead letters. */
  publisher: Publisher;
  /** Loaded models (`loadAsrModels`); their owner closes them after `stop()`. */
  models: AsrModels;
  logger: Logger;
  registry: Registry;
  /** Wall clock, Unix ms (tests move it to make streams idle). @default Date.now */
  now?: () => number;
}

export interface AsrServiceHandle {
  readonly metrics: AsrMetrics;
  readonly pipeline: AsrPipeline;
  readonly loop: ConsumerLoop<typeof AudioChunkSchema>;
  /** The same loop, as the process entry (runConsumerService) watches a service's loops. */
  readonly loops: readonly ConsumerLoop<typeof AudioChunkSchema>[];
  /** Joins the consumer group, starts transcribing and checking for idle streams. */
  start(): Promise<void>;
  /** For /readyz: resolves when the consumer runs (the models are loaded by construction), throws why not. */
  ready(): Promise<void>;
  /** For /healthz: false once the consumer loop has failed for good, or a model's worker is gone for good. */
  live(): { ok: boolean; reason?: string };
  /**
   * Graceful stop: the idle check stops, the consumer stops fetching, in-flight chunks finish (the finals they
   * close are published) and are committed up to the commit limit; then the model queues close. Open segments
   * are not flushed: their chunks are not committed, so the next owner of the partition replays them and
   * publishes the whole utterance (a flush here would publish it cut in two).
   */
  stop(drainTimeoutMs?: number): Promise<void>;
}

/** The ASR service, built from its dependencies (main.ts wires the real ones; tests can too). */
export function createAsrService(deps: AsrDeps, config: AsrConfig): AsrServiceHandle {
  const logger = deps.logger.child({ component: 'asr' });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  // The gauges read the pipeline at scrape time, by when it exists.
  const metrics = createAsrMetrics(deps.registry, {
    vadQueueDepth: () => pipeline.vadBatcher.queueDepth,
    whisperQueueDepth: () => pipeline.whisperBatcher.queueDepth,
    streams: () => pipeline.streamCount,
  });
  const pipeline = new AsrPipeline(
    {
      models: deps.models,
      publisher: deps.publisher,
      transcripts: topics.transcripts,
      metrics,
      logger,
      ...(deps.now ? { now: deps.now } : {}),
    },
    config,
  );

  // One record at a time per stream (the loop chains records by key), many streams at once. The handler
  // resolves once the chunk is taken in and the finals it closed are acknowledged; the audio of a segment
  // still open is only in memory, so the commit limit keeps its chunks uncommitted (nothing lost on restart).
  const loop = deps.kafka.consumerLoop(topics.audio, (record) => pipeline.handle(record), {
    groupId: config.groupId,
    sessionTimeoutMs: config.sessionTimeoutMs,
    heartbeatIntervalMs: Math.min(3_000, Math.floor(config.sessionTimeoutMs / 3)),
    service: 'asr',
    deadLetters: deps.publisher,
    dlqTopic: topics.dlq,
    maxInFlight: config.maxInFlight,
    partitionsConsumedConcurrently: config.partitionsConcurrently,
    commitLimit: (topic, partition) => pipeline.commitLimit(topic, partition),
    onRebalancing: () => pipeline.rebalancing(),
    onAssignment: (partitions) => {
      pipeline
        .retainPartitions(topics.audio.name, partitions)
        .catch((error: unknown) =>
          logger.error({ err: error }, 'dropping the streams of lost partitions failed'),
        );
    },
  });

  let idleTimer: NodeJS.Timeout | undefined;
  let idleCheck: Promise<void> | undefined;
  const checkIdle = () => {
    if (idleCheck) return;
    idleCheck = pipeline
      .flushIdle()
      .catch((error: unknown) => logger.warn({ err: error }, 'idle check failed'))
      .finally(() => {
        idleCheck = undefined;
      });
  };

  return {
    metrics,
    pipeline,
    loop,
    loops: [loop],
    async start() {
      await loop.start();
      idleTimer = setInterval(checkIdle, Math.min(1_000, Math.max(100, config.idleFlushMs / 4)));
      idleTimer.unref();
      logger.info(
        {
          topic: topics.audio.name,
          group: config.groupId,
          vad: deps.models.vad.model.id,
          whisper: deps.models.whisper.model.id,
          provider: deps.models.whisper.recognizer.provider,
          language: config.language || 'detect',
          partialIntervalMs: config.partialIntervalMs,
          idleFlushMs: config.idleFlushMs,
          maxStreams: config.maxStreams,
          maxInFlight: config.maxInFlight,
        },
        'asr consuming',
      );
    },
    async ready() {
      if (loop.state !== 'running') throw new Error(`consumer is ${loop.state}`);
    },
    live() {
      if (loop.state === 'failed')
        return { ok: false, reason: `consumer failed: ${loop.failure?.message ?? 'unknown'}` };
      // A model whose worker died and could not be restarted: every chunk would fail; replace the process.
      const dead = deps.models.vad.detector.failure ?? deps.models.whisper.recognizer.failure;
      if (dead) return { ok: false, reason: `model worker failed: ${dead.message}` };
      return { ok: true };
    },
    async stop(drainTimeoutMs = Math.max(1_000, config.shutdownTimeoutMs - 5_000)) {
      clearInterval(idleTimer);
      await idleCheck;
      await loop.drain(drainTimeoutMs);
      await pipeline.close();
      logger.info({ streams: pipeline.streamCount }, 'asr stopped');
    },
  };
}
