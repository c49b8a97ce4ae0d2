import { StreamState } from '@livelens/contracts';
import { fromRedisError, LiveLensError, type Redis } from '@livelens/runtime';

/** How a stream is sampled, with defaults applied. */
export interface StreamOptionsResolved {
  frameRateFps: number;
  sceneChangeThreshold: number;
  maxHeight: number;
  audioChunkMs: number;
}

/** What a client asked for: enough for any replica to (re)start the stream. */
export interface StreamSpec {
  streamId: string;
  /** The source URL as given (it may carry credentials: Redis holds it, logs and events never do). */
  sourceUrl: string;
  redactedUrl: string;
  options: StreamOptionsResolved;
  labels: Record<string, string>;
  requestId: string;
  createdAtMs: number;
}

/** What the owner reports: the stream as ingest sees it now. */
export interface StreamStatus {
  state: StreamState;
  ownerReplicaId: string;
  sessionEpoch: string;
  startedAtMs: number;
  framesPublished: number;
  audioSecondsPublished: number;
  restarts: number;
  lastError: string;
  updatedAtMs: number;
}

export interface StoredStream {
  spec: StreamSpec;
  desired: 'running' | 'stopped';
  status: StreamStatus;
}

export type CreateResult =
  | { outcome: 'created'; streamId: string }
  | { outcome: 'full'; streamId: string }
  | { outcome: 'exists'; streamId: string }
  | { outcome: 'repeated_request'; streamId: string };

/** Default key prefix. Every key shares the {ingest} hash tag so the scripts' keys live in one Cluster slot. */
export const DEFAULT_KEY_PREFIX = 'livelens:{ingest}:';
const DAY_S = 24 * 60 * 60;

const CREATE = `
if ARGV[3] ~= '' then
  local prior = redis.call('get', KEYS[3])
  if prior then return {'repeated_request', prior} end
end
if redis.call('hget', KEYS[1], 'desired') == 'running' then return {'exists', ARGV[2]} end
if redis.call('scard', KEYS[2]) >= tonumber(ARGV[6]) then return {'full', ARGV[2]} end
redis.call('del', KEYS[1])
redis.call('hset', KEYS[1], 'spec', ARGV[1], 'desired', 'running', 'status', ARGV[5])
redis.call('sadd', KEYS[2], ARGV[2])
redis.call('sadd', KEYS[4], ARGV[2])
if ARGV[3] ~= '' then redis.call('set', KEYS[3], ARGV[2], 'EX', ARGV[4]) end
return {'created', ARGV[2]}`;

const WRITE_STATUS_IF_HOLDER = `
if redis.call('exists', KEYS[1]) == 0 then return 0 end
if redis.call('get', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[1], 'status', ARGV[2])
return 1`;

const STOP = `
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], 'desired', 'stopped')
redis.call('srem', KEYS[2], ARGV[1])
redis.call('expire', KEYS[1], ARGV[2])
return 1`;

/**
 * The desired state of every stream (what clients asked for) and its reported status, in Redis, so that any
 * replica can answer Get/List and take a stream over when its owner dies. Redis is the only shared state of
 * ingest; a replica's memory holds only the streams it runs.
 */
export class StreamStore {
  readonly controlChannel: string;
  readonly #p: string;

  constructor(
    private readonly redis: Redis,
    prefix = DEFAULT_KEY_PREFIX,
  ) {
    this.#p = prefix;
    this.controlChannel = `${prefix}control`;
  }

  private streamKey(streamId: string): string {
    return `${this.#p}stream:${streamId}`;
  }

  /** Records a new stream (or finds the one a repeated request id created). */
  /** Capacity is checked in the same script, so concurrent calls cannot overshoot it (reliability.md T35). */
  async create(
    spec: StreamSpec,
    initial: StreamStatus,
    capacity = Number.MAX_SAFE_INTEGER,
  ): Promise<CreateResult> {
    const requestKey = spec.requestId ? `${this.#p}request:${spec.requestId}` : `${this.#p}request:-`;
    const reply = (await this.#run('create', () =>
      this.redis.eval(
        CREATE,
        4,
        this.streamKey(spec.streamId),
        `${this.#p}streams`,
        requestKey,
        `${this.#p}known`,
        JSON.stringify(spec),
        spec.streamId,
        spec.requestId,
        String(DAY_S),
        JSON.stringify(initial),
        String(capacity),
      ),
    )) as [CreateResult['outcome'], string];
    return { outcome: reply[0], streamId: reply[1] };
  }

  /** Marks a stream stopped (its owner stops pulling it) and keeps its record a day. False if unknown. */
  async markStopped(streamId: string): Promise<boolean> {
    const stopped = await this.#run('stop', () =>
      this.redis.eval(STOP, 2, this.streamKey(streamId), `${this.#p}streams`, streamId, String(DAY_S)),
    );
    if (stopped === 1)
      await this.#run('publish', () => this.redis.publish(this.controlChannel, `stop:${streamId}`));
    return stopped === 1;
  }

  async get(streamId: string): Promise<StoredStream | undefined> {
    const fields = await this.#run('get', () => this.redis.hgetall(this.streamKey(streamId)));
    return parseStored(fields);
  }

  /** Ids of streams that should run. */
  async desiredIds(): Promise<string[]> {
    return this.#run('desired', () => this.redis.smembers(`${this.#p}streams`));
  }

  /** Every stream with a record (running or ended in the last day); prunes ids whose record expired. */
  async list(): Promise<StoredStream[]> {
    const ids = await this.#run('list', () => this.redis.smembers(`${this.#p}known`));
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.streamKey(id));
    const results = (await this.#run('list', () => pipeline.exec())) ?? [];
    const streams: StoredStream[] = [];
    const expired: string[] = [];
    results.forEach(([error, fields], i) => {
      const stored = error ? undefined : parseStored(fields as Record<string, string>);
      if (stored) streams.push(stored);
      else if (!error) expired.push(ids[i] ?? '');
    });
    if (expired.length > 0) await this.#run('prune', () => this.redis.srem(`${this.#p}known`, ...expired));
    return streams.sort((a, b) => a.spec.createdAtMs - b.spec.createdAtMs);
  }

  /**
   * The owner's report, written only while this replica holds the stream's lease: a session that lost its
   * lease (or was replaced by a new stream with the same id) cannot overwrite its successor's status.
   * True when written.
   */
  async writeOwnStatus(streamId: string, status: StreamStatus, leaseKey: string): Promise<boolean> {
    const written = await this.#run('status', () =>
      this.redis.eval(
        WRITE_STATUS_IF_HOLDER,
        2,
        this.streamKey(streamId),
        leaseKey,
        status.ownerReplicaId,
        JSON.stringify(status),
      ),
    );
    return written === 1;
  }

  /** A status written by no owner (a stream nobody runs); only while the stream's record exists. */
  async writeStatus(streamId: string, status: StreamStatus): Promise<void> {
    const key = this.streamKey(streamId);
    await this.#run('status', async () => {
      if ((await this.redis.exists(key)) === 1) await this.redis.hset(key, 'status', JSON.stringify(status));
    });
  }

  /** Replica heartbeat: id → capacity, for the cluster-wide capacity check. */
  async heartbeat(replicaId: string, maxStreams: number, ttlMs: number): Promise<void> {
    const now = Date.now();
    await this.#run('heartbeat', async () => {
      await this.redis.hset(`${this.#p}replicas`, replicaId, JSON.stringify({ maxStreams, seenAtMs: now }));
      // Forget replicas silent for long (they are gone).
      const all = await this.redis.hgetall(`${this.#p}replicas`);
      const stale = Object.entries(all)
        .filter(([, v]) => now - (JSON.parse(v) as { seenAtMs: number }).seenAtMs > ttlMs * 3)
        .map(([id]) => id);
      if (stale.length > 0) await this.redis.hdel(`${this.#p}replicas`, ...stale);
    });
  }

  /** Streams the live replicas can pull in all (replicas seen within `ttlMs`). */
  async capacity(ttlMs: number): Promise<number> {
    const all = await this.#run('capacity', () => this.redis.hgetall(`${this.#p}replicas`));
    const now = Date.now();
    return Object.values(all)
      .map((v) => JSON.parse(v) as { maxStreams: number; seenAtMs: number })
      .filter((r) => now - r.seenAtMs <= ttlMs)
      .reduce((sum, r) => sum + r.maxStreams, 0);
  }

  async #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof LiveLensError) throw error;
      throw fromRedisError(error, { operation: `streams.${operation}` });
    }
  }
}

function parseStored(fields: Record<string, string> | null | undefined): StoredStream | undefined {
  if (!fields?.spec || !fields.status) return undefined;
  return {
    spec: JSON.parse(fields.spec) as StreamSpec,
    desired: fields.desired === 'running' ? 'running' : 'stopped',
    status: JSON.parse(fields.status) as StreamStatus,
  };
}

/** The status of a stream no replica has started yet. */
export function pendingStatus(): StreamStatus {
  return {
    state: StreamState.STARTING,
    ownerReplicaId: '',
    sessionEpoch: '',
    startedAtMs: 0,
    framesPublished: 0,
    audioSecondsPublished: 0,
    restarts: 0,
    lastError: '',
    updatedAtMs: Date.now(),
  };
}
