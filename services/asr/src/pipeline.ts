// The ASR pipeline: audio chunks in (one at a time per stream, many streams at once), transcript segments out.
// chunk → continuity check against the stream's timeline → VAD (micro-batched across streams) → audio ring →
// closed segments → Whisper (one window at a time) → final TranscriptSegment, published and acknowledged
// before the chunk's handler resolves; partials of long open segments on the way; idle streams flushed.
import { create } from '@bufbuild/protobuf';
import {
  type AudioChunkSchema,
  SourceRefSchema,
  type TopicSpec,
  type TranscriptSegment,
  TranscriptSegmentSchema,
  WordSchema,
} from '@livelens/contracts';
import {
  MicroBatcher,
  type SpeechSegment,
  VAD_SAMPLE_RATE,
  type VadInput,
  type VadResult,
  type WhisperTranscript,
} from '@livelens/inference';
import {
  type ConsumedRecord,
  KeyedLock,
  LiveLensError,
  type Logger,
  type Publisher,
} from '@livelens/runtime';
import type { AsrMetrics, TranscriptKind } from './metrics.js';
import type { AsrModels } from './models.js';
import {
  type ChunkEntry,
  type PendingSegment,
  ringCapacity,
  SAMPLES_PER_MS,
  type SegmentEndReason,
  StreamTimeline,
  segmentIdOf,
  type TimelineEndReason,
} from './timeline.js';

/** The pipeline's settings (from AsrConfig). */
export interface AsrPipelineOptions {
  /** Whisper language code; '' = detect (multilingual models). */
  readonly language: string;
  readonly beamSize: number;
  /** Seconds of silence the encoder sees after a segment; undefined = the full 30 s window. */
  readonly encoderPaddingS?: number | undefined;
  /** 0 = no partials. */
  readonly partialIntervalMs: number;
  readonly idleFlushMs: number;
  readonly maxStreams: number;
  readonly maxChunkMs: number;
  readonly gapToleranceMs: number;
  readonly vadMaxBatchSize: number;
  readonly vadMaxBatchWaitMs: number;
  /** The consumer's in-flight bound: sizes the batchers' queues. */
  readonly maxInFlight: number;
}

export interface AsrPipelineDeps {
  readonly models: AsrModels;
  readonly publisher: Publisher;
  /** Where transcripts go (live.transcripts.v1, with the deployment's prefix). */
  readonly transcripts: TopicSpec<typeof TranscriptSegmentSchema>;
  readonly metrics: AsrMetrics;
  readonly logger: Logger;
  /** Wall clock, Unix ms. @default Date.now */
  readonly now?: () => number;
}

interface WhisperJob {
  readonly audio: Float32Array;
  readonly kind: TranscriptKind;
}

interface Decoded {
  readonly transcript: WhisperTranscript;
  readonly decodeMs: number;
}

/**
 * The per-stream state machine of the ASR service, over the real models. Built by service.ts; the consumer
 * loop calls `handle` (one record per stream at a time) and `commitLimit`, a timer calls `flushIdle`.
 */
export class AsrPipeline {
  readonly vadBatcher: MicroBatcher<VadInput, VadResult>;
  readonly whisperBatcher: MicroBatcher<WhisperJob, Decoded>;
  readonly #deps: AsrPipelineDeps;
  readonly #options: AsrPipelineOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #streams = new Map<string, StreamTimeline>();
  readonly #locks = new KeyedLock();
  /** Between onRebalancing and the next onAssignment. */
  #rebalancing = false;
  /**
   * Next transcript seq per stream and session, kept across timelines (a gap or an idle end does not reset a
   * stream's seq); bounded, least recently used evicted.
   */
  readonly #seqs = new Map<string, { epoch: string; next: bigint }>();
  readonly #maxSeqEntries: number;
  readonly #ringCapacity: number;
  readonly #toleranceSamples: number;
  readonly #maxChunkSamples: number;

  constructor(deps: AsrPipelineDeps, options: AsrPipelineOptions) {
    this.#deps = deps;
    this.#options = options;
    this.#logger = deps.logger;
    this.#now = deps.now ?? Date.now;
    const { detector } = deps.models.vad;
    const vad = detector.config;
    this.#maxChunkSamples = options.maxChunkMs * SAMPLES_PER_MS;
    this.#ringCapacity = ringCapacity(vad.maxSegmentSamples, vad.minSilenceSamples, this.#maxChunkSamples);
    this.#toleranceSamples = options.gapToleranceMs * SAMPLES_PER_MS;
    this.#maxSeqEntries = Math.max(1_024, options.maxStreams * 4);
    const { metrics } = deps;

    // One chunk per stream per batch (one record per key in flight), many streams per model run.
    this.vadBatcher = new MicroBatcher<VadInput, VadResult>({
      name: 'asr-vad',
      maxBatchSize: options.vadMaxBatchSize,
      maxWaitMs: options.vadMaxBatchWaitMs,
      maxQueued: options.maxInFlight,
      run: async (inputs) => {
        const started = performance.now();
        try {
          const results = await detector.process(inputs);
          metrics.vadSeconds.observe((performance.now() - started) / 1000);
          metrics.vadBatchSize.observe(inputs.length);
          return results;
        } catch (error) {
          metrics.errors.inc({ kind: 'vad' });
          throw error;
        }
      },
    });

    // Whisper reads one window at a time: a queue in front of it (finals and partials, first come first
    // served; partials are skipped while anything waits). In flight: one per consumer record, plus the idle
    // flush's one.
    const { recognizer } = deps.models.whisper;
    const language = options.language === '' ? undefined : options.language;
    this.whisperBatcher = new MicroBatcher<WhisperJob, Decoded>({
      name: 'asr-whisper',
      maxBatchSize: 1,
      maxWaitMs: 0,
      maxQueued: options.maxInFlight + 2,
      run: async ([job]) => {
        if (!job) return [];
        const started = performance.now();
        try {
          const transcript = await recognizer.transcribe(job.audio, {
            ...(language && recognizer.multilingual ? { language } : {}),
            beamSize: options.beamSize,
            ...(options.encoderPaddingS === undefined ? {} : { encoderPaddingS: options.encoderPaddingS }),
            // Word timings (one more decoder pass) for finals only: partials are superseded anyway.
            wordTimestamps: job.kind === 'final',
          });
          const decodeMs = performance.now() - started;
          const audioS = job.audio.length / VAD_SAMPLE_RATE;
          metrics.decodeSeconds.observe({ kind: job.kind }, decodeMs / 1000);
          metrics.speechSeconds.inc({ kind: job.kind }, audioS);
          if (audioS > 0) metrics.realTimeFactor.observe({ kind: job.kind }, decodeMs / 1000 / audioS);
          return [{ transcript, decodeMs }];
        } catch (error) {
          metrics.errors.inc({ kind: 'whisper' });
          throw error;
        }
      },
    });
  }

  /** Streams whose state is held. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** The stream's timeline (tests and diagnostics). */
  timeline(streamId: string): StreamTimeline | undefined {
    return this.#streams.get(streamId);
  }

  /**
   * Processes one audio chunk. Resolves once every final segment the chunk closed (and any partial it made
   * due) is acknowledged by the broker. Throws a non-retriable LiveLensError for a chunk to dead-letter
   * (too long, media time going backwards, no room for another stream); anything else is retried, and a
   * retry picks up where the failed attempt stopped (a chunk is taken in once; closed segments wait in
   * `pending` until published).
   */
  async handle(record: ConsumedRecord<typeof AudioChunkSchema>): Promise<void> {
    const chunk = record.message;
    const samples = chunk.pcmS16le.byteLength >> 1;
    if (samples > this.#maxChunkSamples) {
      this.#deps.metrics.chunks.inc({ outcome: 'too_long' });
      throw new LiveLensError(
        `chunk ${chunk.chunkId}: ${samples / SAMPLES_PER_MS} ms of audio, more than ASR_MAX_CHUNK_MS (${this.#options.maxChunkMs})`,
        { code: 'invalid_argument', retriable: false, context: { streamId: chunk.streamId } },
      );
    }
    await this.#locks.run(chunk.streamId, () => this.#handle(record));
  }

  async #handle(record: ConsumedRecord<typeof AudioChunkSchema>): Promise<void> {
    const { metrics, models } = this.#deps;
    const chunk = record.message;
    const streamId = chunk.streamId;
    let outcome: 'processed' | 'gap' = 'processed';
    let timeline = this.#streams.get(streamId);
    if (timeline) {
      // A retry after a failed publish: what the first attempt closed goes out first, in order.
      await this.#publishPending(timeline);
      if (timeline.flushed) {
        this.#forget(timeline);
        timeline = undefined;
      }
    }
    if (chunk.endOfSession) {
      // The session's audio ended (AudioChunk.end_of_session, in band after its last chunk): its open segment
      // goes out now instead of when the stream goes idle. A redelivered marker finds nothing to end.
      // A marker of another session (an older one, e.g. from an ingest replica that lost its lease after a
      // successor started) must not end the current session's timeline.
      if (timeline && timeline.sessionEpoch === chunk.sessionEpoch)
        await this.#end(timeline, 'end_of_session');
      metrics.chunks.inc({
        outcome: timeline && timeline.sessionEpoch !== chunk.sessionEpoch ? 'stale_end' : 'end_of_session',
      });
      return;
    }
    if (timeline && timeline.sessionEpoch !== chunk.sessionEpoch) {
      // A new ingest session (restart, takeover): the old one's audio has ended.
      await this.#end(timeline, 'session');
      timeline = undefined;
    } else if (timeline) {
      const continuity = timeline.classify(chunk, this.#toleranceSamples);
      if (continuity.kind === 'duplicate') {
        // Redelivered (a batch replayed from the held-back commit): its audio is in the timeline already.
        metrics.chunks.inc({ outcome: 'duplicate' });
        return;
      }
      if (continuity.kind === 'backwards') {
        // Media time is monotonic within a session (media.proto); a new clock comes with a new session_epoch.
        // Restarting the timeline here would reuse segment ids already published, so the chunk is dead-lettered.
        metrics.chunks.inc({ outcome: 'backwards' });
        throw new LiveLensError(
          `chunk ${chunk.chunkId}: start_ms ${chunk.startMs} is ${continuity.byMs} ms before the end of the stream's audio so far (${timeline.endSample / SAMPLES_PER_MS} ms) in session ${chunk.sessionEpoch}`,
          { code: 'invalid_argument', retriable: false, context: { streamId } },
        );
      }
      if (continuity.kind === 'gap') {
        // Chunks lost upstream (ingest sheds or reconnects, and says so on live.stream-events.v1): the open
        // segment ends at the last audio before the gap, and a new timeline starts at this chunk.
        this.#logger.info(
          { streamId, seq: chunk.seq, missingChunks: continuity.missingChunks, jumpMs: continuity.jumpMs },
          'gap in the audio: ending the timeline',
        );
        outcome = 'gap';
        await this.#end(timeline, 'gap');
        timeline = undefined;
      }
    }
    if (!timeline) {
      if (this.#streams.size >= this.#options.maxStreams) {
        metrics.chunks.inc({ outcome: 'max_streams' });
        throw new LiveLensError(
          `stream ${streamId}: this replica already holds ASR_MAX_STREAMS (${this.#options.maxStreams}) streams`,
          { code: 'resource_exhausted', retriable: false, context: { streamId } },
        );
      }
      timeline = new StreamTimeline(streamId, chunk.sessionEpoch, chunk, this.#ringCapacity, this.#now());
      this.#streams.set(streamId, timeline);
      models.vad.detector.drop(streamId);
      models.vad.detector.open(streamId, { startSample: timeline.originSample });
    }

    // The VAD first: it changes nothing if it fails, so a retry starts over cleanly.
    const audio = timeline.samplesOf(chunk.pcmS16le);
    const result = await this.vadBatcher.submit({ streamId, pcm: audio });
    timeline.accept(
      {
        topic: record.topic,
        partition: record.partition,
        offset: BigInt(record.offset),
        chunkId: chunk.chunkId,
        captureTimeUnixMs: chunk.captureTimeUnixMs,
        seq: chunk.seq,
      },
      audio,
      result,
      this.#now(),
    );
    metrics.chunks.inc({ outcome });
    metrics.audioSeconds.inc((chunk.pcmS16le.byteLength >> 1) / VAD_SAMPLE_RATE);
    if (result.probabilities.length > 0) {
      const threshold = models.vad.detector.config.threshold;
      let speech = 0;
      for (const p of result.probabilities) if (p >= threshold) speech += 1;
      metrics.chunkSpeechRatio.observe(speech / result.probabilities.length);
    }
    for (const segment of result.segments) this.#close(timeline, segment, segment.reason);
    timeline.trim();
    await this.#publishPending(timeline);
    await this.#partial(timeline);
    // Idle is counted from the end of the stream's last chunk's work: a chunk whose finals took longer than
    // idleFlushMs to transcribe must not make its stream look idle.
    timeline.lastChunkAtMs = this.#now();
  }

  /**
   * Ends the timelines of streams that sent nothing for `idleFlushMs` (their open segment is published as
   * final), and retries the publication of timelines ended earlier whose publication failed.
   */
  async flushIdle(): Promise<void> {
    // While the group rebalances nothing is fetched, so streams look idle; a moving stream's next owner
    // replays it whole (retainPartitions), so ending it here would publish it cut in two.
    if (this.#rebalancing) return;
    const idle = (t: StreamTimeline) =>
      t.flushed || this.#now() - t.lastChunkAtMs >= this.#options.idleFlushMs;
    for (const timeline of [...this.#streams.values()]) {
      if (!idle(timeline)) continue;
      try {
        await this.#locks.run(timeline.streamId, async () => {
          // A chunk may have come, or the timeline been replaced, while waiting for the lock; a chunk of the
          // stream waiting for it means the stream is busy, not idle.
          if (this.#streams.get(timeline.streamId) !== timeline || !idle(timeline)) return;
          if (!timeline.flushed && this.#locks.waiting(timeline.streamId) > 0) return;
          await this.#end(timeline, 'idle');
        });
      } catch (error) {
        this.#logger.warn(
          { err: error, streamId: timeline.streamId },
          'ending an idle stream failed: retrying at the next check',
        );
      }
    }
  }

  /**
   * After a rebalance (ConsumerLoop `onAssignment`): forgets the streams whose chunks come from partitions of
   * `topic` this replica no longer owns, without publishing anything. Their open segments and unpublished
   * finals are not lost: the commit limit kept their chunks uncommitted, so the partition's new owner replays
   * them and publishes the whole utterances under the same segment ids. Resolves once every such stream is
   * forgotten (each after the chunk it may be processing).
   */
  /** The consumer group started rebalancing (ConsumerLoop `onRebalancing`): idle ends wait for the assignment. */
  rebalancing(): void {
    this.#rebalancing = true;
  }

  async retainPartitions(topic: string, partitions: readonly number[]): Promise<void> {
    this.#rebalancing = false;
    const owned = new Set(partitions);
    const lost = (t: StreamTimeline) => t.source?.topic === topic && !owned.has(t.source.partition);
    await Promise.all(
      [...this.#streams.values()].filter(lost).map((timeline) =>
        this.#locks.run(timeline.streamId, async () => {
          if (this.#streams.get(timeline.streamId) !== timeline || !lost(timeline)) return;
          this.#deps.models.vad.detector.drop(timeline.streamId);
          this.#forget(timeline);
          this.#deps.metrics.timelinesEnded.inc({ reason: 'revoked' });
          this.#logger.info(
            { streamId: timeline.streamId, partition: timeline.source?.partition },
            'partition moved to another replica: stream state dropped (the new owner replays it)',
          );
        }),
      ),
    );
  }

  /**
   * ConsumerLoop's commit limit: the offset of the earliest chunk of `partition` a stream still needs (the
   * first chunk of its oldest unpublished segment, or of audio a future segment may include).
   */
  commitLimit(topic: string, partition: number): string | undefined {
    let limit: bigint | undefined;
    for (const timeline of this.#streams.values()) {
      const source = timeline.source;
      if (source?.topic !== topic || source.partition !== partition) continue;
      const needed = timeline.neededOffset();
      if (needed !== undefined && (limit === undefined || needed < limit)) limit = needed;
    }
    return limit?.toString();
  }

  /** Stops the model queues (after the consumer has drained): waiting work fails as cancelled. */
  async close(): Promise<void> {
    await Promise.all([this.vadBatcher.close(), this.whisperBatcher.close()]);
  }

  /** Ends a timeline: flushes the VAD (the open segment closes), publishes what is pending, frees the state. */
  async #end(timeline: StreamTimeline, reason: TimelineEndReason): Promise<void> {
    if (!timeline.flushed) {
      const flushed = await this.#deps.models.vad.detector.flush(timeline.streamId);
      for (const segment of flushed.segments) this.#close(timeline, segment, reason);
      timeline.flushed = true;
      timeline.open = undefined;
      this.#deps.metrics.timelinesEnded.inc({ reason });
    }
    await this.#publishPending(timeline);
    this.#forget(timeline);
  }

  #forget(timeline: StreamTimeline): void {
    if (this.#streams.get(timeline.streamId) === timeline) this.#streams.delete(timeline.streamId);
  }

  #close(
    timeline: StreamTimeline,
    segment: Pick<SpeechSegment, 'start' | 'end'>,
    reason: SegmentEndReason | 'flush',
  ): void {
    // The VAD says 'flush' when its stream is flushed; the timeline knows why (idle, gap, session, end).
    const pending = timeline.close(segment, reason === 'flush' ? 'idle' : reason);
    if (pending.evictedSamples > 0) {
      this.#deps.metrics.errors.inc({ kind: 'audio_evicted' });
      this.#logger.error(
        { streamId: timeline.streamId, segmentId: pending.segmentId, evictedSamples: pending.evictedSamples },
        'segment audio no longer in the ring: transcribing what is left',
      );
    }
    timeline.pending.push(pending);
  }

  #nextSeq(timeline: StreamTimeline): bigint {
    const key = timeline.streamId;
    let entry = this.#seqs.get(key);
    if (entry?.epoch !== timeline.sessionEpoch) entry = { epoch: timeline.sessionEpoch, next: 0n };
    const seq = entry.next;
    entry.next += 1n;
    // Re-inserted: the map's order is least recently used first.
    this.#seqs.delete(key);
    this.#seqs.set(key, entry);
    if (this.#seqs.size > this.#maxSeqEntries) {
      const oldest = this.#seqs.keys().next().value;
      if (oldest !== undefined) this.#seqs.delete(oldest);
    }
    return seq;
  }

  async #transcribe(audio: Float32Array, kind: TranscriptKind): Promise<Decoded> {
    return this.whisperBatcher.submit({ audio, kind });
  }

  /** Transcribes and publishes the timeline's pending segments, oldest first; each leaves `pending` once acked. */
  async #publishPending(timeline: StreamTimeline): Promise<void> {
    const { metrics, publisher, transcripts } = this.#deps;
    while (timeline.pending.length > 0) {
      const pending = timeline.pending[0] as PendingSegment & { decoded?: Decoded };
      pending.decoded ??= await this.#transcribe(pending.audio, 'final');
      pending.seq ??= this.#nextSeq(timeline);
      const message = this.#message(timeline, {
        seq: pending.seq,
        startMs: pending.startMs,
        endMs: pending.endMs,
        chunks: pending.chunks,
        transcript: pending.decoded.transcript,
        final: true,
      });
      try {
        await publisher.publish(transcripts, { message });
      } catch (error) {
        metrics.errors.inc({ kind: 'publish' });
        throw error;
      }
      timeline.pending.shift();
      metrics.segmentsOut.inc({ kind: 'final' });
      metrics.segments.observe(
        { kind: 'final', end: pending.end },
        (pending.endSample - pending.startSample) / VAD_SAMPLE_RATE,
      );
      const last = pending.chunks[pending.chunks.length - 1];
      if (last && last.captureTimeUnixMs > 0n) {
        metrics.endToEndLag.observe(Math.max(0, this.#now() - Number(last.captureTimeUnixMs)) / 1000);
      }
      this.#logger.debug(
        {
          streamId: timeline.streamId,
          segmentId: message.segmentId,
          end: pending.end,
          text: message.text,
          decodeMs: Math.round(pending.decoded.decodeMs),
        },
        'final segment published',
      );
    }
  }

  /**
   * A partial transcript of the open segment, once per `partialIntervalMs` of its length. Best effort: skipped
   * (and counted) while other work waits for Whisper, and a failure is logged and counted, never retried (the
   * final supersedes it).
   */
  async #partial(timeline: StreamTimeline): Promise<void> {
    const interval = this.#options.partialIntervalMs * SAMPLES_PER_MS;
    const open = timeline.open;
    if (interval === 0 || !open) return;
    if (timeline.partialOf !== open.start) {
      timeline.partialOf = open.start;
      timeline.partialsDone = 0;
    }
    const due = Math.floor((open.analysedEnd - open.start) / interval);
    if (due <= timeline.partialsDone) return;
    timeline.partialsDone = due;
    const { metrics, publisher, transcripts } = this.#deps;
    if (this.whisperBatcher.queueDepth > 0) {
      metrics.partialsSkipped.inc();
      return;
    }
    const so = timeline.openAudio();
    if (!so) return;
    try {
      const { transcript } = await this.#transcribe(so.audio, 'partial');
      const message = this.#message(timeline, {
        seq: this.#nextSeq(timeline),
        startMs: Math.floor(so.segment.start / SAMPLES_PER_MS),
        endMs: Math.ceil(so.segment.end / SAMPLES_PER_MS),
        chunks: timeline.chunks.filter(
          (c) => c.startSample < so.segment.end && c.endSample > so.segment.start,
        ),
        transcript,
        final: false,
      });
      await publisher.publish(transcripts, { message });
      metrics.segmentsOut.inc({ kind: 'partial' });
      metrics.segments.observe(
        { kind: 'partial', end: 'open' },
        (so.segment.end - so.segment.start) / VAD_SAMPLE_RATE,
      );
    } catch (error) {
      metrics.errors.inc({ kind: 'partial' });
      this.#logger.warn({ err: error, streamId: timeline.streamId }, 'partial transcript failed: skipped');
    }
  }

  #message(
    timeline: StreamTimeline,
    segment: {
      seq: bigint;
      startMs: number;
      endMs: number;
      chunks: readonly ChunkEntry[];
      transcript: WhisperTranscript;
      final: boolean;
    },
  ): TranscriptSegment {
    const { transcript, startMs, endMs } = segment;
    const { whisper } = this.#deps.models;
    // Word times are seconds from the start of the audio transcribed, which starts at the segment's start.
    const mediaMs = (s: number) => Math.min(endMs, Math.max(startMs, Math.round(startMs + s * 1000)));
    return create(TranscriptSegmentSchema, {
      streamId: timeline.streamId,
      sessionEpoch: timeline.sessionEpoch,
      segmentId: segmentIdOf(timeline.streamId, timeline.sessionEpoch, startMs),
      seq: segment.seq,
      startMs: BigInt(startMs),
      endMs: BigInt(endMs),
      text: transcript.text.trim(),
      // Partials carry no words (they are decoded without word timings, and superseded by the final).
      words: (segment.final ? transcript.words : []).map((w) =>
        create(WordSchema, {
          text: w.word.trim(),
          startMs: BigInt(mediaMs(w.start)),
          endMs: BigInt(mediaMs(w.end)),
          confidence: w.probability,
        }),
      ),
      language: transcript.language ?? (whisper.recognizer.multilingual ? '' : 'en'),
      // English-only models have no language to doubt: 1, as for a given language.
      languageProbability: transcript.languageProbability ?? 1,
      final: segment.final,
      avgLogprob: transcript.avgLogProb,
      noSpeechProb: transcript.noSpeechProb,
      modelId: whisper.model.id,
      modelVersion: whisper.model.version,
      sources: segment.chunks.map((c) =>
        create(SourceRefSchema, {
          topic: c.topic,
          partition: c.partition,
          offset: c.offset,
          recordId: c.chunkId,
        }),
      ),
      captureTimeUnixMs: segment.chunks[0]?.captureTimeUnixMs ?? 0n,
      lastCaptureTimeUnixMs: segment.chunks.at(-1)?.captureTimeUnixMs ?? 0n,
    });
  }
}
