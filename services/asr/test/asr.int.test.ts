import { randomBytes } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { type AudioChunk, AudioChunkSchema, type TranscriptSegment } from '@livelens/contracts';
import { findModel, loadManifest } from '@livelens/inference';
import { waitFor } from '@livelens/test-support';
import { composeSpeechClip, type TimedSpeechClip } from '@livelens/test-support/media';
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

const EPOCH = 'epoch-1';
/** Media time where the shop-b stream's audio starts: not on the VAD's 32 ms grid, to exercise alignment. */
const SHOP_B_START_MS = 60_010;

const mediaMs = (startMs: number, sample: number) => startMs + sample / 16;
const summary = (s: TranscriptSegment) =>
  `${s.final ? 'final' : 'partial'} #${s.seq} [${s.startMs}..${s.endMs}] "${s.text}"`;

// The service with the real Silero VAD and Whisper tiny.en, against the real broker, on espeak-ng speech.
describe('asr: real models, real broker', () => {
  let models: AsrModels;
  beforeAll(async () => {
    models = await loadTestModels(asrEnv(testNamespace()));
  }, 600_000);
  afterAll(async () => {
    if (models) await closeAsrModels(models);
  });

  it('transcribes interleaved streams in media time, in order, with partials, flushes an idle stream, dead-letters bad chunks', async () => {
    const ns = testNamespace();
    const asr = await startAsr(
      asrEnv(ns, { ASR_PARTIAL_INTERVAL_MS: '2000', ASR_IDLE_FLUSH_MS: '2000' }),
      models,
    );
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
    const dlq = await collect(ns.topics.dlq, ns.topics.dlq);
    const producer = await startProducer();
    try {
      // shop-a: two sentences with a price and a code; shop-b: a long host line then the bio line, starting at
      // a media time of 60.01 s; shop-c: a sentence cut off by the end of its audio (only the idle flush can
      // end it); shop-d: pink noise, no speech.
      const [a, b, c, d] = await Promise.all([
        composeSpeechClip({
          durationS: 10,
          lines: [
            { text: 'The price is 29 dollars 99.', atS: 1 },
            { text: 'Use code SAVE20 at checkout.', atS: 5.5 },
          ],
        }),
        composeSpeechClip({
          durationS: 14,
          lines: [
            {
              text: 'Hi everyone and welcome back to the live, today we have the best deals on skincare for you',
              atS: 0.5,
              voice: 'en-us+f2',
            },
            { text: 'Link in my bio.', atS: 10.5, voice: 'en-gb', wordsPerMinute: 140 },
          ],
        }),
        composeSpeechClip({
          durationS: 6,
          lines: [{ text: 'Follow me at live deals for more drops.', atS: 2 }],
        }),
        composeSpeechClip({
          durationS: 6,
          lines: [],
          noise: { color: 'pink', amplitude: 0.01 },
        }),
      ]);
      // shop-c stops mid-sentence: 1 s into its speech.
      const cCut = (c.utterances[0]?.speech.start ?? 32_000) + 16_000;
      const streams: Record<string, { clip: TimedSpeechClip; pcm: Int16Array; startMs: number }> = {
        'shop-a': { clip: a, pcm: a.pcm, startMs: 0 },
        'shop-b': { clip: b, pcm: b.pcm, startMs: SHOP_B_START_MS },
        'shop-c': { clip: c, pcm: c.pcm.subarray(0, Math.ceil(cCut / 16_000) * 16_000), startMs: 0 },
        'shop-d': { clip: d, pcm: d.pcm, startMs: 0 },
      };
      const captureStartMs = Date.now();
      const chunks = Object.fromEntries(
        Object.entries(streams).map(([id, s]) => [
          id,
          audioChunks(id, s.pcm, { startMs: s.startMs, captureStartMs, sessionEpoch: EPOCH }),
        ]),
      );
      // Interleaved, one chunk per stream per second of audio, as ingest publishes live streams. After
      // shop-b's chunk 3 come a chunk whose media time goes back (dead-lettered), one at 8 kHz (broken
      // contract) and bytes that are not an AudioChunk at all.
      const longest = Math.max(...Object.values(chunks).map((list) => list.length));
      const offsets: Record<string, string | undefined> = {};
      for (let i = 0; i < longest; i += 1) {
        for (const list of Object.values(chunks)) {
          const chunk = list[i];
          if (!chunk) continue;
          // Captured now, as ingest stamps a chunk when it reads it: the lag metric then measures the service.
          chunk.captureTimeUnixMs = BigInt(Date.now());
          await producer.publisher.publish(ns.topics.audio, { message: chunk });
        }
        if (i === 3) {
          const back = create(AudioChunkSchema, { ...(chunks['shop-b']?.[4] as object), startMs: 60_010n });
          [offsets.backwards] = (await producer.publisher.publish(ns.topics.audio, { message: back })).map(
            (r) => r.baseOffset,
          );
          [offsets.garbage] = (
            await producer.publisher.sendRaw(ns.topics.audio.name, [
              { key: 'shop-b', value: randomBytes(300) },
            ])
          ).map((r) => r.baseOffset);
        }
        if (i === 5) {
          const wrongRate = chunks['shop-d']?.[5]?.pcmS16le ?? new Uint8Array(2);
          // A valid AudioChunk on the wire but 8 kHz: the contract rejects it before the handler.
          const bad = create(AudioChunkSchema, {
            ...(chunks['shop-d']?.[5] as object),
            seq: 99n,
            sampleRateHz: 8_000,
            pcmS16le: wrongRate,
          });
          const raw = toBinary(AudioChunkSchema, bad);
          [offsets.wrongRate] = (
            await producer.publisher.sendRaw(ns.topics.audio.name, [
              { key: 'shop-d', value: Buffer.from(raw) },
            ])
          ).map((r) => r.baseOffset);
        }
      }

      // Finals: shop-a's two sentences, shop-b's two lines, shop-c's cut sentence (after the idle flush).
      await waitFor('three dead letters', () => (dlq.records.length >= 3 ? true : undefined));
      // Every timeline ends (idle) once its finals are out, and nothing more comes.
      await waitFor('every stream ended', () => (asr.service.pipeline.streamCount === 0 ? true : undefined), {
        timeoutMs: 120_000,
      });
      const got = transcripts.messages();
      const finals = got.filter((s) => s.final);
      const report = Object.keys(streams).map(
        (id) =>
          `${id}: ${got
            .filter((s) => s.streamId === id)
            .map(summary)
            .join(' | ')}`,
      );
      const context = report.join('\n');
      console.info(`[asr tiny.en] transcripts:\n${context}`);
      expect(finals.length, context).toBeGreaterThanOrEqual(5);

      const manifest = await loadManifest();
      for (const s of got) {
        expect(s.sessionEpoch).toBe(EPOCH);
        expect(s.segmentId).toBe(`${s.streamId}/${EPOCH}/s/${s.startMs}`);
        expect(s.modelId).toBe('whisper-tiny-en-onnx');
        expect(s.modelVersion).toBe(findModel(manifest, 'whisper-tiny-en-onnx-encoder').version);
        expect(s.language).toBe('en');
        expect(s.languageProbability).toBe(1); // English-only model
        expect(s.endMs).toBeGreaterThan(s.startMs);
        expect(s.endMs - s.startMs).toBeLessThanOrEqual(15_000n);
        // Sources: the chunks the segment spans, in order, and its capture time is the first one's.
        const list = chunks[s.streamId] ?? [];
        const spanned = list.filter(
          (ch) => ch.startMs < s.endMs && ch.startMs + BigInt(ch.durationMs) > s.startMs,
        );
        expect(
          s.sources.map((r) => r.recordId),
          summary(s),
        ).toEqual(spanned.map((ch) => ch.chunkId));
        expect(s.sources.every((r) => r.topic === ns.topics.audio.name)).toBe(true);
        expect(s.captureTimeUnixMs).toBe(spanned[0]?.captureTimeUnixMs);
      }

      // Per-stream order: seq increases in publication order, from 0; a partial precedes its final.
      for (const id of Object.keys(streams)) {
        const mine = got.filter((s) => s.streamId === id);
        expect(
          mine.map((s) => Number(s.seq)),
          context,
        ).toEqual(mine.map((_, i) => i));
        for (const partial of mine.filter((s) => !s.final)) {
          const final = mine.find((s) => s.final && s.segmentId === partial.segmentId);
          expect(final, `${summary(partial)} has a final`).toBeDefined();
          expect(Number(final?.seq)).toBeGreaterThan(Number(partial.seq));
          expect(partial.words).toEqual([]);
          expect(partial.endMs).toBeLessThanOrEqual(final?.endMs ?? 0n);
        }
      }

      // The words, and media-time alignment: the first final over each sentence starts within 300 ms of where
      // the sentence's sound starts, the last ends after it stops (less a VAD window), and their words lie
      // inside them, in order.
      const expectations: Record<string, string[][]> = {
        'shop-a': [
          ['price', '99'],
          ['code', 'save'],
        ],
        'shop-b': [['welcome', 'skincare'], ['bio']],
        'shop-c': [['follow']],
      };
      for (const [id, perUtterance] of Object.entries(expectations)) {
        const { clip, startMs } = streams[id] as { clip: TimedSpeechClip; startMs: number };
        for (const [k, words] of perUtterance.entries()) {
          const utterance = clip.utterances[k];
          if (!utterance) throw new Error(`no utterance ${k} for ${id}`);
          const speechStartMs = mediaMs(startMs, utterance.speech.start);
          const speechEndMs = mediaMs(startMs, utterance.speech.end);
          const over = finals.filter(
            (s) => s.streamId === id && Number(s.startMs) < speechEndMs && Number(s.endMs) > speechStartMs,
          );
          expect(over.length, `${id} utterance ${k}\n${context}`).toBeGreaterThan(0);
          const first = over[0] as TranscriptSegment;
          const last = over[over.length - 1] as TranscriptSegment;
          const text = over.map((s) => wordsOf(s.text).join(' ')).join(' ');
          for (const w of words) expect(text, `${id} utterance ${k}: ${text}`).toContain(w);
          expect(Math.abs(Number(first.startMs) - speechStartMs), summary(first)).toBeLessThanOrEqual(300);
          if (id !== 'shop-c') {
            expect(Number(last.endMs), summary(last)).toBeGreaterThanOrEqual(speechEndMs - 64);
          }
          // The first word starts near the sound (cross-attention timing: within 500 ms).
          expect(
            Math.abs(Number(first.words[0]?.startMs) - speechStartMs),
            `${summary(first)} first word ${first.words[0]?.text}@${first.words[0]?.startMs}`,
          ).toBeLessThanOrEqual(500);
          for (const segment of over) {
            expect(segment.words.length).toBeGreaterThan(0);
            let previous = segment.startMs;
            for (const word of segment.words) {
              expect(word.startMs).toBeGreaterThanOrEqual(previous);
              expect(word.endMs).toBeGreaterThanOrEqual(word.startMs);
              expect(word.endMs).toBeLessThanOrEqual(segment.endMs);
              expect(word.confidence).toBeGreaterThan(0);
              expect(word.confidence).toBeLessThanOrEqual(1);
              previous = word.startMs;
            }
            expect(segment.avgLogprob).toBeLessThan(0);
            expect(segment.noSpeechProb).toBeGreaterThanOrEqual(0);
          }
        }
      }
      // shop-c was cut mid-sentence: the idle flush published it, ending where its audio ends.
      const cut = finals.filter((s) => s.streamId === 'shop-c').at(-1);
      const cutEndMs = (streams['shop-c']?.pcm.length ?? 0) / 16;
      expect(Number(cut?.endMs)).toBeLessThanOrEqual(cutEndMs);
      expect(Number(cut?.endMs)).toBeGreaterThanOrEqual(cutEndMs - 600);
      // Pink noise alone: nothing.
      expect(got.filter((s) => s.streamId === 'shop-d')).toEqual([]);
      // shop-b's long line (over 2 s open) got at least one partial, unless Whisper was busy each time.
      const partials = got.filter((s) => !s.final);
      const skipped = await asr.metric('livelens_asr_partials_skipped_total');
      expect(partials.length + skipped).toBeGreaterThan(0);

      // The bad records are dead letters, with the reason and where they came from; the streams went on.
      const letters = dlq.messages();
      expect(letters).toHaveLength(3);
      const bySource = new Map(letters.map((l) => [l.sourceOffset.toString(), l]));
      const backwards = bySource.get(offsets.backwards ?? '');
      expect(backwards?.errorCode).toBe('invalid_argument');
      expect(backwards?.reason).toMatch(/^chunk shop-b\/epoch-1\/a\/4: start_ms 60010 is \d+ ms before/);
      expect(backwards?.service).toBe('asr');
      expect(['decode_failed', 'invalid_message']).toContain(bySource.get(offsets.garbage ?? '')?.errorCode);
      expect(bySource.get(offsets.wrongRate ?? '')?.reason).toMatch(/sample_rate_hz is 8000, expected 16000/);

      // Metrics.
      const audioS = Object.values(streams).reduce((sum, s) => sum + s.pcm.length / 16_000, 0);
      expect(await asr.metric('livelens_asr_audio_seconds_total')).toBeCloseTo(audioS, 3);
      expect(await asr.metric('livelens_asr_segments_total', { kind: 'final' })).toBe(finals.length);
      expect(await asr.metric('livelens_asr_segments_total', { kind: 'partial' })).toBe(partials.length);
      expect(await asr.metric('livelens_asr_chunks_total', { outcome: 'backwards' })).toBe(1);
      expect(await asr.metric('livelens_asr_timelines_ended_total', { reason: 'idle' })).toBe(4);
      expect(await asr.metric('livelens_asr_dlq_messages_total')).toBe(3);
      expect(await asr.metric('livelens_asr_end_to_end_lag_seconds')).toBe(finals.length);
      expect(await asr.metric('livelens_asr_errors_total')).toBe(0);
      const rtfCount = await asr.metric('livelens_asr_real_time_ratio', { kind: 'final' });
      const rtf = (await asr.metricSum('livelens_asr_real_time_ratio', { kind: 'final' })) / rtfCount;
      const decodeS =
        (await asr.metricSum('livelens_asr_decode_seconds', { kind: 'final' })) /
        (await asr.metric('livelens_asr_decode_seconds', { kind: 'final' }));
      const speechS = await asr.metric('livelens_asr_speech_seconds_total', { kind: 'final' });
      expect(rtf).toBeGreaterThan(0);
      // Every timeline ended and published: nothing is held back any more.
      for (const p of [0, 1])
        expect(asr.service.pipeline.commitLimit(ns.topics.audio.name, p)).toBeUndefined();
      console.info(
        `[asr tiny.en] ${finals.length} finals, ${partials.length} partials (${skipped} skipped); ` +
          `speech decoded ${speechS.toFixed(1)} s of ${audioS.toFixed(1)} s audio; ` +
          `final RTF mean ${rtf.toFixed(3)}, decode mean ${(decodeS * 1000).toFixed(0)} ms, end-to-end lag mean ` +
          `${((await asr.metricSum('livelens_asr_end_to_end_lag_seconds')) / finals.length).toFixed(2)} s`,
      );
    } finally {
      await Promise.all([transcripts.stop(), dlq.stop(), producer.stop()]);
      await asr.stop();
    }
  }, 240_000);

  it('dead-letters a stream past ASR_MAX_STREAMS and a chunk past ASR_MAX_CHUNK_MS, and takes the stream once another ends', async () => {
    const ns = testNamespace();
    const asr = await startAsr(
      asrEnv(ns, { ASR_MAX_STREAMS: '1', ASR_MAX_CHUNK_MS: '1000', ASR_IDLE_FLUSH_MS: '1000' }),
      models,
    );
    const dlq = await collect(ns.topics.dlq, ns.topics.dlq);
    const producer = await startProducer();
    try {
      const silence = new Int16Array(16_000 * 3);
      const [x0] = audioChunks('only-x', silence.subarray(0, 16_000));
      const [y0, y1] = audioChunks('only-y', silence.subarray(0, 32_000));
      const [long] = audioChunks('only-x', silence, { chunkMs: 3_000, firstSeq: 1, startMs: 1_000 });
      await producer.publisher.publish(ns.topics.audio, { message: x0 as AudioChunk });
      await waitFor('only-x held', () => (asr.service.pipeline.timeline('only-x') ? true : undefined));
      await producer.publisher.publish(ns.topics.audio, { message: y0 as AudioChunk });
      await producer.publisher.publish(ns.topics.audio, { message: long as AudioChunk });
      await waitFor('two dead letters', () => (dlq.records.length >= 2 ? true : undefined));
      const letters = dlq.messages();
      const full = letters.find((l) => l.errorCode === 'resource_exhausted');
      expect(full?.reason).toBe('stream only-y: this replica already holds ASR_MAX_STREAMS (1) streams');
      const tooLong = letters.find((l) => l.errorCode === 'invalid_argument');
      expect(tooLong?.reason).toBe(
        'chunk only-x/epoch-1/a/1: 3000 ms of audio, more than ASR_MAX_CHUNK_MS (1000)',
      );
      // only-x goes idle and ends: only-y's next chunk is taken (a new timeline: its chunk 0 is a dead letter).
      await waitFor('only-x ended', () => (asr.service.pipeline.streamCount === 0 ? true : undefined));
      await producer.publisher.publish(ns.topics.audio, { message: y1 as AudioChunk });
      await waitFor('only-y held', () => (asr.service.pipeline.timeline('only-y') ? true : undefined));
      expect(await asr.metric('livelens_asr_chunks_total', { outcome: 'max_streams' })).toBe(1);
      expect(await asr.metric('livelens_asr_chunks_total', { outcome: 'too_long' })).toBe(1);
      expect(await asr.metric('livelens_asr_streams')).toBe(1);
    } finally {
      await Promise.all([dlq.stop(), producer.stop()]);
      await asr.stop();
    }
  }, 60_000);

  it("publishes the open segment at the session's end marker, without waiting for the stream to go idle", async () => {
    const ns = testNamespace();
    const asr = await startAsr(
      asrEnv(ns, { ASR_PARTIAL_INTERVAL_MS: '0', ASR_IDLE_FLUSH_MS: '600000' }),
      models,
    );
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
    const producer = await startProducer();
    try {
      const clip = await composeSpeechClip({
        durationS: 5,
        lines: [{ text: 'Follow me at live deals for more drops.', atS: 1 }],
      });
      // The source ends mid-sentence, 1.5 s into the speech: only the end marker can close the segment.
      const cut = (clip.utterances[0]?.speech.start ?? 16_000) + 24_000;
      const chunks = audioChunks('ends', clip.pcm.subarray(0, cut), { endOfSession: true });
      for (const message of chunks) await producer.publisher.publish(ns.topics.audio, { message });
      const [final] = await waitFor('the final', () =>
        transcripts.records.length >= 1 ? transcripts.messages() : undefined,
      );
      expect(final?.final).toBe(true);
      expect(wordsOf(final?.text ?? '')).toContain('follow');
      expect(Number(final?.endMs)).toBeLessThanOrEqual(cut / 16);
      await waitFor('the timeline freed', () => (asr.service.pipeline.streamCount === 0 ? true : undefined));
      expect(await asr.metric('livelens_asr_timelines_ended_total', { reason: 'end_of_session' })).toBe(1);
      expect(await asr.metric('livelens_asr_chunks_total', { outcome: 'end_of_session' })).toBe(1);
    } finally {
      await Promise.all([transcripts.stop(), producer.stop()]);
      await asr.stop();
    }
  }, 60_000);

  it('at live pace, publishes a final within a second or so of the chunk that ends its utterance', async () => {
    const ns = testNamespace();
    const asr = await startAsr(asrEnv(ns, { ASR_PARTIAL_INTERVAL_MS: '0' }), models);
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
    const producer = await startProducer();
    try {
      const clip = await composeSpeechClip({
        durationS: 7,
        lines: [
          { text: 'Use code SAVE20 at checkout.', atS: 0.5 },
          { text: 'Link in my bio.', atS: 4 },
        ],
      });
      // One chunk a second, stamped when sent, as ingest does with a live source.
      for (const chunk of audioChunks('live-pace', clip.pcm)) {
        const started = Date.now();
        chunk.captureTimeUnixMs = BigInt(started);
        await producer.publisher.publish(ns.topics.audio, { message: chunk });
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_000 - (Date.now() - started))));
      }
      await waitFor('two finals', () => (transcripts.records.length >= 2 ? true : undefined));
      // Which chunk each final ended in (its last source).
      const ends = transcripts.messages().map((m) => [m.text, m.sources.at(-1)?.recordId]);
      const lagMs = await asr.metricSum('livelens_asr_end_to_end_lag_seconds');
      const count = await asr.metric('livelens_asr_end_to_end_lag_seconds');
      console.info(
        `[asr tiny.en live pace] end-to-end lag (publication - capture of the last chunk) mean ${((lagMs / count) * 1000).toFixed(0)} ms over ${count} finals: ${JSON.stringify(ends)}`,
      );
      expect(count).toBe(2);
      // Decode of a short segment plus a VAD batch and a publish: well under 2 s even on a busy 2-core machine.
      expect(lagMs / count).toBeLessThan(2);
    } finally {
      await Promise.all([transcripts.stop(), producer.stop()]);
      await asr.stop();
    }
  }, 60_000);
});
