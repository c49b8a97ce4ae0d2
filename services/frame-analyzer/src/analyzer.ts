import { create } from '@bufbuild/protobuf';
import {
  AnalysisStatus,
  type FrameAnalysis,
  FrameAnalysisSchema,
  type FrameSample,
  type ModelRun,
  ModelRunSchema,
} from '@livelens/contracts';
import { type BatchOutcome, type DecodedImage, decodeImage, type OcrLine } from '@livelens/inference';
import { isRetriable, LiveLensError, type Logger } from '@livelens/runtime';
import type { FrameAnalyzerMetrics } from './metrics.js';
import type { FrameModels } from './models.js';

/** One frame to analyse, with where it was read (for the analysis' SourceRef and for errors). */
export interface FrameJob {
  readonly frame: FrameSample;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export interface FrameAnalyzerOptions {
  /** A frame older than this (capture → its batch's start) is shed. 0 = never. */
  maxFrameAgeMs: number;
  /** Wall clock, Unix ms. @default Date.now */
  now?: () => number;
}

/** What the models said about a set of images, index-aligned with them. */
interface ModelOutputs {
  readonly lines: readonly OcrLine[][] | undefined;
  readonly scores: readonly number[] | undefined;
  /** One per model that ran, latency already split over the images of the run. */
  readonly runs: readonly ModelRun[];
}

/**
 * The batch function of the frame analyzer (the micro-batcher calls it): sheds stale frames, decodes each
 * JPEG once, runs every configured model once over the decodable frames (OCR and image risk at the same time:
 * separate worker-thread sessions), and builds one FrameAnalysis per frame. Per-frame failures come back as
 * that frame's Error, so one bad frame never fails the others.
 */
export function createFrameAnalyzer(
  models: FrameModels,
  options: FrameAnalyzerOptions,
  deps: { metrics: FrameAnalyzerMetrics; logger: Logger },
): (jobs: readonly FrameJob[]) => Promise<BatchOutcome<FrameAnalysis>[]> {
  const { metrics, logger } = deps;
  const now = options.now ?? Date.now;
  if (!models.ocr && !models.nsfw) {
    throw new LiveLensError('frame analyzer: no model configured', { code: 'invalid_config' });
  }

  /** Runs every model once over `images`; rejects with the first failure, after both runs have settled. */
  async function runModels(images: readonly DecodedImage[]): Promise<ModelOutputs> {
    const n = images.length;
    const ocr = models.ocr;
    const nsfw = models.nsfw;
    // Settled, not raced: a failed OCR run must not leave the risk model still running into the next batch.
    const [read, risk] = await Promise.allSettled([
      ocr ? ocr.reader.recognize(images) : undefined,
      (async () => {
        if (!nsfw) return undefined;
        const started = performance.now();
        const { scores } = await nsfw.classifier.classify(images);
        return { scores, ms: performance.now() - started };
      })(),
    ]);
    if (read.status === 'rejected') throw read.reason;
    if (risk.status === 'rejected') throw risk.reason;
    const runs: ModelRun[] = [];
    const run = (id: string, version: string, ms: number, provider: string) => {
      metrics.inferenceSeconds.observe({ model: id }, ms / 1000);
      runs.push(
        create(ModelRunSchema, {
          modelId: id,
          modelVersion: version,
          // The analyses of a batch share its wall time evenly (ModelRun.latency_ms in analysis.proto).
          latencyMs: ms / n,
          executionProvider: provider,
          batchSize: n,
        }),
      );
    };
    if (ocr && read.value) {
      run(ocr.det.id, ocr.det.version, read.value.detMs, ocr.reader.provider);
      run(ocr.rec.id, ocr.rec.version, read.value.recMs, ocr.reader.provider);
    }
    if (nsfw && risk.value) run(nsfw.model.id, nsfw.model.version, risk.value.ms, nsfw.classifier.provider);
    metrics.batchSize.observe(n);
    return { lines: read.value?.lines, scores: risk.value?.scores, runs };
  }

  /**
   * The models over a batch; when a batch run fails for a reason that is not an outage, each frame is run
   * alone, so only the frame that breaks a model fails (analyzer.test.ts "isolates a frame that breaks a
   * model"). An outage (retriable: a worker died) fails them all, to be retried.
   */
  async function runIsolating(images: readonly DecodedImage[]): Promise<Array<ModelOutputs | Error>> {
    try {
      const out = await runModels(images);
      return images.map((_, i) => ({
        lines: out.lines ? [out.lines[i] ?? []] : undefined,
        scores: out.scores ? [out.scores[i] ?? 0] : undefined,
        runs: out.runs,
      }));
    } catch (error) {
      if (images.length === 1 || isRetriable(error)) return images.map(() => toError(error));
      logger.warn(
        { err: error, frames: images.length },
        'batch inference failed: running its frames one by one',
      );
      const outcomes: Array<ModelOutputs | Error> = [];
      for (const image of images) {
        try {
          outcomes.push(await runModels([image]));
        } catch (single) {
          outcomes.push(toError(single));
        }
      }
      return outcomes;
    }
  }

  return async (jobs) => {
    const startedAt = now();
    const outcomes = new Array<BatchOutcome<FrameAnalysis>>(jobs.length);

    // 1. Shed what is too old to be worth analysing now: live first (ARCHITECTURE.md, "Guarantees").
    const fresh: number[] = [];
    for (const [i, job] of jobs.entries()) {
      const shed = shedIfStale(job, startedAt, options.maxFrameAgeMs, metrics);
      if (shed) outcomes[i] = shed;
      else fresh.push(i);
    }

    // 2. Decode each JPEG once, for every model (sharp, off the event loop).
    const decoded = await Promise.allSettled(fresh.map((i) => decodeImage((jobs[i] as FrameJob).frame.jpeg)));
    const ready: { index: number; image: DecodedImage }[] = [];
    for (const [k, result] of decoded.entries()) {
      const index = fresh[k] as number;
      const job = jobs[index] as FrameJob;
      if (result.status === 'rejected') {
        metrics.errors.inc({ kind: 'decode' });
        // invalid_argument, not retriable: the consumer loop dead-letters the record with this reason.
        outcomes[index] = frameError(job, result.reason);
        continue;
      }
      const image = result.value;
      if (image.width !== job.frame.width || image.height !== job.frame.height) {
        logger.warn(
          {
            streamId: job.frame.streamId,
            frameId: job.frame.frameId,
            declared: `${job.frame.width}x${job.frame.height}`,
            decoded: `${image.width}x${image.height}`,
          },
          'frame size differs from its record: using the decoded size',
        );
      }
      ready.push({ index, image });
    }

    // 3. Every model once over the decodable frames.
    if (ready.length > 0) {
      const results = await runIsolating(ready.map((r) => r.image));
      const analyzedAt = now();
      for (const [k, { index, image }] of ready.entries()) {
        const job = jobs[index] as FrameJob;
        const result = results[k];
        if (result === undefined || result instanceof Error) {
          metrics.errors.inc({ kind: 'inference' });
          outcomes[index] = frameError(job, result ?? new Error('no model output'));
          continue;
        }
        outcomes[index] = analysisOf(job, {
          status: AnalysisStatus.COMPLETE,
          analyzedAt,
          image,
          models,
          lines: result.lines?.[0],
          score: result.scores?.[0],
          runs: result.runs,
        });
        metrics.framesAnalyzed.inc();
        const capturedAt = Number(job.frame.captureTimeUnixMs);
        if (capturedAt > 0) metrics.endToEndLag.observe(Math.max(0, analyzedAt - capturedAt) / 1000);
      }
    }
    return outcomes;
  };
}

/**
 * The SHED_STALE analysis of a frame captured more than `maxFrameAgeMs` before `now` (counted), or
 * undefined when the frame is fresh enough, has no capture time (unknown age: analysed rather than shed for
 * ever), or shedding is off (0). The service checks before queueing a frame (a backlog clears without
 * waiting for batches) and the batch function again when the batch starts.
 */
export function shedIfStale(
  job: FrameJob,
  now: number,
  maxFrameAgeMs: number,
  metrics: FrameAnalyzerMetrics,
): FrameAnalysis | undefined {
  const capturedAt = Number(job.frame.captureTimeUnixMs);
  if (maxFrameAgeMs <= 0 || capturedAt <= 0 || now - capturedAt <= maxFrameAgeMs) return undefined;
  metrics.framesShed.inc({ reason: 'stale' });
  return analysisOf(job, { status: AnalysisStatus.SHED_STALE, analyzedAt: now });
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A frame's failure, converted, with where the frame came from (the DLQ reason is its message). */
function frameError(job: FrameJob, error: unknown): LiveLensError {
  const converted = LiveLensError.from(error);
  return new LiveLensError(`frame ${job.frame.frameId}: ${converted.message}`, {
    code: converted.code,
    retriable: converted.retriable,
    cause: error,
    context: {
      ...converted.context,
      streamId: job.frame.streamId,
      topic: job.topic,
      partition: job.partition,
      offset: job.offset,
    },
  });
}

function analysisOf(
  job: FrameJob,
  result:
    | { status: AnalysisStatus.SHED_STALE; analyzedAt: number }
    | {
        status: AnalysisStatus.COMPLETE;
        analyzedAt: number;
        image: DecodedImage;
        models: FrameModels;
        lines: readonly OcrLine[] | undefined;
        score: number | undefined;
        runs: readonly ModelRun[];
      },
): FrameAnalysis {
  const { frame } = job;
  const complete = result.status === AnalysisStatus.COMPLETE ? result : undefined;
  const recId = complete?.models.ocr?.rec.id ?? '';
  const nsfwId = complete?.models.nsfw?.model.id ?? '';
  return create(FrameAnalysisSchema, {
    streamId: frame.streamId,
    sessionEpoch: frame.sessionEpoch,
    frameSeq: frame.seq,
    frameId: frame.frameId,
    ptsMs: frame.ptsMs,
    captureTimeUnixMs: frame.captureTimeUnixMs,
    // The decoded size where there is one: text polygons are in its pixels.
    width: complete?.image.width ?? frame.width,
    height: complete?.image.height ?? frame.height,
    textRegions: (complete?.lines ?? []).map((line) => ({
      polygon: line.box.map((p) => ({ x: p.x, y: p.y })),
      text: line.text,
      confidence: line.confidence,
      readingOrder: line.readingOrder,
      // The text is the recognizer's reading of the detector's box.
      modelId: recId,
    })),
    labels: complete?.score === undefined ? [] : [{ name: 'nsfw', score: complete.score, modelId: nsfwId }],
    models: complete ? [...complete.runs] : [],
    source: {
      topic: job.topic,
      partition: job.partition,
      offset: BigInt(job.offset),
      recordId: frame.frameId,
    },
    analyzedTimeUnixMs: BigInt(result.analyzedAt),
    status: result.status,
  });
}
