import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { testInfrastructure, uniqueName, waitFor } from '@livelens/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, testKafka, uniqueTopics } from '../../test/fixtures.js';
import type { Publisher } from './publisher.js';

const worker = fileURLToPath(new URL('../../test/drain-worker.ts', import.meta.url));

describe('SIGTERM mid-stream, then restart', () => {
  const { client } = testKafka('sigterm');
  let publisher: Publisher;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    publisher = client.publisher({ service: 'sigterm' });
    await publisher.connect();
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await publisher.disconnect();
  });

  const total = async (offsets: Promise<Map<number, string>>) =>
    [...(await offsets).values()].reduce((sum, o) => sum + Math.max(0, Number(o)), 0);

  it('drains, commits what it finished, and the next process resumes with no loss and no repeat', async () => {
    const { frames, outputs, dlq } = await uniqueTopics(client, 2);
    const groupId = uniqueName('group');
    const count = 200;
    await publisher.publish(
      frames,
      Array.from({ length: count }, (_, i) => ({ message: frame(`stream-${i % 4}`, i) })),
    );
    const start = async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', worker], {
        env: {
          ...process.env,
          KAFKA_BROKERS: testInfrastructure().kafkaBrokers.join(','),
          FRAMES_TOPIC: frames.name,
          OUTPUTS_TOPIC: outputs.name,
          DLQ_TOPIC: dlq.name,
          GROUP_ID: groupId,
          DELAY_MS: '15',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      child.once('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGKILL') failures.push(`worker exited with ${code ?? signal}`);
      });
      return child;
    };

    const failures: string[] = [];
    const progressOrFailure = (done: () => Promise<boolean>) => async () => {
      if (failures.length > 0) throw new Error(failures.join('; '));
      return (await done()) ? true : undefined;
    };
    const first = await start();
    await waitFor(
      'the first worker to process 40 frames',
      progressOrFailure(async () => (await total(client.admin().endOffsets(outputs.name))) >= 40),
    );
    first.kill('SIGTERM');
    const [exitCode] = await once(first, 'exit');
    expect(exitCode).toBe(0);
    const producedByFirst = await total(client.admin().endOffsets(outputs.name));
    const committedByFirst = await total(client.admin().committedOffsets(groupId, frames.name));
    expect(producedByFirst).toBeLessThan(count); // it really stopped mid-stream
    expect(committedByFirst).toBe(producedByFirst); // everything it finished was committed, nothing more

    const second = await start();
    await waitFor(
      'all frames to be processed',
      progressOrFailure(
        async () => (await total(client.admin().committedOffsets(groupId, frames.name))) >= count,
      ),
      { timeoutMs: 60_000 },
    );
    second.kill('SIGTERM');
    expect((await once(second, 'exit'))[0]).toBe(0);

    // Exactly one output per input: the restart neither skipped nor re-processed committed work.
    expect(await total(client.admin().endOffsets(outputs.name))).toBe(count);
    const seen = new Set<string>();
    const reader = client.consumerLoop(outputs, async (r) => void seen.add(r.message.frameId), {
      groupId: uniqueName('reader'),
      service: 'sigterm',
      deadLetters: publisher,
      dlqTopic: dlq,
    });
    await reader.start();
    await waitFor('all outputs read', () => (seen.size >= count ? true : undefined));
    await reader.drain();
    expect(seen).toEqual(new Set(Array.from({ length: count }, (_, i) => `stream-${i % 4}/epoch-1/f/${i}`)));
  }, 120_000);
});
