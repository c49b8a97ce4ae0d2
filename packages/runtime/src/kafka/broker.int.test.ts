import { renameTopic, topics } from '@livelens/contracts';
import { testInfrastructure, uniqueName, waitFor } from '@livelens/test-support';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { testKafka } from '../../test/fixtures.js';

// The broker contract the runtime relies on, checked on whatever broker the run uses (native, container, env).
describe('broker', () => {
  const { client } = testKafka('broker');

  it('runs transactions on a single node: read_committed sees the committed one, not the aborted one', async () => {
    const spec = renameTopic(topics.frames, uniqueName('test.tx'));
    await client.admin().ensureTopics([spec], { partitions: 1 });
    const kafka = new kafkajs.Kafka({
      brokers: testInfrastructure().kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
    });
    const producer = kafka.producer({
      transactionalId: uniqueName('tx'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    const consumer = kafka.consumer({ groupId: uniqueName('tx-reader'), readUncommitted: false });
    await producer.connect();
    try {
      const committed = await producer.transaction();
      await committed.send({ topic: spec.name, messages: [{ key: 'k', value: 'committed' }] });
      await committed.commit();
      const aborted = await producer.transaction();
      await aborted.send({ topic: spec.name, messages: [{ key: 'k', value: 'aborted' }] });
      await aborted.abort();
      const after = await producer.transaction();
      await after.send({ topic: spec.name, messages: [{ key: 'k', value: 'after' }] });
      await after.commit();

      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topics: [spec.name], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => void seen.push(message.value?.toString() ?? ''),
      });
      await waitFor('the committed records', () => (seen.length >= 2 ? true : undefined));
      expect(seen).toEqual(['committed', 'after']);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  });

  it('does not create a topic on first use, even when a client asks it to', async () => {
    const name = uniqueName('test.auto');
    const kafka = new kafkajs.Kafka({
      brokers: testInfrastructure().kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100 },
    });
    // This producer allows auto-creation: on a broker with auto.create.topics.enable=true the send would
    // create the topic and succeed. Ours must refuse.
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    try {
      const sent = await producer.send({ topic: name, messages: [{ value: 'x' }] }).then(
        () => 'sent',
        () => 'refused',
      );
      expect(sent).toBe('refused');
      expect(await admin.listTopics()).not.toContain(name);
    } finally {
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }
  });
});
