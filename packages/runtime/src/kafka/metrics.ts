import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Metric prefix of a service: `livelens_<service>_`, with the service name made metric-safe. */
export function metricPrefix(service: string): string {
  return `livelens_${service.replace(/[^a-zA-Z0-9_]/g, '_')}_`;
}

/** Kafka metrics of one service. Labels are bounded: topic, partition, outcome, error code. */
export interface KafkaMetrics {
  readonly consumed: Counter<'topic' | 'outcome'>;
  readonly inFlight: Gauge<'topic'>;
  readonly processingSeconds: Histogram<'topic'>;
  readonly lag: Gauge<'topic' | 'partition'>;
  readonly paused: Gauge<'topic'>;
  readonly rebalances: Counter<'group'>;
  readonly commits: Counter<'topic'>;
  readonly restarts: Counter<'group'>;
  readonly deadLetters: Counter<'topic' | 'code'>;
  readonly produced: Counter<'topic'>;
  readonly produceErrors: Counter<'topic' | 'code'>;
  readonly sendSeconds: Histogram<'topic'>;
}

const cache = new WeakMap<Registry, Map<string, KafkaMetrics>>();

/** The Kafka metrics of `service` in `registry`, created once (prom-client refuses duplicates). */
export function kafkaMetrics(registry: Registry, service: string): KafkaMetrics {
  let byService = cache.get(registry);
  if (!byService) {
    byService = new Map();
    cache.set(registry, byService);
  }
  const existing = byService.get(service);
  if (existing) return existing;
  const p = metricPrefix(service);
  const registers = [registry];
  const metrics: KafkaMetrics = {
    consumed: new Counter({
      name: `${p}consumer_messages_total`,
      help: 'Messages consumed, by outcome: processed, dead_lettered.',
      labelNames: ['topic', 'outcome'],
      registers,
    }),
    inFlight: new Gauge({
      name: `${p}consumer_in_flight_messages`,
      help: 'Messages being processed now.',
      labelNames: ['topic'],
      registers,
    }),
    processingSeconds: new Histogram({
      name: `${p}consumer_processing_seconds`,
      help: 'Time from dispatch to completion of one message, outputs acknowledged.',
      labelNames: ['topic'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    lag: new Gauge({
      name: `${p}consumer_lag_messages`,
      help: 'High watermark minus the next offset to process, per partition, as of the last fetched batch.',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    paused: new Gauge({
      name: `${p}consumer_paused`,
      help: '1 while fetching is paused because in-flight work passed its bound.',
      labelNames: ['topic'],
      registers,
    }),
    rebalances: new Counter({
      name: `${p}consumer_rebalances_total`,
      help: 'Group joins of this member (each follows a rebalance).',
      labelNames: ['group'],
      registers,
    }),
    commits: new Counter({
      name: `${p}consumer_commits_total`,
      help: 'Offset commits.',
      labelNames: ['topic'],
      registers,
    }),
    restarts: new Counter({
      name: `${p}consumer_restarts_total`,
      help: 'Consumer restarts after a crash.',
      labelNames: ['group'],
      registers,
    }),
    deadLetters: new Counter({
      name: `${p}dlq_messages_total`,
      help: 'Messages sent to the dead-letter topic, by source topic and error code.',
      labelNames: ['topic', 'code'],
      registers,
    }),
    produced: new Counter({
      name: `${p}producer_messages_total`,
      help: 'Messages acknowledged by the broker.',
      labelNames: ['topic'],
      registers,
    }),
    produceErrors: new Counter({
      name: `${p}producer_errors_total`,
      help: 'Failed sends, by error code.',
      labelNames: ['topic', 'code'],
      registers,
    }),
    sendSeconds: new Histogram({
      name: `${p}producer_send_seconds`,
      help: 'Time from send to broker acknowledgement.',
      labelNames: ['topic'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    }),
  };
  byService.set(service, metrics);
  return metrics;
}
