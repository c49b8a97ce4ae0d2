// `livelens dlq`: what the services dead-lettered (live.dlq.v1), and replaying chosen letters to their source
// topic once the cause is fixed.
import type { DeadLetterSchema } from '@livelens/contracts';
import { type KafkaClient, LiveLensError, type ReadRecord } from '@livelens/runtime';

export type Letter = ReadRecord<typeof DeadLetterSchema>;

/** `30s`, `15m`, `2h`, `7d` → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`expected a duration like 30s, 15m, 2h or 7d, got "${text}"`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** One dead letter as a line: when, who, why, where from. */
export function formatLetter(letter: Letter): string {
  const l = letter.message;
  if (!l) return `${new Date(letter.timestampMs).toISOString()}  (not a DeadLetter: ${letter.error})`;
  const when = new Date(Number(l.failedTimeUnixMs) || letter.timestampMs).toISOString();
  const from = `${l.sourceTopic}/${l.sourcePartition}/${l.sourceOffset}`;
  const reason = l.reason.replace(/\s+/g, ' ');
  return `${when}  ${l.deadLetterId}  ${l.service || '?'}  ${l.errorCode}  ${from}${l.valueTruncated ? ' (truncated)' : ''}\n    ${reason.length > 200 ? `${reason.slice(0, 199)}…` : reason}`;
}

/**
 * Re-publishes the letters with these ids to their source topic with the original key, value and headers (a
 * consumer treats it as a new record; ids in the payload let it drop repeats). A letter whose value was
 * truncated cannot be replayed; an id not among `letters` is reported, not guessed.
 */
export async function replayLetters(client: KafkaClient, letters: readonly Letter[], ids: readonly string[]) {
  const byId = new Map(letters.filter((l) => l.message).map((l) => [l.message?.deadLetterId as string, l]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length > 0) {
    throw new LiveLensError(`no dead letter ${missing.join(', ')} in the range read (widen --since?)`, {
      code: 'not_found',
    });
  }
  const publisher = client.publisher({ service: 'livelens-cli' });
  await publisher.connect();
  const replayed: string[] = [];
  const skipped: string[] = [];
  try {
    for (const id of ids) {
      const l = byId.get(id)?.message;
      if (!l) continue;
      if (l.valueTruncated) {
        skipped.push(`${id}: its value was truncated when it was dead-lettered`);
        continue;
      }
      await publisher.sendRaw(l.sourceTopic, [
        {
          key: l.key.length > 0 ? Buffer.from(l.key) : null,
          value: Buffer.from(l.value),
          headers: { ...l.headers },
        },
      ]);
      replayed.push(`${id} → ${l.sourceTopic}`);
    }
  } finally {
    await publisher.disconnect();
  }
  return { replayed, skipped };
}
