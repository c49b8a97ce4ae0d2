import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the ASR transcribes: a closed segment (final) or the open segment so far (partial). */
export type TranscriptKind = 'final' | 'partial';

/**
 * The ASR service's own metrics (the runtime adds Kafka and process metrics under the same prefix).
 * Labels are bounded: kinds, stages, outcomes and reasons are fixed sets; never a stream id.
 */
export function createAsrMetrics(
  registry: Registry,
  sources: { vadQueueDepth: () => number; whisperQueueDepth: () => number; streams: () => number },
) {
  const registers = [registry];
  return {
    audioSeconds: new Counter({
      name: 'livelens_asr_audio_seconds_total',
      help: 'Audio taken into a stream timeline (chunks processed; duplicates of chunks already taken in are not counted).',
      registers,
    }),
    speechSeconds: new Counter({
      name: 'livelens_asr_speech_seconds_total',
      help: 'Audio decoded by Whisper, by kind (final: closed segments; partial: open segments so far).',
      labelNames: ['kind'],
      registers,
    }),
    realTimeFactor: new Histogram({
      name: 'livelens_asr_real_time_ratio',
      help: 'Whisper decode wall time divided by the duration of the audio decoded, per call, by kind (< 1 = faster than real time).',
      labelNames: ['kind'],
      buckets: [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5],
      registers,
    }),
    decodeSeconds: new Histogram({
      name: 'livelens_asr_decode_seconds',
      help: 'Wall time of one Whisper call (features, encoder, decoding, word alignment; queue wait excluded), by kind.',
      labelNames: ['kind'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30],
      registers,
    }),
    vadSeconds: new Histogram({
      name: 'livelens_asr_vad_seconds',
      help: 'Wall time of one VAD batch (all its streams, one worker round trip).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    vadBatchSize: new Histogram({
      name: 'livelens_asr_vad_batch_size_chunks',
      help: 'Chunks (of different streams) per VAD batch.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    chunkSpeechRatio: new Histogram({
      name: 'livelens_asr_chunk_speech_ratio',
      help: "Share of a chunk's 32 ms windows the VAD heard as speech (a distribution over chunks, not per stream).",
      buckets: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
      registers,
    }),
    segments: new Histogram({
      name: 'livelens_asr_segment_duration_seconds',
      help: 'Duration of the transcript segments published, by kind and by why a final ended (silence, max_length, idle, gap, session, end_of_session; open for partials).',
      labelNames: ['kind', 'end'],
      buckets: [0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30],
      registers,
    }),
    segmentsOut: new Counter({
      name: 'livelens_asr_segments_total',
      help: 'Transcript segments published (acknowledged by the broker), by kind.',
      labelNames: ['kind'],
      registers,
    }),
    partialsSkipped: new Counter({
      name: 'livelens_asr_partials_skipped_total',
      help: 'Partial transcripts not made because other work waited for Whisper (finals first; the final still comes).',
      registers,
    }),
    chunks: new Counter({
      name: 'livelens_asr_chunks_total',
      help: 'Audio chunks by outcome: processed, duplicate (already taken in: a redelivery), gap (processed, after ending the timeline before it), end_of_session (the end marker of an ingest session), stale_end (the end marker of a session other than the current one of the stream: ignored), backwards, too_long, max_streams (the last three dead-lettered).',
      labelNames: ['outcome'],
      registers,
    }),
    timelinesEnded: new Counter({
      name: 'livelens_asr_timelines_ended_total',
      help: 'Stream timelines ended (open segment flushed as final, state freed), by reason: idle, gap, session, end_of_session (the in-band end of the ingest session), revoked (its partition moved to another replica: dropped, not published).',
      labelNames: ['reason'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'livelens_asr_queue_depth',
      help: 'Work waiting for a model (the running call not included), by stage: vad (chunks), whisper (segments).',
      labelNames: ['stage'],
      registers,
      collect() {
        this.set({ stage: 'vad' }, sources.vadQueueDepth());
        this.set({ stage: 'whisper' }, sources.whisperQueueDepth());
      },
    }),
    streams: new Gauge({
      name: 'livelens_asr_streams',
      help: 'Streams whose state (VAD, audio ring) this replica holds.',
      registers,
      collect() {
        this.set(sources.streams());
      },
    }),
    errors: new Counter({
      name: 'livelens_asr_errors_total',
      help: 'Failures, by kind: vad, whisper, publish (retried), partial (a partial given up), audio_evicted (a segment older than the audio ring: a bug).',
      labelNames: ['kind'],
      registers,
    }),
    endToEndLag: new Histogram({
      name: 'livelens_asr_end_to_end_lag_seconds',
      help: "From capture of a final segment's last chunk at ingest to its publication (acknowledged).",
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60],
      registers,
    }),
  };
}

export type AsrMetrics = ReturnType<typeof createAsrMetrics>;
