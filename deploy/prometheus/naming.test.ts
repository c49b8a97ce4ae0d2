import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type MetricDefinition,
  metricPrefix,
  parseMetricDefinitions,
  type RegisteredMetric,
  registeredMetrics,
  repo,
} from './metric-names.js';

// One naming scheme for every metric the services register (their metrics.ts, and the runtime's Kafka metrics
// under each service's prefix): livelens_<service>_<what>_<unit>, Prometheus' conventions for counters and
// histograms, and only bounded labels. A violation fails with the metric's name and where it is defined.

const services = ['ingest', 'frame-analyzer', 'asr', 'fusion'];
const scheme = /^livelens_(ingest|frame_analyzer|asr|fusion)_[a-z0-9_]+$/;

/**
 * The units a histogram or summary may end in: base units (seconds, bytes), the dimensionless ratio, and the
 * counted units of the batch-size histograms (livelens_frame_analyzer_batch_size_frames,
 * livelens_asr_vad_batch_size_chunks).
 */
const histogramUnits = ['_seconds', '_bytes', '_ratio', '_frames', '_chunks'];

/** Labels whose values grow with traffic: one series per stream, session, record or replica. */
const highCardinalityLabels = [
  'stream_id',
  'stream',
  'streamid',
  'session',
  'session_id',
  'session_epoch',
  'epoch',
  'url',
  'source_url',
  'uri',
  'record_id',
  'frame_id',
  'chunk_id',
  'segment_id',
  'episode_id',
  'event_id',
  'replica_id',
  'pod',
  'trace_id',
  'request_id',
  'offset',
  'key',
  'text',
  'error',
  'message',
];

/** Labels Prometheus itself sets (le, quantile) or the scrape attaches (job, instance). */
const reservedLabels = ['le', 'quantile', 'job', 'instance'];

/** What is wrong with one metric's name and labels, each as `<name> (<where>): <problem>`. */
function violations(metric: MetricDefinition & { service: string }): string[] {
  const { name, type, labelNames, at } = metric;
  const problems: string[] = [];
  if (!scheme.test(name)) problems.push(`does not match ${scheme}`);
  if (!name.startsWith(metricPrefix(metric.service)))
    problems.push(`does not start with ${metricPrefix(metric.service)}, the prefix of its service`);
  if (type === 'counter' && !name.endsWith('_total'))
    problems.push('is a counter whose name does not end in _total');
  if (type !== 'counter' && name.endsWith('_total')) problems.push(`is a ${type} whose name ends in _total`);
  if ((type === 'histogram' || type === 'summary') && !histogramUnits.some((u) => name.endsWith(u)))
    problems.push(`is a ${type} without a unit suffix (one of ${histogramUnits.join(', ')})`);
  for (const label of labelNames) {
    if (!/^[a-z][a-z0-9_]*$/.test(label)) problems.push(`has label ${label}, not snake_case`);
    if (highCardinalityLabels.includes(label.toLowerCase()))
      problems.push(`has label ${label}, of unbounded cardinality`);
    if (reservedLabels.includes(label)) problems.push(`has label ${label}, reserved by Prometheus`);
  }
  if (new Set(labelNames).size !== labelNames.length) problems.push('has a label twice');
  return problems.map((p) => `${name} (${at}): ${p}`);
}

describe('metric naming scheme', () => {
  let metrics: RegisteredMetric[];
  beforeAll(async () => {
    metrics = await registeredMetrics();
  });

  it('reads the metrics of every service and of the runtime', async () => {
    expect([...new Set(metrics.map((m) => m.service))]).toEqual([...services].sort());
    for (const service of services) {
      const own = metrics.filter((m) => m.service === service && m.origin === 'service');
      const runtime = metrics.filter((m) => m.service === service && m.origin === 'runtime');
      expect(own.length, service).toBeGreaterThan(3);
      expect(runtime.map((m) => m.name)).toContain(`${metricPrefix(service)}consumer_lag_messages`);
      // Nothing the parser missed: every quoted livelens_ name in the file is a metric it read.
      const source = await readFile(join(repo, 'services', service, 'src', 'metrics.ts'), 'utf8');
      const quoted = [...source.matchAll(/name:\s*['"`](livelens_\w+)['"`]/g)].map((m) => m[1]);
      expect(own.map((m) => m.name).sort(), service).toEqual(quoted.sort());
    }
  });

  it('gives the runtime the service folder name, so its metrics get the same prefix', async () => {
    for (const service of services) {
      const dir = join(repo, 'services', service, 'src');
      const sources = await Promise.all(
        (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => readFile(join(dir, f), 'utf8')),
      );
      expect(
        sources.some((s) => s.includes(`service: '${service}'`)),
        `services/${service}/src passes service: '${service}' to the runtime`,
      ).toBe(true);
    }
  });

  it('names every metric livelens_<service>_..., with its service prefix, counters _total, histograms with a unit, bounded labels', () => {
    expect(metrics.flatMap(violations)).toEqual([]);
  });

  it('registers no name twice in one service', () => {
    for (const service of services) {
      const names = metrics.filter((m) => m.service === service).map((m) => m.name);
      const twice = names.filter((n, i) => names.indexOf(n) !== i);
      expect(twice, service).toEqual([]);
    }
  });

  it('catches a violation, naming the metric (an options object over many lines, comments, a collect method)', () => {
    const source = `
      import { Counter, Gauge, Histogram, Summary, type Registry } from 'prom-client';
      export function metrics(registry: Registry) {
        const registers = [registry];
        return {
          ok: new Counter({ name: 'livelens_asr_things_total', help: 'Fine.', labelNames: ['kind'], registers }),
          noTotal: new Counter({
            // a comment, with a name: 'livelens_asr_decoy_total' in it
            help: "A counter, named after its help (with a '{' inside).",
            name:
              'livelens_asr_requests',
            labelNames: [
              'stream_id', // one per stream
              'kind',
            ] as const,
            registers,
          }),
          noUnit: new Histogram<'kind'>({ name: 'livelens_asr_latency', help: 'x', buckets: [1, 2], registers }),
          wrongService: new Gauge({
            name: \`livelens_fusion_depth\`,
            help: 'x',
            registers,
            collect() {
              this.set({ name: 'not a metric' }, 1);
            },
          }),
          summary: new Summary({ name: 'livelens_asr_sizes_bytes', help: 'x', labelNames: ['session'], registers }),
        };
      }`;
    const defs = parseMetricDefinitions(source, 'services/asr/src/metrics.ts');
    expect(defs.map((d) => [d.type, d.name, d.labelNames])).toEqual([
      ['counter', 'livelens_asr_things_total', ['kind']],
      ['counter', 'livelens_asr_requests', ['stream_id', 'kind']],
      ['histogram', 'livelens_asr_latency', []],
      ['gauge', 'livelens_fusion_depth', []],
      ['summary', 'livelens_asr_sizes_bytes', ['session']],
    ]);
    const found = defs.flatMap((d) => violations({ ...d, service: 'asr' }));
    expect(found).toEqual([
      'livelens_asr_requests (services/asr/src/metrics.ts:7): is a counter whose name does not end in _total',
      'livelens_asr_requests (services/asr/src/metrics.ts:7): has label stream_id, of unbounded cardinality',
      'livelens_asr_latency (services/asr/src/metrics.ts:18): is a histogram without a unit suffix (one of _seconds, _bytes, _ratio, _frames, _chunks)',
      'livelens_fusion_depth (services/asr/src/metrics.ts:19): does not start with livelens_asr_, the prefix of its service',
      'livelens_asr_sizes_bytes (services/asr/src/metrics.ts:27): has label session, of unbounded cardinality',
    ]);
    // A name the parser cannot read fails loudly instead of being skipped.
    expect(() => parseMetricDefinitions("new Counter({ name: NAME, help: 'x' })", 'x.ts')).toThrow(
      /x\.ts:1: .*not a string literal/,
    );
  });
});
