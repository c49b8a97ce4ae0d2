import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type HealthServer, startHealthServer } from '@livelens/runtime';
import { testLogger } from '@livelens/runtime/testing';
import { Counter, Histogram, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrometheusServer, renderConfig, SHIPPED_CONFIG_DIR, startPrometheus } from './src/server.js';

// A real Prometheus (Debian's prometheus package) scraping a real prom-client /metrics endpoint, with the
// shipped prometheus.yml and alerts.yml: what the whole-pipeline test and the demo stand on.

const closedPort = async () => {
  const { createServer } = await import('node:net');
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
};

describe('startPrometheus: a real Prometheus against LiveLens /metrics', () => {
  const registry = new Registry();
  const latency = new Histogram({
    name: 'livelens_fusion_end_to_end_latency_seconds',
    help: 'capture-to-tag latency',
    buckets: [0.5, 1, 2, 5, 10],
    registers: [registry],
  });
  const tags = new Counter({
    name: 'livelens_fusion_tags_total',
    help: 'tags emitted',
    registers: [registry],
  });
  let metrics: HealthServer;
  let prometheus: PrometheusServer;
  let asrPort: number;

  beforeAll(async () => {
    metrics = await startHealthServer({ port: 0, host: '127.0.0.1', registry }, testLogger('fusion-metrics'));
    asrPort = await closedPort();
    prometheus = await startPrometheus({
      targets: { fusion: `127.0.0.1:${metrics.port}`, asr: `127.0.0.1:${asrPort}` },
      scrapeIntervalS: 1,
    });
  });
  afterAll(async () => {
    await prometheus?.stop();
    await metrics?.close();
  });

  it('runs the shipped config with only the targets and the interval replaced', async () => {
    const config = await readFile(prometheus.configFile, 'utf8');
    expect(config).toContain(`targets: [ "127.0.0.1:${metrics.port}" ]`);
    expect(config).toContain('scrape_interval: 1s');
    expect(config).toContain('evaluation_interval: 15s');
    expect(config).not.toContain('livelens-ingest');
    expect(await readFile(join(prometheus.dataDir, 'alerts.yml'), 'utf8')).toBe(
      await readFile(join(SHIPPED_CONFIG_DIR, 'alerts.yml'), 'utf8'),
    );
  });

  it('loads the 7 alert rules of alerts.yml', async () => {
    const groups = await prometheus.rules();
    const alerts = groups.flatMap((g) => g.rules.filter((r) => r.type === 'alerting').map((r) => r.name));
    const shipped = [
      ...(await readFile(join(SHIPPED_CONFIG_DIR, 'alerts.yml'), 'utf8')).matchAll(/- alert: (\w+)/g),
    ];
    expect(alerts).toHaveLength(7);
    expect(alerts.sort()).toEqual(shipped.map((m) => m[1]).sort());
    for (const rule of groups.flatMap((g) => g.rules)) expect(rule.health, rule.name).not.toBe('err');
  });

  it('scrapes the fusion metrics and reads latency and counts through the query API', async () => {
    const [fusion] = await prometheus.waitForTargetsUp(['fusion'], 15_000);
    expect(fusion).toMatchObject({
      job: 'livelens-fusion',
      instance: `127.0.0.1:${metrics.port}`,
      health: 'up',
    });
    // Observed after the first scrape, so the rate over the window sees them arrive.
    for (const seconds of [1.2, 1.4, 1.5, 1.6, 1.8, 1.9, 1.3, 1.7, 1.1, 1.5]) latency.observe(seconds);
    tags.inc(3);
    await prometheus.waitFor(
      'sum(livelens_fusion_end_to_end_latency_seconds_count{job="livelens-fusion"})',
      (samples) => samples[0]?.value === 10,
      15_000,
    );
    const p95 = await prometheus.value(
      'histogram_quantile(0.95, sum by (le) (rate(livelens_fusion_end_to_end_latency_seconds_bucket[30s])))',
    );
    expect(p95).toBeGreaterThan(1);
    expect(p95).toBeLessThanOrEqual(2);
    expect(await prometheus.value('livelens_fusion_end_to_end_latency_seconds_sum')).toBeCloseTo(15, 6);
    const [counter] = await prometheus.query('livelens_fusion_tags_total');
    expect(counter).toMatchObject({
      value: 3,
      metric: { job: 'livelens-fusion', instance: `127.0.0.1:${metrics.port}` },
    });
  });

  it('reports a target on a closed port down', async () => {
    const down = await prometheus.waitFor(
      'up{job="livelens-asr"}',
      (samples) => samples[0]?.value === 0,
      15_000,
    );
    expect(down[0]?.metric.instance).toBe(`127.0.0.1:${asrPort}`);
    const asr = (await prometheus.targets()).find((t) => t.job === 'livelens-asr');
    expect(asr).toMatchObject({ health: 'down' });
    expect(asr?.lastError).toMatch(/connection refused/);
    await expect(prometheus.waitForTargetsUp(['asr'], 1_500)).rejects.toThrow(/livelens-asr .*: down/);
  });

  it('throws Prometheus’s error text on a bad query', async () => {
    await expect(prometheus.query('sum(')).rejects.toThrow(/bad_data/);
  });

  it('fails clearly when the binary is missing, or a target is not host:port', async () => {
    await expect(
      startPrometheus({ targets: { fusion: '127.0.0.1:1' }, binary: '/nonexistent/prometheus' }),
    ).rejects.toThrow(
      /Prometheus binary not found: \/nonexistent\/prometheus.*Debian's `prometheus` package/,
    );
    await expect(renderConfig({ targets: { fusion: 'http://x/metrics' } })).rejects.toThrow(/host:port/);
  });
});
