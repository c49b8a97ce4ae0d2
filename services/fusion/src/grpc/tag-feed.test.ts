import { create } from '@bufbuild/protobuf';
import {
  EpisodeState,
  prefixedTopics,
  Severity,
  type TagEvent,
  TagEventSchema,
  TagKind,
} from '@livelens/contracts';
import { type ConsumerLoopState, createLogger, LiveLensError, type Publisher } from '@livelens/runtime';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createWatchMetrics, TagFanout, TagFeed, type TagFeedOptions } from './tag-feed.js';

const logger = createLogger({ service: 'tag-feed-test', level: 'silent' });

function tagEvent(streamId: string, n: number, tagId = 'promo_code'): TagEvent {
  return create(TagEventSchema, {
    eventId: `${streamId}/${tagId}/${n}`,
    episodeId: `${streamId}/${tagId}`,
    state: EpisodeState.OPEN,
    streamId,
    tagId,
    kind: TagKind.INTENT,
    severity: Severity.LOW,
    score: 0.9,
  });
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Reads an iterable to its end; `error` is what it threw, if it did. */
async function drainAll(iterable: AsyncIterable<TagEvent>): Promise<{ events: string[]; error?: unknown }> {
  const events: string[] = [];
  try {
    for await (const event of iterable) events.push(event.eventId);
    return { events };
  } catch (error) {
    return { events, error };
  }
}

function fanout(maxQueuedPerWatcher?: number) {
  const registry = new Registry();
  const feed = new TagFanout({
    metrics: createWatchMetrics(registry),
    logger,
    ...(maxQueuedPerWatcher === undefined ? {} : { maxQueuedPerWatcher }),
  });
  return { registry, feed };
}

describe('TagFanout', () => {
  it('delivers the events a filter accepts, in order, from the moment of subscribing', async () => {
    const { feed } = fanout();
    feed.publish(tagEvent('a', 0));
    const abort = new AbortController();
    const onlyA = feed.subscribe((e) => e.streamId === 'a', abort.signal);
    for (let n = 1; n <= 3; n += 1) {
      feed.publish(tagEvent('a', n));
      feed.publish(tagEvent('b', n));
    }
    abort.abort();
    // Aborting ends the subscription without error; what was queued but not read is discarded.
    expect(await drainAll(onlyA)).toEqual({ events: [] });

    const abort2 = new AbortController();
    const all = feed.subscribe(() => true, abort2.signal);
    const reading = drainAll(all);
    feed.publish(tagEvent('a', 4));
    feed.publish(tagEvent('b', 4));
    await new Promise((resolve) => setImmediate(resolve));
    abort2.abort();
    expect(await reading).toEqual({ events: ['a/promo_code/4', 'b/promo_code/4'] });
  });

  it('drops a watcher that falls behind with resource_exhausted, and keeps the others', async () => {
    const { feed, registry } = fanout(3);
    const slowAbort = new AbortController();
    const slow = feed.subscribe(() => true, slowAbort.signal);
    const fastAbort = new AbortController();
    const fastEvents: string[] = [];
    const fast = (async () => {
      for await (const event of feed.subscribe(() => true, fastAbort.signal)) fastEvents.push(event.eventId);
    })();
    expect(feed.watchers).toBe(2);
    expect(await metricValue(registry, 'livelens_fusion_watchers')).toBe(2);

    for (let n = 1; n <= 5; n += 1) {
      feed.publish(tagEvent('a', n));
      // The fast watcher reads between events; the slow one never does.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(fastEvents).toEqual([1, 2, 3, 4, 5].map((n) => `a/promo_code/${n}`));
    expect(feed.watchers).toBe(1);

    // The 4th event found 3 queued: the slow watcher is dropped, its queue discarded, the error comes first.
    const { events, error } = await drainAll(slow);
    expect(events).toEqual([]);
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('resource_exhausted');
    expect((error as LiveLensError).message).toBe('watcher too slow: 3 events queued');
    expect(
      await metricValue(registry, 'livelens_fusion_watch_events_total', { outcome: 'dropped_slow' }),
    ).toBe(4);
    expect(await metricValue(registry, 'livelens_fusion_watch_events_total', { outcome: 'sent' })).toBe(5);

    fastAbort.abort();
    await fast;
    expect(feed.watchers).toBe(0);
    expect(await metricValue(registry, 'livelens_fusion_watchers')).toBe(0);
  });

  it('only counts matching events against a watcher queue', async () => {
    const { feed } = fanout(2);
    const abort = new AbortController();
    const onlyB = feed.subscribe((e) => e.streamId === 'b', abort.signal);
    for (let n = 1; n <= 10; n += 1) feed.publish(tagEvent('a', n));
    feed.publish(tagEvent('b', 1));
    expect(feed.watchers).toBe(1);
    const iterator = onlyB[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.eventId).toBe('b/promo_code/1');
    abort.abort();
    expect((await iterator.next()).done).toBe(true);
  });

  it('unsubscribes when the reader breaks out, and ends at once on an aborted signal', async () => {
    const { feed, registry } = fanout();
    const abort = new AbortController();
    const reading = (async () => {
      for await (const event of feed.subscribe(() => true, abort.signal)) {
        return event.eventId;
      }
      return undefined;
    })();
    feed.publish(tagEvent('a', 1));
    expect(await reading).toBe('a/promo_code/1');
    expect(feed.watchers).toBe(0);

    const aborted = AbortSignal.abort();
    expect(await drainAll(feed.subscribe(() => true, aborted))).toEqual({ events: [] });
    expect(feed.watchers).toBe(0);
    expect(await metricValue(registry, 'livelens_fusion_watchers')).toBe(0);
  });

  it('ends a watcher whose filter throws, and no other', async () => {
    const { feed } = fanout();
    const abort = new AbortController();
    const broken = feed.subscribe(() => {
      throw new Error('bug');
    }, abort.signal);
    const fine = feed.subscribe(() => true, abort.signal);
    feed.publish(tagEvent('a', 1));
    const { error } = await drainAll(broken);
    expect((error as LiveLensError).code).toBe('internal');
    const iterator = fine[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.eventId).toBe('a/promo_code/1');
    abort.abort();
  });

  it('ends every watcher with the close error, and later ones at once', async () => {
    const { feed } = fanout();
    const abort = new AbortController();
    const before = feed.subscribe(() => true, abort.signal);
    feed.close(new LiveLensError('stopped', { code: 'unavailable' }));
    expect(((await drainAll(before)).error as LiveLensError).code).toBe('unavailable');
    expect(((await drainAll(feed.subscribe(() => true, abort.signal))).error as LiveLensError).code).toBe(
      'unavailable',
    );
    expect(feed.watchers).toBe(0);
  });

  it('refuses a queue bound that is not a positive integer', () => {
    expect(() => fanout(0)).toThrow(/maxQueuedPerWatcher must be a positive integer, got 0/);
    expect(() => fanout(1.5)).toThrow(LiveLensError);
  });
});

/** A stand-in for the runtime's ConsumerLoop: records its options, lets the test feed records and fail it. */
function fakeKafka() {
  const seen: {
    topic?: string;
    options?: Record<string, unknown>;
    handler?: (record: { message: TagEvent }) => Promise<void>;
    started: number;
    drained: number;
    fail: (error: Error) => void;
  } = { started: 0, drained: 0, fail: () => undefined };
  const listeners = new Set<(state: ConsumerLoopState, error?: Error) => void>();
  const kafka = {
    consumerLoop(topic: { name: string }, handler: unknown, options: Record<string, unknown>) {
      seen.topic = topic.name;
      seen.options = options;
      seen.handler = handler as typeof seen.handler;
      seen.fail = (error) => {
        for (const listener of listeners) listener('failed', error);
      };
      return {
        start: async () => {
          seen.started += 1;
        },
        drain: async () => {
          seen.drained += 1;
        },
        onStateChange: (listener: (state: ConsumerLoopState, error?: Error) => void) => {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      };
    },
  };
  return { kafka: kafka as unknown as TagFeedOptions['kafka'], seen };
}

describe('TagFeed', () => {
  const topics = prefixedTopics('unit.');
  const build = () => {
    const { kafka, seen } = fakeKafka();
    const feed = new TagFeed({
      kafka,
      topics,
      groupPrefix: 'fusion',
      publisher: {} as Publisher,
      logger,
      registry: new Registry(),
      maxQueuedPerWatcher: 8,
    });
    return { feed, seen };
  };

  it('reads the tags topic from now on, in a group of its own, dead letters to the dlq', () => {
    const { feed, seen } = build();
    const other = build();
    expect(seen.topic).toBe('unit.live.tags.v1');
    expect(seen.options).toMatchObject({
      fromBeginning: false,
      service: 'fusion',
      dlqTopic: topics.dlq,
      groupId: feed.groupId,
    });
    expect(feed.groupId).toMatch(/^fusion-watch-[0-9a-f-]{36}$/);
    expect(other.feed.groupId).not.toBe(feed.groupId);
  });

  it('fans consumed records out to its watchers, and ends them with unavailable on stop', async () => {
    const { feed, seen } = build();
    await feed.start();
    expect(feed.state).toBe('running');
    expect(seen.started).toBe(1);
    const abort = new AbortController();
    const iterator = feed.subscribe((e) => e.streamId === 'a', abort.signal)[Symbol.asyncIterator]();
    await seen.handler?.({ message: tagEvent('b', 1) });
    await seen.handler?.({ message: tagEvent('a', 2) });
    expect((await iterator.next()).value?.eventId).toBe('a/promo_code/2');

    const pending = iterator.next();
    await feed.stop();
    await expect(pending).rejects.toMatchObject({ code: 'unavailable' });
    expect(feed.state).toBe('stopped');
    expect(seen.drained).toBe(1);
    expect(feed.watchers).toBe(0);
  });

  it('ends its watchers with unavailable when the consumer loop fails', async () => {
    const { feed, seen } = build();
    await feed.start();
    const abort = new AbortController();
    const watching = drainAll(feed.subscribe(() => true, abort.signal));
    seen.fail(new Error('broker gone'));
    expect(((await watching).error as LiveLensError).code).toBe('unavailable');
    expect(feed.state).toBe('failed');
  });
});
