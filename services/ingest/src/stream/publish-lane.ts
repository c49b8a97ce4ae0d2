import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { TopicSpec } from '@livelens/contracts';
import { LiveLensError, type Logger, type Publisher } from '@livelens/runtime';

/** One record waiting for the broker, with what the lane reports once it is acknowledged. */
export interface LaneItem<Desc extends DescMessage> {
  message: MessageShape<Desc>;
  /** Wall-clock ms the sample left ffmpeg (for the publish-latency metric). */
  capturedAtMs: number;
}

export interface LaneOptions<Desc extends DescMessage> {
  topic: TopicSpec<Desc>;
  publisher: Publisher;
  logger: Logger;
  /** Items waiting at most; `offer` refuses past it (the caller sheds and records a gap). */
  maxQueued: number;
  /** Bytes waiting at most (by `sizeOf`); `offer` refuses past it too. @default unbounded */
  maxQueuedBytes?: number;
  /** The size of an item for `maxQueuedBytes`. @default 0 */
  sizeOf?: (item: LaneItem<Desc>) => number;
  /** Items per send. @default 16 */
  maxBatch?: number;
  /** Called after each acknowledged batch. */
  onPublished?: (items: readonly LaneItem<Desc>[], ackedAtMs: number) => void;
  /** Called when a send fails (it is retried until it succeeds or the lane closes). */
  onError?: (error: LiveLensError) => void;
  /** Called with items that will never be sent (refused by the contract, or still queued at close). */
  onDropped?: (items: readonly LaneItem<Desc>[], reason: 'unsendable' | 'closed') => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An ordered, bounded queue in front of one topic for one stream: one send in flight at a time (so the
 * stream's records keep their order), batches of what queued up meanwhile, retries with backoff while the
 * broker is unavailable. It never grows past `maxQueued`: the caller decides what to shed, so that every
 * loss becomes a gap record rather than unbounded memory.
 */
export class PublishLane<Desc extends DescMessage> {
  readonly #queue: LaneItem<Desc>[] = [];
  #queuedBytes = 0;
  readonly #options: Required<Omit<LaneOptions<Desc>, 'onPublished' | 'onError' | 'onDropped'>> &
    Pick<LaneOptions<Desc>, 'onPublished' | 'onError' | 'onDropped'>;
  #running: Promise<void> | undefined;
  #draining = false;
  #closed = false;
  /** Items at the head of the queue that are in the send in flight (never reported as dropped). */
  #sending = 0;
  #idle: (() => void)[] = [];

  constructor(options: LaneOptions<Desc>) {
    this.#options = { maxBatch: 16, maxQueuedBytes: Number.POSITIVE_INFINITY, sizeOf: () => 0, ...options };
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Queues an item; false (nothing queued) when the lane is full or closed. */
  offer(item: LaneItem<Desc>): boolean {
    if (this.#closed || this.#queue.length >= this.#options.maxQueued) return false;
    const size = this.#options.sizeOf(item);
    // One item is always let in, however large: the byte bound must not starve a lane for good.
    if (this.#queue.length > 0 && this.#queuedBytes + size > this.#options.maxQueuedBytes) return false;
    this.#queuedBytes += size;
    this.#queue.push(item);
    // A flag, not `#running ??=`: the previous drain's promise settles a tick after its loop ends, and an
    // offer in that tick must start a new drain (pinned by "bounds the bytes waiting too").
    if (!this.#draining) {
      this.#draining = true;
      this.#running = this.#drain();
    }
    return true;
  }

  /** Resolves when everything queued so far is acknowledged (or the lane closed). */
  flushed(): Promise<void> {
    // Items stay queued until acknowledged, so an empty queue means everything offered is acknowledged.
    if (this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops after the send in flight; waits up to `timeoutMs` for the queue to flush first. */
  async close(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flushed(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#closed = true;
    const dropped = this.#take(this.#sending, this.#queue.length);
    if (dropped.length > 0) this.#options.onDropped?.(dropped, 'closed');
    await this.#running;
    return dropped.length;
  }

  /** Removes items [start, start+count) from the queue, keeping the byte count right. */
  #take(start: number, count: number): LaneItem<Desc>[] {
    const removed = this.#queue.splice(start, count);
    for (const item of removed) this.#queuedBytes -= this.#options.sizeOf(item);
    return removed;
  }

  async #drain(): Promise<void> {
    let failures = 0;
    while (this.#queue.length > 0 && !this.#closed) {
      const batch = this.#queue.slice(0, this.#options.maxBatch);
      this.#sending = batch.length;
      try {
        await this.#options.publisher.publish(
          this.#options.topic,
          batch.map((item) => ({ message: item.message })),
        );
        this.#take(0, batch.length);
        failures = 0;
        this.#options.onPublished?.(batch, Date.now());
      } catch (error) {
        const converted = LiveLensError.from(error);
        this.#options.onError?.(converted);
        if (!converted.retriable) {
          // A record the contract refuses cannot be sent by retrying: drop it, loudly.
          this.#options.logger.error(
            { err: converted, topic: this.#options.topic.name },
            'dropping unsendable records',
          );
          this.#options.onDropped?.(this.#take(0, batch.length), 'unsendable');
          continue;
        }
        failures += 1;
        await sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2));
      } finally {
        this.#sending = 0;
      }
    }
    this.#draining = false;
    // Closed with a failed batch still at the head: it will never be sent.
    if (this.#closed && this.#queue.length > 0)
      this.#options.onDropped?.(this.#take(0, this.#queue.length), 'closed');
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
