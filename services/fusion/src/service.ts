// The fusion service: two consumer loops (frame analyses, transcripts) feeding one processor, whose per-stream
// state lives in Redis, and a third taking in the ends of sessions (stream events); tag events to
// live.tags.v1, review items to live.review.v1.

import { prefixedTopics, type TagEvent } from '@livelens/contracts';
import type { ConsumerLoop, KafkaClient, Logger, Publisher, Redis } from '@livelens/runtime';
import type { Registry } from 'prom-client';
import type { FusionConfig } from './config.js';
import { createTagGrpcServer, streamSummary, TagFeed, type TagGrpcServer } from './grpc/index.js';
import { createFusionMetrics, type FusionMetrics } from './metrics.js';
import { frameRecord, streamEnd, transcriptRecord } from './observations.js';
import { FusionProcessor } from './processor.js';
import { FusionStore } from './store.js';
import type { FusionRules } from './windows/stream-fusion.js';

export interface FusionDeps {
  kafka: KafkaClient;
  /** Publishes tag events, review items and dead letters. */
  publisher: Publisher;
  redis: Redis;
  rules: FusionRules;
  logger: Logger;
  registry: Registry;
  now?: () => number;
}

export interface FusionServiceHandle {
  readonly metrics: FusionMetrics;
  readonly processor: FusionProcessor;
  // biome-ignore lint/suspicious/noExplicitAny: the loops' topics differ; callers watch their state only.
  readonly loops: readonly ConsumerLoop<any>[];
  /** Tag events as this replica's broker acknowledged them (in-process listeners; WatchTags reads the topic). */
  onTagEvent(listener: (event: TagEvent) => void): () => void;
  /** The TagService's port once started. */
  readonly grpcPort: number | undefined;
  start(): Promise<void>;
  ready(): Promise<void>;
  live(): { ok: boolean; reason?: string };
  /** The loops drain (in-flight records finish, outputs published, state written, offsets committed). */
  stop(drainTimeoutMs?: number): Promise<void>;
}

export function createFusionService(deps: FusionDeps, config: FusionConfig): FusionServiceHandle {
  const logger = deps.logger.child({ component: 'fusion' });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  const listeners = new Set<(event: TagEvent) => void>();
  const metrics = createFusionMetrics(deps.registry, {
    streams: () => processor.cachedStreams,
    openWindows: () => processor.openWindows,
  });
  const store = new FusionStore(deps.redis, {
    prefix: config.redisKeyPrefix,
    ttlSeconds: config.stateTtlSeconds,
  });
  const processor = new FusionProcessor(
    {
      store,
      rules: deps.rules,
      publisher: deps.publisher,
      topics,
      metrics,
      logger,
      onTagEvent: (event) => {
        for (const listener of listeners) listener(event);
      },
      ...(deps.now ? { now: deps.now } : {}),
    },
    {
      window: { sizeMs: config.windowMs, hopMs: config.hopMs },
      allowedLatenessMs: config.allowedLatenessMs,
      maxInputSkewMs: config.maxInputSkewMs,
      maxObservations: config.maxObservations,
      maxEvidencePerEpisode: config.maxEvidence,
      minScoreIncrease: config.minScoreIncrease,
      maxMediaJumpMs: config.maxMediaJumpMs,
      earlyFiring: config.earlyFiring,
      maxCachedStreams: config.maxCachedStreams,
    },
  );

  // Two groups, one per input: a stream's frames and transcripts may be consumed by different replicas, which
  // the compare-and-set on its state makes safe (store.ts).
  const common = {
    service: 'fusion',
    deadLetters: deps.publisher,
    dlqTopic: topics.dlq,
    maxInFlight: config.maxInFlight,
    sessionTimeoutMs: config.sessionTimeoutMs,
    heartbeatIntervalMs: Math.min(3_000, Math.floor(config.sessionTimeoutMs / 3)),
  };
  const frames = deps.kafka.consumerLoop(
    topics.frameAnalysis,
    ({ message, topic, partition, offset }) =>
      processor.handle(frameRecord(message, { topic, partition, offset }), message.streamId),
    { ...common, groupId: `${config.groupId}-frames` },
  );
  const transcripts = deps.kafka.consumerLoop(
    topics.transcripts,
    async ({ message, topic, partition, offset }) => {
      const record = transcriptRecord(message, { topic, partition, offset });
      if (!record) {
        metrics.records.inc({ input: 'transcripts', outcome: 'partial' });
        return;
      }
      await processor.handle(record, message.streamId);
    },
    { ...common, groupId: `${config.groupId}-transcripts` },
  );
  // Ingest announces the end of a session (ENDED, FAILED) on live.stream-events.v1; the session's last
  // analyses and transcripts come later (other services), so the end is recorded in the stream's state, and
  // the stream ended by the idle check below once no record came for FUSION_END_GRACE_MS. The other states
  // and gap records are skipped without touching the state. Its own group: its offsets are committed once
  // the end is in Redis, whatever the inputs' progress.
  const streamEvents = deps.kafka.consumerLoop(
    topics.streamEvents,
    async ({ message }) => {
      const end = streamEnd(message);
      if (end) await processor.handleStreamEnd(end, message.streamId);
    },
    { ...common, groupId: `${config.groupId}-stream-events` },
  );
  const loops = [frames, transcripts, streamEvents] as const;
  // WatchTags reads live.tags.v1 (its own group per replica), so a watcher sees every replica's tags.
  const feed = new TagFeed({
    kafka: deps.kafka,
    topics,
    groupPrefix: config.groupId,
    publisher: deps.publisher,
    logger,
    registry: deps.registry,
  });
  let grpc: TagGrpcServer | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  let idleCheck: Promise<unknown> | undefined;
  const flushTiming = { idleMs: config.idleFlushMs, endGraceMs: config.endGraceMs };
  const checkIdle = () => {
    if (idleCheck) return;
    idleCheck = processor
      .flushIdle(flushTiming)
      .catch((error: unknown) => logger.warn({ err: error }, 'idle flush failed: retrying at the next check'))
      .finally(() => {
        idleCheck = undefined;
      });
  };

  return {
    metrics,
    processor,
    loops,
    onTagEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get grpcPort() {
      return grpc?.port;
    },
    async start() {
      await Promise.all(loops.map((loop) => loop.start()));
      await feed.start();
      // Often enough for the shorter of the two periods (an ended stream is flushed within a quarter of it).
      const checkMs = Math.min(config.idleFlushMs, config.endGraceMs) / 4;
      idleTimer = setInterval(checkIdle, Math.min(5_000, Math.max(250, checkMs)));
      idleTimer.unref();
      grpc = await createTagGrpcServer(
        { feed, summary: (streamId) => streamSummary(store, deps.rules, streamId), logger },
        { host: config.grpcHost, port: config.grpcPort },
      );
      logger.info(
        {
          inputs: [topics.frameAnalysis.name, topics.transcripts.name, topics.streamEvents.name],
          outputs: [topics.tags.name, topics.review.name],
          taxonomy: deps.rules.taxonomyVersion,
          windowMs: config.windowMs,
          hopMs: config.hopMs,
          allowedLatenessMs: config.allowedLatenessMs,
          maxInputSkewMs: config.maxInputSkewMs,
          earlyFiring: config.earlyFiring,
          idleFlushMs: config.idleFlushMs,
          endGraceMs: config.endGraceMs,
          grpcPort: grpc.port,
        },
        'fusion consuming',
      );
    },
    async ready() {
      for (const loop of loops) if (loop.state !== 'running') throw new Error(`a consumer is ${loop.state}`);
      if (feed.state !== 'running') throw new Error(`the WatchTags feed is ${feed.state}`);
      await deps.redis.ping();
    },
    live() {
      const failed = loops.find((loop) => loop.state === 'failed');
      if (failed) return { ok: false, reason: `consumer failed: ${failed.failure?.message ?? 'unknown'}` };
      if (feed.state === 'failed') return { ok: false, reason: 'the WatchTags feed failed' };
      return { ok: true };
    },
    async stop(drainTimeoutMs = Math.max(1_000, config.shutdownTimeoutMs - 5_000)) {
      clearInterval(idleTimer);
      await idleCheck;
      await grpc?.close();
      await Promise.all([...loops.map((loop) => loop.drain(drainTimeoutMs)), feed.stop()]);
      logger.info({ streams: processor.cachedStreams }, 'fusion stopped');
    },
  };
}
