// The worker side of PaddleOcr: both models and the whole pipeline around them (see worker-rpc.ts).
import type { DecodedImage } from '../image.js';
import { loadOrtModel, type OrtModel } from '../ort.js';
import type { ExecutionProvider } from '../session.js';
import { serveWorker } from '../worker-rpc.js';
import { OcrPipeline } from './pipeline.js';
import { loadCharacters } from './recognize.js';
import type { OcrOptions } from './types.js';

export interface OcrWorkerInit {
  detPath: string;
  recPath: string;
  dictPath: string;
  modelIds: { det: string; rec: string };
  options: OcrOptions;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
}

/** Which model failed to load (the message of a failed init, as JSON): the caller names it in the error. */
export interface OcrWorkerInitFailure {
  model: 'det' | 'rec' | 'dict';
  message: string;
}

let models: OrtModel[] = [];
let pipeline: OcrPipeline | undefined;

serveWorker({
  async init(params: OcrWorkerInit) {
    const load = async (model: 'det' | 'rec', path: string) => {
      try {
        return await loadOrtModel(path, params.executionProviders, params.intraOpThreads);
      } catch (error) {
        throw Object.assign(new Error(JSON.stringify({ model, message: (error as Error).message })), {
          code: 'failed_precondition',
        });
      }
    };
    const det = await load('det', params.detPath);
    const rec = await load('rec', params.recPath);
    models = [det, rec];
    let characters: string[];
    try {
      characters = await loadCharacters(params.dictPath);
    } catch (error) {
      throw Object.assign(new Error(JSON.stringify({ model: 'dict', message: (error as Error).message })), {
        code: 'failed_precondition',
      });
    }
    pipeline = new OcrPipeline(
      { modelId: params.modelIds.det, ...pick(det) },
      { modelId: params.modelIds.rec, ...pick(rec) },
      characters,
      params.options,
    );
    return {
      value: {
        det: { provider: det.provider, failures: det.failures },
        rec: { provider: rec.provider, failures: rec.failures },
      },
    };
  },
  async recognize(images: DecodedImage[]) {
    if (!pipeline) throw new Error('OCR worker not initialised');
    return { value: await pipeline.recognize(images) };
  },
  async close() {
    await Promise.all(models.map((m) => m.release()));
    models = [];
    pipeline = undefined;
    return { value: undefined };
  },
});

function pick(model: OrtModel) {
  return { inputNames: model.inputNames, outputNames: model.outputNames, run: model.run };
}
