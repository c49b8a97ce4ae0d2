// Streaming voice activity detection with Silero VAD v5: speech probabilities per 32 ms window for many
// streams at once (the model runs in a worker thread, batched across streams), and a segmenter per stream that
// turns them into padded speech segments with a maximum length. Every per-stream structure here is bounded:
// nothing grows with the length of a stream.
import { endianness } from 'node:os';
import { LiveLensError, type Logger } from '@livelens/runtime';
import { modelError } from '../errors.js';
import type { ExecutionProvider } from '../session.js';
import { SupervisedWorker } from '../worker-rpc.js';
import {
  VAD_CONTEXT_SAMPLES,
  VAD_SAMPLE_RATE,
  VAD_STATE_SIZE,
  VAD_WINDOW_SAMPLES,
  type VadWindowJob,
  vadWindowCount,
} from './vad-windows.js';
import type { VadWorkerInit, VadWorkerReady, VadWorkerRun, VadWorkerRunResult } from './vad-worker.js';

export {
  runVadWindows,
  VAD_CONTEXT_SAMPLES,
  VAD_SAMPLE_RATE,
  VAD_STATE_SIZE,
  VAD_WINDOW_SAMPLES,
  type VadModelStep,
  type VadWindowJob,
  vadWindowCount,
} from './vad-windows.js';

// ---------------------------------------------------------------------------------------------------------
// Options → compiled config (samples)

/** Tunables of the segmenter. The defaults follow silero's get_speech_timestamps, adapted to live speech. */
export interface VadOptions {
  /** A window at or above this probability is speech (and starts a segment). @default 0.5 */
  threshold?: number;
  /**
   * Below this a window is silence; in between, the current state holds (hysteresis).
   * @default threshold - 0.15, at least 0.01
   */
  negThreshold?: number;
  /** A segment with less speech than this (closed by silence) is dropped as a click or a cough. @default 250 */
  minSpeechMs?: number;
  /** Silence that closes a segment. @default 400 */
  minSilenceMs?: number;
  /**
   * Audio kept before and after the detected speech of a segment; clipped so that segments never overlap and
   * never reach before the stream's start or past what was analysed. @default 200
   */
  speechPadMs?: number;
  /**
   * The longest segment, padding included. A longer utterance is split at its longest inner silence (longer
   * than `splitMinSilenceMs`), or hard at this length when it has none. @default 15000
   */
  maxSegmentMs?: number;
  /** An inner silence must be longer than this to be a split point. @default 98 (silero's) */
  splitMinSilenceMs?: number;
}

/** VadOptions with defaults applied and durations in samples at 16 kHz. */
export interface VadConfig {
  readonly threshold: number;
  readonly negThreshold: number;
  readonly minSpeechSamples: number;
  readonly minSilenceSamples: number;
  readonly speechPadSamples: number;
  readonly maxSegmentSamples: number;
  /** The longest detected speech of one segment: `maxSegmentSamples - 2 * speechPadSamples`. */
  readonly maxSpeechSamples: number;
  readonly splitMinSilenceSamples: number;
}

const msToSamples = (ms: number) => Math.round((ms * VAD_SAMPLE_RATE) / 1000);

/** Applies the defaults and checks the options; throws `invalid_config` naming the option. */
export function compileVadConfig(options: VadOptions = {}): VadConfig {
  const threshold = options.threshold ?? 0.5;
  const negThreshold = options.negThreshold ?? Math.max(threshold - 0.15, 0.01);
  const ms = {
    minSpeechMs: options.minSpeechMs ?? 250,
    minSilenceMs: options.minSilenceMs ?? 400,
    speechPadMs: options.speechPadMs ?? 200,
    maxSegmentMs: options.maxSegmentMs ?? 15_000,
    splitMinSilenceMs: options.splitMinSilenceMs ?? 98,
  };
  const bad = (what: string) => new LiveLensError(`VAD: ${what}`, { code: 'invalid_config' });
  if (!(threshold > 0 && threshold < 1)) throw bad(`threshold must be in (0, 1), got ${threshold}`);
  if (!(negThreshold > 0 && negThreshold <= threshold)) {
    throw bad(`negThreshold must be in (0, threshold=${threshold}], got ${negThreshold}`);
  }
  for (const [key, value] of Object.entries(ms)) {
    if (!(Number.isFinite(value) && value >= 0)) throw bad(`${key} must be a number ≥ 0, got ${value}`);
  }
  const speechPadSamples = msToSamples(ms.speechPadMs);
  const maxSegmentSamples = msToSamples(ms.maxSegmentMs);
  const maxSpeechSamples = maxSegmentSamples - 2 * speechPadSamples;
  const minSpeechSamples = msToSamples(ms.minSpeechMs);
  // A split must leave room for at least a few windows of speech, and for the shortest segment kept.
  if (maxSpeechSamples < Math.max(4 * VAD_WINDOW_SAMPLES, minSpeechSamples + VAD_WINDOW_SAMPLES)) {
    throw bad(
      `maxSegmentMs must leave room for 2 × speechPadMs (${ms.speechPadMs}) and more than minSpeechMs ` +
        `(${ms.minSpeechMs}) of speech, got ${ms.maxSegmentMs}`,
    );
  }
  return {
    threshold,
    negThreshold,
    minSpeechSamples,
    minSilenceSamples: msToSamples(ms.minSilenceMs),
    speechPadSamples,
    maxSegmentSamples,
    maxSpeechSamples,
    splitMinSilenceSamples: msToSamples(ms.splitMinSilenceMs),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Segmenter: probabilities → segments (pure, no model)

/** Why a segment ended. */
export type SegmentEnd = 'silence' | 'max_length' | 'flush';

/** A closed speech segment, in samples of the stream's own timeline (16 kHz; `end` exclusive). */
export interface SpeechSegment {
  /** Padded start: the audio to transcribe begins here. */
  readonly start: number;
  /** Padded end (exclusive). */
  readonly end: number;
  /** Where the detector heard speech start (window-aligned, 32 ms). */
  readonly speechStart: number;
  /** Where the detector heard speech end (window-aligned): the first window of the closing silence. */
  readonly speechEnd: number;
  readonly reason: SegmentEnd;
}

/** The segment still being spoken: what a service transcribes for partial results. */
export interface OpenSegment {
  /** Padded start; the segment's audio runs from here to the end of what was received. */
  readonly start: number;
  readonly speechStart: number;
  /** The end of the audio analysed so far (window-aligned). */
  readonly analysedEnd: number;
  /** Trailing silence already heard (the segment closes when it reaches `minSilence`); 0 while speaking. */
  readonly trailingSilenceSamples: number;
}

/**
 * silero's `get_speech_timestamps` made incremental: fed one probability per 512-sample window, it emits
 * each segment as soon as it is decided, and keeps O(1) state (two split candidates, not a list of pauses).
 *
 * Differences from the batch version, all forced by streaming or chosen for ASR:
 * - Where a segment reaches its maximum, silero cuts at the longest pause anywhere in it. On real runs that
 *   left a sliver (a 416 ms piece) followed by a piece already near the maximum, cut hard inside a word soon
 *   after. Here the longest pause in the segment's second half wins; then a pause in progress at the maximum
 *   (at least as long); then the longest pause of the first half; then any pause in progress (even one shorter
 *   than `splitMinSilence` beats a hard cut); last, a hard cut.
 * - The end padding is clipped to what was analysed when the segment closed (never with the defaults, where
 *   `minSilence ≥ speechPad`) and the next segment's start padding to the previous segment's end (silero
 *   splits a short gap in the middle; we cannot wait for the next segment to know the gap).
 * - A split at a max-length point shares a short gap between the two pieces (as silero does); a hard split
 *   continues the next piece at the very sample (no gap, no overlap), so no audio is lost in long speech.
 * - A pause in progress when the maximum is reached is a split candidate too (of any length: it beats a hard
 *   cut); pieces after a split are kept even if shorter than `minSpeech` (they are the tail of a long
 *   utterance).
 * - Flush ends the open segment where its trailing silence began (silero uses the end of the audio).
 * Pinned by vad.test.ts ('segmenter').
 */
export class SpeechSegmenter {
  readonly config: VadConfig;
  readonly startSample: number;
  #analysed: number;
  #triggered = false;
  #speechStart = 0;
  #paddedStart = 0;
  /** First sample of the silence in progress inside the open segment; -1 when none. */
  #silenceStart = -1;
  /** Split candidates: the longest inner pause starting before / after the middle of the longest segment. */
  #early: Gap = { start: -1, length: 0 };
  #late: Gap = { start: -1, length: 0 };
  /** The open segment continues a split one: kept even if short. */
  #continued = false;
  /** Padded end of the last emitted segment: the next one never starts before it. */
  #lastEnd: number;
  #closedSpeechSamples = 0;

  constructor(config: VadConfig, startSample = 0) {
    this.config = config;
    this.startSample = startSample;
    this.#analysed = startSample;
    this.#lastEnd = startSample;
  }

  /** End of the audio analysed (the next window starts here). */
  get analysedEnd(): number {
    return this.#analysed;
  }

  get open(): OpenSegment | undefined {
    if (!this.#triggered) return undefined;
    return {
      start: this.#paddedStart,
      speechStart: this.#speechStart,
      analysedEnd: this.#analysed,
      trailingSilenceSamples: this.#silenceStart >= 0 ? this.#analysed - this.#silenceStart : 0,
    };
  }

  /** Detected speech (unpadded, open segment included) over the audio analysed; 0 before any audio. */
  get speechRatio(): number {
    const total = this.#analysed - this.startSample;
    if (total <= 0) return 0;
    let speech = this.#closedSpeechSamples;
    if (this.#triggered) {
      speech += (this.#silenceStart >= 0 ? this.#silenceStart : this.#analysed) - this.#speechStart;
    }
    return speech / total;
  }

  /**
   * The earliest sample any future segment of this stream can include: the open segment's padded start, or
   * one padding before the next window. The service may drop its audio before this.
   */
  get retainFromSample(): number {
    if (this.#triggered) return this.#paddedStart;
    return Math.max(this.#lastEnd, this.#analysed - this.config.speechPadSamples);
  }

  /** Feeds the probabilities of the next windows (consecutive, 512 samples each); returns closed segments. */
  push(probabilities: ArrayLike<number>): SpeechSegment[] {
    const out: SpeechSegment[] = [];
    for (let i = 0; i < probabilities.length; i++) this.#window(probabilities[i] as number, out);
    return out;
  }

  /**
   * End of stream: closes the open segment (at the start of its trailing silence, else at `endSample`, the
   * end of all audio received, which may run up to 511 samples past the last window). The segmenter can be
   * reused afterwards only as a fresh timeline continuing at `endSample`.
   */
  flush(endSample: number = this.#analysed): SpeechSegment[] {
    const end = Math.max(endSample, this.#analysed);
    const out: SpeechSegment[] = [];
    if (this.#triggered) {
      const speechEnd = this.#silenceStart >= 0 ? this.#silenceStart : end;
      this.#close(speechEnd, end, 'flush', out);
    }
    this.#analysed = end;
    this.#lastEnd = Math.max(this.#lastEnd, end);
    return out;
  }

  #window(p: number, out: SpeechSegment[]): void {
    const c = this.config;
    const cur = this.#analysed;
    const next = cur + VAD_WINDOW_SAMPLES;
    if (p >= c.threshold && this.#silenceStart >= 0) {
      // Speech again after an inner pause: keep the longest of each half as split points (first on ties).
      const gap = cur - this.#silenceStart;
      if (gap > c.splitMinSilenceSamples) {
        const half =
          this.#silenceStart - this.#speechStart < c.maxSpeechSamples / 2 ? this.#early : this.#late;
        if (gap > half.length) {
          half.start = this.#silenceStart;
          half.length = gap;
        }
      }
      this.#silenceStart = -1;
    }
    if (!this.#triggered) {
      if (p >= c.threshold) this.#begin(cur, false);
      this.#analysed = next;
      return;
    }
    if (next - this.#speechStart > c.maxSpeechSamples) {
      const ongoing = this.#silenceStart >= 0 ? cur - this.#silenceStart : 0;
      const late = this.#late.length;
      const early = this.#early.length;
      if (ongoing > 0 && (late > 0 ? ongoing >= late : ongoing > c.splitMinSilenceSamples || early === 0)) {
        // In a pause at least as long as any other candidate: end there, as if it had been long enough.
        this.#close(this.#silenceStart, next, 'max_length', out);
        this.#analysed = next;
        return;
      }
      const gap = late > 0 ? this.#late : early > 0 ? this.#early : undefined;
      if (gap) {
        // The pause is shared: each piece gets half of it (at most the padding).
        const resume = gap.start + gap.length;
        const silence = this.#silenceStart;
        this.#close(gap.start, Math.min(next, gap.start + (gap.length >> 1)), 'max_length', out);
        this.#begin(resume, true);
        // A pause that began after the split point belongs to the new piece and is still going.
        this.#silenceStart = silence;
      } else {
        // No pause at all: cut here, and the next piece starts at this very sample.
        this.#close(cur, cur, 'max_length', out);
        this.#begin(cur, true);
      }
    }
    if (p < c.negThreshold) {
      if (this.#silenceStart < 0) this.#silenceStart = cur;
      if (next - this.#silenceStart >= c.minSilenceSamples) {
        this.#close(this.#silenceStart, next, 'silence', out);
      }
    }
    this.#analysed = next;
  }

  #begin(speechStart: number, continued: boolean): void {
    this.#triggered = true;
    this.#continued = continued;
    this.#speechStart = speechStart;
    this.#paddedStart = Math.max(speechStart - this.config.speechPadSamples, this.#lastEnd);
    this.#early = { start: -1, length: 0 };
    this.#late = { start: -1, length: 0 };
  }

  /** Closes the open segment at `speechEnd`, padding its end up to `maxEnd` at most. */
  #close(speechEnd: number, maxEnd: number, reason: SegmentEnd, out: SpeechSegment[]): void {
    const speech = speechEnd - this.#speechStart;
    if (speech >= this.config.minSpeechSamples || (this.#continued && speech > 0)) {
      const end = Math.max(speechEnd, Math.min(speechEnd + this.config.speechPadSamples, maxEnd));
      out.push({ start: this.#paddedStart, end, speechStart: this.#speechStart, speechEnd, reason });
      this.#lastEnd = end;
      this.#closedSpeechSamples += speech;
    }
    this.#triggered = false;
    this.#continued = false;
    this.#silenceStart = -1;
  }
}

/** An inner pause of the open segment: its first sample and length. */
interface Gap {
  start: number;
  length: number;
}

// ---------------------------------------------------------------------------------------------------------
// The service-facing VAD: streams by id, the model in a worker

/** PCM s16le, 16 kHz, mono: an `Int16Array`, or the raw bytes (e.g. `AudioChunk.pcm_s16le`). */
export type VadAudio = Int16Array | Uint8Array;

/** One chunk of one stream's audio. Chunks of a stream must come in order (in one call or across calls). */
export interface VadInput {
  readonly streamId: string;
  readonly pcm: VadAudio;
}

/** What the VAD made of one input. */
export interface VadResult {
  readonly streamId: string;
  /** Segments this input closed, in order. */
  readonly segments: readonly SpeechSegment[];
  /** The segment still open after this input, if any. */
  readonly open: OpenSegment | undefined;
  /** Speech probability of each window this input completed (a window spanning two inputs belongs to the second). */
  readonly probabilities: Float32Array;
  /** Start sample of the first of `probabilities`' windows. */
  readonly firstWindowStart: number;
  /** End of all audio received for the stream (the stream's timeline position after this input). */
  readonly receivedEnd: number;
  /** Detected speech over all audio analysed so far, 0..1. */
  readonly speechRatio: number;
  /** The service may drop the stream's audio before this sample (see SpeechSegmenter.retainFromSample). */
  readonly retainFromSample: number;
}

/** A stream's end: the segment flush closed, if any, and the stream's totals. */
export interface VadFlushResult {
  readonly streamId: string;
  readonly segments: readonly SpeechSegment[];
  readonly receivedEnd: number;
  readonly speechRatio: number;
}

/** Options of `SileroVad.create`. */
export interface SileroVadCreateOptions {
  /** The segmenter's options (every stream gets the same). */
  vad?: VadOptions;
  /** For logs and errors. @default 'silero-vad-v5' */
  modelId?: string;
  /** @default ['cpu'] (the model is 2 MB and runs in ~0.1 ms a window: a GPU buys nothing) */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads per model run. @default 1 */
  intraOpThreads?: number;
  /** A call not done by then fails (retriable) and the worker is replaced. @default 30000 */
  runTimeoutMs?: number;
}

/** A stream's bounded state: recurrent state, context and partial window, segmenter. */
class VadStream {
  modelState: Float32Array = new Float32Array(VAD_STATE_SIZE);
  /** The last 64 samples analysed (the next window's context) and the samples of an incomplete window. */
  carry: Int16Array = new Int16Array(VAD_CONTEXT_SAMPLES);
  received: number;
  readonly segmenter: SpeechSegmenter;

  constructor(config: VadConfig, startSample: number) {
    this.segmenter = new SpeechSegmenter(config, startSample);
    this.received = startSample;
  }
}

// PCM bytes are copied into Int16Arrays as they are: that reads s16le only on a little-endian machine.
const LITTLE_ENDIAN = endianness() === 'LE';

function sampleCount(pcm: VadAudio): number {
  return pcm instanceof Int16Array ? pcm.length : pcm.byteLength >> 1;
}

/**
 * Silero VAD v5 for many streams. The model runs in its own worker thread; the per-stream state (recurrent
 * state, 64-sample context, a partial window, the segmenter) lives here, so the worker is a pure function
 * and a failed call changes nothing (the caller may retry the same input).
 *
 * One `process` call batches all its streams into each model run, and runs all of a stream's windows in one
 * worker round trip: feed it one chunk per stream for many streams (e.g. from a MicroBatcher over
 * live.audio.v1 records). Calls run one at a time in call order, so a stream's chunks may be passed in
 * successive calls without waiting.
 */
export class SileroVad {
  readonly modelId: string;
  readonly provider: ExecutionProvider;
  readonly config: VadConfig;
  readonly #worker: SupervisedWorker<VadWorkerInit>;
  readonly #runTimeoutMs: number;
  readonly #streams = new Map<string, VadStream>();
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    worker: SupervisedWorker<VadWorkerInit>,
    modelId: string,
    provider: ExecutionProvider,
    config: VadConfig,
    runTimeoutMs: number,
  ) {
    this.#worker = worker;
    this.#runTimeoutMs = runTimeoutMs;
    this.modelId = modelId;
    this.provider = provider;
    this.config = config;
  }

  /** Loads the model (the `silero-vad-v5` manifest entry) in a new worker. */
  static async create(
    modelPath: string,
    options: SileroVadCreateOptions,
    logger: Logger,
  ): Promise<SileroVad> {
    const modelId = options.modelId ?? 'silero-vad-v5';
    const config = compileVadConfig(options.vad);
    if (!LITTLE_ENDIAN) {
      throw modelError(modelId, 'PCM s16le is read in place: a big-endian machine is not supported', {
        code: 'failed_precondition',
      });
    }
    const requested = [...(options.executionProviders ?? ['cpu'])];
    // The worker holds no stream state (each call brings it), so a restarted worker just carries on.
    let started: { worker: SupervisedWorker<VadWorkerInit>; ready: VadWorkerReady };
    try {
      started = await SupervisedWorker.start<VadWorkerInit, VadWorkerReady>(
        'asr/vad-worker.js',
        `model ${modelId}`,
        {
          modelPath,
          executionProviders: requested,
          intraOpThreads: options.intraOpThreads ?? 1,
        },
      );
    } catch (error) {
      throw modelError(modelId, `cannot load ${modelPath}: ${(error as Error).message}`, {
        code: 'failed_precondition',
        cause: error,
      });
    }
    const { worker, ready } = started;
    logger.info(
      { modelId, provider: ready.provider, requested, fallbacks: ready.failures },
      'model session ready',
    );
    return new SileroVad(worker, modelId, ready.provider, config, options.runTimeoutMs ?? 30_000);
  }

  /** Set once the worker died and could not be restarted: the VAD is unusable (fail liveness). */
  get failure(): LiveLensError | undefined {
    return this.#worker.failure;
  }

  /** Streams with state held (each a few KiB). */
  get streamCount(): number {
    return this.#streams.size;
  }

  has(streamId: string): boolean {
    return this.#streams.has(streamId);
  }

  /**
   * Starts a stream whose first sample is `startSample` of its timeline (e.g. its first chunk's media time
   * × 16). Optional: `process` starts unknown streams at 0. Throws `already_exists` for a live stream.
   */
  open(streamId: string, { startSample = 0 }: { startSample?: number } = {}): void {
    if (this.#streams.has(streamId)) {
      throw new LiveLensError(`VAD: stream ${streamId} is already open`, {
        code: 'already_exists',
        context: { streamId },
      });
    }
    if (!Number.isSafeInteger(startSample) || startSample < 0) {
      throw new LiveLensError(`VAD: startSample must be an integer ≥ 0, got ${startSample}`, {
        code: 'invalid_argument',
        context: { streamId },
      });
    }
    this.#streams.set(streamId, new VadStream(this.config, startSample));
  }

  /**
   * Analyses the inputs (any number of streams, chunks of one stream in order) and returns one result per
   * input, in the inputs' order. The input arrays are copied; the caller keeps them.
   */
  process(inputs: readonly VadInput[]): Promise<VadResult[]> {
    return this.#serially(() => this.#process(inputs));
  }

  /**
   * End of a stream: closes its open segment and forgets the stream (the remainder shorter than a window is
   * not analysed). Resolves with no segment for an unknown stream.
   */
  flush(streamId: string): Promise<VadFlushResult> {
    return this.#serially(async () => {
      const stream = this.#streams.get(streamId);
      if (!stream) return { streamId, segments: [], receivedEnd: 0, speechRatio: 0 };
      this.#streams.delete(streamId);
      const segments = stream.segmenter.flush(stream.received);
      return { streamId, segments, receivedEnd: stream.received, speechRatio: stream.segmenter.speechRatio };
    });
  }

  /** Forgets a stream without closing its segment (an abandoned stream; after a restart the service reopens). */
  drop(streamId: string): void {
    this.#streams.delete(streamId);
  }

  /** Stops the worker; calls already queued fail with `unavailable`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    this.#streams.clear();
    await this.#worker.close();
  }

  #serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #process(inputs: readonly VadInput[]): Promise<VadResult[]> {
    if (this.#closed) throw modelError(this.modelId, 'VAD is closed', { code: 'unavailable' });
    for (const input of inputs) {
      if (!(input.pcm instanceof Int16Array) && input.pcm.byteLength % 2 !== 0) {
        throw new LiveLensError(`VAD: PCM s16le of stream ${input.streamId} has an odd byte count`, {
          code: 'invalid_argument',
          context: { streamId: input.streamId, bytes: input.pcm.byteLength },
        });
      }
    }
    // Group by stream, keeping each stream's inputs in order: one job (carry + its chunks) per stream.
    const groups = new Map<string, number[]>();
    for (const [i, input] of inputs.entries()) {
      const group = groups.get(input.streamId);
      if (group) group.push(i);
      else groups.set(input.streamId, [i]);
    }
    const plans = [...groups].map(([streamId, indexes]) => {
      const stream = this.#streams.get(streamId) ?? new VadStream(this.config, 0);
      const counts = indexes.map((i) => sampleCount((inputs[i] as VadInput).pcm));
      const audio = new Int16Array(stream.carry.length + counts.reduce((a, b) => a + b, 0));
      audio.set(stream.carry, 0);
      let at = stream.carry.length;
      // Windows completed once each input is appended: where its share of the probabilities ends.
      const windowsAfter: number[] = [];
      for (const [k, i] of indexes.entries()) {
        const pcm = (inputs[i] as VadInput).pcm;
        if (pcm instanceof Int16Array) audio.set(pcm, at);
        else new Uint8Array(audio.buffer, at * 2, pcm.byteLength).set(pcm);
        at += counts[k] as number;
        windowsAfter.push(vadWindowCount(at));
      }
      const windows = vadWindowCount(audio.length);
      const carry = audio.slice(windows * VAD_WINDOW_SAMPLES);
      return { streamId, stream, indexes, counts, audio, windows, windowsAfter, carry };
    });

    let probabilities: Float32Array[] = plans.map(() => new Float32Array(0));
    let states: Float32Array[] = plans.map((plan) => plan.stream.modelState);
    const jobs = plans.filter((plan) => plan.windows > 0);
    if (jobs.length > 0) {
      const result = await this.#run(
        jobs.map((plan) => ({ audio: plan.audio, state: plan.stream.modelState })),
      );
      let next = 0;
      probabilities = plans.map((plan) =>
        plan.windows > 0 ? (result.probabilities[next++] as Float32Array) : new Float32Array(0),
      );
      next = 0;
      states = plans.map((plan) =>
        plan.windows > 0 ? (result.states[next++] as Float32Array) : plan.stream.modelState,
      );
    }

    // Commit: nothing above changed a stream, so a failed run leaves every stream as it was.
    const results: VadResult[] = new Array(inputs.length);
    for (const [p, plan] of plans.entries()) {
      const { stream } = plan;
      if (!this.#streams.has(plan.streamId)) this.#streams.set(plan.streamId, stream);
      stream.modelState = states[p] as Float32Array;
      stream.carry = plan.carry;
      const probs = probabilities[p] as Float32Array;
      let from = 0;
      for (const [k, i] of plan.indexes.entries()) {
        stream.received += plan.counts[k] as number;
        const to = plan.windowsAfter[k] as number;
        const mine = probs.slice(from, to);
        const firstWindowStart = stream.segmenter.analysedEnd;
        const segments = stream.segmenter.push(mine);
        from = to;
        results[i] = {
          streamId: plan.streamId,
          segments,
          open: stream.segmenter.open,
          probabilities: mine,
          firstWindowStart,
          receivedEnd: stream.received,
          speechRatio: stream.segmenter.speechRatio,
          retainFromSample: stream.segmenter.retainFromSample,
        };
      }
    }
    return results;
  }

  async #run(jobs: VadWindowJob[]): Promise<VadWorkerRunResult> {
    // The audio arrays were made for this call and the states are copied: both can be transferred, and the
    // streams keep their state if the call fails.
    const params: VadWorkerRun = {
      jobs: jobs.map((job) => ({ audio: job.audio, state: Float32Array.from(job.state) })),
    };
    const transfer = params.jobs.flatMap((job) => [
      job.audio.buffer as ArrayBuffer,
      job.state.buffer as ArrayBuffer,
    ]);
    try {
      return await this.#worker.call<VadWorkerRunResult>('run', params, {
        transfer,
        timeoutMs: this.#runTimeoutMs,
      });
    } catch (error) {
      const cause = LiveLensError.from(error);
      throw new LiveLensError(`model ${this.modelId}: VAD inference failed: ${cause.message}`, {
        code: cause.code,
        retriable: cause.retriable,
        cause,
        context: { modelId: this.modelId },
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Audio kept for segments: a bounded ring

/**
 * The ring capacity (samples) a service needs to slice every segment the VAD reports, when it appends each
 * chunk (at most `maxChunkSamples`) and then slices the segments of that chunk's result: the longest segment,
 * the silence that closes it, a chunk, and a few windows of alignment slack.
 */
export function vadAudioCapacity(config: VadConfig, maxChunkSamples: number): number {
  return config.maxSegmentSamples + config.minSilenceSamples + maxChunkSamples + 4 * VAD_WINDOW_SAMPLES;
}

/**
 * A fixed-size ring of one stream's recent PCM, addressed by sample position in the stream's timeline: the
 * audio of the open segment and its padding, never more than `capacity` samples whatever the stream's length.
 */
export class AudioRing {
  readonly capacity: number;
  readonly #buffer: Int16Array;
  #end: number;
  #held = 0;

  constructor(capacity: number, startSample = 0) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new LiveLensError(`AudioRing: capacity must be an integer ≥ 1, got ${capacity}`, {
        code: 'invalid_config',
      });
    }
    this.capacity = capacity;
    this.#buffer = new Int16Array(capacity);
    this.#end = startSample;
  }

  /** The oldest sample still held. */
  get startSample(): number {
    return this.#end - this.#held;
  }

  /** One past the newest sample. */
  get endSample(): number {
    return this.#end;
  }

  /** Appends PCM (s16: an Int16Array or little-endian bytes), overwriting the oldest samples when full. */
  append(pcm: VadAudio): void {
    const samples =
      pcm instanceof Int16Array
        ? pcm
        : new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + (pcm.byteLength & ~1)));
    const keep = samples.length > this.capacity ? samples.subarray(samples.length - this.capacity) : samples;
    const skipped = samples.length - keep.length;
    let at = (this.#end + skipped) % this.capacity;
    let from = 0;
    while (from < keep.length) {
      const n = Math.min(keep.length - from, this.capacity - at);
      this.#buffer.set(keep.subarray(from, from + n), at);
      from += n;
      at = (at + n) % this.capacity;
    }
    this.#end += samples.length;
    this.#held = Math.min(this.capacity, this.#held + samples.length);
  }

  /** A copy of samples [from, to); throws `failed_precondition` when part of it is no longer (or not yet) held. */
  slice(from: number, to: number): Int16Array {
    if (from < this.startSample || to > this.#end || to < from) {
      throw new LiveLensError(
        `AudioRing: samples ${from}..${to} are not all held (holding ${this.startSample}..${this.#end})`,
        { code: 'failed_precondition' },
      );
    }
    const out = new Int16Array(to - from);
    let at = from % this.capacity;
    let done = 0;
    while (done < out.length) {
      const n = Math.min(out.length - done, this.capacity - at);
      out.set(this.#buffer.subarray(at, at + n), done);
      done += n;
      at = (at + n) % this.capacity;
    }
    return out;
  }
}
