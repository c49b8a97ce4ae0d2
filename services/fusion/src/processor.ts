// Applies consumed records to their stream's state: state from Redis (cached), the pure state machine, the
// state written back (compare-and-set) with the outputs it decided, the outputs published, the outbox cleared.
// The consumer loop commits a record only after this resolves, so a crash anywhere replays the record, which
// the state recognises (offset) or has not seen; the outbox makes sure decided outputs go out exactly as
// decided.

import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { ReviewItemSchema, TagEvent, TagEventSchema, TopicSpec } from '@livelens/contracts';
import { KeyedLock, LiveLensError, type Logger, type Publisher } from '@livelens/runtime';
import type { FusionMetrics } from './metrics.js';
import { reviewItemOf, tagEventOf } from './outputs.js';
import type { FusionStore, VersionedState } from './store.js';
import {
  applyRecord,
  applyStreamEnd,
  type FlushTiming,
  type FusionOutput,
  type FusionRecord,
  type FusionRules,
  type FusionSettings,
  flushDue,
  flushStream,
  INPUTS,
  type StreamEnd,
  type StreamEndOutcome,
} from './windows/stream-fusion.js';

export interface FusionProcessorDeps {
  readonly store: FusionStore;
  readonly rules: FusionRules;
  readonly publisher: Publisher;
  readonly topics: {
    readonly tags: TopicSpec<typeof TagEventSchema>;
    readonly review: TopicSpec<typeof ReviewItemSchema>;
  };
  readonly metrics: FusionMetrics;
  readonly logger: Logger;
  /** Called with every tag event once the broker acknowledged it (WatchTags). */
  readonly onTagEvent?: (event: TagEvent) => void;
  readonly now?: () => number;
}

export interface FusionProcessorOptions extends FusionSettings {
  /** Stream states cached in memory at most (least recently used go first; Redis has them all). */
  readonly maxCachedStreams: number;
}

/** Compare-and-set attempts per record before it fails (retriable: the consumer loop retries it). */
const MAX_ATTEMPTS = 8;

/** A stream whose state other writers changed under every one of our MAX_ATTEMPTS compare-and-sets. */
const keptChanging = (streamId: string) =>
  new LiveLensError(`stream ${streamId}: state kept changing under ${MAX_ATTEMPTS} attempts`, {
    code: 'unavailable',
    context: { streamId },
  });

export class FusionProcessor {
  readonly #deps: FusionProcessorDeps;
  readonly #options: FusionProcessorOptions;
  readonly #locks = new KeyedLock();
  /** Least recently used first. */
  readonly #cache = new Map<string, VersionedState>();
  readonly #now: () => number;

  constructor(deps: FusionProcessorDeps, options: FusionProcessorOptions) {
    this.#deps = deps;
    this.#options = options;
    this.#now = deps.now ?? Date.now;
  }

  get cachedStreams(): number {
    return this.#cache.size;
  }

  /** Windows waiting for the watermark, over the cached streams (each stream: stream watermark → fastest input). */
  get openWindows(): number {
    const { sizeMs, hopMs } = this.#options.window;
    let open = 0;
    for (const { state } of this.#cache.values()) {
      if (state.watermarkMs === null) continue;
      const fastest = Math.max(...INPUTS.map((i) => state.inputs[i] ?? Number.NEGATIVE_INFINITY));
      if (fastest > state.watermarkMs) open += Math.ceil((fastest - state.watermarkMs + sizeMs) / hopMs);
    }
    return open;
  }

  /** The latest cached state of a stream (tests, GetStreamSummary). */
  cached(streamId: string): VersionedState | undefined {
    return this.#cache.get(streamId);
  }

  /**
   * Applies one record. Resolves once its outputs are acknowledged by the broker and the state that holds
   * it is in Redis. A record past the allowed lateness throws a non-retriable error (the consumer loop
   * dead-letters it); a Redis or broker failure throws a retriable one (the loop retries the record).
   */
  async handle(record: FusionRecord, streamId: string): Promise<void> {
    await this.#locks.run(streamId, () => this.#handle(record, streamId));
  }

  async #handle(record: FusionRecord, streamId: string): Promise<void> {
    const { metrics, rules, store } = this.#deps;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const current = await this.#current(streamId);
      if (!current) continue;
      const state = structuredClone(current.state);
      const started = performance.now();
      const result = applyRecord(state, record, rules, this.#options);
      metrics.evaluationSeconds.observe((performance.now() - started) / 1000);
      if (result.outcome === 'duplicate') {
        metrics.records.inc({ input: record.input, outcome: 'duplicate' });
        this.#remember(streamId, current);
        return;
      }
      if (result.outcome === 'late' || result.outcome === 'invalid') {
        metrics.records.inc({ input: record.input, outcome: result.outcome });
        if (result.outcome === 'late') metrics.lateRecords.inc({ input: record.input });
        throw new LiveLensError(`${result.outcome} record: ${result.reason}`, {
          code: 'invalid_argument',
          retriable: false,
          context: { streamId },
        });
      }
      state.updatedAtUnixMs = this.#now();
      const version = await store.save(streamId, current.version, state);
      if (version === undefined) {
        metrics.stateConflicts.inc();
        this.#cache.delete(streamId);
        continue;
      }
      metrics.records.inc({ input: record.input, outcome: 'applied' });
      metrics.windows.inc({ reason: 'watermark' }, result.windowsDecided);
      metrics.windows.inc({ reason: 'late' }, result.windowsRedecided);
      metrics.observationsEvicted.inc(result.observationsEvicted);
      metrics.afterClose.inc(result.firedAfterClose);
      this.#observeLag(state.inputs);
      const saved = { version, state };
      this.#remember(streamId, saved);
      // Records after an announced end (the session's last ones): the stream is flushed again after the grace,
      // by whichever replica's timer sees it first.
      if (state.ended !== null) await store.markEnded(streamId, this.#now());
      if (state.outbox.length > 0 && !(await this.#flush(streamId, saved))) {
        // Another writer took the stream after our write: it holds (and publishes) what we decided.
        this.#cache.delete(streamId);
      }
      return;
    }
    throw keptChanging(streamId);
  }

  /**
   * Takes in the end of a session that ingest announced (live.stream-events.v1), under the stream's lock like
   * a record: the state records it (compare-and-set) and the stream is ended later, by `flushIdle`, once no
   * record came for the end grace period (the session's last analyses and transcripts come after the
   * announcement). Resolves once the state holding it is in Redis (the consumer loop commits after that). An
   * end without a session throws a non-retriable error (the loop dead-letters it); a stale or unknown one is
   * counted and ignored.
   */
  async handleStreamEnd(end: StreamEnd, streamId: string): Promise<StreamEndOutcome> {
    return this.#locks.run(streamId, () => this.#handleStreamEnd(end, streamId));
  }

  async #handleStreamEnd(end: StreamEnd, streamId: string): Promise<StreamEndOutcome> {
    const { metrics, store, logger } = this.#deps;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
      const current = await this.#current(streamId);
      if (!current) continue;
      // applyStreamEnd replaces `ended` only: a shallow copy leaves the cached state as it was.
      const state = { ...current.state };
      const outcome = applyStreamEnd(state, end, this.#now());
      if (outcome !== 'accepted' && outcome !== 'next_session') {
        metrics.streamEnds.inc({ outcome });
        // A stream with no state stays out of the cache (nothing to flush).
        if (current.version !== '') this.#remember(streamId, current);
        if (outcome === 'invalid')
          throw new LiveLensError('invalid stream event: an end of session without session_epoch', {
            code: 'invalid_argument',
            retriable: false,
            context: { streamId },
          });
        return outcome;
      }
      const version = await store.save(streamId, current.version, state);
      if (version === undefined) {
        metrics.stateConflicts.inc();
        this.#cache.delete(streamId);
        continue;
      }
      metrics.streamEnds.inc({ outcome });
      this.#remember(streamId, { version, state });
      await store.markEnded(streamId, this.#now());
      logger.info(
        { streamId, sessionEpoch: end.sessionEpoch, state: end.state, outcome },
        'end of session recorded',
      );
      return outcome;
    }
    throw keptChanging(streamId);
  }

  /**
   * Ends the cached streams that are due (flushDue: no record for the end grace period after ingest
   * announced the end of the session, else for the idle period) with flushStream (pending windows decided,
   * open episodes closed, outputs published) and forgets them here. Without an announced end (a stream
   * fusion never hears the end of, or whose end was lost), a stream that stopped would otherwise keep its
   * last episodes open until its state expires. A stream that continues later starts new episodes. Resolves
   * to the number of streams ended.
   */
  async flushIdle(timing: FlushTiming): Promise<number> {
    let flushed = 0;
    const now = this.#now();
    const { store } = this.#deps;
    // The cached streams, and the recorded ends of streams this replica does not hold (another replica, or
    // this one before a restart, recorded them): those are loaded to check.
    const candidates = new Set(this.#cache.keys());
    for (const streamId of await store.pendingEnds()) candidates.add(streamId);
    for (const streamId of candidates) {
      const cached = this.#cache.get(streamId);
      if (cached && now < flushDue(cached.state, timing).atUnixMs) continue;
      await this.#locks.run(streamId, async () => {
        for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
          // Fresh: another replica may have applied records (or an end) since.
          const current = await store.load(streamId);
          if (current.version === '' || current.state.ended === null) {
            // Expired, or no end pending any more (flushed elsewhere, or a new session began).
            await store.clearEnded(streamId);
            if (current.version === '') this.#cache.delete(streamId);
            // A stream this replica does not hold is only checked for its end, not for idleness.
            if (current.version === '' || !cached) return;
          }
          const due = flushDue(current.state, timing);
          if (this.#now() < due.atUnixMs) {
            if (cached) this.#remember(streamId, current);
            return;
          }
          const state = structuredClone(current.state);
          const before = state.watermarkMs;
          const outputs = flushStream(state, this.#deps.rules, this.#options);
          if (outputs.length === 0 && state.watermarkMs === before) {
            this.#cache.delete(streamId);
            await store.clearEnded(streamId);
            return;
          }
          const version = await store.save(streamId, current.version, state);
          if (version === undefined) {
            this.#deps.metrics.stateConflicts.inc();
            continue;
          }
          if (outputs.length > 0) await this.#flush(streamId, { version, state });
          this.#cache.delete(streamId);
          await store.clearEnded(streamId);
          this.#deps.metrics.idleFlushes.inc({ reason: due.reason });
          flushed += 1;
          return;
        }
      });
    }
    return flushed;
  }

  /**
   * The stream's state to change, with the outputs a previous attempt (or replica) decided but may not have
   * published going out first, from the state as it is now (a cached copy may be stale: another replica may
   * have published them and newer revisions since). Undefined when another writer won meanwhile (try again).
   */
  async #current(streamId: string): Promise<VersionedState | undefined> {
    const { store } = this.#deps;
    const cached = this.#cache.get(streamId) ?? (await store.load(streamId));
    if (cached.state.outbox.length === 0) return cached;
    const fresh = await store.load(streamId);
    if (fresh.state.outbox.length === 0) return fresh;
    return this.#flush(streamId, fresh);
  }

  /** Publishes a state's outbox, then clears it (compare-and-set); undefined when another writer won. */
  async #flush(streamId: string, current: VersionedState): Promise<VersionedState | undefined> {
    await this.#publish(current.state.outbox);
    const state = { ...current.state, outbox: [] };
    const version = await this.#deps.store.save(streamId, current.version, state);
    if (version === undefined) {
      this.#deps.metrics.stateConflicts.inc();
      this.#cache.delete(streamId);
      return undefined;
    }
    const saved = { version, state };
    this.#remember(streamId, saved);
    return saved;
  }

  async #publish(outputs: readonly FusionOutput[]): Promise<void> {
    const { topics, rules, metrics } = this.#deps;
    const now = this.#now();
    const events: TagEvent[] = [];
    const reviews = [];
    for (const output of outputs) {
      if (output.kind === 'review') {
        reviews.push({ message: reviewItemOf(output, now) });
        continue;
      }
      const tag = rules.tag(output.tagId);
      if (!tag) {
        // The taxonomy changed under a state written by an older one: the event cannot be described.
        this.#deps.logger.error(
          { tagId: output.tagId, eventId: output.eventId },
          'tag no longer in the taxonomy',
        );
        continue;
      }
      events.push(tagEventOf(output, tag, now));
    }
    await this.#send(
      topics.tags,
      events.map((message) => ({ message })),
    );
    await this.#send(topics.review, reviews);
    const ackedAt = this.#now();
    for (const output of outputs) {
      if (output.kind === 'review') {
        metrics.reviews.inc({ tag: output.tagId });
        continue;
      }
      const kind = rules.tag(output.tagId)?.kind ?? 'unknown';
      metrics.tags.inc({ kind, tag: output.tagId, state: output.state });
      if (output.latestCaptureTimeUnixMs > 0)
        metrics.endToEndLatency.observe(
          { state: output.state },
          (ackedAt - output.latestCaptureTimeUnixMs) / 1000,
        );
    }
    for (const event of events) this.#deps.onTagEvent?.(event);
  }

  /**
   * Publishes records; a record the broker or the contract refuses for good (too large, invalid) is logged,
   * counted and left out, so one unsendable output cannot block the stream's outbox for ever. Anything
   * retriable throws (the consumer loop retries the record, the outbox goes first).
   */
  async #send<D extends DescMessage>(
    topic: TopicSpec<D>,
    records: { message: MessageShape<D> }[],
  ): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.#deps.publisher.publish(topic, records);
      return;
    } catch (error) {
      if (LiveLensError.from(error).retriable) throw error;
    }
    for (const record of records) {
      try {
        await this.#deps.publisher.publish(topic, record);
      } catch (error) {
        const converted = LiveLensError.from(error);
        if (converted.retriable) throw converted;
        this.#deps.metrics.unsendable.inc({ topic: topic.name.endsWith('review.v1') ? 'review' : 'tags' });
        this.#deps.logger.error({ err: converted, topic: topic.name }, 'output refused for good: left out');
      }
    }
  }

  #observeLag(inputs: Partial<Record<(typeof INPUTS)[number], number>>): void {
    const known = INPUTS.filter((i) => inputs[i] !== undefined);
    if (known.length === 0) return;
    const fastest = Math.max(...known.map((i) => inputs[i] as number));
    for (const input of INPUTS) {
      const at = inputs[input];
      if (at !== undefined) this.#deps.metrics.watermarkLag.set({ input }, (fastest - at) / 1000);
    }
  }

  #remember(streamId: string, value: VersionedState): void {
    this.#cache.delete(streamId);
    this.#cache.set(streamId, value);
    while (this.#cache.size > this.#options.maxCachedStreams) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
  }
}
