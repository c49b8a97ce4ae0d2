#!/usr/bin/env node
// The ASR process: the only file that reads the environment and handles signals.
import { prefixedTopics } from '@livelens/contracts';
import {
  createLogger,
  createMetricsRegistry,
  handleShutdownSignals,
  KafkaClient,
  LiveLensError,
  startHealthServer,
} from '@livelens/runtime';
import {
  type AsrModels,
  type AsrServiceHandle,
  closeAsrModels,
  createAsrService,
  loadAsrConfig,
  loadAsrModels,
} from './service.js';

let config: ReturnType<typeof loadAsrConfig>;
try {
  config = loadAsrConfig();
} catch (error) {
  process.stderr.write(`livelens-asr: ${(error as Error).message}\n`);
  process.exit(2);
}

const logger = createLogger({ service: 'asr', level: config.logLevel });
const registry = createMetricsRegistry('asr');
const kafka = new KafkaClient(
  { brokers: config.kafkaBrokers, clientId: config.kafkaClientId },
  { logger, registry },
);

async function main(): Promise<void> {
  let models: AsrModels | undefined;
  let service: AsrServiceHandle | undefined;
  // Up before the models load (seconds): /healthz answers at once, /readyz says what is still missing.
  const health = await startHealthServer(
    {
      port: config.metricsPort,
      registry,
      readiness: {
        kafka: () => kafka.admin().ping(),
        models: async () => {
          if (!models) throw new Error('models are loading');
        },
        consumer: async () => {
          if (!service) throw new Error('not started');
          await service.ready();
        },
      },
      live: () => service?.live() ?? { ok: true },
    },
    logger,
  );

  // fetch: false: models come from `npm run models` (sha256-checked); a missing one is a startup error that
  // says so, before anything touches Kafka, never a download at run time.
  models = await loadAsrModels(config, logger, { fetch: false });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  const ours = [topics.audio, topics.transcripts, topics.dlq];
  if (config.createTopics) {
    const created = await kafka.admin().ensureTopics(ours, { partitions: config.topicPartitions });
    if (created.length > 0) logger.info({ created }, 'created topics');
  } else {
    await kafka.admin().assertTopicsExist(ours.map((t) => t.name));
  }
  const publisher = kafka.publisher({ service: 'asr' });
  await publisher.connect();
  service = createAsrService({ kafka, publisher, models, logger, registry }, config);
  const running = service;
  const loaded = models;
  await running.start();
  // A consumer that failed for good (restart budget spent) takes the process down, for the orchestrator
  // to restart it with backoff (reliability.md K3).
  void running.loop.closed().then(() => {
    if (running.loop.state !== 'failed') return;
    logger.fatal({ err: running.loop.failure }, 'consumer failed: exiting');
    process.exit(1);
  });
  handleShutdownSignals(
    async () => {
      await running.stop();
      await closeAsrModels(loaded);
      await publisher.disconnect();
      await health.close();
    },
    { logger, timeoutMs: config.shutdownTimeoutMs },
  );
}

main().catch((error: unknown) => {
  const converted = LiveLensError.from(error);
  logger.fatal({ err: converted }, 'asr failed to start');
  process.exit(1);
});
