import type { FrameSampleSchema } from '@livelens/contracts';
import { uniqueName, waitFor } from '@livelens/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { frame, testKafka, uniqueTopics } from '../../test/fixtures.js';
import { LiveLensError } from '../errors.js';
import type { ConsumerLoop } from './consumer-loop.js';
import type { Publisher } from './publisher.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Faults inside the consumer loop, on the real broker (reliability.md K1, K3, T9, T11, T14).
describe('consumer loop under faults', () => {
  // One retry per kafkajs operation, so a crashed consumer restarts in about a second, not a minute.
  const { client, registry } = testKafka('faults', { retries: 1, initialRetryMs: 100 });
  let publisher: Publisher;
  const loops: ConsumerLoop<typeof FrameSampleSchema>[] = [];

  beforeAll(async () => {
    publisher = client.publisher({ service: 'faults' });
    await publisher.connect();
    return () => publisher.disconnect();
  });
  afterEach(async () => {
    await Promise.all(loops.splice(0).map((loop) => loop.drain(5_000)));
  });

  const metric = async (name: string, labels: Record<string, string>) => {
    const values = (await registry.getSingleMetric(`livelens_faults_${name}`)?.get())?.values ?? [];
    return values
      .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .reduce((a, v) => a + v.value, 0);
  };
  const committedAll = async (groupId: string, topic: string) => {
    const [end, committed] = await Promise.all([
      client.admin().endOffsets(topic),
      client.admin().committedOffsets(groupId, topic),
    ]);
    return [...end].every(([p, high]) => committed.get(p) === high);
  };

  it('replays a failed batch: records queued behind the failure run later, in order, and no slot leaks', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    const groupId = uniqueName('group');
    await publisher.publish(
      frames,
      Array.from({ length: 40 }, (_, i) => ({ message: frame(i % 2 === 0 ? 'a' : 'b', i) })),
    );
    let failuresLeft = 2;
    const seen: { key: string; seq: number }[] = [];
    const loop = client.consumerLoop(
      frames,
      async ({ message }) => {
        const seq = Number(message.seq);
        if (seq === 10 && failuresLeft-- > 0)
          throw new LiveLensError('broker hiccup', { code: 'unavailable' });
        await sleep(seq % 2 === 0 ? 5 : 1);
        seen.push({ key: message.streamId, seq });
      },
      {
        groupId,
        service: 'faults',
        deadLetters: publisher,
        dlqTopic: dlq,
        maxInFlight: 4,
        handlerAttempts: 1,
      },
    );
    loops.push(loop);
    await loop.start();
    await waitFor('every record', () => (new Set(seen.map((s) => s.seq)).size === 40 ? true : undefined));
    await waitFor('commits at the end', async () =>
      (await committedAll(groupId, frames.name)) ? true : undefined,
    );
    for (const key of ['a', 'b']) {
      const seqs = seen.filter((s) => s.key === key).map((s) => s.seq);
      const firsts = seqs.filter((seq, i) => seqs.indexOf(seq) === i);
      expect(firsts).toEqual([...firsts].sort((x, y) => x - y));
    }
    // Nothing queued behind the failure was lost or left holding a slot; fetching is not left paused.
    expect(loop.inFlight).toBe(0);
    expect(await metric('consumer_paused', { topic: frames.name })).toBe(0);
    expect(loop.state).toBe('running');
    expect((await client.admin().endOffsets(dlq.name)).get(0)).toBe('0');
  });

  it('keeps its membership through work longer than the session timeout (K1)', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    const groupId = uniqueName('group');
    await publisher.publish(
      frames,
      Array.from({ length: 30 }, (_, i) => ({ message: frame(i === 0 ? 'slow' : `fast-${i % 3}`, i) })),
    );
    const done: number[] = [];
    const loop = client.consumerLoop(
      frames,
      async ({ message }) => {
        // 9 s of "inference" against a 6 s session; the other keys keep completing meanwhile, waking the
        // dispatcher often, which must not starve the heartbeat.
        await sleep(message.streamId === 'slow' ? 9_000 : 50);
        done.push(Number(message.seq));
      },
      {
        groupId,
        service: 'faults',
        deadLetters: publisher,
        dlqTopic: dlq,
        sessionTimeoutMs: 6_000,
        heartbeatIntervalMs: 1_000,
        maxInFlight: 4,
      },
    );
    loops.push(loop);
    await loop.start();
    await waitFor('all 30 records', () => (done.length >= 30 ? true : undefined), { timeoutMs: 40_000 });
    await waitFor('commits at the end', async () =>
      (await committedAll(groupId, frames.name)) ? true : undefined,
    );
    expect([...done].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i)); // each once
    expect(await metric('consumer_rebalances_total', { group: groupId })).toBe(1); // only the first join
  }, 60_000);

  it('on a drain deadline, aborts in-flight work without dead-lettering or committing it; the next member replays it', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    const groupId = uniqueName('group');
    await publisher.publish(
      frames,
      [0, 1, 2].map((i) => ({ message: frame(`s${i}`, i) })),
    );
    let started = 0;
    const stuck = client.consumerLoop(
      frames,
      (_record, { signal }) =>
        new Promise<void>((_resolve, reject) => {
          started += 1;
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      { groupId, service: 'faults', deadLetters: publisher, dlqTopic: dlq },
    );
    await stuck.start();
    await waitFor('all three to start', () => (started === 3 ? true : undefined));
    const before = Date.now();
    await stuck.drain(500);
    expect(Date.now() - before).toBeLessThan(5_000);
    expect(stuck.state).toBe('stopped');
    expect((await client.admin().endOffsets(dlq.name)).get(0)).toBe('0');
    expect((await client.admin().committedOffsets(groupId, frames.name)).get(0)).toBe('-1');

    const done: number[] = [];
    const next = client.consumerLoop(frames, async ({ message }) => void done.push(Number(message.seq)), {
      groupId,
      service: 'faults',
      deadLetters: publisher,
      dlqTopic: dlq,
    });
    loops.push(next);
    await next.start();
    await waitFor('the replay', () => (done.length === 3 ? true : undefined));
    expect(done.sort()).toEqual([0, 1, 2]);
  });

  it('fails for good after its restart budget on a record that keeps failing, and dead-letters nothing (K3)', async () => {
    const { frames, dlq } = await uniqueTopics(client, 1);
    await publisher.publish(frames, { message: frame('s', 0) });
    let calls = 0;
    const loop = client.consumerLoop(
      frames,
      async () => {
        calls += 1;
        throw new TypeError('a bug, or an outage nobody converted');
      },
      {
        groupId: uniqueName('group'),
        service: 'faults',
        deadLetters: publisher,
        dlqTopic: dlq,
        handlerAttempts: 1,
        maxRestarts: 1,
      },
    );
    const states: string[] = [];
    loop.onStateChange((state) => states.push(state));
    await loop.start();
    await Promise.race([loop.closed(), sleep(45_000)]);
    expect(loop.state).toBe('failed');
    expect(loop.failure?.message).toMatch(/a bug/);
    expect(states.at(-1)).toBe('failed');
    expect(calls).toBeGreaterThanOrEqual(2); // tried, restarted, tried again
    expect((await client.admin().endOffsets(dlq.name)).get(0)).toBe('0'); // the record is not thrown away
    expect(await metric('consumer_restarts_total', {})).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
