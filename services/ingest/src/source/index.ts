/**
 * The source adapters of the ingest service: what turns a validated source into sampled frames and PCM.
 * Only this folder may import fluent-ffmpeg.
 */
export {
  buildFfmpegArgs,
  buildVideoFilter,
  CONTAINER_FORMATS,
  type FfmpegArgs,
  FORMAT_WHITELIST,
  findUnsafeArgs,
  PROTOCOL_WHITELIST,
  selectExpression,
  validateSourceSpec,
} from './ffmpeg-args.js';
export { DEFAULT_STOP_GRACE_MS, type FfmpegSourceOptions, startFfmpegSource } from './ffmpeg-source.js';
export { classifyFailure } from './stderr.js';
export type {
  DroppedFrame,
  FailureReason,
  FfmpegSource,
  PcmChunk,
  SampledFrame,
  SampleReason,
  SourceEvents,
  SourceExit,
  SourceKind,
  SourceSpec,
} from './types.js';
export {
  DEFAULT_ALLOWED_SCHEMES,
  type UrlPolicy,
  urlPolicyWithDefaults,
  type ValidatedSource,
  validateSourceUrl,
} from './url-policy.js';
