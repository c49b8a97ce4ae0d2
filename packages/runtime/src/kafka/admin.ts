import type { TopicSpec } from '@livelens/contracts';
import type { Kafka } from 'kafkajs';
import { LiveLensError } from '../errors.js';
import { fromKafkaError } from './errors.js';

/** Largest record a LiveLens topic accepts: frames are JPEG inside the message (≈50–150 kB at 720p). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface EnsureTopicsOptions {
  /** @default 1 (dev and CI run one broker; production sets 3) */
  replicationFactor?: number;
  /** Overrides each spec's default partition count. */
  partitions?: number;
  /** @default replicationFactor > 1 ? 2 : 1 */
  minInsyncReplicas?: number;
}

/** Topic administration over a short-lived admin connection per call. */
export interface TopicAdmin {
  /** Creates the topics that do not exist yet; returns the names it created. Topics are never auto-created. */
  ensureTopics(specs: readonly TopicSpec[], options?: EnsureTopicsOptions): Promise<string[]>;
  /** Fails with `failed_precondition` naming every missing topic: a typo'd topic is a startup error (K10). */
  assertTopicsExist(names: readonly string[]): Promise<void>;
  deleteTopics(names: readonly string[]): Promise<void>;
  /** Committed offset per partition of `topic` for `groupId` ("-1" where none). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /** High watermark (next offset to be written) per partition. */
  endOffsets(topic: string): Promise<Map<number, string>>;
  /** Resolves when a broker answers a metadata request within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<void>;
}

export function createAdmin(kafka: Kafka): TopicAdmin {
  async function withAdmin<T>(
    what: string,
    fn: (admin: ReturnType<Kafka['admin']>) => Promise<T>,
    retries?: number,
  ): Promise<T> {
    const admin = kafka.admin(retries === undefined ? {} : { retry: { retries } });
    try {
      await admin.connect();
      return await fn(admin);
    } catch (error) {
      throw fromKafkaError(error, { operation: what });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  return {
    ensureTopics: (specs, options = {}) =>
      withAdmin('ensureTopics', async (admin) => {
        const existing = new Set(await admin.listTopics());
        const replicationFactor = options.replicationFactor ?? 1;
        const missing = specs.filter((s) => !existing.has(s.name));
        if (missing.length === 0) return [];
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((spec) => ({
            topic: spec.name,
            numPartitions: options.partitions ?? spec.defaults.partitions,
            replicationFactor,
            configEntries: [
              { name: 'retention.ms', value: String(spec.defaults.retentionMs) },
              { name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) },
              {
                name: 'min.insync.replicas',
                value: String(options.minInsyncReplicas ?? (replicationFactor > 1 ? 2 : 1)),
              },
              { name: 'unclean.leader.election.enable', value: 'false' },
            ],
          })),
        });
        return missing.map((s) => s.name);
      }),
    assertTopicsExist: (names) =>
      withAdmin('assertTopicsExist', async (admin) => {
        const existing = new Set(await admin.listTopics());
        const missing = names.filter((n) => !existing.has(n));
        if (missing.length > 0) {
          throw new LiveLensError(
            `Kafka topics do not exist: ${missing.join(', ')} (create them first: a service with <SERVICE>_CREATE_TOPICS=true does, or Kafka's topic tool; auto-creation is off)`,
            { code: 'failed_precondition', retriable: false },
          );
        }
      }),
    deleteTopics: (names) =>
      withAdmin('deleteTopics', async (admin) => {
        await admin.deleteTopics({ topics: [...names] });
      }),
    committedOffsets: (groupId, topic) =>
      withAdmin('committedOffsets', async (admin) => {
        const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
        return new Map((entry?.partitions ?? []).map((p) => [p.partition, p.offset]));
      }),
    endOffsets: (topic) =>
      withAdmin('endOffsets', async (admin) => {
        const offsets = await admin.fetchTopicOffsets(topic);
        return new Map(offsets.map((p) => [p.partition, p.high]));
      }),
    ping: async (timeoutMs = 3_000) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new LiveLensError(`Kafka did not answer within ${timeoutMs} ms`, { code: 'unavailable' })),
          timeoutMs,
        );
      });
      // No retries: readiness wants the answer now; the probe itself is retried by whoever polls it.
      const probe = withAdmin('ping', (admin) => admin.describeCluster(), 0);
      probe.catch(() => undefined);
      try {
        await Promise.race([probe, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
