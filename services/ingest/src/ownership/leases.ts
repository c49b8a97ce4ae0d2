import { fromRedisError, type Redis } from '@livelens/runtime';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Stream ownership across replicas: a lease is a Redis key holding the owner's replica id, set only if absent,
 * with an expiry. The owner renews it well before it expires; renewal and release only act while the key still
 * holds the owner's id (a Lua compare-and-set), so a replica that paused past its lease cannot renew or delete
 * a lease another replica took in the meantime. If the owner dies, the key expires and another replica's
 * reconcile loop takes the stream within the lease time.
 */
export class Leases {
  constructor(
    private readonly redis: Redis,
    private readonly replicaId: string,
    private readonly ttlMs: number,
    private readonly prefix = 'livelens:{ingest}:lease:',
  ) {}

  key(streamId: string): string {
    return `${this.prefix}${streamId}`;
  }

  /** True when this replica now holds the lease (it was free). */
  async acquire(streamId: string): Promise<boolean> {
    try {
      return (await this.redis.set(this.key(streamId), this.replicaId, 'PX', this.ttlMs, 'NX')) === 'OK';
    } catch (error) {
      throw fromRedisError(error, { streamId, operation: 'lease.acquire' });
    }
  }

  /** Extends the lease; false when this replica no longer holds it (lost: stop pulling the stream). */
  async renew(streamId: string): Promise<boolean> {
    try {
      return (await this.redis.eval(RENEW, 1, this.key(streamId), this.replicaId, String(this.ttlMs))) === 1;
    } catch (error) {
      throw fromRedisError(error, { streamId, operation: 'lease.renew' });
    }
  }

  /** Gives the lease up, only if this replica holds it. */
  async release(streamId: string): Promise<void> {
    try {
      await this.redis.eval(RELEASE, 1, this.key(streamId), this.replicaId);
    } catch (error) {
      throw fromRedisError(error, { streamId, operation: 'lease.release' });
    }
  }

  /** The replica holding the lease, if any. */
  async holder(streamId: string): Promise<string | undefined> {
    try {
      return (await this.redis.get(this.key(streamId))) ?? undefined;
    } catch (error) {
      throw fromRedisError(error, { streamId, operation: 'lease.holder' });
    }
  }
}
