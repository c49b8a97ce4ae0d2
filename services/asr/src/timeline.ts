// One stream's timeline: where its audio sits on the stream's media clock, the audio kept for the segment
// still open, the chunks (Kafka records) that audio came from, and the segments closed but not yet published.
// Pure bookkeeping, no I/O: the pipeline (pipeline.ts) drives it; timeline.test.ts pins it.
import { AudioRing, type OpenSegment, type SpeechSegment, VAD_WINDOW_SAMPLES } from '@livelens/inference';

/** 16 kHz: samples per millisecond of media time. */
export const SAMPLES_PER_MS = 16;

/** Why a final segment ended: the VAD's reasons, or the end of the timeline it was open in. */
export type SegmentEndReason = 'silence' | 'max_length' | 'idle' | 'gap' | 'session' | 'end_of_session';

/** Why a timeline ends before its stream's next chunk could continue it. */
export type TimelineEndReason = 'idle' | 'gap' | 'session' | 'end_of_session';

/** A chunk taken into the timeline: where it sits and where it came from. */
export interface ChunkEntry {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly chunkId: string;
  /** Timeline samples it covers, [start, end); the first chunk's range includes the alignment silence. */
  readonly startSample: number;
  readonly endSample: number;
  readonly captureTimeUnixMs: bigint;
}

/** A closed segment with its audio, waiting to be transcribed and published (kept across retries). */
export interface PendingSegment {
  readonly segmentId: string;
  readonly startSample: number;
  readonly endSample: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly end: SegmentEndReason;
  /** The audio, float in [-1, 1], what Whisper reads (copied out of the ring when the segment closed). */
  readonly audio: Float32Array;
  /** The chunks it spans, in order (its SourceRefs). */
  readonly chunks: readonly ChunkEntry[];
  /** The offset of its first chunk: a crash before it is published must replay from there. */
  readonly firstOffset: bigint;
  /** Set at the first publish attempt, so a retry publishes the same record. */
  seq?: bigint;
}

/** How a chunk relates to the timeline. */
export type Continuity =
  /** The next chunk: seq + 1, starting where the audio so far ends (within the tolerance). */
  | { readonly kind: 'next' }
  /** Already taken in (seq not past the last one): a redelivery, e.g. a batch replayed from a held-back commit. */
  | { readonly kind: 'duplicate' }
  /** Chunks missing (seq jumped) or media time jumped forward: the timeline cannot continue. */
  | { readonly kind: 'gap'; readonly missingChunks: number; readonly jumpMs: number }
  /** Media time before the end of the audio so far, in the same session: a broken producer. */
  | { readonly kind: 'backwards'; readonly byMs: number };

/**
 * The audio ring's capacity: the longest segment, the silence that closes it, a chunk (plus the alignment
 * silence of a first chunk), and a few windows of slack (vadAudioCapacity in packages/inference).
 */
export function ringCapacity(maxSegmentSamples: number, minSilenceSamples: number, maxChunkSamples: number) {
  return maxSegmentSamples + minSilenceSamples + maxChunkSamples + 5 * VAD_WINDOW_SAMPLES;
}

/** Segment id, as transcript.proto defines it: deterministic from the audio. */
export const segmentIdOf = (streamId: string, sessionEpoch: string, startMs: number) =>
  `${streamId}/${sessionEpoch}/s/${startMs}`;

/**
 * A stream's timeline, from its first chunk (or the first after a gap) on. Samples are positions on the
 * stream's media clock at 16 kHz (`start_ms * 16`), so segment and word times come out in media time.
 *
 * The timeline starts at the first chunk's start rounded down to a multiple of the VAD window (512 samples,
 * 32 ms), the gap filled with silence: the VAD's windows then sit on the same grid whatever chunk a timeline
 * starts at, so a replay from a held-back commit finds the same segment boundaries, hence the same segment ids.
 */
export class StreamTimeline {
  readonly streamId: string;
  readonly sessionEpoch: string;
  /** First sample of the timeline (window-aligned). */
  readonly originSample: number;
  readonly ring: AudioRing;
  /** Chunks whose audio may still be part of a future segment, oldest first. */
  readonly chunks: ChunkEntry[] = [];
  /** Closed segments not yet published, oldest first. */
  readonly pending: PendingSegment[] = [];
  /** Seq of the last chunk taken in. */
  lastSeq: bigint;
  /** End of the audio taken in (the next chunk should start here). */
  endSample: number;
  /** From the VAD: the earliest sample a future segment may include. */
  retainFromSample: number;
  /** From the VAD: the segment being spoken, if any. */
  open: OpenSegment | undefined;
  /** Set once the VAD's state of this timeline was flushed: only `pending` remains to publish. */
  flushed = false;
  /** Wall-clock time (ms) the last chunk was taken in: for the idle flush. */
  lastChunkAtMs: number;
  /** Partials published for the open segment starting at `partialOf`. */
  partialOf = -1;
  partialsDone = 0;
  /** Silence prepended to the first chunk to align the timeline. */
  #alignment: number;
  #source: { readonly topic: string; readonly partition: number } | undefined;

  constructor(
    streamId: string,
    sessionEpoch: string,
    first: { readonly seq: bigint; readonly startMs: bigint },
    ringCapacitySamples: number,
    nowMs: number,
  ) {
    this.streamId = streamId;
    this.sessionEpoch = sessionEpoch;
    const start = Number(first.startMs) * SAMPLES_PER_MS;
    this.originSample = Math.floor(start / VAD_WINDOW_SAMPLES) * VAD_WINDOW_SAMPLES;
    this.#alignment = start - this.originSample;
    this.ring = new AudioRing(ringCapacitySamples, this.originSample);
    this.lastSeq = first.seq - 1n;
    this.endSample = start;
    this.retainFromSample = this.originSample;
    this.lastChunkAtMs = nowMs;
  }

  /** Where a chunk stands against this timeline; `toleranceSamples` of media-time jitter count as contiguous. */
  classify(chunk: { readonly seq: bigint; readonly startMs: bigint }, toleranceSamples: number): Continuity {
    if (chunk.seq <= this.lastSeq) return { kind: 'duplicate' };
    const start = Number(chunk.startMs) * SAMPLES_PER_MS;
    const drift = start - this.endSample;
    if (drift < -toleranceSamples) return { kind: 'backwards', byMs: -drift / SAMPLES_PER_MS };
    const missingChunks = Number(chunk.seq - this.lastSeq - 1n);
    if (missingChunks > 0 || drift > toleranceSamples) {
      return { kind: 'gap', missingChunks, jumpMs: drift / SAMPLES_PER_MS };
    }
    return { kind: 'next' };
  }

  /** The samples the VAD and the ring take for a chunk: its PCM, after the alignment silence for the first. */
  samplesOf(pcm: Uint8Array): Int16Array {
    const count = pcm.byteLength >> 1;
    const out = new Int16Array(this.#alignment + count);
    // Copied, never viewed: the record's bytes need not be 2-byte aligned, and the ring keeps the samples.
    new Uint8Array(out.buffer, this.#alignment * 2, count * 2).set(pcm.subarray(0, count * 2));
    return out;
  }

  /**
   * Takes a chunk in once the VAD has analysed `samples` (`samplesOf`): appends them to the ring and
   * records where they came from. Nothing here can fail, so a chunk is either taken in whole or not at all.
   */
  accept(
    chunk: Omit<ChunkEntry, 'startSample' | 'endSample'> & { readonly seq: bigint },
    samples: Int16Array,
    vad: { readonly retainFromSample: number; readonly open: OpenSegment | undefined },
    nowMs: number,
  ): void {
    const startSample = this.endSample - this.#alignment;
    this.ring.append(samples);
    this.chunks.push({
      topic: chunk.topic,
      partition: chunk.partition,
      offset: chunk.offset,
      chunkId: chunk.chunkId,
      startSample,
      endSample: startSample + samples.length,
      captureTimeUnixMs: chunk.captureTimeUnixMs,
    });
    this.#alignment = 0;
    this.#source = { topic: chunk.topic, partition: chunk.partition };
    this.lastSeq = chunk.seq;
    this.endSample = startSample + samples.length;
    this.retainFromSample = vad.retainFromSample;
    this.open = vad.open;
    this.lastChunkAtMs = nowMs;
  }

  /**
   * A closed segment as a pending one: its audio copied out of the ring, the chunks it spans. Audio the ring
   * no longer holds (never with a ring of `ringCapacity`) is left out and reported in `evictedSamples`.
   */
  close(
    segment: Pick<SpeechSegment, 'start' | 'end'>,
    end: SegmentEndReason,
  ): PendingSegment & {
    evictedSamples: number;
  } {
    const from = Math.max(segment.start, this.ring.startSample);
    const to = Math.min(segment.end, this.ring.endSample);
    const pcm = to > from ? this.ring.slice(from, to) : new Int16Array(0);
    const audio = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) audio[i] = (pcm[i] as number) / 32768;
    const chunks = this.chunks.filter((c) => c.startSample < segment.end && c.endSample > segment.start);
    const startMs = Math.floor(segment.start / SAMPLES_PER_MS);
    const pending = {
      segmentId: segmentIdOf(this.streamId, this.sessionEpoch, startMs),
      startSample: segment.start,
      endSample: segment.end,
      startMs,
      endMs: Math.ceil(segment.end / SAMPLES_PER_MS),
      end,
      audio,
      chunks,
      firstOffset: chunks[0]?.offset ?? this.chunks[0]?.offset ?? 0n,
      evictedSamples: segment.end - segment.start - pcm.length,
    };
    return pending;
  }

  /** The open segment's audio so far, for a partial transcript; undefined when nothing is open. */
  openAudio(): { segment: Pick<SpeechSegment, 'start' | 'end'>; audio: Float32Array } | undefined {
    if (!this.open) return undefined;
    const start = Math.max(this.open.start, this.ring.startSample);
    const end = Math.min(this.open.analysedEnd, this.ring.endSample);
    if (end <= start) return undefined;
    const pcm = this.ring.slice(start, end);
    const audio = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) audio[i] = (pcm[i] as number) / 32768;
    return { segment: { start: this.open.start, end }, audio };
  }

  /** Forgets chunks no future segment can include (their audio ends before `retainFromSample`). */
  trim(): void {
    let drop = 0;
    while (drop < this.chunks.length && (this.chunks[drop] as ChunkEntry).endSample <= this.retainFromSample)
      drop += 1;
    if (drop > 0) this.chunks.splice(0, drop);
  }

  /**
   * The offset of the earliest record this timeline still needs: the first chunk of its oldest unpublished
   * segment, else the chunk holding the earliest sample a future segment may include. Undefined when it
   * needs none (flushed, everything published). For `ConsumerLoop`'s `commitLimit`.
   */
  neededOffset(): bigint | undefined {
    let needed = this.pending[0]?.firstOffset;
    if (!this.flushed) {
      const chunk = this.chunks.find((c) => c.endSample > this.retainFromSample);
      if (chunk && (needed === undefined || chunk.offset < needed)) needed = chunk.offset;
    }
    return needed;
  }

  /** The topic and partition the stream's chunks come from (the latest chunk's). */
  get source(): { readonly topic: string; readonly partition: number } | undefined {
    return this.#source;
  }
}
