import type { TopicSpec } from '@livelens/contracts';
import type { Registry } from 'prom-client';
import { LiveLensError } from './errors.js';
import { createMetricsRegistry, startHealthServer } from './health.js';
import { KafkaClient } from './kafka/client.js';
import type { ConsumerLoop } from './kafka/consumer-loop.js';
import type { Publisher } from './kafka/publisher.js';
import { handleShutdownSignals } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';

/** What the process entry needs of a consumer service (frame-analyzer, asr, ...). */
export interface ConsumerServiceHandle {
  /** The service's consumer loops (one per input topic); the process exits 1 when one fails for good. */
  // biome-ignore lint/suspicious/noExplicitAny: any topic's loop; the entry only watches its state.
  readonly loops: readonly ConsumerLoop<any>[];
  start(): Promise<void>;
  /** For /readyz: throws why the service is not ready. */
  ready(): Promise<void>;
  /** For /healthz. */
  live(): { ok: boolean; reason?: string };
  stop(): Promise<void>;
}

/** The configuration fields the entry reads (every service has them: commonConfigFields plus topic creation). */
export interface ConsumerServiceConfig {
  logLevel: string;
  kafkaBrokers: string[];
  kafkaClientId: string;
  kafkaTopicPrefix: string;
  metricsPort: number;
  shutdownTimeoutMs: number;
  createTopics: boolean;
  topicPartitions: number;
}

export interface ConsumerServiceSpec<Config extends ConsumerServiceConfig, Resources> {
  /** Service name: logs, metrics prefix, Kafka client name ('frame-analyzer'). */
  name: string;
  /** What /readyz calls the resources while they load. @default 'models' */
  resourceName?: string;
  /** Reads and checks the environment; throws a message naming each bad variable (exit 2). */
  loadConfig(): Config;
  /**
   * Loads what the service needs before it consumes (models): a failure is a startup error (exit 1), before
   * anything touches Kafka. /readyz reports `resources` until it is done.
   */
  load(config: Config, logger: Logger): Promise<Resources>;
  close(resources: Resources): Promise<void>;
  /** The topics it reads and writes: created when `createTopics`, else checked to exist. */
  topics(config: Config): TopicSpec[];
  create(
    deps: {
      kafka: KafkaClient;
      publisher: Publisher;
      resources: Resources;
      logger: Logger;
      registry: Registry;
    },
    config: Config,
  ): ConsumerServiceHandle;
}

/**
 * The process entry of a consumer service, the one place that reads the environment and handles signals:
 * config (exit 2 when bad), logs, metrics and health up first, resources loaded, topics ensured, the service
 * started; a consumer that failed for good exits 1 (for the orchestrator to restart it: reliability.md K3);
 * SIGTERM drains, closes and exits 0.
 */
export function runConsumerService<Config extends ConsumerServiceConfig, Resources>(
  spec: ConsumerServiceSpec<Config, Resources>,
): void {
  let config: Config;
  try {
    config = spec.loadConfig();
  } catch (error) {
    process.stderr.write(`livelens-${spec.name}: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger({ service: spec.name, level: config.logLevel });
  const registry = createMetricsRegistry(spec.name);
  const kafka = new KafkaClient(
    { brokers: config.kafkaBrokers, clientId: config.kafkaClientId },
    { logger, registry },
  );

  const main = async (): Promise<void> => {
    let loaded = false;
    let service: ConsumerServiceHandle | undefined;
    // Up before the resources load (seconds): /healthz answers at once, /readyz says what is still missing.
    const health = await startHealthServer(
      {
        port: config.metricsPort,
        registry,
        readiness: {
          kafka: () => kafka.admin().ping(),
          [spec.resourceName ?? 'models']: async () => {
            if (!loaded) throw new Error(`${spec.resourceName ?? 'models'} are loading`);
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
    const resources = await spec.load(config, logger);
    loaded = true;
    const topics = spec.topics(config);
    if (config.createTopics) {
      const created = await kafka.admin().ensureTopics(topics, { partitions: config.topicPartitions });
      if (created.length > 0) logger.info({ created }, 'created topics');
    } else {
      await kafka.admin().assertTopicsExist(topics.map((t) => t.name));
    }
    const publisher = kafka.publisher({ service: spec.name });
    await publisher.connect();
    service = spec.create({ kafka, publisher, resources, logger, registry }, config);
    const running = service;
    const held = resources;
    await running.start();
    for (const loop of running.loops)
      void loop.closed().then(() => {
        if (loop.state !== 'failed') return;
        logger.fatal({ err: loop.failure }, 'consumer failed: exiting');
        process.exit(1);
      });
    handleShutdownSignals(
      async () => {
        await running.stop();
        await spec.close(held);
        await publisher.disconnect();
        await health.close();
      },
      { logger, timeoutMs: config.shutdownTimeoutMs },
    );
  };

  main().catch((error: unknown) => {
    logger.fatal({ err: LiveLensError.from(error) }, `${spec.name} failed to start`);
    process.exit(1);
  });
}
