import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import {
  AnalysisStatus,
  type FrameAnalysis,
  type FrameSample,
  FrameSampleSchema,
  recordIds,
} from '@livelens/contracts';
import { findModel, loadManifest } from '@livelens/inference';
import { waitFor } from '@livelens/test-support';
import { generateClip } from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFrameModels, type FrameModels } from '../src/models.js';
import {
  analyzerEnv,
  collect,
  framesOf,
  loadTestModels,
  startAnalyzer,
  startProducer,
  testNamespace,
} from './harness.js';

const EPOCH = 'epoch-1';

function frameSample(
  streamId: string,
  seq: number,
  jpeg: Uint8Array,
  captureTimeUnixMs: number,
): FrameSample {
  return create(FrameSampleSchema, {
    streamId,
    sessionEpoch: EPOCH,
    seq: BigInt(seq),
    frameId: recordIds.frame(streamId, EPOCH, seq),
    ptsMs: BigInt(seq * 1000),
    captureTimeUnixMs: BigInt(captureTimeUnixMs),
    width: 1280,
    height: 720,
    jpeg,
  });
}

const textOf = (a: FrameAnalysis) => a.textRegions.map((r) => r.text).join(' | ');

// The service with the real PP-OCRv4 and open_nsfw models on real frames, against the real broker.
describe('frame analyzer: real models, real broker', () => {
  let models: FrameModels;
  beforeAll(async () => {
    models = await loadTestModels(analyzerEnv(testNamespace()));
  }, 300_000);
  afterAll(async () => {
    if (models) await closeFrameModels(models);
  });

  it('analyses every frame of three streams in order, reads the price, dead-letters garbage and goes on', async () => {
    const ns = testNamespace();
    // Shed nothing here: the shedding test below has its own replica.
    const analyzer = await startAnalyzer(analyzerEnv(ns, { FRAME_ANALYZER_MAX_FRAME_AGE_MS: '0' }), models);
    const analyses = await collect(ns.topics.frameAnalysis, ns.topics.dlq);
    const dlq = await collect(ns.topics.dlq, ns.topics.dlq);
    const producer = await startProducer();
    try {
      // Three live-commerce-like streams: a price on a flat background for 2 s of 7, a lower third on colour
      // bars, and a moving test pattern with no text.
      const [priceClip, barsClip, patternClip] = await Promise.all([
        generateClip({
          durationS: 7,
          background: { color: '#2050a0' },
          overlays: [{ text: 'SALE $29.99', fromS: 2, toS: 4, position: 'center', fontSize: 72 }],
          audio: false,
        }),
        generateClip({
          durationS: 7,
          background: 'smptebars',
          overlays: [{ text: 'LINK IN BIO', fromS: 0, toS: 7 }],
          audio: false,
        }),
        generateClip({ durationS: 7, background: 'testsrc2', audio: false }),
      ]);
      const seconds = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5];
      const [price, bars, pattern] = await Promise.all(
        [priceClip, barsClip, patternClip].map((c) => framesOf(c.path, seconds)),
      );
      const streams = { 'shop-a': price ?? [], 'shop-b': bars ?? [], 'shop-c': pattern ?? [] };
      const now = Date.now();

      // Interleaved, as three live streams arrive. shop-a's seq 4 is a frame whose JPEG is garbage; a record
      // that is not a FrameSample at all arrives between shop-b's frames.
      const expected = new Map<string, number[]>();
      let garbageOffset: string | undefined;
      let badJpegOffset: string | undefined;
      for (let i = 0; i < seconds.length; i += 1) {
        for (const [streamId, frames] of Object.entries(streams)) {
          const seq = streamId === 'shop-a' && i >= 4 ? i + 1 : i;
          if (streamId === 'shop-a' && i === 4) {
            const [bad] = await producer.publisher.publish(ns.topics.frames, {
              message: frameSample('shop-a', 4, randomBytes(4096), now),
            });
            badJpegOffset = bad?.baseOffset;
          }
          await producer.publisher.publish(ns.topics.frames, {
            message: frameSample(streamId, seq, frames[i] as Buffer, now + i),
          });
          expected.set(streamId, [...(expected.get(streamId) ?? []), seq]);
        }
        if (i === 2) {
          const [garbage] = await producer.publisher.sendRaw(ns.topics.frames.name, [
            { key: 'shop-b', value: randomBytes(512) },
          ]);
          garbageOffset = garbage?.baseOffset;
        }
      }
      const valid = [...expected.values()].reduce((n, seqs) => n + seqs.length, 0);
      expect(valid).toBe(21);

      await waitFor(
        'an analysis of every valid frame',
        () => (analyses.records.length >= valid ? true : undefined),
        { timeoutMs: 120_000 },
      );
      await waitFor('two dead letters', () => (dlq.records.length >= 2 ? true : undefined));

      const got = analyses.messages();
      // None lost, none twice.
      expect(got).toHaveLength(valid);
      expect(new Set(got.map((a) => a.frameId)).size).toBe(valid);
      // Per-stream order: each stream's analyses arrive in frame order.
      for (const [streamId, seqs] of expected) {
        expect(got.filter((a) => a.streamId === streamId).map((a) => Number(a.frameSeq))).toEqual(seqs);
      }
      const manifest = await loadManifest();
      for (const a of got) {
        expect(a.status).toBe(AnalysisStatus.COMPLETE);
        expect(a.sessionEpoch).toBe(EPOCH);
        expect([a.width, a.height]).toEqual([1280, 720]);
        expect(a.source?.topic).toBe(ns.topics.frames.name);
        expect(a.source?.recordId).toBe(a.frameId);
        expect(Number(a.analyzedTimeUnixMs)).toBeGreaterThanOrEqual(Number(a.captureTimeUnixMs));
        // Benign frames: a low risk score.
        expect(a.labels.map((l) => l.name)).toEqual(['nsfw']);
        expect(a.labels[0]?.score).toBeLessThan(0.2);
        expect(a.models.map((m) => m.modelId)).toEqual(['ppocrv4-det', 'ppocrv4-rec', 'open-nsfw']);
        for (const m of a.models) {
          expect(m.modelVersion).toBe(findModel(manifest, m.modelId).version);
          expect(m.executionProvider).toBe('cpu');
          expect(m.batchSize).toBeGreaterThanOrEqual(1);
          expect(m.batchSize).toBeLessThanOrEqual(8);
          expect(m.latencyMs).toBeGreaterThan(0);
        }
      }
      // The source offsets point back at the frames.
      const shopA = got.filter((a) => a.streamId === 'shop-a');
      expect(new Set(shopA.map((a) => a.source?.partition)).size).toBe(1);

      // The price is read in the frames that show it (2..4 s), and only there.
      for (const a of shopA) {
        const shown = [2, 3].includes(Number(a.frameSeq));
        expect(textOf(a).includes('29.99'), `shop-a seq ${a.frameSeq}: "${textOf(a)}"`).toBe(shown);
      }
      const priceRegion = shopA
        .find((a) => Number(a.frameSeq) === 2)
        ?.textRegions.find((r) => r.text.includes('29.99'));
      expect(priceRegion?.modelId).toBe('ppocrv4-rec');
      expect(priceRegion?.confidence).toBeGreaterThan(0.8);
      expect(priceRegion?.polygon).toHaveLength(4);
      // Centred text: its box sits around the middle of the 1280x720 frame.
      const xs = priceRegion?.polygon.map((p) => p.x) ?? [];
      expect(Math.min(...xs)).toBeGreaterThan(200);
      expect(Math.max(...xs)).toBeLessThan(1080);
      expect(
        got.filter((a) => a.streamId === 'shop-b').some((a) => /LINK.?IN.?BIO/i.test(textOf(a))),
        got
          .filter((a) => a.streamId === 'shop-b')
          .map(textOf)
          .join(' / '),
      ).toBe(true);

      // The garbage record and the bad JPEG are dead letters, with the reason and where they came from.
      const letters = dlq.messages();
      expect(letters).toHaveLength(2);
      const garbage = letters.find((l) => l.sourceOffset === BigInt(garbageOffset ?? -1));
      expect(garbage?.sourceTopic).toBe(ns.topics.frames.name);
      expect(['decode_failed', 'invalid_message']).toContain(garbage?.errorCode);
      expect(garbage?.reason).toMatch(/FrameSample/);
      expect(Buffer.from(garbage?.key ?? []).toString()).toBe('shop-b');
      expect(garbage?.service).toBe('frame-analyzer');
      const badJpeg = letters.find((l) => l.sourceOffset === BigInt(badJpegOffset ?? -1));
      expect(badJpeg?.errorCode).toBe('invalid_argument');
      expect(badJpeg?.reason).toMatch(/^frame shop-a\/epoch-1\/f\/4: undecodable image \(4096 bytes\)/);
      expect(badJpeg?.consumerGroup).toBe(ns.groupId);

      // It kept going: shop-a's frames after the bad one were analysed (checked in order above), and every
      // record, analysed or dead-lettered, is committed.
      expect(analyzer.service.loop.state).toBe('running');
      const ends = await analyzer.kafka.admin().endOffsets(ns.topics.frames.name);
      let seen = '';
      await waitFor('every offset committed', async () => {
        const committed = await analyzer.kafka.admin().committedOffsets(ns.groupId, ns.topics.frames.name);
        seen = `committed ${JSON.stringify([...committed])}, end ${JSON.stringify([...ends])}`;
        // A partition nothing was written to has no commit (-1).
        const done = [...ends].every(([p, end]) => committed.get(p) === (end === '0' ? '-1' : end));
        return done ? true : undefined;
      }).catch((error: Error) => {
        throw new Error(`${error.message}: ${seen}`);
      });

      // The metrics say the same.
      expect(await analyzer.metric('livelens_frame_analyzer_frames_analyzed_total')).toBe(valid);
      expect(await analyzer.metric('livelens_frame_analyzer_errors_total', { kind: 'decode' })).toBe(1);
      expect(await analyzer.metric('livelens_frame_analyzer_frames_shed_total')).toBe(0);
      expect(await analyzer.metric('livelens_frame_analyzer_end_to_end_lag_seconds')).toBe(valid);
      expect(await analyzer.metric('livelens_frame_analyzer_dlq_messages_total')).toBe(2);
      const batches = await analyzer.metric('livelens_frame_analyzer_batch_size_frames');
      const det = got.map((a) => a.models[0]);
      const runs = new Map<number, number>();
      for (const m of det) runs.set(m?.batchSize ?? 0, (runs.get(m?.batchSize ?? 0) ?? 0) + 1);
      const perModel = (i: number) =>
        (got.reduce((sum, a) => sum + (a.models[i]?.latencyMs ?? 0), 0) / got.length).toFixed(0);
      console.info(
        `[frame-analyzer] ${valid} frames in ${batches} batches; frames by batch size ${JSON.stringify(Object.fromEntries(runs))}; ` +
          `mean per-frame ms: det ${perModel(0)}, rec ${perModel(1)}, nsfw ${perModel(2)}; ` +
          `capture→analysed ms: ${got.map((a) => Number(a.analyzedTimeUnixMs - a.captureTimeUnixMs)).join(',')}`,
      );
    } finally {
      await Promise.all([analyses.stop(), dlq.stop(), producer.stop()]);
      await analyzer.stop();
    }
  }, 180_000);

  it('sheds frames older than the max age (SHED_STALE, counted) and analyses the fresh ones after them', async () => {
    const ns = testNamespace();
    const analyzer = await startAnalyzer(
      analyzerEnv(ns, { FRAME_ANALYZER_MAX_FRAME_AGE_MS: '10000' }),
      models,
    );
    const analyses = await collect(ns.topics.frameAnalysis, ns.topics.dlq);
    const producer = await startProducer();
    try {
      const clip = await generateClip({
        durationS: 2,
        background: { color: '#2050a0' },
        overlays: [{ text: 'SALE $29.99', fromS: 0, toS: 2, position: 'center', fontSize: 72 }],
        audio: false,
      });
      const [frame] = await framesOf(clip.path, [1]);
      const hourAgo = Date.now() - 3_600_000;
      // A backlog from an hour ago (a consumer that was down), then live frames.
      const records = [0, 1, 2, 3].map((seq) => frameSample('late-1', seq, frame as Buffer, hourAgo + seq));
      for (const seq of [4, 5]) records.push(frameSample('late-1', seq, frame as Buffer, Date.now()));
      await producer.publisher.publish(
        ns.topics.frames,
        records.map((message) => ({ message })),
      );

      await waitFor('six analyses', () => (analyses.records.length >= 6 ? true : undefined), {
        timeoutMs: 60_000,
      });
      const got = analyses.messages();
      expect(got.map((a) => Number(a.frameSeq))).toEqual([0, 1, 2, 3, 4, 5]);
      expect(got.map((a) => AnalysisStatus[a.status])).toEqual([
        'SHED_STALE',
        'SHED_STALE',
        'SHED_STALE',
        'SHED_STALE',
        'COMPLETE',
        'COMPLETE',
      ]);
      for (const shed of got.slice(0, 4)) {
        expect(shed.textRegions).toEqual([]);
        expect(shed.labels).toEqual([]);
        expect(shed.models).toEqual([]);
        expect(shed.source?.recordId).toBe(shed.frameId);
      }
      for (const fresh of got.slice(4)) expect(textOf(fresh)).toContain('29.99');
      expect(await analyzer.metric('livelens_frame_analyzer_frames_shed_total', { reason: 'stale' })).toBe(4);
      expect(await analyzer.metric('livelens_frame_analyzer_frames_analyzed_total')).toBe(2);
    } finally {
      await Promise.all([analyses.stop(), producer.stop()]);
      await analyzer.stop();
    }
  }, 120_000);
});
