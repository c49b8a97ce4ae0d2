import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The ingest service's own metrics (the runtime adds Kafka and process metrics). Labels are bounded. */
export function createIngestMetrics(registry: Registry) {
  const registers = [registry];
  return {
    activeStreams: new Gauge({
      name: 'livelens_ingest_active_streams',
      help: 'Streams this replica owns, by state.',
      labelNames: ['state'],
      registers,
    }),
    framesPublished: new Counter({
      name: 'livelens_ingest_frames_published_total',
      help: 'Frames acknowledged by the broker.',
      labelNames: ['reason'],
      registers,
    }),
    audioSecondsPublished: new Counter({
      name: 'livelens_ingest_audio_published_seconds_total',
      help: 'Seconds of audio acknowledged by the broker.',
      registers,
    }),
    publishLatency: new Histogram({
      name: 'livelens_ingest_publish_latency_seconds',
      help: 'From capture (bytes out of ffmpeg) to broker acknowledgement.',
      labelNames: ['topic'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    ffmpegRestarts: new Counter({
      name: 'livelens_ingest_ffmpeg_restarts_total',
      help: 'ffmpeg restarts after the source dropped, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    ffmpegExits: new Counter({
      name: 'livelens_ingest_ffmpeg_exits_total',
      help: 'ffmpeg exits, by kind (eof, failed, stopped) and reason.',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    gaps: new Counter({
      name: 'livelens_ingest_gaps_total',
      help: 'Gap records published, by modality and reason.',
      labelNames: ['modality', 'reason'],
      registers,
    }),
    samplesShed: new Counter({
      name: 'livelens_ingest_samples_shed_total',
      help: 'Frames or audio chunks dropped before publishing, by kind and reason.',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    leaseTakeovers: new Counter({
      name: 'livelens_ingest_lease_takeovers_total',
      help: 'Streams this replica took over from a replica whose lease expired.',
      registers,
    }),
    leasesLost: new Counter({
      name: 'livelens_ingest_leases_lost_total',
      help: 'Leases this replica lost (renewal failed): the stream was stopped here.',
      registers,
    }),
    rejectedStarts: new Counter({
      name: 'livelens_ingest_rejected_starts_total',
      help: 'StartStream calls refused, by error code.',
      labelNames: ['code'],
      registers,
    }),
  };
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
