import { randomUUID } from 'node:crypto';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  AudioChunkSchema,
  topics as defaultTopics,
  FrameSampleSchema,
  GapReason,
  Modality,
  recordIds,
  SamplingReason,
  StreamEventSchema,
  StreamState,
} from '@livelens/contracts';
import { LiveLensError, type Logger, type Publisher } from '@livelens/runtime';
import type { IngestMetrics } from '../metrics.js';
import type { StreamSpec, StreamStatus } from '../ownership/stream-store.js';
import type {
  FfmpegSource,
  PcmChunk,
  SampledFrame,
  SourceEvents,
  SourceExit,
  SourceSpec,
} from '../source/ffmpeg-source.js';
import type { ValidatedSource } from '../source/url-policy.js';
import { PublishLane } from './publish-lane.js';

/** Source failures that retrying cannot fix: the stream fails at once instead of reconnecting. */
const PERMANENT = new Set([
  'protocol_not_allowed',
  'format_not_allowed',
  'segment_not_allowed',
  'no_such_file',
  'too_large',
  'no_video_stream',
  'spawn_failed',
]);

function isPermanent(reason: string, hadSamples: boolean): boolean {
  if (PERMANENT.has(reason)) return true;
  // A 4xx on the first request is a wrong URL; after good media it is an origin restarting (a live HLS
  // playlist 404s for a moment): worth a reconnect.
  if (/^http_4(\d\d|xx)$/.test(reason)) return !hadSamples;
  // Garbage from the first byte is a bad source; garbage after good media is a glitch worth a reconnect.
  return reason === 'invalid_data' && !hadSamples;
}

export interface RunnerSettings {
  rwTimeoutMs: number;
  stallTimeoutMs: number;
  reconnectMaxAttempts: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  publishQueueMax: number;
  /** Bytes of frames per stream waiting for the broker. @default 16 MiB */
  publishQueueMaxBytes?: number;
  maxFrameBytes: number;
  maxPixels: number;
  jpegQuality: number;
  /** How often the status in Redis is refreshed while running. @default 2000 */
  statusIntervalMs?: number;
}

export interface RunnerDeps {
  publisher: Publisher;
  logger: Logger;
  metrics: IngestMetrics;
  replicaId: string;
  /** Re-checks the URL before every (re)connect: DNS may have changed since the stream started. */
  validate: (sourceUrl: string) => Promise<ValidatedSource>;
  startSource: (spec: SourceSpec, events: SourceEvents, logger: Logger) => FfmpegSource;
  writeStatus: (streamId: string, status: StreamStatus) => Promise<void>;
  topics?: {
    frames: typeof defaultTopics.frames;
    audio: typeof defaultTopics.audio;
    streamEvents: typeof defaultTopics.streamEvents;
  };
}

/** Why a runner stops: on request (the stream ends), or because this replica gives the stream up. */
export type StopReason = 'requested' | 'lease_lost' | 'shutdown';

interface OpenGap {
  modality: Modality;
  reason: GapReason;
  /** Seqs were assigned to the lost records (shedding, unsendable, too large); else only media time is known. */
  hasSeqRange: boolean;
  firstSeq: number;
  lastSeq: number;
  startMs: number;
  endMs: number;
  detail: string;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** A run that delivered media for at least this long counts as healthy: the reconnect budget starts over. */
const HEALTHY_RUN_MS = 30_000;

/**
 * One stream on this replica, for one session (a session epoch): runs ffmpeg through the source adapter,
 * reconnects with jittered exponential backoff when the source drops, stalls or fails transiently, and
 * publishes frames, audio and stream events through bounded, ordered lanes. Everything lost on the way (a
 * reconnect, a stall, shedding under backpressure, an oversized frame, a takeover) becomes a gap record with
 * its seq or media-time range and reason. States: STARTING → RUNNING ⇄ RECONNECTING / DEGRADED → ENDED or
 * FAILED; each change is a stream event and a status in Redis.
 */
export class StreamRunner {
  readonly sessionEpoch = randomUUID();
  readonly #spec: StreamSpec;
  readonly #deps: RunnerDeps;
  readonly #settings: Required<RunnerSettings>;
  readonly #logger: Logger;
  readonly #topics: NonNullable<RunnerDeps['topics']>;
  readonly #frames: PublishLane<typeof FrameSampleSchema>;
  readonly #audio: PublishLane<typeof AudioChunkSchema>;
  readonly #events: PublishLane<typeof StreamEventSchema>;
  readonly #abort = new AbortController();
  #state: StreamState = StreamState.STARTING;
  #stopReason: StopReason | undefined;
  #source: FfmpegSource | undefined;
  #done: Promise<void> | undefined;
  #frameSeq = 0;
  #audioSeq = 0;
  #eventSeq = 0;
  /** Media clock: ms since the session's first sample; ffmpeg's own pts restart at 0 on every reconnect. */
  #offsetMs = 0;
  #lastFramePtsMs = -1;
  #lastMediaEndMs = 0;
  #lastSampleAtMs = 0;
  #hasAudio = false;
  /** Media time where the session's audio ends so far (the end of its last chunk). */
  #audioEndMs = 0;
  #startedAtMs = 0;
  #restarts = 0;
  #lastError = '';
  #framesPublished = 0;
  #audioMsPublished = 0;
  readonly #gaps = new Map<Modality, OpenGap>();

  constructor(spec: StreamSpec, deps: RunnerDeps, settings: RunnerSettings) {
    this.#spec = spec;
    this.#deps = deps;
    this.#settings = { statusIntervalMs: 2_000, publishQueueMaxBytes: 16 * 1024 * 1024, ...settings };
    this.#topics = deps.topics ?? defaultTopics;
    this.#logger = deps.logger.child({ streamId: spec.streamId, sessionEpoch: this.sessionEpoch });
    const common = { publisher: deps.publisher, logger: this.#logger, maxQueued: settings.publishQueueMax };
    const { metrics } = deps;
    this.#frames = new PublishLane({
      ...common,
      topic: this.#topics.frames,
      maxQueuedBytes: this.#settings.publishQueueMaxBytes,
      sizeOf: (item) => item.message.jpeg.length,
      onPublished: (items, ackedAtMs) => {
        this.#framesPublished += items.length;
        for (const item of items) {
          metrics.framesPublished.inc({
            reason: item.message.samplingReason === SamplingReason.SCENE_CHANGE ? 'scene_change' : 'interval',
          });
          metrics.publishLatency.observe({ topic: 'frames' }, (ackedAtMs - item.capturedAtMs) / 1000);
        }
      },
      onDropped: (items) =>
        this.#lostAfterQueue(
          Modality.VIDEO,
          items.map((i) => Number(i.message.seq)),
        ),
    });
    this.#audio = new PublishLane({
      ...common,
      topic: this.#topics.audio,
      onPublished: (items, ackedAtMs) => {
        for (const item of items) {
          this.#audioMsPublished += item.message.durationMs;
          metrics.audioSecondsPublished.inc(item.message.durationMs / 1000);
          metrics.publishLatency.observe({ topic: 'audio' }, (ackedAtMs - item.capturedAtMs) / 1000);
        }
      },
      onDropped: (items) => {
        // The end-of-session marker carries no samples: its loss is no audio gap.
        const lost = items.filter((i) => !i.message.endOfSession);
        if (lost.length > 0)
          this.#lostAfterQueue(
            Modality.AUDIO,
            lost.map((i) => Number(i.message.seq)),
          );
      },
    });
    // Events are few and must not be shed: a generous bound, and an error log if it is ever hit.
    this.#events = new PublishLane({
      ...common,
      maxQueued: 10_000,
      topic: this.#topics.streamEvents,
      onDropped: (items) => {
        metrics.samplesShed.inc({ kind: 'event', reason: 'publish_failed' }, items.length);
        this.#logger.error({ count: items.length }, 'stream events not acknowledged when the stream stopped');
      },
    });
  }

  get streamId(): string {
    return this.#spec.streamId;
  }

  get state(): StreamState {
    return this.#state;
  }

  /** Resolves when the session is over (ended, failed, or stopped here). */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  /** Starts the session. `takeoverFrom` names the replica and epoch whose lease expired, if any. */
  start(takeoverFrom?: { replicaId: string; sessionEpoch: string }): void {
    if (this.#done) return;
    this.#startedAtMs = Date.now();
    this.#done = this.#run(takeoverFrom).catch((error: unknown) => {
      this.#logger.error({ err: error }, 'stream runner crashed');
      this.#lastError = error instanceof Error ? error.message : String(error);
    });
  }

  /** Stops the session: the source is killed and reaped, queued records get a moment to flush. */
  async stop(reason: StopReason): Promise<void> {
    this.#stopReason ??= reason;
    this.#abort.abort();
    await this.#source?.stop();
    await this.done;
  }

  async #run(takeoverFrom?: { replicaId: string; sessionEpoch: string }): Promise<void> {
    this.#writeStatus();
    const statusTimer = setInterval(() => this.#writeStatus(), this.#settings.statusIntervalMs);
    try {
      if (takeoverFrom) {
        // The previous session's clock is not ours: what it lost after its last record is unknown in our
        // media time, so the record names the session it ends instead.
        for (const modality of [Modality.VIDEO, Modality.AUDIO]) {
          this.#emitGap({
            modality,
            reason: GapReason.TAKEOVER,
            hasSeqRange: false,
            firstSeq: 0,
            lastSeq: 0,
            startMs: 0,
            endMs: 0,
            detail: `took over from replica ${takeoverFrom.replicaId} (session ${takeoverFrom.sessionEpoch}), which went away without ending it`,
          });
        }
      }
      let attempt = 0;
      for (;;) {
        let validated: ValidatedSource;
        let run: Awaited<ReturnType<StreamRunner['runSourceOnce']>>;
        try {
          validated = await this.#deps.validate(this.#spec.sourceUrl);
          if (this.#abort.signal.aborted) break;
          run = await this.runSourceOnce(validated, attempt > 0);
        } catch (error) {
          if (this.#abort.signal.aborted) break;
          const converted = LiveLensError.from(error);
          // A name that does not resolve now may resolve in a moment; a policy refusal will not change.
          if (
            converted.context.rule === 'unresolvable_host' &&
            attempt < this.#settings.reconnectMaxAttempts
          ) {
            attempt += 1;
            this.#lastError = `dns_failed: ${converted.message}`;
            this.#setState(StreamState.RECONNECTING, 'dns_failed', converted.message, attempt);
            await sleep(this.#settings.reconnectBaseMs * 2 ** (attempt - 1), this.#abort.signal);
            continue;
          }
          this.#finish(
            StreamState.FAILED,
            String(converted.context.rule ?? 'invalid_source'),
            converted.message,
          );
          return;
        }
        if (this.#abort.signal.aborted) break;
        const { exit, hadSamples } = run;
        const reason = run.stalled ? 'stall' : exit.kind === 'failed' ? exit.reason : exit.kind;
        const detail =
          exit.kind === 'failed'
            ? exit.detail
            : run.stalled
              ? `no media for ${this.#settings.stallTimeoutMs} ms`
              : '';
        this.#deps.metrics.ffmpegExits.inc({ kind: run.stalled ? 'stalled' : exit.kind, reason });
        // The end of a file, of a VOD (or ended live) HLS playlist, or of a progressive HTTP body is the end of
        // the stream; an RTMP or SRT publisher that stops may come back, so that is a drop.
        if (
          exit.kind === 'eof' &&
          (validated.kind === 'file' || validated.kind === 'hls' || validated.kind === 'http')
        ) {
          this.#finish(StreamState.ENDED, 'source_eof', '');
          return;
        }
        if (exit.kind === 'failed' && !run.stalled && isPermanent(exit.reason, hadSamples)) {
          this.#finish(StreamState.FAILED, exit.reason, detail);
          return;
        }
        attempt = hadSamples && run.healthyForMs >= HEALTHY_RUN_MS ? 1 : attempt + 1;
        this.#lastError = detail ? `${reason}: ${detail}` : reason;
        if (attempt > this.#settings.reconnectMaxAttempts) {
          this.#finish(
            StreamState.FAILED,
            reason,
            `gave up after ${attempt - 1} reconnects; last: ${this.#lastError}`,
          );
          return;
        }
        this.#restarts += 1;
        this.#deps.metrics.ffmpegRestarts.inc({ reason });
        this.#setState(StreamState.RECONNECTING, reason, detail, attempt);
        const base = Math.min(
          this.#settings.reconnectMaxMs,
          this.#settings.reconnectBaseMs * 2 ** (attempt - 1),
        );
        await sleep(base / 2 + Math.random() * (base / 2), this.#abort.signal);
        if (this.#abort.signal.aborted) break;
      }
      // Stopped here.
      if (this.#stopReason === 'requested') this.#finish(StreamState.ENDED, 'stopped_by_request', '');
    } finally {
      clearInterval(statusTimer);
      this.#flushGaps();
      this.#endAudio();
      await Promise.all([this.#frames.close(5_000), this.#audio.close(5_000)]);
      this.#flushGaps(); // anything the close dropped
      await this.#events.close(5_000);
      // A replica giving the stream up leaves the status to the next owner.
      if (this.#stopReason !== 'lease_lost' && this.#stopReason !== 'shutdown') await this.#writeStatusNow();
    }
  }

  /** One ffmpeg process from start to exit, with the stall watchdog. (Not for callers outside the class.) */
  private runSourceOnce(
    validated: ValidatedSource,
    resuming: boolean,
  ): Promise<{ exit: SourceExit; hadSamples: boolean; stalled: boolean; healthyForMs: number }> {
    const { options } = this.#spec;
    const spec: SourceSpec = {
      kind: validated.kind,
      input: validated.input,
      frameRateFps: options.frameRateFps,
      sceneChangeThreshold: options.sceneChangeThreshold,
      maxHeight: options.maxHeight,
      audioChunkMs: options.audioChunkMs,
      realtime: validated.kind === 'file',
      rwTimeoutMs: this.#settings.rwTimeoutMs,
      maxFrameBytes: this.#settings.maxFrameBytes,
      maxPixels: this.#settings.maxPixels,
      jpegQuality: this.#settings.jpegQuality,
    };
    let hadSamples = false;
    let stalled = false;
    const startedAt = Date.now();
    let firstSampleAt = 0;
    let lastFrameAt = startedAt;
    // A stall is no video for the stall timeout, or for three frame intervals at a low frame rate; audio
    // flowing alone does not keep a stream alive (frames are what the analyzers need).
    const stallMs = Math.max(this.#settings.stallTimeoutMs, 3_000 / spec.frameRateFps);
    const onSample = () => {
      if (hadSamples) return;
      firstSampleAt = Date.now();
      hadSamples = true;
      if (resuming) {
        // Media time goes on as wall time did: the gap is exactly the time nothing arrived.
        const resumeAt = this.#lastMediaEndMs + Math.max(0, Date.now() - this.#lastSampleAtMs);
        this.#offsetMs = resumeAt;
        const reason = this.#lastError.startsWith('stall') ? GapReason.STALL : GapReason.RECONNECT;
        const detail = `source reconnected after ${this.#lastError || 'a drop'}`;
        for (const modality of this.#hasAudio ? [Modality.VIDEO, Modality.AUDIO] : [Modality.VIDEO]) {
          this.#emitGap({
            modality,
            reason,
            hasSeqRange: false,
            firstSeq: 0,
            lastSeq: 0,
            startMs: this.#lastMediaEndMs,
            endMs: resumeAt,
            detail,
          });
        }
      }
      this.#setState(StreamState.RUNNING, resuming ? 'reconnected' : 'started', '', 0);
    };
    return new Promise((resolve) => {
      const watchdog = setInterval(
        () => {
          if (Date.now() - lastFrameAt > stallMs && !stalled) {
            stalled = true;
            this.#logger.warn({ stallMs }, 'source stalled: restarting ffmpeg');
            void this.#source?.stop();
          }
        },
        Math.min(1_000, stallMs / 2),
      );
      const finish = (exit: SourceExit) => {
        clearInterval(watchdog);
        this.#source = undefined;
        resolve({ exit, hadSamples, stalled, healthyForMs: hadSamples ? Date.now() - firstSampleAt : 0 });
      };
      try {
        this.#source = this.#deps.startSource(
          spec,
          {
            onFrame: (frame) => {
              lastFrameAt = Date.now();
              onSample();
              this.#onFrame(frame);
            },
            onAudio: (chunk) => {
              onSample();
              this.#onAudio(chunk);
            },
            onDropped: (what) => {
              // A frame that existed but cannot be published: it takes a seq, and the seq is a gap.
              const seq = this.#frameSeq++;
              const at = this.#lastFramePtsMs < 0 ? 0 : this.#lastFramePtsMs;
              this.#deps.metrics.samplesShed.inc({ kind: 'frame', reason: what.kind });
              this.#extendGap(
                Modality.VIDEO,
                GapReason.CORRUPT_MEDIA,
                seq,
                at,
                at,
                what.kind === 'frame_too_large'
                  ? `frame of ${what.bytes} bytes over the limit`
                  : 'undecodable JPEG from ffmpeg',
              );
              this.#flushGap(Modality.VIDEO);
            },
            onExit: finish,
          },
          this.#logger,
        );
      } catch (error) {
        // A spec ffmpeg refuses (or no ffmpeg at all): a failure of this run, never a crash of the runner.
        finish({
          kind: 'failed',
          reason: 'spawn_failed',
          detail: LiveLensError.from(error).message,
          exitCode: null,
          signal: null,
        });
      }
    });
  }

  #onFrame(frame: SampledFrame): void {
    const seq = this.#frameSeq++;
    // pts must increase within a session; ffmpeg's vfr output is monotonic, this guards the resume seam.
    const ptsMs = Math.max(this.#offsetMs + frame.ptsMs, this.#lastFramePtsMs + 1);
    this.#lastFramePtsMs = ptsMs;
    this.#lastMediaEndMs = Math.max(this.#lastMediaEndMs, ptsMs);
    this.#lastSampleAtMs = frame.receivedAtMs;
    const message = create(FrameSampleSchema, {
      streamId: this.#spec.streamId,
      sessionEpoch: this.sessionEpoch,
      seq: BigInt(seq),
      frameId: recordIds.frame(this.#spec.streamId, this.sessionEpoch, seq),
      ptsMs: BigInt(Math.round(ptsMs)),
      captureTimeUnixMs: BigInt(frame.receivedAtMs),
      width: frame.width,
      height: frame.height,
      jpeg: frame.jpeg,
      sceneChangeScore: frame.sceneScore,
      samplingReason: frame.reason === 'scene_change' ? SamplingReason.SCENE_CHANGE : SamplingReason.INTERVAL,
    });
    if (this.#frames.offer({ message, capturedAtMs: frame.receivedAtMs })) {
      this.#flushGap(Modality.VIDEO);
      if (this.#state === StreamState.DEGRADED && this.#gaps.size === 0) {
        this.#setState(StreamState.RUNNING, 'recovered', '', 0);
      }
    } else {
      this.#shed(Modality.VIDEO, seq, ptsMs, ptsMs);
    }
  }

  #onAudio(chunk: PcmChunk): void {
    this.#hasAudio = true;
    const seq = this.#audioSeq++;
    const startMs = this.#offsetMs + chunk.startMs;
    this.#lastMediaEndMs = Math.max(this.#lastMediaEndMs, startMs + chunk.durationMs);
    this.#audioEndMs = Math.max(this.#audioEndMs, startMs + chunk.durationMs);
    this.#lastSampleAtMs = chunk.receivedAtMs;
    const message = create(AudioChunkSchema, {
      streamId: this.#spec.streamId,
      sessionEpoch: this.sessionEpoch,
      seq: BigInt(seq),
      chunkId: recordIds.audioChunk(this.#spec.streamId, this.sessionEpoch, seq),
      startMs: BigInt(Math.round(startMs)),
      durationMs: chunk.durationMs,
      captureTimeUnixMs: BigInt(chunk.receivedAtMs),
      sampleRateHz: 16_000,
      channels: 1,
      pcmS16le: chunk.pcm,
    });
    if (this.#audio.offer({ message, capturedAtMs: chunk.receivedAtMs })) {
      this.#flushGap(Modality.AUDIO);
      if (this.#state === StreamState.DEGRADED && this.#gaps.size === 0) {
        this.#setState(StreamState.RUNNING, 'recovered', '', 0);
      }
    } else {
      this.#shed(Modality.AUDIO, seq, startMs, startMs + chunk.durationMs);
    }
  }

  /**
   * The in-band end of the session's audio (AudioChunk.end_of_session), queued after its last chunk so that
   * consumers flush the session at once. A refused marker is logged: consumers end the session when it goes
   * idle instead.
   */
  #endAudio(): void {
    // A replica that lost its lease may stop after a successor has started a new session on the same
    // partition: its marker would land after the successor's chunks. Consumers end a replaced session when the
    // new one's first chunk arrives anyway.
    if (!this.#hasAudio || this.#stopReason === 'lease_lost') return;
    const seq = this.#audioSeq++;
    const now = Date.now();
    const message = create(AudioChunkSchema, {
      streamId: this.#spec.streamId,
      sessionEpoch: this.sessionEpoch,
      seq: BigInt(seq),
      chunkId: recordIds.audioChunk(this.#spec.streamId, this.sessionEpoch, seq),
      startMs: BigInt(Math.round(this.#audioEndMs)),
      durationMs: 0,
      captureTimeUnixMs: BigInt(now),
      sampleRateHz: 16_000,
      channels: 1,
      endOfSession: true,
    });
    if (!this.#audio.offer({ message, capturedAtMs: now })) {
      this.#logger.warn(
        { seq },
        'audio queue full at the end of the session: no end-of-session record (consumers end it when idle)',
      );
    }
  }

  /** A sample the broker cannot take now: counted, and covered by a (coalesced) gap record. */
  #shed(modality: Modality, seq: number, startMs: number, endMs: number): void {
    this.#deps.metrics.samplesShed.inc({
      kind: modality === Modality.AUDIO ? 'audio' : 'frame',
      reason: 'backpressure',
    });
    this.#extendGap(
      modality,
      GapReason.BACKPRESSURE,
      seq,
      startMs,
      endMs,
      'publish queue full: the broker is slow or unavailable',
    );
    if (this.#state === StreamState.RUNNING)
      this.#setState(StreamState.DEGRADED, 'backpressure', 'shedding samples', 0);
  }

  /** Samples that were queued but will never be sent (lane closed or contract refusal). */
  #lostAfterQueue(modality: Modality, seqs: number[]): void {
    if (seqs.length === 0) return;
    this.#deps.metrics.samplesShed.inc(
      { kind: modality === Modality.AUDIO ? 'audio' : 'frame', reason: 'publish_failed' },
      seqs.length,
    );
    // One record per contiguous run: shed seqs may sit between queued ones, and are already recorded.
    const sorted = [...seqs].sort((a, b) => a - b);
    let first = sorted[0] ?? 0;
    for (let i = 1; i <= sorted.length; i += 1) {
      const seq = sorted[i];
      if (seq !== undefined && seq === (sorted[i - 1] ?? 0) + 1) continue;
      this.#emitGap({
        modality,
        reason: GapReason.PUBLISH_FAILED,
        hasSeqRange: true,
        firstSeq: first,
        lastSeq: sorted[i - 1] ?? first,
        startMs: 0,
        endMs: 0,
        detail: 'records not acknowledged by the broker when the stream stopped',
      });
      first = seq ?? first;
    }
  }

  #extendGap(
    modality: Modality,
    reason: GapReason,
    seq: number,
    startMs: number,
    endMs: number,
    detail: string,
  ): void {
    const open = this.#gaps.get(modality);
    if (open && open.reason === reason && seq === open.lastSeq + 1) {
      open.lastSeq = seq;
      open.endMs = Math.max(open.endMs, endMs);
      return;
    }
    if (open) this.#flushGap(modality);
    this.#gaps.set(modality, {
      modality,
      reason,
      hasSeqRange: true,
      firstSeq: seq,
      lastSeq: seq,
      startMs,
      endMs,
      detail,
    });
  }

  #flushGap(modality: Modality): void {
    const open = this.#gaps.get(modality);
    if (!open) return;
    this.#gaps.delete(modality);
    this.#emitGap(open);
  }

  #flushGaps(): void {
    for (const modality of [...this.#gaps.keys()]) this.#flushGap(modality);
  }

  #emitGap(gap: OpenGap): void {
    this.#deps.metrics.gaps.inc({
      modality: Modality[gap.modality].toLowerCase(),
      reason: GapReason[gap.reason].toLowerCase(),
    });
    this.#emitEvent({
      case: 'gap',
      value: {
        modality: gap.modality,
        reason: gap.reason,
        firstSeq: BigInt(gap.firstSeq),
        lastSeq: BigInt(gap.lastSeq),
        hasSeqRange: gap.hasSeqRange,
        mediaRange: { startMs: BigInt(Math.round(gap.startMs)), endMs: BigInt(Math.round(gap.endMs)) },
        detail: gap.detail,
      },
    });
  }

  #setState(state: StreamState, reason: string, detail: string, attempt: number): void {
    if (state === this.#state && state !== StreamState.RECONNECTING) return;
    this.#state = state;
    this.#logger.info({ state: StreamState[state], reason, attempt }, 'stream state');
    this.#emitEvent({
      case: 'stateChange',
      value: { state, reason, detail: detail.slice(0, 2_000), attempt },
    });
    this.#writeStatus();
  }

  #finish(state: StreamState.ENDED | StreamState.FAILED, reason: string, detail: string): void {
    if (state === StreamState.FAILED) this.#lastError = detail ? `${reason}: ${detail}` : reason;
    this.#setState(state, reason, detail, 0);
  }

  #emitEvent(kind: MessageInitShape<typeof StreamEventSchema>['kind']): void {
    const seq = this.#eventSeq++;
    const message = create(StreamEventSchema, {
      streamId: this.#spec.streamId,
      sessionEpoch: this.sessionEpoch,
      seq: BigInt(seq),
      eventId: recordIds.streamEvent(this.#spec.streamId, this.sessionEpoch, seq),
      eventTimeUnixMs: BigInt(Date.now()),
      sourceUrl: this.#spec.redactedUrl,
      replicaId: this.#deps.replicaId,
      labels: this.#spec.labels,
      kind,
    });
    if (!this.#events.offer({ message, capturedAtMs: Date.now() })) {
      this.#logger.error({ seq }, 'stream event queue full: event dropped');
    }
  }

  status(): StreamStatus {
    return {
      state: this.#state,
      ownerReplicaId: this.#deps.replicaId,
      sessionEpoch: this.sessionEpoch,
      startedAtMs: this.#startedAtMs,
      framesPublished: this.#framesPublished,
      audioSecondsPublished: this.#audioMsPublished / 1000,
      restarts: this.#restarts,
      lastError: this.#lastError,
      updatedAtMs: Date.now(),
    };
  }

  #writeStatus(): void {
    void this.#writeStatusNow();
  }

  async #writeStatusNow(): Promise<void> {
    try {
      await this.#deps.writeStatus(this.#spec.streamId, this.status());
    } catch (error) {
      this.#logger.warn({ err: error }, 'status write failed');
    }
  }
}
