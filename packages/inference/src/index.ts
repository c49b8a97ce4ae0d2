export type { TimedWord } from './asr/alignment.js';
export {
  AudioRing,
  compileVadConfig,
  type OpenSegment,
  type SegmentEnd,
  SileroVad,
  type SileroVadCreateOptions,
  type SpeechSegment,
  SpeechSegmenter,
  VAD_SAMPLE_RATE,
  VAD_WINDOW_SAMPLES,
  type VadAudio,
  type VadConfig,
  type VadFlushResult,
  type VadInput,
  type VadOptions,
  type VadResult,
  vadAudioCapacity,
} from './asr/vad.js';
export {
  type TranscribeOptions,
  WhisperAsr,
  type WhisperCreateOptions,
  type WhisperPaths,
  type WhisperTranscript,
} from './asr/whisper.js';
export { type BatchFunction, type BatchOutcome, MicroBatcher, type MicroBatcherOptions } from './batcher.js';
export { modelError } from './errors.js';
export { type DecodedImage, decodeImage, MAX_IMAGE_PIXELS, rawImage } from './image.js';
export {
  DEFAULT_MANIFEST_URL,
  findModel,
  loadManifest,
  ModelEntry,
  ModelManifest,
  ModelSource,
} from './manifest.js';
export {
  type OcrBatchResult,
  PaddleOcr,
  type PaddleOcrCreateOptions,
  type PaddleOcrPaths,
} from './ocr/paddle-ocr.js';
export { defaultOcrOptions, type OcrLine, type OcrOptions, type Point } from './ocr/types.js';
export {
  cachedPath,
  defaultCacheDir,
  describeSource,
  type ModelOutcome,
  type ResolveOptions,
  resolveModel,
  resolveModels,
  sha256File,
} from './resolve.js';
export { OpenNsfwClassifier, preprocessOpenNsfw } from './risk/open-nsfw.js';
export {
  createModelSession,
  type ExecutionProvider,
  type ModelSession,
  type SessionOptions,
  type Tensor,
} from './session.js';
