// Fusion's per-stream state in Redis: one hash per stream holding the state as JSON and a version. A write
// succeeds only over the version it read (compare-and-set in a Lua script), so two replicas that both touch a
// stream (its frames and its transcripts can be consumed by different replicas) never overwrite each other:
// the loser reloads and applies its record again. The outputs a record decided travel in the state (its
// outbox) until they are acknowledged by the broker, so a crash between the write and the publish loses
// nothing: the next owner publishes them first (ids are deterministic, so a repeat is recognisable).

import { randomUUID } from 'node:crypto';
import { fromRedisError, type Redis } from '@livelens/runtime';
import { emptyStreamState, type StreamState } from './windows/stream-fusion.js';

/** A stream's state and the version it was read at ('' when the stream has no state yet). */
export interface VersionedState {
  readonly version: string;
  readonly state: StreamState;
}

const CAS_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`;

export interface FusionStoreOptions {
  /** Key prefix, e.g. `livelens:fusion:` (tests use a unique one). */
  readonly prefix: string;
  /** A stream's state expires after this long without a write (an ended stream leaves nothing behind). */
  readonly ttlSeconds: number;
}

export class FusionStore {
  readonly #redis: Redis;
  readonly #options: FusionStoreOptions;

  constructor(redis: Redis, options: FusionStoreOptions) {
    this.#redis = redis;
    this.#options = options;
    redis.defineCommand('livelensFusionCas', { numberOfKeys: 1, lua: CAS_SCRIPT });
  }

  key(streamId: string): string {
    return `${this.#options.prefix}state:{${streamId}}`;
  }

  /**
   * The streams whose session end is recorded and not yet flushed, by when it was recorded: every replica's
   * timer scans it, so an end survives the replica that recorded it (its cache) restarting within the grace.
   */
  endsKey(): string {
    return `${this.#options.prefix}ends-pending`;
  }

  async markEnded(streamId: string, atUnixMs: number): Promise<void> {
    try {
      await this.#redis.zadd(this.endsKey(), atUnixMs, streamId);
    } catch (error) {
      throw fromRedisError(error, { streamId });
    }
  }

  /** The oldest `limit` streams with a pending end. */
  async pendingEnds(limit = 1_000): Promise<string[]> {
    try {
      return await this.#redis.zrange(this.endsKey(), 0, limit - 1);
    } catch (error) {
      throw fromRedisError(error);
    }
  }

  async clearEnded(streamId: string): Promise<void> {
    try {
      await this.#redis.zrem(this.endsKey(), streamId);
    } catch (error) {
      throw fromRedisError(error, { streamId });
    }
  }

  async load(streamId: string): Promise<VersionedState> {
    try {
      const [version, json] = await this.#redis.hmget(this.key(streamId), 'v', 's');
      if (!version || !json) return { version: '', state: emptyStreamState(streamId) };
      // Fields a newer version of the state added get their empty value.
      return {
        version,
        state: { ...emptyStreamState(streamId), ...(JSON.parse(json) as Partial<StreamState>) },
      };
    } catch (error) {
      throw fromRedisError(error, { streamId });
    }
  }

  /**
   * Writes `state` if the stored version is still `expected`; resolves to the new version, or undefined when
   * another writer got there first (reload and apply again).
   */
  async save(streamId: string, expected: string, state: StreamState): Promise<string | undefined> {
    // Never reused (a counter restarts after the key expires or is lost, and a stale cached copy at the same
    // number would then win the compare-and-set).
    const next = randomUUID();
    try {
      const done = await (
        this.#redis as Redis & {
          livelensFusionCas(
            key: string,
            expected: string,
            next: string,
            json: string,
            ttl: number,
          ): Promise<number>;
        }
      ).livelensFusionCas(
        this.key(streamId),
        expected,
        next,
        JSON.stringify(state),
        this.#options.ttlSeconds,
      );
      return done === 1 ? next : undefined;
    } catch (error) {
      throw fromRedisError(error, { streamId });
    }
  }
}
