import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { AnalysisStatus, type FrameAnalysis, FrameSampleSchema } from '@livelens/contracts';
import type { BatchOutcome, DecodedImage, OcrLine } from '@livelens/inference';
import { createLogger, LiveLensError } from '@livelens/runtime';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFrameAnalyzer, type FrameJob } from './analyzer.js';
import { createFrameAnalyzerMetrics } from './metrics.js';
import type { FrameModels, ImageRiskClassifier, TextReader } from './models.js';

const run = promisify(execFile);
const logger = createLogger({ service: 'analyzer-test', level: 'silent' });
const NOW = 1_700_000_000_000;

/** A real baseline JPEG of a flat colour, the way ingest encodes frames (ffmpeg mjpeg). */
async function jpeg(width: number, height: number, color = 'gray'): Promise<Buffer> {
  const { stdout } = await run(
    'ffmpeg',
    [
      ...['-v', 'error', '-f', 'lavfi', '-i', `color=c=${color}:s=${width}x${height}`],
      ...['-frames:v', '1', '-c:v', 'mjpeg', '-q:v', '5', '-f', 'image2pipe', '-'],
    ],
    { encoding: 'buffer', maxBuffer: 8 * 1024 * 1024 },
  );
  return stdout as unknown as Buffer;
}

function job(
  seq: number,
  bytes: Uint8Array,
  { width = 160, height = 90, ageMs = 100, streamId = 's1' } = {},
): FrameJob {
  return {
    frame: create(FrameSampleSchema, {
      streamId,
      sessionEpoch: 'e1',
      seq: BigInt(seq),
      frameId: `${streamId}/e1/f/${seq}`,
      ptsMs: BigInt(seq * 1000),
      captureTimeUnixMs: BigInt(NOW - ageMs),
      width,
      height,
      jpeg: bytes,
    }),
    topic: 'live.frames.v1',
    partition: 3,
    offset: String(100 + seq),
  };
}

/** Fake models that record what they were given and answer by image width. */
function fakeModels(behaviour: { failWidth?: number; failure?: LiveLensError } = {}) {
  const ocrCalls: DecodedImage[][] = [];
  const nsfwCalls: DecodedImage[][] = [];
  const check = (images: readonly DecodedImage[]) => {
    if (
      behaviour.failure &&
      (behaviour.failWidth === undefined || images.some((i) => i.width === behaviour.failWidth))
    )
      throw behaviour.failure;
  };
  const reader: TextReader = {
    provider: 'cpu',
    async recognize(images) {
      ocrCalls.push([...images]);
      check(images);
      const lines: OcrLine[][] = images.map((image) => [
        {
          box: [
            { x: 1, y: 2 },
            { x: image.width - 1, y: 2 },
            { x: image.width - 1, y: 20 },
            { x: 1, y: 20 },
          ],
          text: `w${image.width}`,
          confidence: 0.9,
          readingOrder: 0,
        },
      ]);
      return { lines, detMs: 30 * images.length, recMs: 12 * images.length };
    },
    close: async () => undefined,
  };
  const classifier: ImageRiskClassifier = {
    provider: 'cpu',
    async classify(images) {
      nsfwCalls.push([...images]);
      check(images);
      return { scores: images.map((i) => i.width / 10_000), ms: 5 };
    },
    close: async () => undefined,
  };
  const models: FrameModels = {
    ocr: {
      reader,
      det: { id: 'ppocrv4-det', version: '4.0.0' },
      rec: { id: 'ppocrv4-rec', version: '4.0.0' },
    },
    nsfw: { classifier, model: { id: 'open-nsfw', version: '1.1.0' } },
  };
  return { models, ocrCalls, nsfwCalls };
}

function setup(models: FrameModels, maxFrameAgeMs = 10_000) {
  const registry = new Registry();
  const metrics = createFrameAnalyzerMetrics(registry, () => 0);
  const analyze = createFrameAnalyzer(models, { maxFrameAgeMs, now: () => NOW }, { metrics, logger });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    ((await registry.getSingleMetric(name)?.get())?.values ?? [])
      .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .filter((v) => !(v as { metricName?: string }).metricName?.endsWith('_bucket'))
      .reduce((sum, v) => sum + v.value, 0);
  return { analyze, metric };
}

const analysis = (outcome: BatchOutcome<FrameAnalysis> | undefined): FrameAnalysis => {
  if (outcome === undefined || outcome instanceof Error)
    throw new Error(`expected an analysis, got ${outcome}`);
  return outcome;
};

describe('frame analyzer batch function', () => {
  let small: Buffer;
  let wide: Buffer;
  beforeAll(async () => {
    [small, wide] = await Promise.all([jpeg(160, 90), jpeg(320, 90, 'white')]);
  });

  it('analyses a batch: each model once over all frames, outputs to the right frame, latency split evenly', async () => {
    const fake = fakeModels();
    const { analyze, metric } = setup(fake.models);
    const jobs = [
      job(0, small),
      job(1, wide, { width: 320, streamId: 's2' }),
      job(2, small, { streamId: 's3' }),
    ];
    const outcomes = await analyze(jobs);
    expect(fake.ocrCalls.map((c) => c.length)).toEqual([3]);
    expect(fake.nsfwCalls.map((c) => c.length)).toEqual([3]);

    const [a, b] = outcomes.map(analysis);
    expect(a?.status).toBe(AnalysisStatus.COMPLETE);
    expect(b?.streamId).toBe('s2');
    expect(b?.frameSeq).toBe(1n);
    expect(b?.frameId).toBe('s2/e1/f/1');
    expect(b?.ptsMs).toBe(1000n);
    expect(b?.captureTimeUnixMs).toBe(BigInt(NOW - 100));
    expect(b?.analyzedTimeUnixMs).toBe(BigInt(NOW));
    expect([b?.width, b?.height]).toEqual([320, 90]);
    expect(b?.textRegions.map((r) => [r.text, r.readingOrder, r.modelId])).toEqual([
      ['w320', 0, 'ppocrv4-rec'],
    ]);
    expect(b?.textRegions[0]?.polygon.map((p) => [p.x, p.y])).toEqual([
      [1, 2],
      [319, 2],
      [319, 20],
      [1, 20],
    ]);
    expect(b?.textRegions[0]?.confidence).toBeCloseTo(0.9, 5);
    expect(b?.labels.map((l) => [l.name, l.modelId])).toEqual([['nsfw', 'open-nsfw']]);
    expect(b?.labels[0]?.score).toBeCloseTo(0.032, 5);
    expect(a?.labels[0]?.score).toBeCloseTo(0.016, 5);
    expect(b?.source).toMatchObject({
      topic: 'live.frames.v1',
      partition: 3,
      offset: 101n,
      recordId: 's2/e1/f/1',
    });
    expect(
      b?.models.map((m) => [m.modelId, m.modelVersion, m.latencyMs, m.executionProvider, m.batchSize]),
    ).toEqual([
      ['ppocrv4-det', '4.0.0', 30, 'cpu', 3],
      ['ppocrv4-rec', '4.0.0', 12, 'cpu', 3],
      ['open-nsfw', '1.1.0', expect.any(Number), 'cpu', 3],
    ]);
    expect(await metric('livelens_frame_analyzer_frames_analyzed_total')).toBe(3);
    expect(await metric('livelens_frame_analyzer_batch_size_frames')).toBe(3 + 1); // sum + count
    expect(await metric('livelens_frame_analyzer_end_to_end_lag_seconds')).toBeCloseTo(3 * 0.1 + 3, 5);
  });

  it('sheds frames older than the max age when the batch starts: SHED_STALE, no model output, counted', async () => {
    const fake = fakeModels();
    const { analyze, metric } = setup(fake.models, 10_000);
    const outcomes = await analyze([
      job(0, small, { ageMs: 10_001 }),
      job(1, small, { ageMs: 9_000 }),
      job(2, small, { ageMs: 3_600_000, width: 1280, height: 720 }),
    ]);
    const [old, fresh, older] = outcomes.map(analysis);
    for (const shed of [old, older]) {
      expect(shed?.status).toBe(AnalysisStatus.SHED_STALE);
      expect(shed?.textRegions).toEqual([]);
      expect(shed?.labels).toEqual([]);
      expect(shed?.models).toEqual([]);
      expect(shed?.analyzedTimeUnixMs).toBe(BigInt(NOW));
    }
    // Not decoded: the size is the record's.
    expect([older?.width, older?.height]).toEqual([1280, 720]);
    expect(older?.source?.recordId).toBe('s1/e1/f/2');
    expect(fresh?.status).toBe(AnalysisStatus.COMPLETE);
    expect(fake.ocrCalls.map((c) => c.length)).toEqual([1]);
    expect(fresh?.models.every((m) => m.batchSize === 1)).toBe(true);
    expect(await metric('livelens_frame_analyzer_frames_shed_total', { reason: 'stale' })).toBe(2);
    expect(await metric('livelens_frame_analyzer_frames_analyzed_total')).toBe(1);
  });

  it('runs no model at all when every frame of the batch is stale', async () => {
    const fake = fakeModels();
    const { analyze } = setup(fake.models, 1_000);
    const outcomes = await analyze([job(0, Buffer.from('not even decoded'), { ageMs: 5_000 })]);
    expect(analysis(outcomes[0]).status).toBe(AnalysisStatus.SHED_STALE);
    expect(fake.ocrCalls).toEqual([]);
    expect(fake.nsfwCalls).toEqual([]);
  });

  it('never sheds with max age 0, nor a frame without a capture time', async () => {
    const fake = fakeModels();
    const off = setup(fake.models, 0);
    expect(analysis((await off.analyze([job(0, small, { ageMs: 86_400_000 })]))[0]).status).toBe(
      AnalysisStatus.COMPLETE,
    );
    const on = setup(fake.models, 1_000);
    const unknownAge = job(1, small);
    unknownAge.frame.captureTimeUnixMs = 0n;
    expect(analysis((await on.analyze([unknownAge]))[0]).status).toBe(AnalysisStatus.COMPLETE);
  });

  it('fails only an undecodable frame (invalid_argument, for the DLQ); the rest of the batch is analysed', async () => {
    const fake = fakeModels();
    const { analyze, metric } = setup(fake.models);
    const garbage = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const outcomes = await analyze([job(0, small), job(1, garbage, { streamId: 's2' }), job(2, small)]);
    const bad = outcomes[1];
    expect(bad).toBeInstanceOf(LiveLensError);
    const error = bad as LiveLensError;
    expect(error.code).toBe('invalid_argument');
    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(/^frame s2\/e1\/f\/1: undecodable image \(12 bytes\)/);
    expect(error.context).toMatchObject({
      streamId: 's2',
      topic: 'live.frames.v1',
      partition: 3,
      offset: '101',
    });
    expect(analysis(outcomes[0]).status).toBe(AnalysisStatus.COMPLETE);
    expect(analysis(outcomes[2]).status).toBe(AnalysisStatus.COMPLETE);
    // The models ran once, on the two good frames only.
    expect(fake.ocrCalls.map((c) => c.length)).toEqual([2]);
    expect(analysis(outcomes[0]).models[0]?.batchSize).toBe(2);
    expect(await metric('livelens_frame_analyzer_errors_total', { kind: 'decode' })).toBe(1);
  });

  it('uses the decoded size when the record declares another one', async () => {
    const fake = fakeModels();
    const { analyze } = setup(fake.models);
    const out = analysis((await analyze([job(0, wide, { width: 1280, height: 720 })]))[0]);
    expect([out.width, out.height]).toEqual([320, 90]);
    expect(fake.ocrCalls[0]?.map((i) => [i.width, i.height])).toEqual([[320, 90]]);
    expect(out.textRegions[0]?.text).toBe('w320');
  });

  it('isolates a frame that breaks a model: the batch is re-run frame by frame, only that frame fails', async () => {
    const failure = new LiveLensError('model ppocrv4-det: inference failed: bad shape', {
      code: 'invalid_argument',
    });
    const fake = fakeModels({ failWidth: 320, failure });
    const { analyze, metric } = setup(fake.models);
    const outcomes = await analyze([job(0, small), job(1, wide, { width: 320 }), job(2, small)]);
    expect(fake.ocrCalls.map((c) => c.map((i) => i.width))).toEqual([[160, 320, 160], [160], [320], [160]]);
    expect(outcomes[1]).toBeInstanceOf(LiveLensError);
    expect((outcomes[1] as LiveLensError).code).toBe('invalid_argument');
    expect((outcomes[1] as LiveLensError).message).toMatch(/^frame s1\/e1\/f\/1: model ppocrv4-det/);
    for (const i of [0, 2]) {
      const ok = analysis(outcomes[i]);
      expect(ok.status).toBe(AnalysisStatus.COMPLETE);
      expect(ok.models.map((m) => m.batchSize)).toEqual([1, 1, 1]);
    }
    expect(await metric('livelens_frame_analyzer_errors_total', { kind: 'inference' })).toBe(1);
  });

  it('fails the whole batch, without re-running, when a model is down (retriable: retried by the consumer)', async () => {
    const failure = new LiveLensError('model open-nsfw: worker failed', { code: 'unavailable' });
    const fake = fakeModels({ failure });
    const { analyze } = setup(fake.models);
    const outcomes = await analyze([job(0, small), job(1, small)]);
    expect(fake.nsfwCalls).toHaveLength(1);
    expect(outcomes.map((o) => (o as LiveLensError).code)).toEqual(['unavailable', 'unavailable']);
    expect(outcomes.every((o) => (o as LiveLensError).retriable)).toBe(true);
  });

  it('runs only the configured models', async () => {
    const fake = fakeModels();
    const { analyze } = setup({ nsfw: fake.models.nsfw });
    const out = analysis((await analyze([job(0, small)]))[0]);
    expect(out.textRegions).toEqual([]);
    expect(out.labels.map((l) => l.name)).toEqual(['nsfw']);
    expect(out.models.map((m) => m.modelId)).toEqual(['open-nsfw']);
    expect(fake.ocrCalls).toEqual([]);
    expect(() => setup({})).toThrow(/no model configured/);
  });
});
