import { type FrameAnalysis, type FrameSampleSchema, prefixedTopics } from '@livelens/contracts';
import { MicroBatcher } from '@livelens/inference';
import type { ConsumerLoop, KafkaClient, Logger, Publisher } from '@livelens/runtime';
import type { Registry } from 'prom-client';
import { createFrameAnalyzer, type FrameJob, shedIfStale } from './analyzer.js';
import type { FrameAnalyzerConfig } from './config.js';
import { createFrameAnalyzerMetrics, type FrameAnalyzerMetrics } from './metrics.js';
import type { FrameModels } from './models.js';

export type { FrameJob } from './analyzer.js';
export {
  ANALYSIS_MODELS,
  type AnalysisModel,
  type FrameAnalyzerConfig,
  frameAnalyzerConfigFields,
  loadFrameAnalyzerConfig,
} from './config.js';
export type { FrameAnalyzerMetrics } from './metrics.js';
export {
  closeFrameModels,
  type FrameModels,
  type ImageRiskClassifier,
  type LoadModelsOptions,
  loadFrameModels,
  MODEL_IDS,
  type ModelInfo,
  type TextReader,
} from './models.js';

export interface FrameAnalyzerDeps {
  /** Builds the consumer loop over the frames topic. */
  kafka: KafkaClient;
  /** Publishes analyses and dead letters. */
  publisher: Publisher;
  /** Loaded models (`loadFrameModels`); their owner closes them after `stop()`. */
  models: FrameModels;
  logger: Logger;
  registry: Registry;
  /** Wall clock, Unix ms (tests move it to make frames stale). @default Date.now */
  now?: () => number;
}

export interface FrameAnalyzerServiceHandle {
  readonly metrics: FrameAnalyzerMetrics;
  readonly batcher: MicroBatcher<FrameJob, FrameAnalysis>;
  readonly loop: ConsumerLoop<typeof FrameSampleSchema>;
  /** The same loop, as the process entry (runConsumerService) watches a service's loops. */
  readonly loops: readonly ConsumerLoop<typeof FrameSampleSchema>[];
  /** Joins the consumer group and starts analysing. */
  start(): Promise<void>;
  /** For /readyz: resolves when the consumer runs (the models are loaded by construction), throws why not. */
  ready(): Promise<void>;
  /** For /healthz: false once the consumer loop has failed for good (the process should be restarted). */
  live(): { ok: boolean; reason?: string };
  /**
   * Graceful stop: the consumer stops fetching, in-flight frames finish their batches, their analyses are
   * acknowledged and their offsets committed; then the batcher closes. Frames cut short by `drainTimeoutMs`
   * are not committed, so the next owner of the partition analyses them.
   */
  stop(drainTimeoutMs?: number): Promise<void>;
}

/** The frame analyzer, built from its dependencies (main.ts wires the real ones; tests can too). */
export function createFrameAnalyzerService(
  deps: FrameAnalyzerDeps,
  config: FrameAnalyzerConfig,
): FrameAnalyzerServiceHandle {
  const logger = deps.logger.child({ component: 'frame-analyzer' });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  // The gauge reads the batcher's depth at scrape time, by when the batcher exists.
  const metrics = createFrameAnalyzerMetrics(deps.registry, () => batcher.queueDepth);
  const analyze = createFrameAnalyzer(
    deps.models,
    { maxFrameAgeMs: config.maxFrameAgeMs, ...(deps.now ? { now: deps.now } : {}) },
    { metrics, logger },
  );
  const batcher = new MicroBatcher<FrameJob, FrameAnalysis>({
    name: 'frame-analyzer',
    run: analyze,
    maxBatchSize: config.maxBatchSize,
    maxWaitMs: config.maxBatchWaitMs,
    // Each in-flight record submits one frame at a time, so the consumer's bound is the queue's bound; a
    // full queue (which would mean a bug) fails the submit as retriable instead of growing.
    maxQueued: config.maxInFlight,
  });

  // One record at a time per stream (the loop chains records by key), many streams at once: the batch is
  // made of different streams' frames, which is what keeps every stream's order (analysis.proto, topics.ts).
  const loop = deps.kafka.consumerLoop(
    topics.frames,
    async (record) => {
      const job: FrameJob = {
        frame: record.message,
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
      };
      // A stale frame is published as shed at once, without waiting for a batch: a backlog clears at
      // publish speed (the batch function checks again when its batch starts).
      const analysis =
        shedIfStale(job, (deps.now ?? Date.now)(), config.maxFrameAgeMs, metrics) ??
        (await batcher.submit(job));
      // Resolves once the broker has the analysis: only then may the loop commit the frame (nothing lost).
      await deps.publisher.publish(topics.frameAnalysis, { message: analysis });
    },
    {
      groupId: config.groupId,
      sessionTimeoutMs: config.sessionTimeoutMs,
      heartbeatIntervalMs: Math.min(3_000, Math.floor(config.sessionTimeoutMs / 3)),
      service: 'frame-analyzer',
      deadLetters: deps.publisher,
      dlqTopic: topics.dlq,
      maxInFlight: config.maxInFlight,
      partitionsConsumedConcurrently: config.partitionsConcurrently,
    },
  );

  return {
    metrics,
    batcher,
    loop,
    loops: [loop],
    async start() {
      await loop.start();
      logger.info(
        {
          topic: topics.frames.name,
          group: config.groupId,
          models: {
            ocr: deps.models.ocr ? `${deps.models.ocr.det.id}+${deps.models.ocr.rec.id}` : 'off',
            nsfw: deps.models.nsfw ? deps.models.nsfw.model.id : 'off',
          },
          maxBatchSize: config.maxBatchSize,
          maxBatchWaitMs: config.maxBatchWaitMs,
          maxFrameAgeMs: config.maxFrameAgeMs,
          maxInFlight: config.maxInFlight,
        },
        'frame analyzer consuming',
      );
    },
    async ready() {
      if (loop.state !== 'running') throw new Error(`consumer is ${loop.state}`);
    },
    live() {
      if (loop.state === 'failed')
        return { ok: false, reason: `consumer failed: ${loop.failure?.message ?? 'unknown'}` };
      // A model whose worker died and could not be restarted: every frame would fail; replace the process.
      const dead = deps.models.ocr?.reader.failure ?? deps.models.nsfw?.classifier.failure;
      if (dead) return { ok: false, reason: `model worker failed: ${dead.message}` };
      return { ok: true };
    },
    async stop(drainTimeoutMs = Math.max(1_000, config.shutdownTimeoutMs - 5_000)) {
      await loop.drain(drainTimeoutMs);
      await batcher.close();
      logger.info({}, 'frame analyzer stopped');
    },
  };
}
