#!/usr/bin/env node
// The ingest process: the only file that reads the environment and handles signals.
import { prefixedTopics } from '@livelens/contracts';
import {
  connectRedis,
  createLogger,
  createMetricsRegistry,
  createRedis,
  handleShutdownSignals,
  KafkaClient,
  LiveLensError,
  startHealthServer,
} from '@livelens/runtime';
import { createIngestService, loadIngestConfig } from './service.js';

let config: ReturnType<typeof loadIngestConfig>;
try {
  config = loadIngestConfig();
} catch (error) {
  process.stderr.write(`livelens-ingest: ${(error as Error).message}\n`);
  process.exit(2);
}

const logger = createLogger({ service: 'ingest', level: config.logLevel });
const registry = createMetricsRegistry('ingest');
const kafka = new KafkaClient(
  { brokers: config.kafkaBrokers, clientId: config.kafkaClientId },
  { logger, registry },
);
const redis = createRedis({ url: config.redisUrl, connectionName: `ingest-${config.replicaId}` }, logger);
const subscriber = createRedis(
  { url: config.redisUrl, connectionName: `ingest-${config.replicaId}-sub` },
  logger,
);

async function main(): Promise<void> {
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  const ours = [topics.frames, topics.audio, topics.streamEvents, topics.dlq];
  if (config.createTopics) {
    const created = await kafka.admin().ensureTopics(ours, { partitions: config.topicPartitions });
    if (created.length > 0) logger.info({ created }, 'created topics');
  } else {
    await kafka.admin().assertTopicsExist(ours.map((t) => t.name));
  }
  const publisher = kafka.publisher({ service: 'ingest' });
  await publisher.connect();
  await Promise.all([connectRedis(redis), connectRedis(subscriber)]);
  const service = createIngestService({ publisher, redis, subscriber, logger, registry }, config);
  const health = await startHealthServer(
    {
      port: config.metricsPort,
      registry,
      readiness: {
        kafka: () => kafka.admin().ping(),
        redis: async () => {
          await redis.ping();
        },
      },
    },
    logger,
  );
  await service.start();
  handleShutdownSignals(
    async () => {
      await service.stop();
      await publisher.disconnect();
      redis.disconnect();
      subscriber.disconnect();
      await health.close();
    },
    { logger, timeoutMs: config.shutdownTimeoutMs },
  );
}

main().catch((error: unknown) => {
  const converted = LiveLensError.from(error);
  logger.fatal({ err: converted }, 'ingest failed to start');
  process.exit(1);
});
