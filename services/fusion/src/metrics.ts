import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Fusion's metrics (prefix `livelens_fusion_`); labels are bounded (input, kind, tag id, outcome). */
export function createFusionMetrics(
  registry: Registry,
  gauges: { streams: () => number; openWindows: () => number },
) {
  const registers = [registry];
  return {
    records: new Counter({
      name: 'livelens_fusion_records_total',
      help: 'Input records by input (frames, transcripts) and outcome: applied, duplicate (a redelivery, already in the state), partial (a partial transcript, skipped), late (past the allowed lateness) and invalid (no session, a broken clock), the last two dead-lettered.',
      labelNames: ['input', 'outcome'],
      registers,
    }),
    lateRecords: new Counter({
      name: 'livelens_fusion_late_records_total',
      help: 'Records older than the allowed lateness behind the stream watermark (or of an older session), by input: dead-lettered, never silently dropped.',
      labelNames: ['input'],
      registers,
    }),
    tags: new Counter({
      name: 'livelens_fusion_tag_events_total',
      help: 'Tag events published, by kind (intent, risk), tag and episode state (open, update, close).',
      labelNames: ['kind', 'tag', 'state'],
      registers,
    }),
    reviews: new Counter({
      name: 'livelens_fusion_review_items_total',
      help: 'Review items published (a decision between the review and accept thresholds), by tag.',
      labelNames: ['tag'],
      registers,
    }),
    windows: new Counter({
      name: 'livelens_fusion_windows_total',
      help: 'Windows decided, by why: watermark (the stream watermark passed the window) or late (re-decided for late data).',
      labelNames: ['reason'],
      registers,
    }),
    watermarkLag: new Gauge({
      name: 'livelens_fusion_watermark_lag_seconds',
      help: 'Per input, how far its watermark is behind the stream the record belonged to in media time: the faster input minus this one, at the last record (0 for the faster input).',
      labelNames: ['input'],
      registers,
    }),
    endToEndLatency: new Histogram({
      name: 'livelens_fusion_end_to_end_latency_seconds',
      help: 'Capture of the newest evidence to tag event publication, by state (open, update, close).',
      labelNames: ['state'],
      buckets: [0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60],
      registers,
    }),
    evaluationSeconds: new Histogram({
      name: 'livelens_fusion_record_evaluation_seconds',
      help: 'Time to apply one record: windows decided with rule retrieval and evaluation, episodes (no I/O).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    afterClose: new Counter({
      name: 'livelens_fusion_after_close_total',
      help: 'Windows that fired a tag within the quiet period of an episode already closed (late evidence): counted, the closed episode is not reopened.',
      registers,
    }),
    idleFlushes: new Counter({
      name: 'livelens_fusion_idle_flushes_total',
      help: 'Streams ended without a record for a while (pending windows decided, open episodes closed), by reason: end (ingest announced the end of the session, then FUSION_END_GRACE_MS passed) or idle (FUSION_IDLE_FLUSH_MS passed, no end announced).',
      labelNames: ['reason'],
      registers,
    }),
    streamEnds: new Counter({
      name: 'livelens_fusion_stream_ends_total',
      help: 'Ends of sessions announced on live.stream-events.v1 (ENDED, FAILED), by outcome: accepted (the current session: the stream is ended after the grace period), next_session (a later session, before its records), duplicate (already recorded), stale_session (an older session, ignored), unknown_stream (never seen, ignored), invalid (no session, dead-lettered).',
      labelNames: ['outcome'],
      registers,
    }),
    unsendable: new Counter({
      name: 'livelens_fusion_unsendable_outputs_total',
      help: 'Tag events or review items the broker or the contract refused for good (logged and left out), by topic.',
      labelNames: ['topic'],
      registers,
    }),
    stateConflicts: new Counter({
      name: 'livelens_fusion_state_conflicts_total',
      help: 'State writes that lost a compare-and-set to another writer of the same stream (reloaded and applied again).',
      registers,
    }),
    observationsEvicted: new Counter({
      name: 'livelens_fusion_observations_evicted_total',
      help: 'Observations dropped because a stream held FUSION_MAX_OBSERVATIONS (bounded memory under a flood).',
      registers,
    }),
    windowsOpen: new Gauge({
      name: 'livelens_fusion_windows_open',
      help: 'Windows of the cached streams waiting for the stream watermark (between it and the faster input).',
      registers,
      collect() {
        this.set(gauges.openWindows());
      },
    }),
    streams: new Gauge({
      name: 'livelens_fusion_streams',
      help: 'Stream states cached in this replica.',
      registers,
      collect() {
        this.set(gauges.streams());
      },
    }),
  };
}

export type FusionMetrics = ReturnType<typeof createFusionMetrics>;
