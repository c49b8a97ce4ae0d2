// The live tag feed behind WatchTags: every replica reads the whole tags topic (its own consumer group) and fans
// each TagEvent out to the watchers connected to it, so a watcher sees the events of every replica, not just of
// the one it happens to be connected to. Watchers get bounded queues: the consumer never waits for a watcher,
// and one that falls behind is dropped (it reconnects and resyncs with GetStreamSummary).

import { randomUUID } from 'node:crypto';
import type { prefixedTopics, TagEvent, TagEventSchema } from '@livelens/contracts';
import {
  type ConsumerLoop,
  type KafkaClient,
  LiveLensError,
  type Logger,
  type Publisher,
} from '@livelens/runtime';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Decides whether a watcher gets an event (built from a WatchTagsRequest by `tagFilterOf`). */
export type TagFilter = (event: TagEvent) => boolean;

/** Where WatchTags takes its events from: the TagFeed, or a fake in tests. */
export interface TagSource {
  /**
   * Events accepted by `filter` from the moment of the call, until `signal` aborts (the iteration then ends
   * without error) or the source ends the subscription with an error (`resource_exhausted` for a watcher that
   * fell behind, `unavailable` when the source stops). One consumer per subscription.
   */
  subscribe(filter: TagFilter, signal: AbortSignal): AsyncIterable<TagEvent>;
}

/** The watch metrics (`livelens_fusion_watch*`); labels are bounded. */
export interface WatchMetrics {
  /** Open watch subscriptions of this replica. */
  readonly watchers: Gauge;
  /** Events handed to a watcher (`sent`) or lost with a watcher dropped for being slow (`dropped_slow`). */
  readonly events: Counter<'outcome'>;
}

/**
 * The watch metrics in `registry`, created once: a second feed on the same registry (tests) shares them, which
 * is why the gauge is moved with inc/dec rather than set.
 */
export function createWatchMetrics(registry: Registry): WatchMetrics {
  const watchersName = 'livelens_fusion_watchers';
  const eventsName = 'livelens_fusion_watch_events_total';
  const watchers =
    (registry.getSingleMetric(watchersName) as Gauge | undefined) ??
    new Gauge({
      name: watchersName,
      help: 'Open WatchTags subscriptions served by this replica.',
      registers: [registry],
    });
  const events =
    (registry.getSingleMetric(eventsName) as Counter<'outcome'> | undefined) ??
    new Counter({
      name: eventsName,
      help: 'Tag events per watcher by outcome: sent (handed to the watch stream), dropped_slow (discarded with a watcher that had maxQueuedPerWatcher events queued).',
      labelNames: ['outcome'],
      registers: [registry],
    });
  return { watchers, events };
}

/** Events a watcher may have queued before it is dropped as too slow. */
export const DEFAULT_MAX_QUEUED_PER_WATCHER = 1024;

/**
 * One subscription: a bounded FIFO between the fan-out (producer, never waits) and one watch stream (consumer).
 * It ends once: on the signal, on `return()`, dropped as too slow, or when the source stops.
 */
class Subscription implements AsyncIterableIterator<TagEvent> {
  readonly filter: TagFilter;
  readonly #signal: AbortSignal;
  readonly #metrics: WatchMetrics;
  readonly #onEnd: (subscription: Subscription) => void;
  #queue: TagEvent[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #ended = false;
  #error: LiveLensError | undefined;

  constructor(
    filter: TagFilter,
    signal: AbortSignal,
    metrics: WatchMetrics,
    onEnd: (subscription: Subscription) => void,
  ) {
    this.filter = filter;
    this.#signal = signal;
    this.#metrics = metrics;
    this.#onEnd = onEnd;
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Queues an event and wakes the consumer. */
  push(event: TagEvent): void {
    this.#queue.push(event);
    this.#wakeUp();
  }

  /**
   * Ends the subscription: queued events are discarded (a dropped or stopped watcher resyncs anyway, and the
   * memory goes now), the consumer sees `error` once, if any, then the end.
   */
  end(error?: LiveLensError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#queue = [];
    this.#head = 0;
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#onEnd(this);
    this.#wakeUp();
  }

  readonly #onAbort = (): void => this.end();

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async next(): Promise<IteratorResult<TagEvent>> {
    for (;;) {
      if (this.#head < this.#queue.length) {
        const event = this.#queue[this.#head] as TagEvent;
        this.#head += 1;
        // Amortised compaction: the array is sliced once half of it is consumed, not on every shift.
        if (this.#head >= 64 && this.#head * 2 >= this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        this.#metrics.events.inc({ outcome: 'sent' });
        return { value: event, done: false };
      }
      if (this.#error) {
        const error = this.#error;
        this.#error = undefined;
        throw error;
      }
      if (this.#ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async return(): Promise<IteratorResult<TagEvent>> {
    this.end();
    this.#error = undefined;
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TagEvent> {
    return this;
  }
}

/**
 * Fans events out to subscribers with bounded queues, without Kafka (TagFeed feeds it from the topic; unit tests
 * feed it directly). `publish` never waits: a watcher whose queue is full when a matching event arrives is
 * dropped with `resource_exhausted` (test: "drops a watcher that falls behind and keeps the others").
 */
export class TagFanout implements TagSource {
  readonly #subscriptions = new Set<Subscription>();
  readonly #maxQueued: number;
  readonly #metrics: WatchMetrics;
  readonly #logger: Logger;
  #closedWith: LiveLensError | undefined;

  constructor(options: { maxQueuedPerWatcher?: number; metrics: WatchMetrics; logger: Logger }) {
    const max = options.maxQueuedPerWatcher ?? DEFAULT_MAX_QUEUED_PER_WATCHER;
    if (!Number.isInteger(max) || max <= 0) {
      throw new LiveLensError(`maxQueuedPerWatcher must be a positive integer, got ${String(max)}`, {
        code: 'invalid_config',
        context: { option: 'maxQueuedPerWatcher' },
      });
    }
    this.#maxQueued = max;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
  }

  /** Open subscriptions. */
  get watchers(): number {
    return this.#subscriptions.size;
  }

  subscribe(filter: TagFilter, signal: AbortSignal): AsyncIterable<TagEvent> {
    const subscription = new Subscription(filter, signal, this.#metrics, (s) => {
      if (this.#subscriptions.delete(s)) this.#metrics.watchers.dec();
    });
    if (this.#closedWith) subscription.end(this.#closedWith);
    else if (signal.aborted) subscription.end();
    else {
      // Registered now, not at the first next(): events from this moment on are the watcher's.
      this.#subscriptions.add(subscription);
      this.#metrics.watchers.inc();
    }
    return subscription;
  }

  /** Hands `event` to every subscriber whose filter accepts it. Never waits, never throws. */
  publish(event: TagEvent): void {
    for (const subscription of this.#subscriptions) {
      let wanted: boolean;
      try {
        wanted = subscription.filter(event);
      } catch (error) {
        // A filter bug ends that watcher, not the feed (nor the consumer loop behind it).
        this.#logger.error({ err: error }, 'watch filter threw: ending the watcher');
        subscription.end(LiveLensError.from(error));
        continue;
      }
      if (!wanted) continue;
      const queued = subscription.queued;
      if (queued >= this.#maxQueued) {
        // Backpressure stops at the watcher: waiting here would stall the consumer loop, and with it every
        // other watcher of this replica. The queued events and this one are lost to the watcher.
        this.#metrics.events.inc({ outcome: 'dropped_slow' }, queued + 1);
        this.#logger.warn({ queued, maxQueued: this.#maxQueued }, 'dropping a slow watcher');
        subscription.end(
          new LiveLensError(`watcher too slow: ${queued} events queued`, {
            code: 'resource_exhausted',
            context: { queued },
          }),
        );
        continue;
      }
      subscription.push(event);
    }
  }

  /** Ends every subscription with `error`; later subscriptions end with it at once. */
  close(error: LiveLensError): void {
    this.#closedWith = error;
    for (const subscription of [...this.#subscriptions]) subscription.end(error);
  }
}

/** running → stopping → stopped, or → failed (the consumer loop failed); every transition is logged. */
export type TagFeedState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface TagFeedOptions {
  kafka: Pick<KafkaClient, 'consumerLoop'>;
  /** The deployment's topics (`prefixedTopics(prefix)`): `tags` is read, `dlq` takes undecodable records. */
  topics: Pick<ReturnType<typeof prefixedTopics>, 'tags' | 'dlq'>;
  /** Consumer group prefix; the feed's group is `${groupPrefix}-watch-<uuid>`, a new one per feed. */
  groupPrefix: string;
  /** Publishes the loop's dead letters. */
  publisher: Publisher;
  logger: Logger;
  /** Where `livelens_fusion_watchers` and `livelens_fusion_watch_events_total` are registered. */
  registry: Registry;
  /** Events a watcher may have queued before it is dropped as too slow. @default 1024 */
  maxQueuedPerWatcher?: number;
  /** The loop's `service` (metrics label, dead letters' `service`). @default 'fusion' */
  service?: string;
  /** Kafka session timeout of the feed's consumer. @default 30_000 */
  sessionTimeoutMs?: number;
  /** Kafka heartbeat interval of the feed's consumer. @default 3_000 */
  heartbeatIntervalMs?: number;
}

/**
 * The tags topic as a live feed for watchers: one ConsumerLoop per replica, in a consumer group of its own
 * (`${groupPrefix}-watch-<uuid>`), so every replica reads every partition, from the end of the topic at start
 * (`fromBeginning: false`: watchers see events from now on). Delivery is at least once and per stream in order
 * (the loop keeps per-key order); after a consumer restart an event may come twice, recognisable by its
 * deterministic `event_id`.
 */
export class TagFeed implements TagSource {
  readonly #fanout: TagFanout;
  readonly #loop: ConsumerLoop<typeof TagEventSchema>;
  readonly #logger: Logger;
  readonly #groupId: string;
  #state: TagFeedState = 'idle';

  constructor(options: TagFeedOptions) {
    this.#groupId = `${options.groupPrefix}-watch-${randomUUID()}`;
    this.#logger = options.logger.child({ component: 'tag-feed', group: this.#groupId });
    this.#fanout = new TagFanout({
      metrics: createWatchMetrics(options.registry),
      logger: this.#logger,
      ...(options.maxQueuedPerWatcher === undefined
        ? {}
        : { maxQueuedPerWatcher: options.maxQueuedPerWatcher }),
    });
    this.#loop = options.kafka.consumerLoop(
      options.topics.tags,
      async ({ message }) => {
        this.#fanout.publish(message);
      },
      {
        // A group per feed: watchers must see every partition, so replicas must not share one. The group is
        // abandoned on stop, not deleted: the runtime's admin has no group deletion (kafkajs' deleteGroups also
        // needs the group empty, one more round trip on the shutdown path). An empty group's offsets expire
        // after the broker's offsets.retention.minutes (7 days by default); a few bytes per replica start.
        groupId: this.#groupId,
        service: options.service ?? 'fusion',
        deadLetters: options.publisher,
        dlqTopic: options.topics.dlq,
        fromBeginning: false,
        ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
        ...(options.heartbeatIntervalMs === undefined
          ? {}
          : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      },
    );
    this.#loop.onStateChange((state, error) => {
      if (state !== 'failed' || this.#state === 'stopping' || this.#state === 'stopped') return;
      // Watchers would wait forever on a dead loop: end them (they reconnect, maybe to a healthy replica).
      this.#fanout.close(
        new LiveLensError('the tag feed failed: watch again', { code: 'unavailable', cause: error }),
      );
      this.#transition('failed', error);
    });
  }

  get state(): TagFeedState {
    return this.#state;
  }

  /** The feed's consumer group (unique per feed). */
  get groupId(): string {
    return this.#groupId;
  }

  /** Open subscriptions (the `livelens_fusion_watchers` gauge counts those of every feed on the registry). */
  get watchers(): number {
    return this.#fanout.watchers;
  }

  /**
   * Joins the feed's group; resolves once the consumer runs. Events published before its first fetch are not
   * seen (the group starts at the end of the topic), which is the "from now on" of WatchTags.
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') {
      throw new LiveLensError(`cannot start a ${this.#state} tag feed`, { code: 'failed_precondition' });
    }
    this.#transition('starting');
    try {
      await this.#loop.start();
    } catch (error) {
      const converted = LiveLensError.from(error);
      this.#fanout.close(
        new LiveLensError('the tag feed failed: watch again', { code: 'unavailable', cause: converted }),
      );
      this.#transition('failed', converted);
      throw converted;
    }
    // The loop may have failed while starting: its listener moved us to `failed` already (a change TypeScript
    // cannot see across the await, hence the widening).
    if ((this.#state as TagFeedState) === 'starting') this.#transition('running');
  }

  /**
   * Ends every subscription with `unavailable` (watchers reconnect, to another replica if this one is going
   * away), then drains the consumer loop, which leaves its group.
   */
  async stop(drainTimeoutMs = 5_000): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    const from = this.#state;
    this.#transition('stopping');
    this.#fanout.close(new LiveLensError('the tag feed stopped: watch again', { code: 'unavailable' }));
    if (from !== 'idle') await this.#loop.drain(drainTimeoutMs);
    this.#transition('stopped');
  }

  /**
   * Events accepted by `filter` from now on, until `signal` aborts (the iteration ends) or the subscription
   * is ended with an error: `resource_exhausted` ("watcher too slow: N events queued") when the watcher has
   * `maxQueuedPerWatcher` events queued, `unavailable` when the feed stops or fails. Iterate it or abort the
   * signal: a subscription nobody reads fills up and is dropped.
   */
  subscribe(filter: TagFilter, signal: AbortSignal): AsyncIterable<TagEvent> {
    return this.#fanout.subscribe(filter, signal);
  }

  #transition(state: TagFeedState, error?: unknown): void {
    if (this.#state === state) return;
    const from = this.#state;
    this.#state = state;
    this.#logger[state === 'failed' ? 'error' : 'info']({ from, to: state, err: error }, 'tag feed state');
  }
}
