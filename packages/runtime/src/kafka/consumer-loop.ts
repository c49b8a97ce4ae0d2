import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  ContractError,
  DeadLetterSchema,
  decodeRecord,
  recordIds,
  type TopicSpec,
  topics,
} from '@livelens/contracts';
import type { Batch, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Registry } from 'prom-client';
import { LiveLensError } from '../errors.js';
import type { Logger } from '../logger.js';
import { fromKafkaError, isRebalanceError } from './errors.js';
import { type KafkaMetrics, kafkaMetrics } from './metrics.js';
import { type ConsumerLoopOptions, defaultConsumerLoopOptions } from './options.js';
import type { Publisher } from './publisher.js';

/** A decoded record with where it came from. */
export interface ConsumedRecord<Desc extends DescMessage> {
  readonly message: MessageShape<Desc>;
  readonly key: string | undefined;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Broker (or producer) timestamp, Unix ms. */
  readonly timestampMs: number;
  readonly headers: Readonly<Record<string, string>>;
}

export interface HandlerContext {
  /** Aborted when the loop must stop now (drain deadline passed, or the loop failed). */
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/**
 * Processes one record. It must resolve only once everything it produced is acknowledged by the broker:
 * the loop commits the record's offset right after. Throw a LiveLensError with `retriable: false` for a
 * record that can never be processed (it is dead-lettered); a retriable error is retried with backoff, then
 * fails the batch, which is replayed from the last commit.
 */
export type RecordHandler<Desc extends DescMessage> = (
  record: ConsumedRecord<Desc>,
  context: HandlerContext,
) => Promise<void>;

/** running → draining → stopped, or → failed; every transition is logged. */
export type ConsumerLoopState = 'idle' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

type Settings = Required<
  Omit<ConsumerLoopOptions, 'groupId' | 'commitLimit' | 'onAssignment' | 'onRebalancing'>
> &
  Pick<ConsumerLoopOptions, 'commitLimit' | 'onAssignment' | 'onRebalancing'> & {
    groupId: string;
    service: string;
  };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** True when `promise` settles within `ms`, false on timeout; the timer never outlives the race. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true as const,
        () => true as const,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Completion of one batch's messages, which finish out of order (different keys run concurrently). The
 * committable offset is the end of the contiguous completed prefix: nothing after a gap is committed.
 */
class BatchProgress {
  readonly #done: boolean[];
  #next = 0;
  constructor(private readonly offsets: readonly string[]) {
    this.#done = new Array<boolean>(offsets.length).fill(false);
  }
  complete(index: number): void {
    this.#done[index] = true;
    while (this.#next < this.#done.length && this.#done[this.#next]) this.#next += 1;
  }
  /** Offset of the last message of the completed prefix, if any. */
  get lastContiguous(): string | undefined {
    return this.#next > 0 ? this.offsets[this.#next - 1] : undefined;
  }
}

/**
 * A consumer group member over one topic: decodes protobuf, dead-letters what cannot be decoded or processed
 * (to live.dlq.v1, with the reason and the source topic/partition/offset), runs the handler with per-key order
 * and bounded concurrency, commits offsets only after the handler's outputs are acknowledged (and never past
 * the handler's `commitLimit`, for handlers whose outputs outlive the record), pauses fetching past
 * `maxInFlight`, heartbeats during long work (kafkajs heartbeats only between batches: K1), and drains on
 * `drain()`: stops fetching, finishes in-flight work, commits, leaves the group.
 */
export class ConsumerLoop<Desc extends DescMessage> {
  readonly #consumer: Consumer;
  readonly #topic: TopicSpec<Desc>;
  readonly #handler: RecordHandler<Desc>;
  readonly #settings: Settings;
  readonly #deadLetters: Publisher;
  readonly #dlqTopic: TopicSpec;
  readonly #logger: Logger;
  readonly #metrics: KafkaMetrics;
  /** Partitions whose lag this loop exported (removed again when they move to another member). */
  readonly #lagPartitions = new Set<number>();
  /** This member's partitions of the topic since the last group join (undefined before the first). */
  #assigned: Set<number> | undefined;
  readonly #abort = new AbortController();
  #state: ConsumerLoopState = 'idle';
  #inFlight = 0;
  #paused = false;
  /** Dispatchers waiting for in-flight work to drop (one per partition batch at most). */
  readonly #capacityWaiters = new Set<() => void>();
  #restarts = 0;
  #closed: Promise<void>;
  #resolveClosed: () => void = () => {
    // replaced in the constructor
  };
  #failure: Error | undefined;
  readonly #listeners = new Set<(state: ConsumerLoopState, error?: Error) => void>();

  constructor(
    kafka: Kafka,
    topic: TopicSpec<Desc>,
    handler: RecordHandler<Desc>,
    options: ConsumerLoopOptions & { service: string; deadLetters: Publisher; dlqTopic?: TopicSpec },
    deps: { logger: Logger; registry: Registry },
  ) {
    const { deadLetters, dlqTopic, ...rest } = options;
    this.#settings = { ...defaultConsumerLoopOptions, ...rest };
    this.#topic = topic;
    this.#handler = handler;
    this.#deadLetters = deadLetters;
    this.#dlqTopic = dlqTopic ?? topics.dlq;
    this.#logger = deps.logger.child({ component: 'consumer', topic: topic.name, group: options.groupId });
    this.#metrics = kafkaMetrics(deps.registry, options.service);
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    const s = this.#settings;
    this.#consumer = kafka.consumer({
      groupId: s.groupId,
      sessionTimeout: s.sessionTimeoutMs,
      heartbeatInterval: s.heartbeatIntervalMs,
      maxBytesPerPartition: s.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      retry: {
        // K3: bounded restarts; after that the loop fails and the process exits non-zero so the
        // orchestrator restarts it with backoff, rather than kafkajs looping forever.
        restartOnFailure: async (error) => {
          this.#restarts += 1;
          this.#metrics.restarts.inc({ group: s.groupId });
          const restart = this.#restarts <= s.maxRestarts && this.#state !== 'draining';
          this.#logger.warn({ err: error, restarts: this.#restarts, restart }, 'consumer crashed');
          return restart;
        },
      },
    });
    const { CRASH, GROUP_JOIN, REBALANCING } = this.#consumer.events;
    this.#consumer.on(REBALANCING, () => this.#rebalancing());
    this.#consumer.on(GROUP_JOIN, ({ payload }) => {
      this.#metrics.rebalances.inc({ group: s.groupId });
      this.#logger.info(
        { memberId: payload.memberId, leader: payload.isLeader, assignment: payload.memberAssignment },
        'joined group',
      );
      const partitions = [...(payload.memberAssignment[topic.name] ?? [])].sort((x, y) => x - y);
      // A partition that moved to another member stops being this one's lag: its last value would otherwise
      // stay exported for ever (and keep a lag alert firing) while the new owner reports the live one.
      this.#assigned = new Set(partitions);
      for (const p of this.#lagPartitions) {
        if (partitions.includes(p)) continue;
        this.#metrics.lag.remove({ topic: topic.name, partition: String(p) });
        this.#lagPartitions.delete(p);
      }
      try {
        s.onAssignment?.(partitions);
      } catch (error) {
        this.#logger.error({ err: error, partitions }, 'onAssignment threw');
      }
    });
    this.#consumer.on(CRASH, ({ payload }) => {
      if (!payload.restart && this.#state !== 'draining' && this.#state !== 'stopped') {
        this.#fail(fromKafkaError(payload.error, { topic: topic.name }));
      }
    });
  }

  /** The group is rebalancing (seen in a heartbeat or commit, or kafkajs re-joins): tell the handler. */
  #rebalancing(): void {
    try {
      this.#settings.onRebalancing?.();
    } catch (error) {
      this.#logger.error({ err: error }, 'onRebalancing threw');
    }
  }

  get state(): ConsumerLoopState {
    return this.#state;
  }

  /** The error that failed the loop, if it failed. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Messages being processed now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Called on every state change (for health and logs). */
  onStateChange(listener: (state: ConsumerLoopState, error?: Error) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when the loop has stopped or failed. */
  closed(): Promise<void> {
    return this.#closed;
  }

  /** Joins the group and starts consuming. Resolves once the consumer runs (not when it stops). */
  async start(): Promise<void> {
    if (this.#state !== 'idle')
      throw new LiveLensError(`cannot start a ${this.#state} loop`, { code: 'failed_precondition' });
    this.#transition('starting');
    try {
      await this.#consumer.connect();
      await this.#consumer.subscribe({
        topics: [this.#topic.name],
        fromBeginning: this.#settings.fromBeginning,
      });
      await this.#consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.#settings.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.#eachBatch(payload),
      });
    } catch (error) {
      const converted = fromKafkaError(error, { topic: this.#topic.name });
      this.#fail(converted);
      throw converted;
    }
    // The consumer may already have crashed for good (e.g. the broker refused the join): say so.
    if (this.state === 'failed')
      throw this.#failure ?? new LiveLensError('consumer failed', { code: 'internal' });
    this.#transition('running');
  }

  /**
   * Graceful stop (SIGTERM): no new messages are dispatched, in-flight ones finish and are committed, the
   * member leaves the group so its partitions move at once. After `timeoutMs` in-flight work is aborted
   * (uncommitted, so it is replayed by the next owner).
   */
  async drain(timeoutMs = 25_000): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'failed') return;
    if (this.#state === 'idle') {
      this.#transition('stopped');
      return;
    }
    this.#transition('draining');
    const deadline = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#abort.abort(
          new LiveLensError(`drain deadline of ${timeoutMs} ms passed`, { code: 'cancelled' }),
        );
        resolve();
      }, timeoutMs);
      void this.#closed.then(() => clearTimeout(timer));
    });
    // stop() waits for the batch being processed, which sees `draining`, lets in-flight work finish and
    // commits it. A handler that ignores the abort must not hold the process: after the deadline (plus a
    // moment for aborted work to settle) the member disconnects anyway; its uncommitted work is replayed.
    const stopped = this.#consumer
      .stop()
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'stop failed'));
    await Promise.race([stopped, deadline.then(() => sleep(1_000))]);
    await this.#consumer
      .disconnect()
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'disconnect failed'));
    this.#transition('stopped');
  }

  #transition(state: ConsumerLoopState, error?: Error): void {
    if (this.#state === state) return;
    const from = this.#state;
    this.#state = state;
    this.#logger[state === 'failed' ? 'error' : 'info']({ from, to: state, err: error }, 'consumer state');
    for (const listener of this.#listeners) listener(state, error);
    if (state === 'stopped' || state === 'failed') this.#resolveClosed();
  }

  #fail(error: Error): void {
    if (this.#state === 'failed') return;
    this.#failure = error;
    this.#abort.abort(error);
    this.#transition('failed', error);
    void this.#consumer.disconnect().catch(() => undefined);
  }

  async #eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
    const { topic, partition } = batch;
    if (batch.messages.length === 0) return;
    const { maxInFlight, commitIntervalMs, heartbeatIntervalMs } = this.#settings;
    const progress = new BatchProgress(batch.messages.map((m) => m.offset));
    const chains = new Map<string, Promise<void>>();
    const tasks: Promise<void>[] = [];
    let batchError: Error | undefined;
    const fail = (error: unknown) => {
      if (batchError === undefined && isRebalanceError(error)) this.#rebalancing();
      batchError ??= error instanceof Error ? error : new Error(String(error));
    };
    let lastResolved: string | undefined;
    /** The offset this batch last committed (the next one to read). */
    let lastCommitted: string | undefined;
    let lastCommitAt = Date.now();

    const commit = async () => {
      const last = progress.lastContiguous;
      if (last === undefined) return;
      // The committed offset is the next one to read: last processed + 1 (K4, reliability.md T16), held back to
      // the handler's commit limit (consumer-loop.commit-limit.int.test.ts). A bad limit throws before anything
      // is resolved, so the failed batch is fetched again.
      let next = BigInt(last) + 1n;
      const limit = this.#commitLimit(topic, partition);
      if (limit !== undefined && limit < next) next = limit;
      // Resolved = done with: kafkajs fetches on from there, whatever the limit (the handler holds what it
      // still needs; only a restart or a new owner reads from the committed offset).
      if (last !== lastResolved) {
        resolveOffset(last);
        lastResolved = last;
      }
      const offset = next.toString();
      if (offset === lastCommitted) return;
      // Through the batch's commit, not consumer.commitOffsets: the latter silently does nothing once stop()
      // has begun, which is exactly when a drain commits its last work (pinned by the SIGTERM test). It also
      // bypasses kafkajs' retrier, hence the small retry here for transient errors.
      const offsets = { topics: [{ topic, partitions: [{ partition, offset }] }] };
      for (let attempt = 1; ; attempt += 1) {
        try {
          await commitOffsetsIfNecessary(offsets);
          break;
        } catch (error) {
          if (isRebalanceError(error) || attempt >= 3 || !fromKafkaError(error).retriable) throw error;
          await sleep(100 * 2 ** attempt);
        }
      }
      lastCommitted = offset;
      lastCommitAt = Date.now();
      this.#metrics.commits.inc({ topic });
    };

    // Any failure here fails the batch: dispatching stops, in-flight work settles, then the error is thrown
    // (never while tasks still run: a refetch would run the same keys twice, out of order).
    const tick = async () => {
      try {
        // kafkajs sends a heartbeat only when its interval has passed, so calling it on every wake-up is cheap,
        // and it keeps the membership however often other keys wake the dispatcher (K1).
        await heartbeat();
        if (batchError === undefined && Date.now() - lastCommitAt >= commitIntervalMs) await commit();
      } catch (error) {
        fail(error);
      }
    };

    const shouldDispatch = () =>
      batchError === undefined &&
      this.#state === 'running' &&
      isRunning() &&
      !isStale() &&
      !this.#abort.signal.aborted;

    for (const [index, raw] of batch.messages.entries()) {
      if (!shouldDispatch()) break;
      while (this.#inFlight >= maxInFlight && shouldDispatch()) {
        this.#pause();
        await this.#waitForCapacity();
        await tick();
      }
      if (!shouldDispatch()) break;
      const key = raw.key?.toString() ?? '';
      this.#inFlight += 1;
      this.#metrics.inFlight.set({ topic }, this.#inFlight);
      const previous = chains.get(key) ?? Promise.resolve();
      // A task never rejects, and always gives its slot back, whether it ran, failed or was skipped.
      const task = previous.then(async () => {
        const stopTimer = this.#metrics.processingSeconds.startTimer({ topic });
        try {
          // After a failure or an abort, queued records are skipped: not completed, so not committed.
          if (batchError !== undefined || this.#abort.signal.aborted) return;
          await this.#processOne(batch, raw);
          progress.complete(index);
        } catch (error) {
          fail(error);
        } finally {
          stopTimer();
          this.#release(topic);
        }
      });
      chains.set(key, task);
      tasks.push(task);
      await tick();
    }

    // Wait for everything dispatched, heartbeating (and committing) meanwhile, during a drain too.
    const all = Promise.all(tasks);
    while (!(await settlesWithin(all, heartbeatIntervalMs))) await tick();

    if (!isStale() && !(batchError !== undefined && isRebalanceError(batchError))) {
      // Commit the completed prefix even when a later record failed: less to replay.
      try {
        await commit();
      } catch (error) {
        fail(error);
      }
    }
    // (A batch that finishes after its partition moved away reports nothing: the new owner does.)
    if (progress.lastContiguous !== undefined && (this.#assigned?.has(partition) ?? true)) {
      const next = BigInt(progress.lastContiguous) + 1n;
      this.#metrics.lag.set(
        { topic, partition: String(partition) },
        Number(BigInt(batch.highWatermark) - next),
      );
      this.#lagPartitions.add(partition);
    }
    if (batchError !== undefined) {
      if (isRebalanceError(batchError)) {
        this.#logger.info(
          { partition },
          'rebalance during batch: abandoning the rest, it is replayed by the owner',
        );
        throw batchError;
      }
      if (!this.#abort.signal.aborted) {
        this.#logger.warn({ err: batchError, partition }, 'batch failed: replaying from the last commit');
      }
      // Marked retriable for kafkajs, which then replays the batch under its retry policy and, when that is
      // spent, crashes the consumer into our restart budget (K3). A non-retriable error would skip both.
      const converted = LiveLensError.from(batchError);
      throw new LiveLensError(converted.message, {
        code: converted.code,
        retriable: true,
        cause: batchError,
      });
    }
    this.#restarts = 0;
  }

  /** The handler's commit limit for a partition (`ConsumerLoopOptions.commitLimit`), checked. */
  #commitLimit(topic: string, partition: number): bigint | undefined {
    const limit = this.#settings.commitLimit?.(topic, partition);
    if (limit === undefined) return undefined;
    if (!/^\d+$/.test(limit)) {
      throw new LiveLensError(
        `commit limit of ${topic}/${partition} is not an offset: ${JSON.stringify(limit)}`,
        {
          code: 'internal',
          context: { topic, partition },
        },
      );
    }
    return BigInt(limit);
  }

  /** Gives a finished (or skipped) record's slot back, resuming fetching and waking waiting dispatchers. */
  #release(topic: string): void {
    this.#inFlight -= 1;
    this.#metrics.inFlight.set({ topic }, this.#inFlight);
    if (this.#paused && this.#inFlight <= this.#settings.maxInFlight / 2) {
      try {
        this.#resume();
      } catch (error) {
        // kafkajs throws when its group is gone (stopping or crashed); the next run starts unpaused.
        this.#paused = false;
        this.#logger.debug({ err: error }, 'resume after the consumer stopped');
      }
    }
    for (const wake of this.#capacityWaiters) wake();
    this.#capacityWaiters.clear();
  }

  /** Waits until a slot is released or a heartbeat interval passes, whichever comes first. */
  async #waitForCapacity(): Promise<void> {
    let wake: () => void = () => undefined;
    const freed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.#capacityWaiters.add(wake);
    await settlesWithin(freed, this.#settings.heartbeatIntervalMs);
    this.#capacityWaiters.delete(wake);
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#consumer.pause([{ topic: this.#topic.name }]);
    this.#metrics.paused.set({ topic: this.#topic.name }, 1);
    this.#logger.debug({ inFlight: this.#inFlight }, 'paused fetching');
  }

  #resume(): void {
    this.#paused = false;
    this.#consumer.resume([{ topic: this.#topic.name }]);
    this.#metrics.paused.set({ topic: this.#topic.name }, 0);
    this.#logger.debug({ inFlight: this.#inFlight }, 'resumed fetching');
  }

  /** Decode, handle with retries, or dead-letter. Resolves when the record's outcome is acknowledged. */
  async #processOne(batch: Batch, raw: KafkaMessage): Promise<void> {
    const { topic, partition } = batch;
    let message: MessageShape<Desc>;
    try {
      message = decodeRecord(this.#topic, raw.value);
    } catch (error) {
      const code = error instanceof ContractError ? error.code : 'decode_failed';
      await this.#deadLetter(batch, raw, code, (error as Error).message);
      return;
    }
    const record: ConsumedRecord<Desc> = {
      message,
      key: raw.key?.toString(),
      topic,
      partition,
      offset: raw.offset,
      timestampMs: Number(raw.timestamp),
      headers: headersOf(raw),
    };
    const logger = this.#logger.child({ partition, offset: raw.offset, key: record.key });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#handler(record, { signal: this.#abort.signal, logger });
        this.#metrics.consumed.inc({ topic, outcome: 'processed' });
        return;
      } catch (error) {
        // Work cut short by a drain deadline or a failure is replayed, never dead-lettered.
        if (this.#abort.signal.aborted) {
          throw new LiveLensError('processing aborted', { code: 'cancelled', retriable: true, cause: error });
        }
        if (isPoison(error)) {
          const converted = LiveLensError.from(error);
          await this.#deadLetter(batch, raw, converted.code, converted.message);
          return;
        }
        // Retriable, or unknown (a bug, or a foreign error nobody converted: maybe an outage): retry, then fail
        // the batch. Failing is loud (restart budget, then the process exits); dead-lettering would quietly
        // empty the topic into the DLQ during an outage.
        const converted = LiveLensError.from(error);
        if (attempt >= this.#settings.handlerAttempts) throw converted;
        const backoffMs = Math.min(5_000, 200 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        logger.warn(
          { err: converted, attempt, backoffMs: Math.round(backoffMs) },
          'handler failed, retrying',
        );
        await settlesWithin(abortedPromise(this.#abort.signal), backoffMs);
      }
    }
  }

  async #deadLetter(batch: Batch, raw: KafkaMessage, code: string, reason: string): Promise<void> {
    const { topic, partition } = batch;
    const value = raw.value ?? Buffer.alloc(0);
    const max = this.#settings.maxDeadLetterValueBytes;
    const letter = create(DeadLetterSchema, {
      deadLetterId: recordIds.deadLetter(topic, partition, raw.offset),
      sourceTopic: topic,
      sourcePartition: partition,
      sourceOffset: BigInt(raw.offset),
      key: raw.key ?? new Uint8Array(),
      value: value.length > max ? value.subarray(0, max) : value,
      valueTruncated: value.length > max,
      headers: headersOf(raw),
      errorCode: code,
      reason: reason.slice(0, 4096),
      service: this.#settings.service,
      consumerGroup: this.#settings.groupId,
      failedTimeUnixMs: BigInt(Date.now()),
    });
    await this.#deadLetters.publish(this.#dlqTopic, { message: letter });
    this.#metrics.deadLetters.inc({ topic, code });
    this.#metrics.consumed.inc({ topic, outcome: 'dead_lettered' });
    this.#logger.warn({ partition, offset: raw.offset, code, reason }, 'dead-lettered');
  }
}

/**
 * A record that can never be processed, so it is dead-lettered: the topic's contract is broken
 * (ContractError), or the handler said so with a non-retriable LiveLensError other than `internal` or
 * `cancelled` (e.g. `invalid_argument` for an undecodable image).
 */
function isPoison(error: unknown): boolean {
  if (error instanceof ContractError) return true;
  return (
    error instanceof LiveLensError &&
    !error.retriable &&
    error.code !== 'internal' &&
    error.code !== 'cancelled'
  );
}

function abortedPromise(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function headersOf(raw: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw.headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return out;
}
