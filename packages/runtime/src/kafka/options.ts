/** How to reach the cluster. Every field but `brokers` has a documented default. */
export interface KafkaClientOptions {
  brokers: string[];
  /** Client id sent to the broker (shows in its logs and quotas). @default 'livelens' */
  clientId?: string;
  /** @default 5000 */
  connectionTimeoutMs?: number;
  /** @default 30000 */
  requestTimeoutMs?: number;
  /** Retries of one request on retriable errors (jittered exponential backoff). @default 8 */
  retries?: number;
  /** First backoff. @default 300 */
  initialRetryMs?: number;
}

/** An idempotent producer: acks from all in-sync replicas, one request in flight, one pinned partitioner. */
export interface PublisherOptions {
  /**
   * A send that has not been acknowledged by then fails with `deadline_exceeded` (kafkajs #534: a send can
   * hang). The outcome is then unknown, which is why every record carries a deterministic id.
   * @default 30000
   */
  sendTimeoutMs?: number;
  /** Name used in metrics labels and the DLQ `service` field. */
  service: string;
}

/** A consumer group member that decodes, processes, dead-letters and commits. */
export interface ConsumerLoopOptions {
  groupId: string;
  /**
   * Bound on messages being processed at once, across partitions. Past it the loop pauses fetching and resumes
   * below half of it. @default 64
   */
  maxInFlight?: number;
  /** Consume from the beginning when the group has no committed offset. @default true */
  fromBeginning?: boolean;
  /** @default 30000 */
  sessionTimeoutMs?: number;
  /** @default 3000 */
  heartbeatIntervalMs?: number;
  /**
   * Bytes fetched per partition per request. Larger than any record (frames are JPEG), or the consumer gets
   * stuck on a record bigger than this (kafkajs K7). @default 8 MiB
   */
  maxBytesPerPartition?: number;
  /** Partitions whose batches are processed concurrently. @default 4 */
  partitionsConsumedConcurrently?: number;
  /** Commit completed offsets at least this often while a batch is processed. @default 1000 */
  commitIntervalMs?: number;
  /** Attempts at a handler that throws a retriable error, before the loop fails the batch. @default 5 */
  handlerAttempts?: number;
  /** Consumer restarts after crashes before the loop gives up and reports `failed` (kafkajs K3). @default 5 */
  maxRestarts?: number;
  /** Bytes of the original value kept in a dead letter. @default 1 MiB */
  maxDeadLetterValueBytes?: number;
  /**
   * The offset of the earliest record of `partition` the handler still needs, or undefined when it needs none
   * of the records it has completed. Commits never go past it: the committed offset is
   * `min(last completed of the contiguous prefix + 1, limit)`. For handlers that keep state across records
   * (an open speech segment made of many audio chunks): a record's handler resolves once the record is taken
   * in, but its output comes later, so a crash must replay it. Called at every commit, on the loop's own
   * schedule; it must be cheap and must not throw (a throw fails the batch). Fetching is not held back, only
   * the committed offset. @default no limit
   */
  commitLimit?: (topic: string, partition: number) => string | undefined;
  /**
   * Called after every rebalance this member takes part in, with the partitions of the loop's topic it owns
   * now (sorted; empty when it owns none). A handler that keeps state per stream drops the state of streams
   * on partitions it no longer owns: their next owner replays them from the committed offset (held back by
   * `commitLimit`), so the old owner must neither publish nor keep them. Must not throw (a throw is logged).
   * @default none
   */
  onAssignment?: (partitions: readonly number[]) => void;
  /**
   * Called as soon as this member learns that the group is rebalancing (a heartbeat or a commit says so, or
   * kafkajs re-joins): from then until the next `onAssignment`, any of its partitions may be moving, so a
   * handler should not act on streams going quiet (they are quiet because nothing is fetched). May be called
   * more than once per rebalance. Must not throw (a throw is logged). @default none
   */
  onRebalancing?: () => void;
}

export const defaultConsumerLoopOptions = {
  maxInFlight: 64,
  fromBeginning: true,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  maxBytesPerPartition: 8 * 1024 * 1024,
  partitionsConsumedConcurrently: 4,
  commitIntervalMs: 1_000,
  handlerAttempts: 5,
  maxRestarts: 5,
  maxDeadLetterValueBytes: 1024 * 1024,
} as const satisfies Required<
  Omit<ConsumerLoopOptions, 'groupId' | 'commitLimit' | 'onAssignment' | 'onRebalancing'>
>;
