import type { DescMessage } from '@bufbuild/protobuf';
import type { TopicSpec } from '@livelens/contracts';
import { Kafka, logLevel as KafkaLogLevel, type LogEntry } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { createAdmin, type TopicAdmin } from './admin.js';
import type { RecordHandler } from './consumer-loop.js';
import { ConsumerLoop } from './consumer-loop.js';
import type { ConsumerLoopOptions, KafkaClientOptions, PublisherOptions } from './options.js';
import { Publisher } from './publisher.js';
import { type ReadRangeOptions, type ReadRecord, readRange } from './reader.js';

/**
 * The one door to Kafka. Everything kafkajs is behind this module (client, publisher, consumer loop, admin),
 * so the client library can be swapped (kafkajs is barely maintained: reliability.md K9) without touching a
 * service.
 */
export class KafkaClient {
  readonly #kafka: Kafka;
  readonly #logger: Logger;
  readonly #registry: Registry;

  constructor(options: KafkaClientOptions, deps: { logger: Logger; registry: Registry }) {
    this.#logger = deps.logger.child({ component: 'kafka' });
    this.#registry = deps.registry;
    const logger = this.#logger;
    this.#kafka = new Kafka({
      clientId: options.clientId ?? 'livelens',
      brokers: options.brokers,
      connectionTimeout: options.connectionTimeoutMs ?? 5_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      retry: { initialRetryTime: options.initialRetryMs ?? 300, retries: options.retries ?? 8 },
      logLevel: KafkaLogLevel.WARN,
      logCreator:
        () =>
        ({ namespace, level, log }: LogEntry) => {
          const { message, ...fields } = log;
          const data = { kafkaNamespace: namespace, ...fields };
          // Retries are bounded on purpose (a send has a deadline, and the ids make a resend harmless);
          // kafkajs warns about that on every producer, which is noise.
          if (message.startsWith('Limiting retries for the idempotent producer')) return;
          if (level <= KafkaLogLevel.ERROR) logger.error(data, message);
          else if (level === KafkaLogLevel.WARN) logger.warn(data, message);
          else logger.debug(data, message);
        },
    });
  }

  /** A new idempotent publisher; call `connect()` before use. */
  publisher(options: PublisherOptions): Publisher {
    return new Publisher(this.#kafka, options, { logger: this.#logger, registry: this.#registry });
  }

  /** A new consumer loop over one topic; call `start()` to join the group. */
  consumerLoop<Desc extends DescMessage>(
    topic: TopicSpec<Desc>,
    handler: RecordHandler<Desc>,
    options: ConsumerLoopOptions & { service: string; deadLetters: Publisher; dlqTopic?: TopicSpec },
  ): ConsumerLoop<Desc> {
    return new ConsumerLoop(this.#kafka, topic, handler, options, {
      logger: this.#logger,
      registry: this.#registry,
    });
  }

  /**
   * What `topic` holds from `sinceUnixMs` to its current end, decoded where it can be: for people reading a
   * topic (the DLQ, stream events), not for services (they consume with a ConsumerLoop).
   */
  readRange<Desc extends DescMessage>(
    topic: TopicSpec<Desc>,
    options: ReadRangeOptions,
  ): Promise<ReadRecord<Desc>[]> {
    return readRange(this.#kafka, topic, options);
  }

  /** Topic administration: explicit creation, existence checks, committed offsets, broker reachability. */
  admin(): TopicAdmin {
    return createAdmin(this.#kafka);
  }
}
