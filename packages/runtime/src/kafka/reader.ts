import { randomUUID } from 'node:crypto';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { decodeRecord, type TopicSpec } from '@livelens/contracts';
import type { Kafka } from 'kafkajs';
import { LiveLensError } from '../errors.js';
import { fromKafkaError } from './errors.js';

/** One record read back: decoded, or why it could not be. */
export interface ReadRecord<Desc extends DescMessage> {
  readonly partition: number;
  readonly offset: string;
  readonly timestampMs: number;
  readonly key: Buffer | null;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** Undefined when the bytes are not the topic's message (`error` says why). */
  readonly message: MessageShape<Desc> | undefined;
  readonly error?: string;
}

export interface ReadRangeOptions {
  /** Records written at or after this time; the partition's start when older. */
  readonly sinceUnixMs: number;
  /** Stop after this many records (the earliest of each partition first). @default 10_000 */
  readonly limit?: number;
  /** Give up after this long. @default 60_000 */
  readonly timeoutMs?: number;
}

/**
 * Reads what a topic holds from `sinceUnixMs` up to its end at the time of the call, then stops: for people
 * (the DLQ, a stream's events), not for services, which use a ConsumerLoop. A throwaway consumer group that
 * never commits, deleted at the end.
 */
export async function readRange<Desc extends DescMessage>(
  kafka: Kafka,
  spec: TopicSpec<Desc>,
  options: ReadRangeOptions,
): Promise<ReadRecord<Desc>[]> {
  const limit = options.limit ?? 10_000;
  const admin = kafka.admin();
  const groupId = `livelens-reader-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  const records: ReadRecord<Desc>[] = [];
  try {
    await admin.connect();
    const [from, to] = await Promise.all([
      admin.fetchTopicOffsetsByTimestamp(spec.name, options.sinceUnixMs),
      admin.fetchTopicOffsets(spec.name),
    ]);
    // The last offset to read per partition (high watermark - 1), for partitions with something to read.
    const start = new Map(from.map((p) => [p.partition, BigInt(p.offset)]));
    const last = new Map<number, bigint>();
    for (const p of to) {
      const high = BigInt(p.high);
      const first = start.get(p.partition) ?? BigInt(p.low);
      if (first >= 0n && first < high) last.set(p.partition, high - 1n);
    }
    if (last.size === 0) return records;
    await consumer.connect();
    await consumer.subscribe({ topic: spec.name });
    let finish: () => void = () => undefined;
    let fail: (error: unknown) => void = () => undefined;
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(
      () =>
        fail(
          new LiveLensError(`reading ${spec.name} took longer than ${timeoutMs} ms`, {
            code: 'deadline_exceeded',
          }),
        ),
      timeoutMs,
    );
    try {
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const end = last.get(partition);
          if (end === undefined || records.length >= limit) return;
          const value = message.value ?? Buffer.alloc(0);
          let decoded: MessageShape<Desc> | undefined;
          let error: string | undefined;
          try {
            decoded = decodeRecord(spec, value);
          } catch (e) {
            error = (e as Error).message;
          }
          records.push({
            partition,
            offset: message.offset,
            timestampMs: Number(message.timestamp),
            key: message.key,
            value,
            headers: Object.fromEntries(
              Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v ?? '')]),
            ),
            message: decoded,
            ...(error === undefined ? {} : { error }),
          });
          if (BigInt(message.offset) >= end) last.delete(partition);
          if (last.size === 0 || records.length >= limit) finish();
        },
      });
      // kafkajs takes seeks once the consumer runs.
      for (const [partition] of last) {
        consumer.seek({ topic: spec.name, partition, offset: String(start.get(partition) ?? 0n) });
      }
      await finished;
    } finally {
      clearTimeout(timer);
    }
    return records;
  } catch (error) {
    throw error instanceof LiveLensError ? error : fromKafkaError(error, { operation: 'readRange' });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
