import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import {
  AnalysisStatus,
  type FrameAnalysis,
  FrameAnalysisSchema,
  prefixedTopics,
  type StreamEvent,
  StreamEventSchema,
  StreamState,
  type TagEvent,
  type TopicSpec,
  type TranscriptSegment,
  TranscriptSegmentSchema,
} from '@livelens/contracts';
import { connectRedis, createRedis, KafkaClient } from '@livelens/runtime';
import { collectTopic, metricReader, startTestProducer, testLogger } from '@livelens/runtime/testing';
import { testInfrastructure, uniqueName } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { loadFusionConfig } from '../src/config.js';
import { loadFusionRules } from '../src/rules-adapter.js';
import { createFusionService } from '../src/service.js';
import { FusionStore } from '../src/store.js';

export { testLogger };

/** A namespace for one test: its own topics, consumer groups and Redis keys. */
export function testNamespace() {
  const prefix = `${uniqueName('t')}.`;
  return {
    prefix,
    topics: prefixedTopics(prefix),
    groupId: uniqueName('fusion'),
    redisPrefix: `${uniqueName('fusion')}:`,
  };
}

/** The environment of a fusion replica in tests: the real broker and Redis, unique topics, groups and keys. */
export function fusionEnv(
  ns: ReturnType<typeof testNamespace>,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const { kafkaBrokers, redisUrl } = testInfrastructure();
  return {
    KAFKA_BROKERS: kafkaBrokers.join(','),
    REDIS_URL: redisUrl,
    KAFKA_TOPIC_PREFIX: ns.prefix,
    METRICS_PORT: '0',
    FUSION_GRPC_PORT: '0',
    FUSION_GROUP_ID: ns.groupId,
    FUSION_REDIS_PREFIX: ns.redisPrefix,
    FUSION_TOPIC_PARTITIONS: '2',
    FUSION_SESSION_TIMEOUT_MS: '6000',
    LOG_LEVEL: process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn',
    ...overrides,
  };
}

/** A fusion replica in this process, built the way main.ts builds it. */
export async function startFusion(env: Record<string, string>) {
  const config = loadFusionConfig(env);
  const logger = testLogger('fusion');
  const registry = new Registry();
  const kafka = new KafkaClient({ brokers: config.kafkaBrokers }, { logger, registry });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  await kafka
    .admin()
    .ensureTopics(
      [topics.frameAnalysis, topics.transcripts, topics.streamEvents, topics.tags, topics.review, topics.dlq],
      {
        partitions: config.topicPartitions,
      },
    );
  const redis = createRedis({ url: config.redisUrl, connectionName: 'fusion-test' }, logger);
  await connectRedis(redis);
  const rules = await loadFusionRules(config.taxonomyPath || undefined);
  const publisher = kafka.publisher({ service: 'fusion' });
  await publisher.connect();
  const service = createFusionService({ kafka, publisher, redis, rules, logger, registry }, config);
  await service.start();
  const { metric } = metricReader(registry);
  return {
    config,
    service,
    registry,
    rules,
    metric,
    async stop() {
      await service.stop(10_000);
      await publisher.disconnect();
      redis.disconnect();
    },
  };
}

/** Reads a stream's state from Redis the way fusion stores it (to wait for processing). */
export async function stateReader(ns: ReturnType<typeof testNamespace>) {
  const redis = createRedis(
    { url: testInfrastructure().redisUrl, connectionName: 'fusion-test-reader' },
    testLogger('redis'),
  );
  await connectRedis(redis);
  const store = new FusionStore(redis, { prefix: ns.redisPrefix, ttlSeconds: 3_600 });
  return {
    load: (streamId: string) => store.load(streamId).then((v) => v.state),
    close: () => redis.disconnect(),
  };
}

export const startProducer = () =>
  startTestProducer(testInfrastructure().kafkaBrokers, testLogger('producer'));
export const collect = <D extends DescMessage>(spec: TopicSpec<D>, dlq: TopicSpec) =>
  collectTopic(testInfrastructure().kafkaBrokers, spec, dlq, testLogger('collector'));

/** A frame analysis as the frame analyzer publishes it: OCR lines (and labels) at `ptsMs`. */
export function analysis(
  streamId: string,
  ptsMs: number,
  lines: string[] = [],
  options: { epoch?: string; labels?: Record<string, number>; shed?: boolean; captureStartMs?: number } = {},
): FrameAnalysis {
  const epoch = options.epoch ?? 'e1';
  const seq = Math.round(ptsMs / 1_000);
  return create(FrameAnalysisSchema, {
    streamId,
    sessionEpoch: epoch,
    frameSeq: BigInt(seq),
    frameId: `${streamId}/${epoch}/f/${seq}`,
    ptsMs: BigInt(ptsMs),
    captureTimeUnixMs: BigInt((options.captureStartMs ?? Date.now()) + ptsMs),
    width: 1280,
    height: 720,
    textRegions: lines.map((text, i) => ({ text, confidence: 0.95, readingOrder: i, polygon: [] })),
    labels: Object.entries(options.labels ?? { nsfw: 0.01 }).map(([name, score]) => ({ name, score })),
    status: options.shed ? AnalysisStatus.SHED_STALE : AnalysisStatus.COMPLETE,
  });
}

/** A transcript segment as the ASR publishes it (final unless said otherwise). */
export function segment(
  streamId: string,
  startMs: number,
  endMs: number,
  text: string,
  options: { epoch?: string; final?: boolean; language?: string; captureStartMs?: number } = {},
): TranscriptSegment {
  const epoch = options.epoch ?? 'e1';
  const words = text.split(/\s+/).filter(Boolean);
  const step = (endMs - startMs) / Math.max(1, words.length);
  return create(TranscriptSegmentSchema, {
    streamId,
    sessionEpoch: epoch,
    segmentId: `${streamId}/${epoch}/s/${startMs}`,
    startMs: BigInt(startMs),
    endMs: BigInt(endMs),
    text,
    words: words.map((w, i) => ({
      text: w,
      startMs: BigInt(Math.round(startMs + i * step)),
      endMs: BigInt(Math.round(startMs + (i + 1) * step)),
      confidence: 0.9,
    })),
    language: options.language ?? 'en',
    final: options.final ?? true,
    captureTimeUnixMs: BigInt((options.captureStartMs ?? Date.now()) + startMs),
  });
}

/** A stream event as ingest publishes it (a state change, or a gap record), of session `epoch`. */
export function streamEvent(
  streamId: string,
  kind: MessageInitShape<typeof StreamEventSchema>['kind'],
  options: { epoch?: string; seq?: number; eventTimeUnixMs?: number } = {},
): StreamEvent {
  const epoch = options.epoch ?? 'e1';
  const seq = options.seq ?? 0;
  return create(StreamEventSchema, {
    streamId,
    sessionEpoch: epoch,
    seq: BigInt(seq),
    eventId: `${streamId}/${epoch}/e/${seq}`,
    eventTimeUnixMs: BigInt(options.eventTimeUnixMs ?? Date.now()),
    kind,
  });
}

/** A change of session `epoch` to `state`, e.g. ENDED (stopped on request): the explicit end of stream. */
export function stateChange(
  streamId: string,
  state: StreamState,
  options: { epoch?: string; seq?: number; eventTimeUnixMs?: number; reason?: string } = {},
): StreamEvent {
  const reason = options.reason ?? (state === StreamState.ENDED ? 'stopped_by_request' : '');
  return streamEvent(streamId, { case: 'stateChange', value: { state, reason } }, options);
}

/**
 * What a tag event says, without what differs between two runs of the same input: the wall-clock emission
 * time, and the test namespace's topic prefix in evidence sources.
 */
export function comparable(event: TagEvent, topicPrefix: string): string {
  return JSON.stringify({ ...event, emittedTimeUnixMs: undefined }, (_k, v) =>
    typeof v === 'bigint' ? v.toString() : v,
  ).replaceAll(topicPrefix, '');
}

export type { KafkaClient };
