import { waitFor } from '@livelens/test-support';
import { composeSpeechClip } from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AsrModels, closeAsrModels } from '../src/models.js';
import {
  asrEnv,
  audioChunks,
  collect,
  loadTestModels,
  startAsr,
  startProducer,
  testNamespace,
  wordsOf,
} from './harness.js';

// Nothing lost on restart: the audio of an open segment lives only in memory, so the commit limit keeps its
// chunks uncommitted; the next replica of the group replays them and publishes the whole utterance.
describe('asr restart mid-utterance', () => {
  let models: AsrModels;
  beforeAll(async () => {
    models = await loadTestModels(asrEnv(testNamespace()));
  }, 600_000);
  afterAll(async () => {
    if (models) await closeAsrModels(models);
  });

  it('holds the commit at the open segment; a new replica of the group publishes the whole utterance, same segment id', async () => {
    const ns = testNamespace();
    const env = asrEnv(ns, { ASR_PARTIAL_INTERVAL_MS: '2000', ASR_IDLE_FLUSH_MS: '3000' });
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
    const producer = await startProducer();
    const clip = await composeSpeechClip({
      durationS: 11,
      lines: [
        {
          text: 'Hi everyone and welcome back to the live, today we have the best deals on skincare for you',
          atS: 1.5,
          voice: 'en-us+f2',
        },
      ],
    });
    const utterance = clip.utterances[0];
    if (!utterance) throw new Error('no utterance');
    const chunks = audioChunks('live-1', clip.pcm, { sessionEpoch: 'e1' });
    expect(chunks).toHaveLength(11);
    const offsets: string[] = [];
    let partition = -1;
    const publish = async (from: number, to: number) => {
      for (const chunk of chunks.slice(from, to)) {
        const [sent] = await producer.publisher.publish(ns.topics.audio, { message: chunk });
        offsets.push(sent?.baseOffset ?? '');
        partition = sent?.partition ?? -1;
      }
    };

    const first = await startAsr(env, models);
    let second: Awaited<ReturnType<typeof startAsr>> | undefined;
    try {
      // Five seconds of audio: the sentence starts at 1.5 s and is still being spoken at 5 s.
      await publish(0, 5);
      await waitFor('chunk 4 taken in', () =>
        first.service.pipeline.timeline('live-1')?.lastSeq === 4n ? true : undefined,
      );
      const timeline = first.service.pipeline.timeline('live-1');
      const open = timeline?.open;
      expect(open, 'a segment is open at 5 s').toBeDefined();
      // The earliest audio still needed is the open segment's (padded) start: its chunk is the limit.
      const openStartMs = (open?.start ?? 0) / 16;
      const heldChunk = Math.floor(openStartMs / 1000);
      expect(first.service.pipeline.commitLimit(ns.topics.audio.name, partition)).toBe(offsets[heldChunk]);
      // Chunks 0..4 were processed; the group's commit stops at the open segment's first chunk.
      await waitFor('the commit held at the open segment', async () => {
        const committed = await first.kafka.admin().committedOffsets(ns.groupId, ns.topics.audio.name);
        return committed.get(partition) === offsets[heldChunk] ? true : undefined;
      });
      expect(BigInt(offsets[heldChunk] ?? 0)).toBeLessThan(BigInt(offsets[4] ?? 0) + 1n);

      // Stop mid-utterance (SIGTERM's drain): in-flight work finishes, the open segment is not flushed, the
      // commit stays where it is.
      await first.stop();
      const committed = await producer.kafka.admin().committedOffsets(ns.groupId, ns.topics.audio.name);
      expect(committed.get(partition)).toBe(offsets[heldChunk]);
      const before = transcripts.messages();
      expect(before.filter((s) => s.final)).toEqual([]);

      // The rest of the stream arrives while no replica runs; a new one joins the group.
      await publish(5, 11);
      second = await startAsr(env, models);
      await waitFor('the final of the utterance', () =>
        transcripts.messages().some((s) => s.final) ? true : undefined,
      );
      const all = transcripts.messages();
      const finals = all.filter((s) => s.final);
      const report = all
        .map(
          (s) =>
            `${s.final ? 'final' : 'partial'} #${s.seq} ${s.segmentId} [${s.startMs}..${s.endMs}] "${s.text}"`,
        )
        .join('\n');
      console.info(`[asr restart] held at chunk ${heldChunk} (offset ${offsets[heldChunk]}):\n${report}`);
      expect(finals, report).toHaveLength(1);
      const final = finals[0];
      // The whole utterance, from its first words to its last.
      const words = wordsOf(final?.text ?? '');
      expect(words.slice(0, 3), report).toEqual(['hi', 'everyone', 'and']);
      expect(words, report).toContain('skincare');
      expect(words.at(-1), report).toBe('you');
      expect(Math.abs(Number(final?.startMs) - utterance.speech.start / 16)).toBeLessThanOrEqual(300);
      expect(Number(final?.endMs)).toBeGreaterThanOrEqual(utterance.speech.end / 16 - 64);
      // Its sources run from the held chunk: the replay started there.
      expect(final?.sources[0]?.recordId).toBe(chunks[Math.floor(Number(final?.startMs) / 1000)]?.chunkId);
      // Replayed from the same VAD grid, the segment has the same id as the first replica's partials.
      for (const partial of before) expect(partial.segmentId, report).toBe(final?.segmentId);
      // The second replica took in the stream from the held chunk on, each chunk once.
      const replica = second;
      await waitFor('the rest of the stream taken in', async () =>
        (await replica.metric('livelens_asr_chunks_total', { outcome: 'processed' })) === 11 - heldChunk
          ? true
          : undefined,
      );
      expect(await second.metric('livelens_asr_chunks_total', { outcome: 'duplicate' })).toBe(0);
    } finally {
      await Promise.all([transcripts.stop(), producer.stop()]);
      if (first.service.loop.state !== 'stopped') await first.stop();
      await second?.stop();
    }
  }, 180_000);

  it('on a rebalance, the old owner drops the moved stream unpublished; the new owner publishes it whole', async () => {
    const ns = testNamespace();
    // Two partitions, two replicas: each ends up with one. The idle flush is out of the way (the streams end
    // with their end-of-session marker), so only the rebalance can take a stream from the first replica.
    const env = asrEnv(ns, {
      ASR_TOPIC_PARTITIONS: '2',
      ASR_PARTIAL_INTERVAL_MS: '0',
      ASR_IDLE_FLUSH_MS: '600000',
    });
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
    const producer = await startProducer();
    const clip = await composeSpeechClip({
      durationS: 11,
      lines: [
        {
          text: 'Hi everyone and welcome back to the live, today we have the best deals on skincare for you',
          atS: 1.5,
          voice: 'en-us+f2',
        },
      ],
    });
    // Stream ids whose keys land on different partitions (the partitioner is murmur2, so this is fixed).
    const ids = ['shop-north', 'shop-south'];
    const chunks = Object.fromEntries(
      ids.map((id) => [id, audioChunks(id, clip.pcm, { endOfSession: true })]),
    );
    const partitionOf: Record<string, number> = {};
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i += 1)
        for (const id of ids) {
          const message = chunks[id]?.[i];
          if (!message) continue;
          const [sent] = await producer.publisher.publish(ns.topics.audio, { message });
          partitionOf[id] = sent?.partition ?? -1;
        }
    };
    const first = await startAsr(env, models);
    let second: Awaited<ReturnType<typeof startAsr>> | undefined;
    try {
      await publish(0, 5);
      expect(new Set(Object.values(partitionOf)).size, JSON.stringify(partitionOf)).toBe(2);
      await waitFor('both streams mid-utterance on the first replica', () =>
        ids.every(
          (id) =>
            first.service.pipeline.timeline(id)?.open && first.service.pipeline.timeline(id)?.lastSeq === 4n,
        )
          ? true
          : undefined,
      );
      second = await startAsr(env, models);
      // The rebalance gives the second replica one partition: the first forgets that partition's stream.
      await waitFor(
        'the first replica to drop the moved stream',
        () => (first.service.pipeline.streamCount === 1 ? true : undefined),
        { timeoutMs: 60_000 },
      );
      const moved = ids.find((id) => !first.service.pipeline.timeline(id));
      expect(await first.metric('livelens_asr_timelines_ended_total', { reason: 'revoked' })).toBe(1);
      expect(transcripts.messages()).toEqual([]);

      // The rest of both streams, then their end markers.
      await publish(5, chunks[ids[0] as string]?.length ?? 0);
      await waitFor('a final for each stream', () =>
        ids.every((id) => transcripts.messages().some((t) => t.streamId === id && t.final))
          ? true
          : undefined,
      );
      const finals = transcripts.messages().filter((t) => t.final);
      const report = finals.map((t) => `${t.streamId} ${t.segmentId} "${t.text}"`).join('\n');
      console.info(`[asr rebalance] moved ${moved}:\n${report}`);
      for (const id of ids) {
        const mine = finals.filter((t) => t.streamId === id);
        expect(mine, report).toHaveLength(1);
        const words = wordsOf(mine[0]?.text ?? '');
        // Whole: the moved stream's new owner replayed it from the held commit, not from where it moved.
        expect(words.slice(0, 2), report).toEqual(['hi', 'everyone']);
        expect(words.at(-1), report).toBe('you');
      }
      // Each replica ended the stream it owns at its marker (counted once the final is acknowledged).
      for (const replica of [first, second])
        await waitFor('the end marker counted', async () =>
          (await replica.metric('livelens_asr_chunks_total', { outcome: 'end_of_session' })) === 1
            ? true
            : undefined,
        );
    } finally {
      await Promise.all([transcripts.stop(), producer.stop()]);
      await first.stop();
      await second?.stop();
    }
  }, 180_000);
});
