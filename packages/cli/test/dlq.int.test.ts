// `livelens dlq` as a user runs it (the bin): letters a real consumer loop dead-lettered, read back and one
// replayed to its source topic.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { FrameSampleSchema, prefixedTopics, recordIds } from '@livelens/contracts';
import { KafkaClient, LiveLensError } from '@livelens/runtime';
import { testLogger } from '@livelens/runtime/testing';
import { testInfrastructure, uniqueName, waitFor } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';

const bin = new URL('../bin/livelens.js', import.meta.url).pathname;
const run = promisify(execFile);

async function cli(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('livelens dlq', () => {
  const logger = testLogger('dlq-test');
  const { kafkaBrokers } = testInfrastructure();
  const client = new KafkaClient({ brokers: kafkaBrokers }, { logger, registry: new Registry() });
  const prefix = `${uniqueName('dlq')}.`;
  const topics = prefixedTopics(prefix);
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('lists what a consumer dead-lettered, and replays a letter to its source topic', async () => {
    await client.admin().ensureTopics([topics.frames, topics.dlq], { partitions: 1 });
    const publisher = client.publisher({ service: 'dlq-test' });
    await publisher.connect();
    stops.push(() => publisher.disconnect());
    // A consumer that refuses stream "bad" for good: its frame is dead-lettered with its bytes.
    const loop = client.consumerLoop(
      topics.frames,
      async ({ message }) => {
        if (message.streamId === 'bad')
          throw new LiveLensError('frame refused by the test', { code: 'invalid_argument' });
      },
      {
        groupId: uniqueName('dlq-consumer'),
        service: 'dlq-test',
        deadLetters: publisher,
        dlqTopic: topics.dlq,
      },
    );
    await loop.start();
    stops.push(() => loop.drain(5_000));
    const frame = create(FrameSampleSchema, {
      streamId: 'bad',
      sessionEpoch: 'e1',
      seq: 1n,
      frameId: recordIds.frame('bad', 'e1', 1),
      ptsMs: 1_000n,
      captureTimeUnixMs: BigInt(Date.now()),
      width: 2,
      height: 2,
      jpeg: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
    });
    await publisher.publish(topics.frames, { message: frame });
    await publisher.sendRaw(topics.frames.name, [{ key: 'x', value: Buffer.from('garbage') }]);
    const common = ['--brokers', kafkaBrokers.join(','), '--topic-prefix', prefix, '--since', '10m'];
    const letters = await waitFor(
      'two dead letters',
      async () => {
        const { stdout } = await cli('dlq', ...common, '--json');
        const parsed = stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { deadLetterId: string; errorCode: string; sourceTopic: string });
        return parsed.length === 2 ? parsed : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 2_000 },
    );
    expect(letters.map((l) => l.errorCode).sort()).toEqual(['decode_failed', 'invalid_argument']);
    expect(letters.every((l) => l.sourceTopic === topics.frames.name)).toBe(true);

    const text = await cli('dlq', ...common);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('frame refused by the test');
    expect(text.stdout).toContain(`2 dead letter(s) on ${topics.dlq.name}`);

    const refused = letters.find((l) => l.errorCode === 'invalid_argument')?.deadLetterId as string;
    const replay = await cli('dlq', ...common, '--replay', refused);
    expect(replay.stdout.trim()).toBe(`replayed ${refused} → ${topics.frames.name}`);
    expect(replay.code).toBe(0);
    // The same frame, byte for byte, is on the source topic again (and dead-lettered again by this consumer).
    const frames = await client.readRange(topics.frames, { sinceUnixMs: 0 });
    expect(frames).toHaveLength(3);
    expect(frames[2]?.message?.frameId).toBe(frame.frameId);
    expect(frames[2]?.value.equals(frames[0]?.value as Buffer)).toBe(true);

    const unknown = await cli('dlq', ...common, '--replay', 'no/such/letter');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no dead letter no\/such\/letter in the range read/);
  }, 120_000);
});
