import { LiveLensError, type Logger } from '@livelens/runtime';
import { modelError } from '../errors.js';
import type { DecodedImage } from '../image.js';
import type { ExecutionProvider } from '../session.js';
import { WorkerCallError, WorkerRpc } from '../worker-rpc.js';
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
}

/**
 * Reads on-screen text with PaddleOCR's PP-OCR models. The whole pipeline (OcrPipeline: pre-processing,
 * both models, post-processing) runs in one worker thread, so a batch never blocks the caller's event loop;
 * one batch at a time (callers batch across streams to fill it).
 */
export class PaddleOcr {
  private constructor(
    private readonly rpc: WorkerRpc,
    readonly provider: ExecutionProvider,
    readonly modelIds: { det: string; rec: string },
    readonly options: OcrOptions,
  ) {}

  static async create(
    paths: PaddleOcrPaths,
    create: PaddleOcrCreateOptions,
    logger: Logger,
  ): Promise<PaddleOcr> {
    const modelIds = create.modelIds ?? { det: 'ppocrv4-det', rec: 'ppocrv4-rec' };
    const options = { ...defaultOcrOptions, ...create.options };
    const requested = [...(create.executionProviders ?? ['cpu'])];
    const rpc = new WorkerRpc('ocr/ocr-worker.js');
    let ready: Record<'det' | 'rec', { provider: ExecutionProvider; failures: string[] }>;
    try {
      ready = await rpc.call('init', {
        ...paths,
        modelIds,
        options,
        executionProviders: requested,
        intraOpThreads: create.intraOpThreads ?? 1,
      } satisfies OcrWorkerInit);
    } catch (error) {
      await rpc.terminate();
      if (error instanceof WorkerCallError && error.code === 'model_load') {
        const failure = JSON.parse(error.message) as OcrWorkerInitFailure;
        const id = failure.model === 'dict' ? 'ppocr-keys-v1' : modelIds[failure.model];
        const path = failure.model === 'dict' ? paths.dictPath : paths[`${failure.model}Path`];
        throw modelError(id, `cannot load ${path}: ${failure.message}`, { code: 'failed_precondition' });
      }
      throw error;
    }
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
    return new PaddleOcr(rpc, ready.det.provider, modelIds, options);
  }

  /**
   * Reads the text in a batch of images (copied to the worker; the caller keeps them): one detector run per
   * distinct input size, recognition pooled across the batch.
   */
  async recognize(images: readonly DecodedImage[]): Promise<OcrBatchResult> {
    if (images.length === 0) return { lines: [], detMs: 0, recMs: 0 };
    if (this.rpc.failure)
      throw modelError(this.modelIds.det, `OCR worker failed: ${this.rpc.failure.message}`, {
        code: 'unavailable',
      });
    try {
      return await this.rpc.call<OcrBatchResult>('recognize', images);
    } catch (error) {
      if (!(error instanceof WorkerCallError)) throw error;
      throw new LiveLensError(`OCR (${this.modelIds.det}, ${this.modelIds.rec}) failed: ${error.message}`, {
        code: error.code === 'internal' ? 'internal' : 'invalid_argument',
        context: { modelId: `${this.modelIds.det}+${this.modelIds.rec}` },
      });
    }
  }

  close(): Promise<void> {
    return this.rpc.terminate();
  }
}
