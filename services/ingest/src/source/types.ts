/**
 * Public types of the ffmpeg source adapter. Nothing here mentions fluent-ffmpeg: the adapter is the one
 * place that knows how ffmpeg is driven, so it can move to a plain `spawn` without touching its callers.
 */

/**
 * What ffmpeg is asked to open; picks the protocol and demuxer whitelists (see `ffmpeg-args.ts`).
 * The same union is declared by `url-policy.ts`, which decides the kind of a user URL.
 */
export type SourceKind = 'rtmp' | 'hls' | 'http' | 'srt' | 'file';

/** How one stream is opened and sampled. Every field is required: callers fill in their config defaults. */
export interface SourceSpec {
  kind: SourceKind;
  /**
   * What ffmpeg opens: the URL (network kinds) or an absolute path (file). Already validated by url-policy.
   * May hold credentials (userinfo, an RTMP stream key, an SRT passphrase): never logged as is, and
   * scrubbed from the stderr lines kept for `detail`.
   */
  input: string;
  /** Fixed-rate sampling: frames per second of stream time, e.g. 1. Range (0, 60]. */
  frameRateFps: number;
  /**
   * 0 = off. Otherwise an extra frame is taken whenever ffmpeg's scene score (0..1) exceeds this, on top of
   * the fixed rate. Turning it on makes ffmpeg score every decoded frame (a frame difference per frame).
   */
  sceneChangeThreshold: number;
  /** Frames are scaled down to at most this height (aspect kept, even width), never up. Even, e.g. 720. */
  maxHeight: number;
  /** Length of each PCM chunk, e.g. 1000. Whole milliseconds; 16 kHz makes that 32 bytes per ms. */
  audioChunkMs: number;
  /** Read the input at its native rate (`-re`): for file replays that should behave like a live stream. */
  realtime: boolean;
  /** Network read/write timeout (ffmpeg `-rw_timeout`, given to ffmpeg in µs), e.g. 10000. Ignored for files. */
  rwTimeoutMs: number;
  /** A JPEG larger than this is dropped (reported through `onDropped`) and never buffered whole. */
  maxFrameBytes: number;
  /** Decoder `-max_pixels`: the decompression-bomb guard (a header may claim 100000x100000). */
  maxPixels: number;
  /** mjpeg `-q:v`, 2 (best, biggest) to 31 (worst, smallest), e.g. 5. */
  jpegQuality: number;
}

/** Why a frame was taken. */
export type SampleReason = 'interval' | 'scene_change';

/** One sampled frame, as a baseline JPEG. */
export interface SampledFrame {
  jpeg: Buffer;
  /**
   * Presentation time in ms on ffmpeg's output timeline, which starts near 0 at the input's start (ffmpeg
   * subtracts the input start time); PCM `startMs` is on the same clock. Strictly increasing. When ffmpeg's
   * per-frame line could not be matched this is an estimate (previous pts + 1000 / frameRateFps).
   */
  ptsMs: number;
  /** From the JPEG's SOF header. */
  width: number;
  height: number;
  /** ffmpeg's scene score for this frame (0..1); 0 when scene detection is off or the score was not seen. */
  sceneScore: number;
  reason: SampleReason;
  /** `Date.now()` when the whole JPEG had arrived. */
  receivedAtMs: number;
}

/** A slice of the audio track: signed 16-bit little-endian PCM, 16 kHz, mono. */
export interface PcmChunk {
  pcm: Buffer;
  /**
   * Samples before this chunk / 16: the same clock as `SampledFrame.ptsMs` (ffmpeg pads the start of the
   * audio with silence so that sample 0 is at time 0, and keeps the track gapless; see ffmpeg-args.ts).
   */
  startMs: number;
  /** Always `audioChunkMs`, except for the last chunk when the process ends (then shorter, never 0). */
  durationMs: number;
  receivedAtMs: number;
}

/**
 * Machine code for why ffmpeg failed, from its stderr (see `classifyFailure` in stderr.ts).
 * `http_<code>` carries the exact status when ffmpeg printed it (`http_404`), else `http_4xx` / `http_5xx`.
 */
export type FailureReason =
  | 'connection_refused'
  /** Could not connect and ffmpeg did not say why (libsrt reports refused and timed-out handshakes alike). */
  | 'connection_failed'
  | 'host_unreachable'
  | 'dns_failed'
  | 'timeout'
  | `http_${number}`
  | 'http_4xx'
  | 'http_5xx'
  /** A nested open (HLS segment, redirect) asked for a protocol outside the kind's whitelist. */
  | 'protocol_not_allowed'
  /** The input probed as a demuxer outside the kind's whitelist (a playlist where a file was expected...). */
  | 'format_not_allowed'
  /** The HLS demuxer refused a segment URL by its extension (`allowed_segment_extensions`, `allowed_extensions`). */
  | 'segment_not_allowed'
  | 'invalid_data'
  | 'no_such_file'
  | 'no_video_stream'
  /** The decoder refused a picture larger than `maxPixels`. */
  | 'too_large'
  /** ffmpeg could not be started (not installed, not executable). */
  | 'spawn_failed'
  /** ffmpeg died from a signal we did not send (a crash, the OOM killer). */
  | 'killed'
  | 'unknown';

/** How a source ended; `onExit` receives it exactly once. */
export type SourceExit =
  /** The input ended normally (end of file, the publisher stopped): ffmpeg exited with code 0. */
  | { kind: 'eof' }
  | {
      kind: 'failed';
      reason: FailureReason;
      /** The last stderr lines (at most ~50, credentials scrubbed). Untrusted text: the stream chose some of it. */
      detail: string;
      exitCode: number | null;
      signal: string | null;
    }
  /** `stop()` was called (whatever ffmpeg's exit status then was). */
  | { kind: 'stopped' };

/** Something ffmpeg produced that was not delivered. */
export type DroppedFrame = { kind: 'frame_too_large'; bytes: number } | { kind: 'corrupt_jpeg' };

/**
 * Callbacks of one source. They run on the event loop, synchronously with the reads: a slow callback slows
 * ffmpeg (pipe backpressure) rather than buffering without bound. A callback must not throw; if one does,
 * the error is logged and the source goes on.
 */
export interface SourceEvents {
  onFrame(frame: SampledFrame): void;
  onAudio(chunk: PcmChunk): void;
  onDropped(what: DroppedFrame): void;
  /** Exactly once, after the last onFrame/onAudio, once the process is gone and its temp files removed. */
  onExit(exit: SourceExit): void;
}

/** A running ffmpeg process. */
export interface FfmpegSource {
  /** The ffmpeg pid, once spawned (spawning waits for fluent-ffmpeg's one-time capability probe). */
  readonly pid: number | undefined;
  /**
   * SIGTERM (ffmpeg reads no stdin, so 'q' is not an option), then SIGKILL after `graceMs`. Resolves once the
   * process has exited and `onExit` has run. Idempotent: later calls return the same promise.
   * @default graceMs 2000
   */
  stop(graceMs?: number): Promise<void>;
  /** Resolves with the exit once `onExit` has run (never rejects). */
  readonly exited: Promise<SourceExit>;
}
