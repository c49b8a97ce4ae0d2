import type { TranscriptSegment } from '@livelens/contracts';
import { findModel, loadManifest } from '@livelens/inference';
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

const summary = (s: TranscriptSegment) =>
  `${s.streamId} ${s.final ? 'final' : 'partial'} #${s.seq} [${s.startMs}..${s.endMs}] ${s.language} "${s.text}"`;

// The default model (multilingual Whisper base, language detected), and a gap in a stream's audio.
describe('asr with whisper-base', () => {
  let models: AsrModels;
  const env = (ns: ReturnType<typeof testNamespace>) =>
    asrEnv(ns, {
      ASR_WHISPER_MODEL: 'whisper-base',
      ASR_LANGUAGE: '',
      ASR_PARTIAL_INTERVAL_MS: '0',
      // The default: with 2 s a loaded 2-core CI machine once paused this stream's fetch long enough for the
      // idle end to cut an utterance at a chunk boundary (the assertions then saw two finals for one line).
      ASR_IDLE_FLUSH_MS: '5000',
    });
  beforeAll(async () => {
    models = await loadTestModels(env(testNamespace()));
  }, 600_000);
  afterAll(async () => {
    if (models) await closeAsrModels(models);
  });

  it('detects English and reads prices, codes and handles; a gap ends the open segment and starts a new timeline', async () => {
    const ns = testNamespace();
    const asr = await startAsr(env(ns), models);
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
    const producer = await startProducer();
    try {
      const [gapClip, cleanClip] = await Promise.all([
        composeSpeechClip({
          durationS: 10,
          lines: [
            { text: 'The price is 29 dollars 99.', atS: 0.8 },
            { text: 'Use code SAVE20 at checkout.', atS: 6 },
          ],
        }),
        composeSpeechClip({
          durationS: 8,
          lines: [
            { text: 'Link in my bio.', atS: 0.7, voice: 'en-gb', wordsPerMinute: 140 },
            { text: 'DM me on WhatsApp to order.', atS: 3.5, voice: 'en-gb-x-rp', wordsPerMinute: 160 },
          ],
        }),
      ]);
      const gapChunks = audioChunks('gap-1', gapClip.pcm, { sessionEpoch: 'e1' });
      const cleanChunks = audioChunks('clean-1', cleanClip.pcm, { sessionEpoch: 'e1' });
      // gap-1's chunk 2 (2..3 s, the end of the price sentence) never arrives: ingest shed it.
      const sent = [...gapChunks.filter((c) => c.seq !== 2n)];
      for (let i = 0; i < Math.max(sent.length, cleanChunks.length); i += 1) {
        for (const chunk of [sent[i], cleanChunks[i]]) {
          if (!chunk) continue;
          // Captured now, as ingest stamps a chunk when it reads it: the lag metric then measures the service.
          chunk.captureTimeUnixMs = BigInt(Date.now());
          await producer.publisher.publish(ns.topics.audio, { message: chunk });
        }
      }
      await waitFor('both streams ended', async () =>
        (await asr.metric('livelens_asr_timelines_ended_total', { reason: 'idle' })) === 2 ? true : undefined,
      );
      const got = transcripts.messages();
      const report = got.map(summary).join('\n');
      console.info(`[asr base] transcripts:\n${report}`);
      const manifest = await loadManifest();
      for (const s of got) {
        expect(s.final).toBe(true);
        // Detected per segment: reliable on a second of speech or more; a fragment (the 0.7 s after the gap
        // below) may be taken for another language (README: set ASR_LANGUAGE when the language is known).
        if (s.endMs - s.startMs >= 1_000n) expect(s.language, summary(s)).toBe('en');
        // Detected: a probability among the language tokens, not the 1 of a given language.
        expect(s.languageProbability, summary(s)).toBeGreaterThan(0);
        expect(s.languageProbability, summary(s)).toBeLessThanOrEqual(1);
        expect(s.modelId).toBe('whisper-base-onnx');
        expect(s.modelVersion).toBe(findModel(manifest, 'whisper-base-onnx-encoder').version);
      }

      // gap-1: the price sentence ends at the gap (2 s: the last audio before it), published as final when
      // chunk 3 arrived; the code sentence comes from the new timeline, in media time.
      const gap = got.filter((s) => s.streamId === 'gap-1');
      expect(gap.map((s) => Number(s.seq))).toEqual(gap.map((_, i) => i));
      const price = gap.find((s) => wordsOf(s.text).includes('price'));
      expect(price, report).toBeDefined();
      expect(Number(price?.endMs)).toBe(2_000);
      expect(Math.abs(Number(price?.startMs) - (gapClip.utterances[0]?.speech.start ?? 0) / 16)).toBeLessThan(
        300,
      );
      expect(price?.sources.map((r) => r.recordId)).toEqual(['gap-1/e1/a/0', 'gap-1/e1/a/1']);
      const code = gap.find((s) => wordsOf(s.text).includes('code'));
      const codeSpeech = gapClip.utterances[1]?.speech ?? { start: 0, end: 0 };
      expect(wordsOf(code?.text ?? ''), report).toEqual(expect.arrayContaining(['use', 'code']));
      expect(Math.abs(Number(code?.startMs) - codeSpeech.start / 16)).toBeLessThan(300);
      let previous = code?.startMs ?? 0n;
      for (const w of code?.words ?? []) {
        expect(w.startMs).toBeGreaterThanOrEqual(previous);
        expect(w.endMs).toBeLessThanOrEqual(code?.endMs ?? 0n);
        previous = w.startMs;
      }
      // Word timings in media time: the first word starts at the sound, the last ends near its end.
      expect(Math.abs(Number(code?.words[0]?.startMs) - codeSpeech.start / 16)).toBeLessThan(500);
      expect(Math.abs(Number(code?.words.at(-1)?.endMs) - codeSpeech.end / 16)).toBeLessThan(500);

      const clean = got.filter((s) => s.streamId === 'clean-1');
      const cleanText = clean.map((s) => wordsOf(s.text).join(' ')).join(' ');
      expect(cleanText, report).toContain('bio');
      // espeak-ng's "WhatsApp" is heard as "what's up" by Whisper base: the words around it must be right.
      expect(cleanText, report).toMatch(/dm me on/);

      expect(await asr.metric('livelens_asr_chunks_total', { outcome: 'gap' })).toBe(1);
      expect(await asr.metric('livelens_asr_timelines_ended_total', { reason: 'gap' })).toBe(1);
      expect(await asr.metric('livelens_asr_errors_total')).toBe(0);
      const count = await asr.metric('livelens_asr_real_time_ratio', { kind: 'final' });
      const rtf = (await asr.metricSum('livelens_asr_real_time_ratio', { kind: 'final' })) / count;
      const decodeMs =
        ((await asr.metricSum('livelens_asr_decode_seconds', { kind: 'final' })) /
          (await asr.metric('livelens_asr_decode_seconds', { kind: 'final' }))) *
        1000;
      const lagS =
        (await asr.metricSum('livelens_asr_end_to_end_lag_seconds')) /
        (await asr.metric('livelens_asr_end_to_end_lag_seconds'));
      console.info(
        `[asr base] ${got.length} finals; final RTF mean ${rtf.toFixed(3)}, decode mean ${decodeMs.toFixed(0)} ms, ` +
          `end-to-end lag mean ${lagS.toFixed(2)} s (from publication of the segment's last chunk; chunks published as fast as possible, not in real time)`,
      );
    } finally {
      await Promise.all([transcripts.stop(), producer.stop()]);
      await asr.stop();
    }
  }, 240_000);
});
