import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BRACKETS, skipBalanced, skipComment, skipString } from '../../source-scan.js';
import { repo } from './tools.js';

// What the manifests must agree with, read from the services' own source (as deploy/prometheus/metric-names.ts
// reads their metrics): each service's config fields (services/<name>/src/config.ts, plus the shared ones of
// packages/runtime/src/config/common.ts), the consumer groups and topics of its consumer loops
// (services/<name>/src/service.ts), the topic contracts (packages/contracts/src/topics.ts), the models
// directory variables of packages/inference/src/resolve.ts, and the runtime's consumer-lag metric.

/** The top-level arguments of the call whose `(` is at `open`, as source text. */
export function callArguments(src: string, open: number): string[] {
  const end = skipBalanced(src, open);
  const args: string[] = [];
  let start = open + 1;
  let j = start;
  while (j < end - 1) {
    const c = src[j] as string;
    if (c === "'" || c === '"' || c === '`') j = skipString(src, j);
    else if (skipComment(src, j) !== j) j = skipComment(src, j);
    else if (BRACKETS[c]) j = skipBalanced(src, j);
    else if (c === ',') {
      args.push(src.slice(start, j).trim());
      start = j + 1;
      j += 1;
    } else j += 1;
  }
  const last = src.slice(start, end - 1).trim();
  if (last !== '') args.push(last);
  return args;
}

/** The value of a plain string literal ('...', "..." or `...` without substitutions); undefined otherwise. */
export function stringLiteral(text: string | undefined): string | undefined {
  const m = /^(['"`])([\s\S]*)\1$/.exec(text?.trim() ?? '');
  if (!m || (m[1] === '`' && m[2]?.includes('${'))) return undefined;
  return (m[2] ?? '').replace(/\\(.)/g, '$1');
}

/** One `key: field('NAME', schema, 'description', 'default')` of a config declaration. */
export interface ConfigField {
  readonly key: string;
  readonly name: string;
  /** undefined = required (no default). */
  readonly default: string | undefined;
}

/** The `field(...)` declarations of one source file, by property key. */
export function parseConfigFields(src: string): Map<string, ConfigField> {
  const fields = new Map<string, ConfigField>();
  for (const m of src.matchAll(/(\w+)\s*:\s*field\(/g)) {
    const key = m[1] as string;
    const args = callArguments(src, (m.index ?? 0) + m[0].length - 1);
    const name = stringLiteral(args[0]);
    if (!name || !/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`field ${key}: no literal variable name`);
    fields.set(key, { key, name, default: stringLiteral(args[3]) });
  }
  return fields;
}

/** A consumer loop of a service: the topic it reads and its consumer group, as the defaults make them. */
export interface Consumer {
  /** The topic's role in packages/contracts/src/topics.ts (`frames`, `frameAnalysis`, ...). */
  readonly role: string;
  /** The topic name without KAFKA_TOPIC_PREFIX. */
  readonly topic: string;
  /** The config field the group comes from, e.g. FRAME_ANALYZER_GROUP_ID. */
  readonly groupVariable: string;
  /** What the service appends to that variable's value (fusion: `-frames`, `-transcripts`, ...). */
  readonly groupSuffix: string;
  /** The group with the default config. */
  readonly defaultGroup: string;
}

/** What one service declares. */
export interface ServiceSource {
  /** The folder name under services/: ingest, frame-analyzer, asr, fusion. */
  readonly name: string;
  /** Every config field, the shared ones included, by variable name. */
  readonly fields: ReadonlyMap<string, ConfigField>;
  /** Environment variables read besides its config fields (the models directory of packages/inference). */
  readonly extraVariables: readonly string[];
  readonly consumers: readonly Consumer[];
  /** Whether it runs models (depends on @livelens/inference). */
  readonly usesModels: boolean;
}

/** One topic contract. */
export interface TopicContract {
  readonly role: string;
  readonly name: string;
  readonly retentionMs: number;
}

export interface Sources {
  readonly services: ReadonlyMap<string, ServiceSource>;
  readonly topics: ReadonlyMap<string, TopicContract>;
  /** `livelens_<service>_consumer_lag_messages` without the prefix, and its label names. */
  readonly lagMetric: { readonly suffix: string; readonly labelNames: readonly string[] };
}

const read = (path: string) => readFile(join(repo, path), 'utf8');

/** Evaluates `a * b * ...` of integer literals (with `_` separators) and known constants. */
function product(expr: string, constants: Record<string, number>): number {
  return expr.split('*').reduce((acc, part) => {
    const p = part.trim().replaceAll('_', '');
    const v = /^\d+$/.test(p) ? Number(p) : constants[part.trim()];
    if (v === undefined) throw new Error(`cannot evaluate ${JSON.stringify(part.trim())} in ${expr}`);
    return acc * v;
  }, 1);
}

export function parseTopics(src: string): Map<string, TopicContract> {
  const constants: Record<string, number> = {};
  for (const m of src.matchAll(/const (\w+) = ([\d_ *]+);/g))
    constants[m[1] as string] = product(m[2] as string, {});
  const fallback = /defaults: \{[^}]*retentionMs: ([^,}]+)/.exec(src.slice(src.indexOf('function topic')));
  if (!fallback) throw new Error('topics.ts: no default retention in topic()');
  const defaultRetention = product(fallback[1] as string, constants);
  const topics = new Map<string, TopicContract>();
  for (const m of src.matchAll(/(\w+): topic\(/g)) {
    const role = m[1] as string;
    const spec = callArguments(src, (m.index ?? 0) + m[0].length - 1)[0] ?? '';
    const name = /\bname: '([^']+)'/.exec(spec)?.[1];
    if (!name) throw new Error(`topics.ts: topic ${role} has no literal name`);
    const retention = /\bdefaults: \{[^}]*retentionMs: ([^,}]+)/.exec(spec)?.[1];
    topics.set(role, {
      role,
      name,
      retentionMs: retention ? product(retention, constants) : defaultRetention,
    });
  }
  return topics;
}

/** The consumer loops of a service.ts: `consumerLoop(topics.<role>, handler, { groupId: ... })`. */
export function parseConsumers(
  src: string,
  fields: ReadonlyMap<string, ConfigField>,
  topics: ReadonlyMap<string, TopicContract>,
): Consumer[] {
  const byKey = new Map([...fields.values()].map((f) => [f.key, f]));
  const consumers: Consumer[] = [];
  for (const m of src.matchAll(/\.consumerLoop\(/g)) {
    const args = callArguments(src, (m.index ?? 0) + m[0].length - 1);
    const role = /^topics\.(\w+)$/.exec(args[0] ?? '')?.[1];
    const group = /\bgroupId:\s*(?:config\.(\w+)\b|`\$\{config\.(\w+)\}([^`$]*)`)/.exec(args[2] ?? '');
    if (!role || !group) throw new Error(`consumerLoop(${args[0]}, ...): topic or groupId not recognised`);
    const field = byKey.get((group[1] ?? group[2]) as string);
    const topic = topics.get(role);
    if (!field?.default || !topic) throw new Error(`consumerLoop(${args[0]}): unknown group field or topic`);
    const suffix = group[3] ?? '';
    consumers.push({
      role,
      topic: topic.name,
      groupVariable: field.name,
      groupSuffix: suffix,
      defaultGroup: `${field.default}${suffix}`,
    });
  }
  return consumers;
}

/** Reads every service's declarations and the shared contracts. */
export async function readSources(): Promise<Sources> {
  const topics = parseTopics(await read('packages/contracts/src/topics.ts'));
  const common = parseConfigFields(await read('packages/runtime/src/config/common.ts'));
  const modelVariables = [
    ...new Set(
      [...(await read('packages/inference/src/resolve.ts')).matchAll(/\benv\.(LIVELENS_[A-Z_]+)/g)].map(
        (m) => m[1] as string,
      ),
    ),
  ];
  const services = new Map<string, ServiceSource>();
  for (const name of (await readdir(join(repo, 'services'), { withFileTypes: true })).filter((d) =>
    d.isDirectory(),
  )) {
    const dir = `services/${name.name}`;
    const config = await read(`${dir}/src/config.ts`);
    const own = parseConfigFields(config);
    const fields = new Map<string, ConfigField>();
    if (config.includes('...commonConfigFields')) for (const f of common.values()) fields.set(f.name, f);
    for (const f of own.values()) fields.set(f.name, f);
    const pkg = JSON.parse(await read(`${dir}/package.json`)) as { dependencies?: Record<string, string> };
    const usesModels = Boolean(pkg.dependencies?.['@livelens/inference']);
    services.set(name.name, {
      name: name.name,
      fields,
      extraVariables: usesModels ? modelVariables : [],
      consumers: parseConsumers(await read(`${dir}/src/service.ts`), fields, topics),
      usesModels,
    });
  }
  const metrics = await read('packages/runtime/src/kafka/metrics.ts');
  const lag = /name: `\$\{p\}(consumer_lag_messages)`,[\s\S]*?labelNames: \[([^\]]*)\]/.exec(metrics);
  if (!lag) throw new Error('packages/runtime/src/kafka/metrics.ts: no consumer_lag_messages gauge');
  const labelNames = [...(lag[2] as string).matchAll(/'([^']+)'/g)].map((m) => m[1] as string);
  return { services, topics, lagMetric: { suffix: lag[1] as string, labelNames } };
}

/** The metric prefix of a service, as packages/runtime/src/kafka/metrics.ts makes it: `livelens_<service>_`. */
export function metricPrefix(service: string): string {
  return `livelens_${service.replace(/[^a-zA-Z0-9_]/g, '_')}_`;
}
