import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  promtool,
  type RegisteredMetric,
  registeredMetrics,
  seriesNames,
} from '../prometheus/metric-names.js';

// The LiveLens dashboard: a valid Grafana dashboard, with the panels an operator needs, querying only metrics
// (and labels) the services and the runtime really register, in PromQL that promtool accepts.

const here = new URL('.', import.meta.url).pathname;
const dashboardFile = join(here, 'dashboards', 'livelens-pipeline.json');

interface DatasourceRef {
  type?: string;
  uid?: string;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: DatasourceRef;
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: DatasourceRef;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: { name?: string; type?: string; query?: string }[] };
}
interface Query {
  panel: Panel;
  target: Target;
  expr: string;
}

/** Every panel, rows and the panels of collapsed rows included. */
function allPanels(dashboard: Dashboard): Panel[] {
  return (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every query of every panel but rows. */
function queries(dashboard: Dashboard): Query[] {
  return allPanels(dashboard)
    .filter((p) => p.type !== 'row')
    .flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target, expr: target.expr ?? '' })));
}

/** Grafana's interval variables, as fixed durations promtool can parse. */
const intervals: Record<string, string> = { __rate_interval: '1m', __interval: '1m', __range: '1h' };

/** The expr with Grafana's interval variables replaced; throws on any other variable (none belongs in a query). */
function toPromQL(expr: string): string {
  const replaced = expr.replace(/\$(?:\{(\w+)\}|(\w+))/g, (whole, braced?: string, bare?: string) => {
    const value = intervals[(braced ?? bare) as string];
    if (value === undefined) throw new Error(`unknown Grafana variable ${whole} in ${expr}`);
    return value;
  });
  return replaced;
}

/** A rules file (JSON is YAML) with each expr as a recording rule, for `promtool check rules`. */
function rulesFile(exprs: { record: string; expr: string }[]): string {
  return JSON.stringify(
    {
      groups: [{ name: 'grafana', rules: exprs.map((e) => ({ record: e.record, expr: toPromQL(e.expr) })) }],
    },
    null,
    2,
  );
}

const keywords = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/**
 * What is wrong with the metric names and labels of an expr: a metric (series) name no service or the runtime
 * registers (histograms as `_bucket`/`_sum`/`_count`), a `__name__` pattern that matches none, a label (grouping
 * or matcher) none of the expr's metrics has (besides the scrape's job and instance, and le of a bucket).
 */
function nameProblems(expr: string, metrics: RegisteredMetric[]): string[] {
  const series = new Map<string, RegisteredMetric>();
  for (const m of metrics) for (const s of seriesNames(m)) series.set(s, m);
  const problems: string[] = [];
  const used: RegisteredMetric[] = [];
  const labels = new Set<string>();
  let buckets = false;
  const use = (name: string) => {
    const metric = series.get(name);
    if (!metric) return false;
    used.push(metric);
    if (name.endsWith('_bucket') && metric.type === 'histogram') buckets = true;
    return true;
  };
  // Label matchers, the __name__ ones naming metrics.
  let rest = expr.replace(/\{([^}]*)\}/g, (_whole, inner: string) => {
    for (const m of inner.matchAll(/([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      const [, label, op, value] = m as unknown as [string, string, string, string];
      if (label !== '__name__') labels.add(label);
      else if (op === '=' && !use(value)) problems.push(`unknown metric ${value}`);
      else if (op === '=~') {
        const matching = [...series.keys()].filter((s) => new RegExp(`^(?:${value})$`).test(s));
        if (matching.length === 0) problems.push(`__name__ pattern ${value} matches no registered metric`);
        for (const s of matching) use(s);
      }
    }
    return ' ';
  });
  // Grouping and matching label lists, ranges and strings.
  rest = rest.replace(
    /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_w, list: string) => {
      for (const label of list.split(',').map((s) => s.trim())) if (label) labels.add(label);
      return ' ';
    },
  );
  rest = rest.replace(/\[[^\]]*\]/g, ' ').replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ');
  // What is left: functions (followed by a parenthesis), keywords, numbers and metric names.
  for (const m of rest.matchAll(/(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const [, identifier, call] = m as unknown as [string, string, string | undefined];
    if (call || keywords.has(identifier.toLowerCase())) continue;
    if (!use(identifier)) problems.push(`unknown metric ${identifier}`);
  }
  if (used.length === 0 && problems.length === 0) problems.push('queries no metric');
  const known = new Set([
    'job',
    'instance',
    ...(buckets ? ['le'] : []),
    ...used.flatMap((m) => m.labelNames),
  ]);
  for (const label of labels)
    if (!known.has(label))
      problems.push(`label ${label} is not a label of ${[...new Set(used.map((m) => m.name))]}`);
  return problems;
}

describe('Grafana dashboard livelens-pipeline', () => {
  let dashboard: Dashboard;
  let metrics: RegisteredMetric[];
  const temps: string[] = [];

  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(dashboardFile, 'utf8')) as Dashboard;
    metrics = await registeredMetrics();
  });
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });

  /** `promtool check rules` over the exprs, as recording rules in a temporary file. */
  async function checkRules(exprs: { record: string; expr: string }[]) {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-grafana-'));
    temps.push(dir);
    await writeFile(join(dir, 'dashboard.rules.yml'), rulesFile(exprs));
    return promtool(['check', 'rules', 'dashboard.rules.yml'], dir);
  }

  it('is a dashboard: uid, title, schema, a Prometheus datasource variable, unique panel ids, a grid layout', () => {
    expect(dashboard.uid).toBe('livelens-pipeline');
    expect(dashboard.title).toBe('LiveLens pipeline');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating?.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    const panels = allPanels(dashboard);
    expect(panels.length).toBeGreaterThan(10);
    const ids = panels.map((p) => p.id);
    for (const id of ids) expect(Number.isInteger(id), `panel id ${id}`).toBe(true);
    expect(new Set(ids).size, 'panel ids are unique').toBe(ids.length);
    // Every panel sits on the 24-column grid, and no two overlap.
    const cells = new Map<string, string>();
    for (const p of panels) {
      const g = p.gridPos;
      expect(g, `${p.title}: gridPos`).toBeDefined();
      if (!g) continue;
      expect(
        g.w > 0 && g.h > 0 && g.x >= 0 && g.y >= 0 && g.x + g.w <= 24,
        `${p.title}: ${JSON.stringify(g)}`,
      ).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          const other = cells.get(`${x},${y}`);
          expect(other, `${p.title} overlaps ${other}`).toBeUndefined();
          cells.set(`${x},${y}`, p.title ?? '');
        }
    }
  });

  it('queries Prometheus through the datasource variable in every panel and target', () => {
    const ref = { type: 'prometheus', uid: `\${datasource}` };
    const panels = allPanels(dashboard).filter((p) => p.type !== 'row');
    for (const panel of panels) {
      expect(['timeseries', 'stat'], `${panel.title}: type`).toContain(panel.type);
      expect(panel.title, `panel ${panel.id}: title`).toBeTruthy();
      expect(panel.datasource, `${panel.title}: datasource`).toEqual(ref);
      expect(panel.targets?.length, `${panel.title}: targets`).toBeGreaterThan(0);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, `${panel.title}: refIds are unique`).toBe(refIds.length);
      for (const target of panel.targets ?? []) {
        expect(target.refId, `${panel.title}: refId`).toMatch(/^[A-Z]$/);
        expect(target.expr?.trim(), `${panel.title} ${target.refId}: expr`).toBeTruthy();
        expect(target.datasource, `${panel.title} ${target.refId}: datasource`).toEqual(ref);
        expect(
          target.expr,
          `${panel.title} ${target.refId}: no datasource variable in the query`,
        ).not.toMatch(/\$\{?datasource/);
      }
    }
  });

  it('has the rows and panels an operator needs', () => {
    const rows = allPanels(dashboard)
      .filter((p) => p.type === 'row')
      .map((p) => p.title);
    expect(rows).toEqual([
      'Active streams',
      'Throughput per stage',
      'Latency',
      'Consumer lag',
      'Load shedding',
      'Tags',
      'Errors',
    ]);
    const exprs = queries(dashboard).map((q) => q.expr);
    const queried = (pattern: RegExp) => exprs.some((e) => pattern.test(e));
    const required: Record<string, RegExp[]> = {
      'active streams': [
        /\blivelens_ingest_active_streams\b/,
        /\blivelens_asr_streams\b/,
        /\blivelens_fusion_streams\b/,
      ],
      throughput: [
        /rate\(livelens_ingest_frames_published_total\[/,
        /rate\(livelens_ingest_audio_published_seconds_total\[/,
        /rate\(livelens_frame_analyzer_frames_analyzed_total\[/,
        /rate\(livelens_asr_audio_seconds_total\[/,
        /rate\(livelens_asr_segments_total\[/,
        /rate\(livelens_fusion_records_total\[/,
      ],
      // p50, p95 and p99 of each latency histogram.
      latency: [
        'livelens_fusion_end_to_end_latency_seconds',
        'livelens_frame_analyzer_end_to_end_lag_seconds',
        'livelens_asr_end_to_end_lag_seconds',
        'livelens_ingest_publish_latency_seconds',
      ].flatMap((h) =>
        ['0.5', '0.95', '0.99'].map(
          (q) => new RegExp(`histogram_quantile\\(${q}, .*${h}_bucket(\\{[^}]*\\})?\\[`),
        ),
      ),
      // The stages that consume (ingest only produces), per topic.
      'consumer lag': ['frame_analyzer', 'asr', 'fusion'].map(
        (s) => new RegExp(`sum by \\(topic\\) .*\\blivelens_${s}_consumer_lag_messages\\b`),
      ),
      shedding: [
        /rate\(livelens_frame_analyzer_frames_shed_total\[/,
        /rate\(livelens_ingest_samples_shed_total\[/,
      ],
      'tags per minute by kind': [
        /sum by \(kind\) \(rate\(livelens_fusion_tag_events_total\[[^\]]+\]\)\) \* 60/,
      ],
      'dead letters': ['frame_analyzer', 'asr', 'fusion'].map(
        (s) => new RegExp(`rate\\(livelens_${s}_dlq_messages_total\\[`),
      ),
      'model errors': [/rate\(livelens_frame_analyzer_errors_total\[/, /rate\(livelens_asr_errors_total\[/],
      'ffmpeg restarts': [/rate\(livelens_ingest_ffmpeg_restarts_total\[/],
    };
    for (const [what, patterns] of Object.entries(required))
      for (const pattern of patterns)
        expect(queried(pattern), `${what}: a query matching ${pattern}`).toBe(true);
  });

  it('queries only metrics and labels the services and the runtime register', () => {
    expect(metrics.length).toBeGreaterThan(40);
    const problems = queries(dashboard).flatMap(({ panel, target, expr }) =>
      nameProblems(expr, metrics).map((p) => `${panel.title} ${target.refId}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  it('catches a metric that is not registered, and a label the metric does not have', () => {
    expect(nameProblems('sum(rate(livelens_fusion_tags_total[5m]))', metrics)).toEqual([
      'unknown metric livelens_fusion_tags_total',
    ]);
    expect(
      nameProblems('histogram_quantile(0.5, rate(livelens_asr_end_to_end_lag_seconds[5m]))', metrics),
    ).toEqual(['unknown metric livelens_asr_end_to_end_lag_seconds']);
    expect(nameProblems('sum by (stream_id) (rate(livelens_fusion_tag_events_total[5m]))', metrics)).toEqual([
      'label stream_id is not a label of livelens_fusion_tag_events_total',
    ]);
    expect(nameProblems('max({__name__=~"livelens_[a-z_]+_consumer_lag_seconds"})', metrics)).toEqual([
      '__name__ pattern livelens_[a-z_]+_consumer_lag_seconds matches no registered metric',
    ]);
  });

  it('is valid PromQL: promtool check rules accepts every query as a recording rule', async () => {
    const all = queries(dashboard).map(({ panel, target, expr }) => ({
      record: `grafana:panel_${panel.id}_${target.refId}`,
      expr,
    }));
    const result = await checkRules(all);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`SUCCESS: ${all.length} rules found`);
  });

  it('catches broken PromQL: promtool rejects an unbalanced query', async () => {
    const result = await checkRules([
      {
        record: 'grafana:ok',
        expr: 'sum by (kind) (rate(livelens_fusion_tag_events_total[$__rate_interval]))',
      },
      {
        record: 'grafana:broken',
        expr: 'sum by (kind) (rate(livelens_fusion_tag_events_total[$__rate_interval])',
      },
    ]);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/parse error|unclosed|unexpected/i);
    expect(() => toPromQL('rate(livelens_asr_segments_total{job="$job"}[5m])')).toThrow(/\$job/);
  });

  it('provisions a Prometheus datasource and the dashboards folder', async () => {
    const datasources = await readFile(join(here, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8');
    expect(datasources).toMatch(/^apiVersion: 1$/m);
    expect(datasources).toMatch(/^\s+type: prometheus$/m);
    expect(datasources).toMatch(/^\s+url: http/m);
    const providers = await readFile(join(here, 'provisioning', 'dashboards', 'livelens.yml'), 'utf8');
    expect(providers).toMatch(/^apiVersion: 1$/m);
    expect(providers).toMatch(/^\s+type: file$/m);
    const path = /^\s+path: (\S+)$/m.exec(providers)?.[1];
    expect(path).toBe('/var/lib/grafana/dashboards/livelens');
    // The README tells where to mount the dashboards for that provider.
    const readme = await readFile(join(here, 'README.md'), 'utf8');
    expect(readme).toContain(`dashboards:${path}`);
    expect(readme).toContain('provisioning:/etc/grafana/provisioning');
    // Provisioned dashboards carry no database id.
    expect((dashboard as { id?: unknown }).id).toBeNull();
  });
});
