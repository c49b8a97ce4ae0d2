// A consumer process for the SIGTERM test (consumer-loop.sigterm.int.test.ts): consumes frames, publishes one
// analysis per frame, and drains on SIGTERM through the same signal handling a service's main.ts uses.
import { create } from '@bufbuild/protobuf';
import { FrameAnalysisSchema, renameTopic, topics } from '@livelens/contracts';
import { Registry } from 'prom-client';
import { KafkaClient } from '../src/kafka/index.js';
import { handleShutdownSignals } from '../src/lifecycle.js';
import { createLogger } from '../src/logger.js';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const logger = createLogger({ service: 'drain-worker', level: 'warn' });
const client = new KafkaClient(
  { brokers: env('KAFKA_BROKERS').split(',') },
  { logger, registry: new Registry() },
);
const frames = renameTopic(topics.frames, env('FRAMES_TOPIC'));
const outputs = renameTopic(topics.frameAnalysis, env('OUTPUTS_TOPIC'));
const dlq = renameTopic(topics.dlq, env('DLQ_TOPIC'));
const delayMs = Number(env('DELAY_MS'));

const publisher = client.publisher({ service: 'drain_worker' });
await publisher.connect();
const loop = client.consumerLoop(
  frames,
  async (record) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs)); // stands in for inference
    const { streamId, frameId, seq } = record.message;
    await publisher.publish(outputs, {
      message: create(FrameAnalysisSchema, { streamId, frameId, frameSeq: seq }),
    });
  },
  { groupId: env('GROUP_ID'), service: 'drain_worker', deadLetters: publisher, dlqTopic: dlq },
);
handleShutdownSignals(
  async () => {
    await loop.drain(20_000);
    await publisher.disconnect();
  },
  { logger, timeoutMs: 25_000 },
);
await loop.start();
process.stdout.write('ready\n');
