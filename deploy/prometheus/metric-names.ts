import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BRACKETS, skipBalanced, skipComment, skipString } from '../source-scan.js';

// Shared by the deploy/ tests (prometheus.test.ts, naming.test.ts, deploy/grafana/grafana.test.ts): promtool,
// and the metrics the services and the shared runtime really register, read from their source.

const run = promisify(execFile);

/** The repository root. */
export const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Runs promtool (Debian's prometheus package, installed by deploy/local/stack.sh) in `cwd`. */
export async function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('promtool not found: `npm run setup` installs it (Debian package prometheus)');
    return { code: Number(e.code), output: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

/** Metric prefix of a service, as packages/runtime/src/kafka/metrics.ts makes it: `livelens_<service>_`. */
export function metricPrefix(service: string): string {
  return `livelens_${service.replace(/[^a-zA-Z0-9_]/g, '_')}_`;
}

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** One `new Counter|Gauge|Histogram|Summary({ ... })` in a source file. */
export interface MetricDefinition {
  /** The name as written: a string literal's value, or a template literal's raw text (`${p}...`). */
  readonly name: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  /** `path:line` of the constructor call, repo-relative. */
  readonly at: string;
}

/** A metric one service registers: its own (services/<service>/src/metrics.ts) or the runtime's Kafka metrics. */
export interface RegisteredMetric extends MetricDefinition {
  /** The service folder (= the service name it gives the runtime): ingest, frame-analyzer, asr, fusion. */
  readonly service: string;
  readonly origin: 'service' | 'runtime';
}

const runtimeMetricsFile = 'packages/runtime/src/kafka/metrics.ts';
/** How the runtime's metric names begin: the service's prefix, `p`. */
const placeholder = `\${p}`;

/** The top-level `key: value` properties of an object literal's text (`{ ... }`); methods are left out. */
function properties(object: string): Map<string, string> {
  const props = new Map<string, string>();
  const inner = object.slice(1, -1);
  let start = 0;
  let j = 0;
  const flush = (end: number) => {
    const part = inner.slice(start, end).trim();
    const m = /^(['"]?)([A-Za-z_$][\w$]*)\1\s*:\s*([\s\S]*)$/.exec(stripComments(part));
    if (m) props.set(m[2] as string, (m[3] as string).trim());
  };
  while (j < inner.length) {
    const c = inner[j] as string;
    if (c === "'" || c === '"' || c === '`') j = skipString(inner, j);
    else if (skipComment(inner, j) !== j) j = skipComment(inner, j);
    else if (BRACKETS[c]) j = skipBalanced(inner, j);
    else if (c === ',') {
      flush(j);
      j += 1;
      start = j;
    } else j += 1;
  }
  flush(inner.length);
  return props;
}

/** The text without comments outside strings (leading comments before a property, mostly). */
function stripComments(text: string): string {
  let out = '';
  let j = 0;
  while (j < text.length) {
    const c = text[j] as string;
    if (c === "'" || c === '"' || c === '`') {
      const end = skipString(text, j);
      out += text.slice(j, end);
      j = end;
    } else if (skipComment(text, j) !== j) {
      j = skipComment(text, j);
      out += ' ';
    } else {
      out += c;
      j += 1;
    }
  }
  return out.trim();
}

/** The value of a string or template literal (a template's raw text, `${...}` kept), or undefined. */
function literal(text: string): string | undefined {
  const t = text.trim();
  const m = /^(['"`])([\s\S]*)\1$/.exec(t);
  if (!m || skipString(t, 0) !== t.length) return undefined;
  return m[2] as string;
}

/**
 * Every `new Counter|Gauge|Histogram|Summary({ ... })` in a TypeScript source (the options object may span lines,
 * hold comments, nested objects and a `collect()` method). Throws, naming the place, when a name or the label
 * names are not literals: the checks built on this must not skip a metric silently.
 */
export function parseMetricDefinitions(source: string, path: string): MetricDefinition[] {
  const found: MetricDefinition[] = [];
  const construction =
    /\bnew\s+(?:[A-Za-z_$][\w$]*\.)?(Counter|Gauge|Histogram|Summary)\s*(?:<[^>()]*>)?\s*\(/g;
  for (const m of source.matchAll(construction)) {
    const line = source.slice(0, m.index).split('\n').length;
    const at = `${path}:${line}`;
    let i = (m.index as number) + m[0].length;
    while (/\s/.test(source[i] ?? '')) i += 1;
    if (source[i] !== '{') throw new Error(`${at}: new ${m[1]}(...) without an options object literal`);
    const props = properties(source.slice(i, skipBalanced(source, i)));
    const nameText = props.get('name');
    const name = nameText === undefined ? undefined : literal(nameText);
    if (name === undefined) throw new Error(`${at}: new ${m[1]}(...) whose name is not a string literal`);
    const labelsText = props.get('labelNames')?.replace(/\s+as\s+const$/, '');
    let labelNames: string[] = [];
    if (labelsText !== undefined) {
      const list = /^\[([\s\S]*)\]$/.exec(stripComments(labelsText));
      const items = list ? (list[1] as string).split(',').map((s) => s.trim()) : undefined;
      if (items && items[items.length - 1] === '') items.pop();
      const values = items?.map(literal);
      if (!values || values.some((v) => v === undefined))
        throw new Error(`${at}: ${name} has labelNames that are not a list of string literals`);
      labelNames = values as string[];
    }
    found.push({ name, type: (m[1] as string).toLowerCase() as MetricType, labelNames, at });
  }
  return found;
}

/** The service folders under services/ that have a src/metrics.ts. */
export async function services(): Promise<string[]> {
  const all = await readdir(join(repo, 'services'));
  const withMetrics = await Promise.all(
    all.map(async (s) => ((await readFile(metricsFile(s), 'utf8').catch(() => undefined)) ? s : undefined)),
  );
  return withMetrics.filter((s): s is string => s !== undefined).sort();
}

function metricsFile(service: string): string {
  return join(repo, 'services', service, 'src', 'metrics.ts');
}

/**
 * Every metric the services register: their own (services/<service>/src/metrics.ts) and the runtime's Kafka
 * consumer/producer/DLQ metrics (packages/runtime/src/kafka/metrics.ts, named `${p}...` with p the service's
 * prefix), expanded for each service. prom-client's default process metrics are left out.
 */
export async function registeredMetrics(): Promise<RegisteredMetric[]> {
  const runtimeSource = await readFile(join(repo, runtimeMetricsFile), 'utf8');
  if (!runtimeSource.includes('const p = metricPrefix(service);'))
    throw new Error(
      `${runtimeMetricsFile} no longer names its metrics \${p}... with p = metricPrefix(service)`,
    );
  const runtime = parseMetricDefinitions(runtimeSource, runtimeMetricsFile);
  const metrics: RegisteredMetric[] = [];
  for (const service of await services()) {
    const path = `services/${service}/src/metrics.ts`;
    for (const def of parseMetricDefinitions(await readFile(metricsFile(service), 'utf8'), path))
      metrics.push({ ...def, service, origin: 'service' });
    for (const def of runtime) {
      if (!def.name.startsWith(placeholder))
        throw new Error(`${def.at}: runtime metric ${def.name} is not named \${p}<what>`);
      const name = metricPrefix(service) + def.name.slice(placeholder.length);
      metrics.push({ ...def, name, service, origin: 'runtime' });
    }
  }
  return metrics;
}

/** The series names a metric is exposed as: a histogram's `_bucket`, `_sum`, `_count`; a summary's `_sum`, `_count`. */
export function seriesNames(metric: { name: string; type: MetricType }): string[] {
  if (metric.type === 'histogram') return ['_bucket', '_sum', '_count'].map((s) => metric.name + s);
  if (metric.type === 'summary') return [metric.name, `${metric.name}_sum`, `${metric.name}_count`];
  return [metric.name];
}

/** Metric names the services and the runtime register (not their `_bucket`/`_sum`/`_count` series). */
export async function registeredNames(): Promise<Set<string>> {
  return new Set((await registeredMetrics()).map((m) => m.name));
}
