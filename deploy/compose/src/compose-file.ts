import { isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { interpolate } from './interpolate.js';

// Reading a compose document the way Compose does before it validates it: YAML with merge keys (`<<`) and
// anchors, then interpolation. The accessors below read the short and long syntaxes of the attributes the
// checks need (environment, volumes, ports, depends_on, healthcheck, build).

export type ComposeDocument = Record<string, unknown> & { services?: Record<string, ComposeService> };
export type ComposeService = Record<string, unknown>;

/** Parses compose YAML and interpolates it with `env` (variables not set take their `${VAR:-default}`). */
export function loadCompose(
  text: string,
  env: Readonly<Record<string, string | undefined>> = {},
): ComposeDocument {
  const raw: unknown = parse(text, { merge: true });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a mapping');
  return interpolate(raw, env) as ComposeDocument;
}

export function servicesOf(doc: ComposeDocument): [string, ComposeService][] {
  return Object.entries(doc.services ?? {});
}

/** `environment` as a map (mapping or `KEY=value` list form; a bare `KEY` is passed from the host: undefined). */
export function environmentOf(service: ComposeService): Map<string, string | undefined> {
  const env = service.environment;
  const out = new Map<string, string | undefined>();
  if (Array.isArray(env)) {
    for (const item of env as string[]) {
      const eq = item.indexOf('=');
      if (eq < 0) out.set(item, undefined);
      else out.set(item.slice(0, eq), item.slice(eq + 1));
    }
  } else if (env && typeof env === 'object') {
    for (const [k, v] of Object.entries(env))
      out.set(k, v === null || v === undefined ? undefined : String(v));
  }
  return out;
}

export interface Mount {
  readonly type: 'bind' | 'volume';
  /** A bind mount's host path (absolute), or the volume's name. */
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

/** `volumes` of a service, short or long syntax; relative bind sources resolve against `composeDir`. */
export function mountsOf(service: ComposeService, composeDir: string): Mount[] {
  const out: Mount[] = [];
  for (const v of (service.volumes as unknown[] | undefined) ?? []) {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':');
      const bind = /^[./~]/.test(source) || isAbsolute(source);
      out.push({
        type: bind ? 'bind' : 'volume',
        source: bind ? resolve(composeDir, source) : source,
        target,
        readOnly: mode.split(',').includes('ro'),
      });
    } else {
      const m = v as { type: string; source: string; target: string; read_only?: boolean };
      const bind = m.type === 'bind';
      out.push({
        type: bind ? 'bind' : 'volume',
        source: bind ? resolve(composeDir, m.source) : m.source,
        target: m.target,
        readOnly: m.read_only === true,
      });
    }
  }
  return out;
}

/** Where a path inside the container comes from on the host, through the service's bind mounts. */
export function hostPathOf(
  service: ComposeService,
  composeDir: string,
  containerPath: string,
): string | undefined {
  const binds = mountsOf(service, composeDir)
    .filter((m) => m.type === 'bind')
    .sort((a, b) => b.target.length - a.target.length);
  for (const m of binds) {
    if (containerPath === m.target) return m.source;
    if (containerPath.startsWith(`${m.target.replace(/\/$/, '')}/`)) {
      return resolve(m.source, containerPath.slice(m.target.replace(/\/$/, '').length + 1));
    }
  }
  return undefined;
}

export interface Port {
  readonly hostIp: string | undefined;
  readonly published: string | undefined;
  readonly target: number;
}

/** `ports`, short syntax (`[ip:][published:]target[/proto]`) or long. */
export function portsOf(service: ComposeService): Port[] {
  return ((service.ports as unknown[] | undefined) ?? []).map((p) => {
    if (typeof p === 'number') return { hostIp: undefined, published: undefined, target: p };
    if (typeof p === 'string') {
      const parts = p.replace(/\/(tcp|udp)$/, '').split(':');
      const target = Number(parts.pop());
      const published = parts.pop();
      return { hostIp: parts.pop(), published, target };
    }
    const m = p as { host_ip?: string; published?: string | number; target: number };
    return {
      hostIp: m.host_ip,
      published: m.published === undefined ? undefined : String(m.published),
      target: m.target,
    };
  });
}

/** `depends_on` as service → condition (the list form means service_started). */
export function dependsOn(service: ComposeService): Map<string, string> {
  const d = service.depends_on;
  if (Array.isArray(d)) return new Map((d as string[]).map((s) => [s, 'service_started']));
  const out = new Map<string, string>();
  for (const [name, v] of Object.entries((d as Record<string, { condition?: string }> | undefined) ?? {})) {
    out.set(name, v.condition ?? 'service_started');
  }
  return out;
}

/** `build` as context + dockerfile + target (the string form is the context). */
export function buildOf(
  service: ComposeService,
  composeDir: string,
): { context: string; dockerfile: string; target: string | undefined } | undefined {
  const b = service.build;
  if (b === undefined) return undefined;
  const spec =
    typeof b === 'string'
      ? { context: b }
      : (b as { context?: string; dockerfile?: string; target?: string });
  const context = resolve(composeDir, spec.context ?? '.');
  return { context, dockerfile: resolve(context, spec.dockerfile ?? 'Dockerfile'), target: spec.target };
}

/** The healthcheck command as one string (CMD / CMD-SHELL forms), or undefined. */
export function healthcheckCommand(service: ComposeService): string | undefined {
  const h = service.healthcheck as { test?: string | string[]; disable?: boolean } | undefined;
  if (!h || h.disable || h.test === undefined) return undefined;
  if (typeof h.test === 'string') return h.test;
  const [kind, ...rest] = h.test;
  return kind === 'NONE' ? undefined : rest.join(' ');
}

/** A Compose duration (`1m30s`, `500ms`, `10s`) in milliseconds. */
export function durationMs(value: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, ns: 0.000001 };
  let total = 0;
  let rest = value.trim();
  while (rest !== '') {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/.exec(rest);
    if (!m) throw new Error(`not a duration: ${value}`);
    total += Number(m[1]) * (units[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return total;
}
