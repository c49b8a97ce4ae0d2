import { LiveLensError, type Logger } from '@livelens/runtime';
import { modelError } from '../errors.js';
import type { DecodedImage } from '../image.js';
import type { ExecutionProvider } from '../session.js';
import { SupervisedWorker, WorkerCallError } from '../worker-rpc.js';
import type { OcrWorkerInit, OcrWorkerInitFailure } from './ocr-worker.js';
import type { OcrBatchResult } from './pipeline.js';
import { defaultOcrOptions, type OcrOptions } from './types.js';

export type { OcrBatchResult } from './pipeline.js';

export interface PaddleOcrPaths {
  /** PP-OCR text detection model (DB). */
  detPath: string;
  /** PP-OCR text recognition model (SVTR/CRNN with CTC). */
  recPath: string;
  /** The recognizer's dictionary, one character per line. */
  dictPath: string;
}

export interface PaddleOcrCreateOptions {
  options?: Partial<OcrOptions>;
  /** @default ['cpu'] */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads per inference, per model. @default 1 */
  intraOpThreads?: number;
  /** For logs, errors and analyses. @default { det: 'ppocrv4-det', rec: 'ppocrv4-rec' } */
  modelIds?: { det: string; rec: string };
  /** A batch not read by then fails (retriable) and the worker is replaced. @default 120000 */
  timeoutMs?: number;
}

/**
 * Reads on-screen text with PaddleOCR's PP-OCR models. The whole pipeline (OcrPipeline: pre-processing,
 * both models, post-processing) runs in one worker thread, so a batch never blocks the caller's event loop;
 * one batch at a time (callers batch across streams to fill it).
 */
export class PaddleOcr {
  private constructor(
    private readonly worker: SupervisedWorker<OcrWorkerInit>,
    readonly provider: ExecutionProvider,
    readonly modelIds: { det: string; rec: string },
    readonly options: OcrOptions,
    private readonly timeoutMs: number,
  ) {}

  static async create(
    paths: PaddleOcrPaths,
    create: PaddleOcrCreateOptions,
    logger: Logger,
  ): Promise<PaddleOcr> {
    const modelIds = create.modelIds ?? { det: 'ppocrv4-det', rec: 'ppocrv4-rec' };
    const options = { ...defaultOcrOptions, ...create.options };
    const requested = [...(create.executionProviders ?? ['cpu'])];
    let started: { worker: SupervisedWorker<OcrWorkerInit>; ready: OcrReady };
    try {
      started = await SupervisedWorker.start<OcrWorkerInit, OcrReady>('ocr/ocr-worker.js', 'OCR', {
        ...paths,
        modelIds,
        options,
        executionProviders: requested,
        intraOpThreads: create.intraOpThreads ?? 1,
      });
    } catch (error) {
      const failure = parseInitFailure(error);
      if (!failure) throw error;
      const id = failure.model === 'dict' ? 'ppocr-keys-v1' : modelIds[failure.model];
      const path = failure.model === 'dict' ? paths.dictPath : paths[`${failure.model}Path`];
      throw modelError(id, `cannot load ${path}: ${failure.message}`, { code: 'failed_precondition' });
    }
    const { worker, ready } = started;
    for (const model of ['det', 'rec'] as const)
      logger.info(
        {
          modelId: modelIds[model],
          provider: ready[model].provider,
          requested,
          fallbacks: ready[model].failures,
        },
        'model session ready',
      );
    return new PaddleOcr(worker, ready.det.provider, modelIds, options, create.timeoutMs ?? 120_000);
  }

  /** Set once the OCR worker died and could not be restarted: unusable (a service fails its liveness). */
  get failure(): LiveLensError | undefined {
    return this.worker.failure;
  }

  /**
   * Reads the text in a batch of images (copied to the worker; the caller keeps them). Each image is read on
   * its own (what a frame reads does not depend on its batch); the batch shares one worker round trip.
   * Errors keep the worker's code: an outage (the worker died, the deadline passed) is retriable; anything
   * else is `internal`, never blamed on the input.
   */
  async recognize(images: readonly DecodedImage[]): Promise<OcrBatchResult> {
    if (images.length === 0) return { lines: [], detMs: 0, recMs: 0 };
    try {
      return await this.worker.call<OcrBatchResult>('recognize', images, { timeoutMs: this.timeoutMs });
    } catch (error) {
      const cause = LiveLensError.from(error);
      throw new LiveLensError(`OCR (${this.modelIds.det}, ${this.modelIds.rec}) failed: ${cause.message}`, {
        code: cause.code,
        retriable: cause.retriable,
        cause,
        context: { modelId: `${this.modelIds.det}+${this.modelIds.rec}` },
      });
    }
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}

type OcrReady = Record<'det' | 'rec', { provider: ExecutionProvider; failures: string[] }>;

/** The model a failed init names (the OCR worker's message is JSON), if it is such a failure. */
function parseInitFailure(error: unknown): OcrWorkerInitFailure | undefined {
  if (!(error instanceof WorkerCallError) || error.code !== 'failed_precondition') return undefined;
  try {
    const parsed = JSON.parse(error.message) as Partial<OcrWorkerInitFailure>;
    return parsed.model && typeof parsed.message === 'string' ? (parsed as OcrWorkerInitFailure) : undefined;
  } catch {
    return undefined;
  }
}
