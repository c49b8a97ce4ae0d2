// Test helpers for services' integration tests (`@livelens/runtime/testing`): a producer of test records and
// a collector that reads a topic into an array, both on the real broker. Not for production code.
import { randomUUID } from 'node:crypto';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { TopicSpec } from '@livelens/contracts';
import { Registry } from 'prom-client';
import { KafkaClient } from './kafka/client.js';
import { createLogger, type Logger } from './logger.js';

/** A logger for tests, at `$LIVELENS_TEST_LOG_LEVEL` (default warn). */
export const testLogger = (name: string): Logger =>
  createLogger({ service: name, level: (process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn') as 'warn' });

/** A producer of test records: protobuf through the topic's contract, or raw bytes (garbage). */
export async function startTestProducer(brokers: string[], logger: Logger) {
  const kafka = new KafkaClient({ brokers }, { logger, registry: new Registry() });
  const publisher = kafka.publisher({ service: 'test-producer' });
  await publisher.connect();
  return { publisher, kafka, stop: () => publisher.disconnect() };
}

/** One collected record, in arrival order. */
export interface CollectedRecord<D extends DescMessage> {
  message: MessageShape<D>;
  partition: number;
  offset: string;
  receivedAtMs: number;
}

/**
 * Reads a topic from the beginning into an array, in arrival order, for assertions (its own consumer group);
 * `stop()` when done. The topic and `dlq` are created (2 partitions) if the service under test has not yet.
 */
export async function collectTopic<D extends DescMessage>(
  brokers: string[],
  spec: TopicSpec<D>,
  dlq: TopicSpec,
  logger: Logger,
) {
  const kafka = new KafkaClient({ brokers }, { logger, registry: new Registry() });
  await kafka.admin().ensureTopics([spec as unknown as TopicSpec, dlq], { partitions: 2 });
  const publisher = kafka.publisher({ service: 'collector' });
  await publisher.connect();
  const records: CollectedRecord<D>[] = [];
  const loop = kafka.consumerLoop(
    spec,
    async ({ message, partition, offset }) => {
      records.push({ message, partition, offset, receivedAtMs: Date.now() });
    },
    {
      groupId: `collector-${randomUUID()}`,
      service: 'collector',
      deadLetters: publisher,
      dlqTopic: dlq,
      heartbeatIntervalMs: 1_000,
    },
  );
  await loop.start();
  return {
    records,
    messages: () => records.map((r) => r.message),
    async stop() {
      await loop.drain(5_000);
      await publisher.disconnect();
    },
  };
}

/**
 * Reads metrics of a registry for assertions: `metric` sums the samples of `name` matching `labels` (a
 * histogram counts its `_count` only), `metricSum` sums a histogram's `_sum`.
 */
export function metricReader(registry: Registry) {
  const samples = async (name: string, labels: Record<string, string>) =>
    ((await registry.getSingleMetric(name)?.get())?.values ?? []).filter((v) =>
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
    );
  return {
    metric: async (name: string, labels: Record<string, string> = {}) =>
      (await samples(name, labels))
        .filter((v) => {
          const sample = (v as { metricName?: string }).metricName;
          return sample === undefined || sample === name || sample.endsWith('_count');
        })
        .reduce((sum, v) => sum + v.value, 0),
    metricSum: async (name: string, labels: Record<string, string> = {}) =>
      (await samples(name, labels))
        .filter((v) => (v as { metricName?: string }).metricName?.endsWith('_sum'))
        .reduce((sum, v) => sum + v.value, 0),
  };
}
