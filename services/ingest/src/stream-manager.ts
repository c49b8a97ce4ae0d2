import { StreamState } from '@livelens/contracts';
import type { Logger, Publisher, Redis } from '@livelens/runtime';
import type { IngestConfig } from './config.js';
import type { IngestMetrics } from './metrics.js';
import type { Leases } from './ownership/leases.js';
import type { StreamStore } from './ownership/stream-store.js';
import { type RunnerDeps, StreamRunner } from './stream/stream-runner.js';

const LIVE_STATES = new Set([
  StreamState.STARTING,
  StreamState.RUNNING,
  StreamState.RECONNECTING,
  StreamState.DEGRADED,
]);

export interface ManagerDeps {
  store: StreamStore;
  leases: Leases;
  publisher: Publisher;
  logger: Logger;
  metrics: IngestMetrics;
  /** A separate Redis connection for the control channel (a subscribed connection cannot run commands). */
  subscriber: Redis;
  validate: RunnerDeps['validate'];
  startSource: RunnerDeps['startSource'];
  topics?: RunnerDeps['topics'];
}

/**
 * The streams this replica runs. It reconciles the desired state in Redis with what runs here: takes
 * unowned streams (free lease) while it has capacity, stops streams whose desired state is stopped, renews
 * its leases and gives a stream up the moment a renewal fails (another replica may hold it by then). On
 * shutdown it releases its leases so other replicas take its streams over at once.
 */
export class StreamManager {
  readonly #owned = new Map<string, StreamRunner>();
  readonly #reserved = new Set<string>();
  readonly #lastRenewedAt = new Map<string, number>();
  readonly #deps: ManagerDeps;
  readonly #config: IngestConfig;
  readonly #logger: Logger;
  #timers: NodeJS.Timeout[] = [];
  #reconciling: Promise<void> | undefined;
  #closed = false;

  constructor(deps: ManagerDeps, config: IngestConfig) {
    this.#deps = deps;
    this.#config = config;
    this.#logger = deps.logger.child({ component: 'stream-manager', replicaId: config.replicaId });
  }

  get ownedCount(): number {
    return this.#owned.size;
  }

  ownedIds(): string[] {
    return [...this.#owned.keys()];
  }

  runner(streamId: string): StreamRunner | undefined {
    return this.#owned.get(streamId);
  }

  async start(): Promise<void> {
    const { subscriber, store } = this.#deps;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === store.controlChannel && message.startsWith('stop:')) {
        void this.stopLocal(message.slice(5), 'requested');
      }
    });
    await subscriber.subscribe(store.controlChannel);
    await this.reconcile();
    this.#timers.push(
      setInterval(() => void this.reconcile(), this.#config.reconcileIntervalMs),
      setInterval(() => void this.#renewAll(), Math.max(200, Math.floor(this.#config.leaseTtlMs / 3))),
    );
    this.#updateGauges();
  }

  /** One pass: heartbeat, drop what should not run, take what is unowned (serialized). */
  reconcile(): Promise<void> {
    this.#reconciling ??= this.#reconcileOnce()
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'reconcile failed'))
      .finally(() => {
        this.#reconciling = undefined;
      });
    return this.#reconciling;
  }

  async #reconcileOnce(): Promise<void> {
    if (this.#closed) return;
    const { store } = this.#deps;
    await store.heartbeat(this.#config.replicaId, this.#config.maxStreams, this.#config.leaseTtlMs);
    const desired = new Set(await store.desiredIds());
    // A snapshot: a stream taken while we await below was desired then, even if this read missed it.
    for (const id of [...this.#owned.keys()]) {
      if (!desired.has(id)) await this.stopLocal(id, 'requested');
    }
    for (const id of desired) {
      if (this.#closed || this.#owned.size >= this.#config.maxStreams) break;
      if (!this.#owned.has(id)) await this.tryTake(id);
    }
    this.#updateGauges();
  }

  /** Takes a stream if its lease is free and this replica has room. True when it runs here now. */
  async tryTake(streamId: string): Promise<boolean> {
    if (this.#owned.has(streamId)) return true;
    // The slot is reserved before any await, so concurrent calls cannot take more than maxStreams.
    if (
      this.#closed ||
      this.#reserved.has(streamId) ||
      this.#owned.size + this.#reserved.size >= this.#config.maxStreams
    ) {
      return false;
    }
    this.#reserved.add(streamId);
    try {
      return await this.#take(streamId);
    } finally {
      this.#reserved.delete(streamId);
    }
  }

  async #take(streamId: string): Promise<boolean> {
    const { store, leases } = this.#deps;
    const stored = await store.get(streamId);
    if (!stored || stored.desired !== 'running' || this.#closed) return false;
    if (!(await leases.acquire(streamId))) return false;
    if (this.#closed) {
      await leases.release(streamId);
      return false;
    }
    // A session that was live and did not end is one whose owner went away (another replica, or this one
    // before a restart): what it had not published is lost, and the new session says so.
    const previous = stored.status;
    const takeover =
      previous.sessionEpoch !== '' && LIVE_STATES.has(previous.state)
        ? { replicaId: previous.ownerReplicaId, sessionEpoch: previous.sessionEpoch }
        : undefined;
    if (takeover) {
      this.#deps.metrics.leaseTakeovers.inc();
      this.#logger.warn({ streamId, from: takeover.replicaId }, 'taking over a stream whose owner went away');
    }
    const runner = new StreamRunner(
      stored.spec,
      {
        publisher: this.#deps.publisher,
        logger: this.#deps.logger,
        metrics: this.#deps.metrics,
        replicaId: this.#config.replicaId,
        validate: this.#deps.validate,
        startSource: this.#deps.startSource,
        writeStatus: async (id, status) => {
          await store.writeOwnStatus(id, status, leases.key(id));
        },
        topics: this.#deps.topics,
      },
      {
        rwTimeoutMs: this.#config.rwTimeoutMs,
        stallTimeoutMs: this.#config.stallTimeoutMs,
        reconnectMaxAttempts: this.#config.reconnectMaxAttempts,
        reconnectBaseMs: this.#config.reconnectBaseMs,
        reconnectMaxMs: this.#config.reconnectMaxMs,
        publishQueueMax: this.#config.publishQueueMax,
        publishQueueMaxBytes: this.#config.publishQueueMaxBytes,
        maxFrameBytes: this.#config.maxFrameBytes,
        maxPixels: this.#config.maxPixels,
        jpegQuality: this.#config.jpegQuality,
      },
    );
    this.#owned.set(streamId, runner);
    this.#lastRenewedAt.set(streamId, Date.now());
    // The owner and epoch are in Redis before the caller of StartStream reads them back.
    await store.writeOwnStatus(streamId, runner.status(), leases.key(streamId)).catch((error: unknown) => {
      this.#logger.warn({ err: error, streamId }, 'status write failed');
    });
    runner.start(takeover);
    void runner.done.then(() => this.#onRunnerDone(streamId, runner));
    this.#updateGauges();
    return true;
  }

  /** A session is over: if it ended or failed by itself, the stream leaves the desired set for good. */
  async #onRunnerDone(streamId: string, runner: StreamRunner): Promise<void> {
    if (this.#owned.get(streamId) !== runner) return;
    this.#owned.delete(streamId);
    this.#lastRenewedAt.delete(streamId);
    try {
      // Only while this replica still holds the lease: a session that lost it must not stop its successor.
      const holder = await this.#deps.leases.holder(streamId);
      if (
        (runner.state === StreamState.ENDED || runner.state === StreamState.FAILED) &&
        holder === this.#config.replicaId
      ) {
        await this.#deps.store.markStopped(streamId);
      }
      await this.#deps.leases.release(streamId);
    } catch (error) {
      this.#logger.warn({ err: error, streamId }, 'cleanup after a session failed');
    }
    this.#updateGauges();
  }

  /** Stops a stream running here (no-op when it runs elsewhere). */
  async stopLocal(streamId: string, reason: 'requested' | 'lease_lost' | 'shutdown'): Promise<void> {
    const runner = this.#owned.get(streamId);
    if (!runner) return;
    await runner.stop(reason);
    if (reason === 'lease_lost') {
      // Not ours any more: do not release (it may be another replica's lease now).
      if (this.#owned.get(streamId) === runner) this.#owned.delete(streamId);
      return;
    }
    await this.#onRunnerDone(streamId, runner);
  }

  async #renewAll(): Promise<void> {
    const now = Date.now();
    await Promise.all(
      [...this.#owned.keys()].map(async (streamId) => {
        try {
          if (await this.#deps.leases.renew(streamId)) {
            this.#lastRenewedAt.set(streamId, now);
            return;
          }
          this.#deps.metrics.leasesLost.inc();
          this.#logger.error({ streamId }, 'lease lost: another replica owns the stream now; stopping here');
          await this.stopLocal(streamId, 'lease_lost');
        } catch (error) {
          // Redis unreachable: the lease may expire while we cannot tell. Stop before it can have expired (one
          // renew interval of margin), so two replicas never pull the stream at once.
          const last = this.#lastRenewedAt.get(streamId) ?? 0;
          if (now - last > (this.#config.leaseTtlMs * 2) / 3) {
            this.#deps.metrics.leasesLost.inc();
            this.#logger.error({ err: error, streamId }, 'lease not renewed within its TTL: stopping here');
            await this.stopLocal(streamId, 'lease_lost');
          }
        }
      }),
    );
  }

  #updateGauges(): void {
    const counts = new Map<string, number>();
    for (const runner of this.#owned.values()) {
      const state = StreamState[runner.state].toLowerCase();
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    this.#deps.metrics.activeStreams.reset();
    for (const [state, n] of counts) this.#deps.metrics.activeStreams.set({ state }, n);
  }

  /** Shutdown: stop every stream here and release the leases, so other replicas take them over now. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    await this.#reconciling;
    await Promise.all([...this.#owned.keys()].map((id) => this.stopLocal(id, 'shutdown')));
    await this.#deps.subscriber.unsubscribe().catch(() => undefined);
  }
}
