import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The frame analyzer's own metrics (the runtime adds Kafka and process metrics under the same prefix).
 * Labels are bounded: model ids come from the manifest, kinds and reasons are fixed sets.
 */
export function createFrameAnalyzerMetrics(registry: Registry, queueDepth: () => number) {
  const registers = [registry];
  return {
    inferenceSeconds: new Histogram({
      name: 'livelens_frame_analyzer_inference_seconds',
      help: 'Wall time of one batched model run (pre- and post-processing included), by model id.',
      labelNames: ['model'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    batchSize: new Histogram({
      name: 'livelens_frame_analyzer_batch_size_frames',
      help: 'Frames per model batch (after shedding and undecodable frames).',
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
      registers,
    }),
    framesShed: new Counter({
      name: 'livelens_frame_analyzer_frames_shed_total',
      help: 'Frames not analysed to keep up with live (published as SHED_STALE), by reason.',
      labelNames: ['reason'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'livelens_frame_analyzer_queue_depth_frames',
      help: 'Frames waiting for a batch (the running batch not included).',
      registers,
      collect() {
        this.set(queueDepth());
      },
    }),
    framesAnalyzed: new Counter({
      name: 'livelens_frame_analyzer_frames_analyzed_total',
      help: 'Frames every configured model ran on (status COMPLETE).',
      registers,
    }),
    errors: new Counter({
      name: 'livelens_frame_analyzer_errors_total',
      help: 'Frames that failed, by kind: decode (not an image: dead-lettered), inference (a model run failed).',
      labelNames: ['kind'],
      registers,
    }),
    endToEndLag: new Histogram({
      name: 'livelens_frame_analyzer_end_to_end_lag_seconds',
      help: 'From capture at ingest to the end of analysis (analyzed_time - capture_time), analysed frames only.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60],
      registers,
    }),
  };
}

export type FrameAnalyzerMetrics = ReturnType<typeof createFrameAnalyzerMetrics>;
