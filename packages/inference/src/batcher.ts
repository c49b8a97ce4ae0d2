import { LiveLensError } from '@livelens/runtime';

/** What a batch function returns for one item: its output, or the error of that item alone. */
export type BatchOutcome<O> = O | Error;

/**
 * Runs a batch. It returns one outcome per item, in the items' order: an `Error` fails only its item, so one
 * bad frame does not fail the others. Throwing (or rejecting) fails every item of the batch.
 */
export type BatchFunction<I, O> = (items: readonly I[]) => Promise<readonly BatchOutcome<O>[]>;

export interface MicroBatcherOptions<I, O> {
  /** For errors (e.g. "frame-analyzer"). */
  name: string;
  run: BatchFunction<I, O>;
  /** A batch starts as soon as this many items wait (and no batch runs). @default 8 */
  maxBatchSize?: number;
  /**
   * ...or once the oldest waiting item has waited this long, whatever the count. 0 = no waiting: an item
   * submitted while nothing runs starts a batch at once; items arriving during a run form the next batch.
   * @default 50
   */
  maxWaitMs?: number;
  /**
   * Items waiting (not counting the running batch) past which `submit` rejects with `resource_exhausted`.
   * Memory stays bounded whatever the input rate; a consumer's in-flight bound should keep it below this.
   * @default 1024
   */
  maxQueued?: number;
}

const defaults = { maxBatchSize: 8, maxWaitMs: 50, maxQueued: 1024 } as const;

interface Entry<I, O> {
  readonly item: I;
  readonly queuedAt: number;
  readonly resolve: (output: O) => void;
  readonly reject: (error: unknown) => void;
  /** Set when the wait timer armed for this entry (as the head of the queue) fired. */
  due: boolean;
}

/**
 * Gathers items submitted one at a time (one per Kafka record, across streams) into batches for a model that
 * runs one inference at a time: a batch starts when `maxBatchSize` items wait or the oldest has waited
 * `maxWaitMs`; while it runs, the next batch fills. Each caller gets its own item's output (or error),
 * whatever the batch it ran in. FIFO: items run in the order they were submitted.
 *
 * `O` must not itself be an `Error`: an `Error` outcome means the item failed.
 */
export class MicroBatcher<I, O> {
  readonly name: string;
  readonly maxBatchSize: number;
  readonly maxWaitMs: number;
  readonly maxQueued: number;
  readonly #run: BatchFunction<I, O>;
  readonly #queue: Entry<I, O>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = 0;
  #current: Promise<void> | undefined;
  #closed = false;

  constructor(options: MicroBatcherOptions<I, O>) {
    const settings = { ...defaults, ...options };
    for (const key of ['maxBatchSize', 'maxQueued'] as const) {
      if (!Number.isInteger(settings[key]) || settings[key] < 1) {
        throw new LiveLensError(`${options.name}: ${key} must be an integer ≥ 1, got ${settings[key]}`, {
          code: 'invalid_config',
        });
      }
    }
    if (!Number.isFinite(settings.maxWaitMs) || settings.maxWaitMs < 0) {
      throw new LiveLensError(`${options.name}: maxWaitMs must be ≥ 0, got ${settings.maxWaitMs}`, {
        code: 'invalid_config',
      });
    }
    this.name = settings.name;
    this.maxBatchSize = settings.maxBatchSize;
    this.maxWaitMs = settings.maxWaitMs;
    this.maxQueued = settings.maxQueued;
    this.#run = settings.run;
  }

  /** Items waiting for a batch (the running batch not included). */
  get queueDepth(): number {
    return this.#queue.length;
  }

  /** Items in the batch running now (0 when idle). */
  get running(): number {
    return this.#running;
  }

  /**
   * Queues `item`; resolves with its output once its batch has run. Rejects with its own error, or the batch's
   * when the whole batch failed; with `resource_exhausted` (retriable) when `maxQueued` items already wait; with
   * `cancelled` (retriable: another attempt, or replica, may run it) once the batcher is closed.
   */
  submit(item: I): Promise<O> {
    if (this.#closed) {
      return Promise.reject(
        new LiveLensError(`${this.name}: batcher is closed`, { code: 'cancelled', retriable: true }),
      );
    }
    if (this.#queue.length >= this.maxQueued) {
      return Promise.reject(
        new LiveLensError(`${this.name}: ${this.#queue.length} items already wait for a batch`, {
          code: 'resource_exhausted',
          retriable: true,
          context: { maxQueued: this.maxQueued },
        }),
      );
    }
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, queuedAt: performance.now(), resolve, reject, due: false });
      this.#schedule();
    });
  }

  /**
   * Stops accepting items, rejects those still waiting (`cancelled`, retriable) and resolves once the running
   * batch, if any, has finished and its callers have their outcomes. Drain the producer of items first (the
   * consumer loop) so nothing is waiting by then.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    const waiting = this.#queue.splice(0);
    for (const entry of waiting) {
      entry.reject(
        new LiveLensError(`${this.name}: batcher closed before the item ran`, {
          code: 'cancelled',
          retriable: true,
        }),
      );
    }
    await this.#current;
  }

  /** Starts a batch when one is due, else makes sure a timer will look again when the oldest item is due. */
  #schedule(): void {
    if (this.#running > 0 || this.#closed) return;
    const head = this.#queue[0];
    if (head === undefined) return;
    const waitedMs = performance.now() - head.queuedAt;
    if (this.#queue.length >= this.maxBatchSize || head.due || waitedMs >= this.maxWaitMs) {
      this.#start();
      return;
    }
    if (this.#timer !== undefined) return;
    // Armed for this head only: a batch start clears it, so it can only ever fire for the item it names.
    // `due` covers a timer that fires a fraction of a millisecond before performance.now() says so.
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        head.due = true;
        this.#schedule();
      },
      Math.ceil(this.maxWaitMs - waitedMs),
    );
  }

  #start(): void {
    this.#clearTimer();
    const batch = this.#queue.splice(0, this.maxBatchSize);
    this.#running = batch.length;
    this.#current = this.#execute(batch).finally(() => {
      this.#running = 0;
      this.#current = undefined;
      // The next batch filled while this one ran: it may be due already.
      this.#schedule();
    });
  }

  async #execute(batch: readonly Entry<I, O>[]): Promise<void> {
    let outcomes: readonly BatchOutcome<O>[];
    try {
      outcomes = await this.#run(batch.map((e) => e.item));
      if (!Array.isArray(outcomes) || outcomes.length !== batch.length) {
        throw new LiveLensError(
          `${this.name}: the batch function returned ${Array.isArray(outcomes) ? outcomes.length : typeof outcomes} outcomes for ${batch.length} items`,
          { code: 'internal' },
        );
      }
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    for (const [i, entry] of batch.entries()) {
      const outcome = outcomes[i] as BatchOutcome<O>;
      if (outcome instanceof Error) entry.reject(outcome);
      else entry.resolve(outcome);
    }
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
