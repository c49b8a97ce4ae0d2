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
});
