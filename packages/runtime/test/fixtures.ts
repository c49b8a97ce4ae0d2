import { create } from '@bufbuild/protobuf';
import { FrameSampleSchema, recordIds, renameTopic, type TopicSpec, topics } from '@livelens/contracts';
import { testInfrastructure, uniqueName } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { KafkaClient, type KafkaClientOptions } from '../src/kafka/index.js';
import { createLogger } from '../src/logger.js';

/** A Kafka client against the run's real broker, with its own registry and a quiet logger. */
export function testKafka(service = 'test', options: Partial<KafkaClientOptions> = {}) {
  const registry = new Registry();
  const logger = createLogger({ service, level: process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn' });
  const client = new KafkaClient(
    { brokers: testInfrastructure().kafkaBrokers, clientId: uniqueName(service), ...options },
    { logger, registry },
  );
  return { client, registry, logger };
}

/** Unique frame and DLQ topics for one test, created explicitly (auto-creation is off), with `partitions`. */
export async function uniqueTopics(client: KafkaClient, partitions: number) {
  const frames = renameTopic(topics.frames, uniqueName('test.frames'));
  const dlq = renameTopic(topics.dlq, uniqueName('test.dlq'));
  const outputs = renameTopic(topics.frameAnalysis, uniqueName('test.analysis'));
  await client.admin().ensureTopics([frames, dlq, outputs] as TopicSpec[], { partitions });
  return { frames, dlq, outputs };
}

/** A small valid frame of `streamId` with `seq`. */
export function frame(streamId: string, seq: number) {
  return create(FrameSampleSchema, {
    streamId,
    sessionEpoch: 'epoch-1',
    seq: BigInt(seq),
    frameId: recordIds.frame(streamId, 'epoch-1', seq),
    ptsMs: BigInt(seq * 1000),
    captureTimeUnixMs: BigInt(Date.now()),
    width: 2,
    height: 2,
    jpeg: new Uint8Array([0xff, 0xd8, seq & 0xff, 0xff, 0xd9]),
  });
}
