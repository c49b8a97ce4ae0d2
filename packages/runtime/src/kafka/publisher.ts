import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { encodeRecord, type TopicSpec } from '@livelens/contracts';
import { type Kafka, Partitioners, type Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { LiveLensError } from '../errors.js';
import type { Logger } from '../logger.js';
import { fromKafkaError } from './errors.js';
import { type KafkaMetrics, kafkaMetrics } from './metrics.js';
import type { PublisherOptions } from './options.js';

/** Where a published record landed. */
export interface PublishedRecord {
  topic: string;
  partition: number;
  /** Offset of the first record of the send on that partition. */
  baseOffset: string;
}

/** One record to publish: the message, and optionally extra headers. */
export interface OutgoingRecord<Desc extends DescMessage> {
  message: MessageShape<Desc>;
  headers?: Record<string, string>;
}

/**
 * The pinned partitioner. kafkajs 2 changed its default (K6); the Java-compatible murmur2 one is chosen here,
 * once, so every LiveLens producer (and a Java or librdkafka `murmur2_random` producer) sends a stream id to the
 * same partition. The contract test "pins the partition of a key" checks it against known values.
 */
const PINNED_PARTITIONER = Partitioners.DefaultPartitioner;

/**
 * An idempotent producer (acks from all in-sync replicas, one request in flight so retries cannot reorder,
 * no automatic topic creation). `publish` resolves only once the broker has acknowledged every record.
 */
export class Publisher {
  readonly #producer: Producer;
  readonly #options: Required<PublisherOptions>;
  readonly #logger: Logger;
  readonly #metrics: KafkaMetrics;
  #connected = false;

  constructor(kafka: Kafka, options: PublisherOptions, deps: { logger: Logger; registry: Registry }) {
    this.#options = { sendTimeoutMs: 30_000, ...options };
    this.#logger = deps.logger.child({ component: 'publisher' });
    this.#metrics = kafkaMetrics(deps.registry, options.service);
    this.#producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: PINNED_PARTITIONER,
    });
  }

  get service(): string {
    return this.#options.service;
  }

  async connect(): Promise<void> {
    try {
      await this.#producer.connect();
      this.#connected = true;
    } catch (error) {
      throw fromKafkaError(error, { operation: 'producer.connect' });
    }
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
    await this.#producer.disconnect();
  }

  /**
   * Encodes (checking the topic's contract), keys by the spec's key and sends; resolves when acknowledged.
   * Fails with a LiveLensError: `invalid_message` for a message that breaks the contract, `unavailable` or
   * `deadline_exceeded` (retriable; the outcome of a timed-out send is unknown) for broker trouble.
   */
  async publish<Desc extends DescMessage>(
    spec: TopicSpec<Desc>,
    records: OutgoingRecord<Desc> | readonly OutgoingRecord<Desc>[],
  ): Promise<PublishedRecord[]> {
    const list = Array.isArray(records) ? records : [records as OutgoingRecord<Desc>];
    if (list.length === 0) return [];
    if (!this.#connected) {
      throw new LiveLensError('publisher is not connected', {
        code: 'failed_precondition',
        retriable: false,
      });
    }
    const messages = list.map((r) => ({
      key: spec.key(r.message),
      value: Buffer.from(encodeRecord(spec, r.message)),
      headers: {
        'content-type': 'application/x-protobuf',
        'livelens-type': spec.schema.typeName,
        ...r.headers,
      },
    }));
    return this.sendRaw(spec.name, messages);
  }

  /**
   * Sends records that are already bytes (dead letters keep the original bytes). Same acknowledgement and
   * deadline rules as `publish`.
   */
  async sendRaw(
    topic: string,
    messages: { key: string | Buffer | null; value: Buffer; headers?: Record<string, string> }[],
  ): Promise<PublishedRecord[]> {
    const stopTimer = this.#metrics.sendSeconds.startTimer({ topic });
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.#options.sendTimeoutMs;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LiveLensError(`send to ${topic} not acknowledged within ${timeoutMs} ms`, {
              code: 'deadline_exceeded',
              context: { topic },
            }),
          ),
        timeoutMs,
      );
    });
    const send = this.#producer.send({ topic, acks: -1, timeout: timeoutMs, messages });
    send.catch(() => undefined); // a late rejection after the deadline fired must not go unhandled
    try {
      const metadata = await Promise.race([send, deadline]);
      this.#metrics.produced.inc({ topic }, messages.length);
      return metadata.map((m) => ({
        topic: m.topicName,
        partition: m.partition,
        baseOffset: m.baseOffset ?? '-1',
      }));
    } catch (error) {
      const converted = fromKafkaError(error, { topic });
      this.#metrics.produceErrors.inc({ topic, code: converted.code });
      this.#logger.warn({ err: converted, topic, count: messages.length }, 'send failed');
      throw converted;
    } finally {
      clearTimeout(timer);
      stopTimer();
    }
  }
}
