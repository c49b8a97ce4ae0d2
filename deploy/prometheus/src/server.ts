// A real Prometheus server (Debian's `prometheus` package, installed by deploy/local/stack.sh) run against
// LiveLens services, for whole-pipeline tests and the demo: it runs the shipped prometheus.yml and alerts.yml
// with only the scrape targets (and, when asked, the intervals) replaced, and reads results through the HTTP
// API. Source-only TypeScript: import it under vitest or tsx (`@livelens/deploy-prometheus`).
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { access, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parseDocument, Scalar } from 'yaml';

/** The LiveLens services prometheus.yml scrapes; each is the job `livelens-<service>`. */
export const LIVELENS_SERVICES = ['ingest', 'frame-analyzer', 'asr', 'fusion'] as const;
export type LiveLensService = (typeof LIVELENS_SERVICES)[number];

/** deploy/prometheus: the shipped prometheus.yml and its rule files. */
export const SHIPPED_CONFIG_DIR = fileURLToPath(new URL('../', import.meta.url));

export interface PrometheusOptions {
  /**
   * Where each service serves /metrics (`host:port`). A service left out is dropped from the scrape config
   * (so it is not reported down, and LiveLensServiceDown does not fire for it).
   */
  targets: Partial<Record<LiveLensService, string>>;
  /** Port of Prometheus's UI and API on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Working directory (config, rules, TSDB, log). Default: a temp dir, removed by `stop()`. Kept if given. */
  dataDir?: string;
  /** global.scrape_interval in seconds (fractions allowed). Default: the shipped one (5 s). */
  scrapeIntervalS?: number;
  /** global.evaluation_interval in seconds, for rules and alerts. Default: the shipped one (15 s). */
  evaluationIntervalS?: number;
  /** @default 'prometheus' from PATH (/usr/bin/prometheus) */
  binary?: string;
  /** Prometheus's own log (stdout and stderr). Default: `<dataDir>/prometheus.log`. */
  logFile?: string;
  /** How long to wait for /-/ready. @default 30000 */
  startTimeoutMs?: number;
}

/** One sample of an instant query: its labels, its value (NaN and ±Inf included) and its time (ms). */
export interface PrometheusSample {
  metric: Record<string, string>;
  value: number;
  timestampMs: number;
}

export interface PrometheusTarget {
  job: string;
  instance: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

export interface PrometheusRule {
  name: string;
  type: 'alerting' | 'recording';
  query: string;
  health: string;
  /** Alerting rules: inactive, pending or firing. */
  state?: string;
  labels?: Record<string, string>;
}

export interface PrometheusRuleGroup {
  name: string;
  file: string;
  rules: PrometheusRule[];
}

export interface PrometheusServer {
  /** Base URL of the UI and API, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  /** The working directory: prometheus.yml (generated), the rule files, data/ and, by default, the log. */
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** Instant query (/api/v1/query); a scalar result comes back as one sample without labels. */
  query(expr: string): Promise<PrometheusSample[]>;
  /** The value of the first sample of `query(expr)`, undefined when the result is empty. */
  value(expr: string): Promise<number | undefined>;
  /** Polls `query(expr)` until `predicate` accepts the result, and returns it; throws after `timeoutMs`. */
  waitFor(
    expr: string,
    predicate: (samples: PrometheusSample[]) => boolean,
    timeoutMs?: number,
  ): Promise<PrometheusSample[]>;
  /** The active scrape targets (/api/v1/targets). */
  targets(): Promise<PrometheusTarget[]>;
  /**
   * Waits until every target of `jobs` (service names or job names; default every configured job) was
   * scraped successfully (health "up"). The timeout error lists each target's health and last error.
   */
  waitForTargetsUp(jobs?: readonly string[], timeoutMs?: number): Promise<PrometheusTarget[]>;
  /** The loaded rule groups (/api/v1/rules). */
  rules(): Promise<PrometheusRuleGroup[]>;
  /** Tail of Prometheus's log. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, SIGKILL if it has not exited after `timeoutMs` (default 10 s); removes the temp dir it made. */
  stop(timeoutMs?: number): Promise<void>;
}

/** An answer of the Prometheus API with status "error" (e.g. a bad expression). */
export class PrometheusApiError extends Error {
  constructor(
    readonly path: string,
    readonly errorType: string,
    readonly apiError: string,
  ) {
    super(`Prometheus ${path}: ${errorType}: ${apiError}`);
    this.name = 'PrometheusApiError';
  }
}

const jobOf = (service: string) => (service.startsWith('livelens-') ? service : `livelens-${service}`);

const duration = (seconds: number, what: string) => {
  if (!(seconds > 0) || !Number.isFinite(seconds))
    throw new Error(`${what} must be a positive number of seconds`);
  return Number.isInteger(seconds) ? `${seconds}s` : `${Math.max(1, Math.round(seconds * 1000))}ms`;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `name` if it is a path, else its first match in PATH; undefined when there is no such executable. */
async function findExecutable(name: string): Promise<string | undefined> {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir || '.', name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there, or not executable: the next candidate
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function tail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * The shipped prometheus.yml with the static targets of the given services replaced (the others' jobs
 * dropped) and the intervals set when asked. Returns the config text and the rule files it names.
 */
export async function renderConfig(
  options: Pick<PrometheusOptions, 'targets' | 'scrapeIntervalS' | 'evaluationIntervalS'>,
): Promise<{ text: string; ruleFiles: string[] }> {
  const shipped = join(SHIPPED_CONFIG_DIR, 'prometheus.yml');
  const doc = parseDocument(await readFile(shipped, 'utf8'));
  if (doc.errors.length > 0) throw new Error(`${shipped}: ${doc.errors[0]?.message}`);
  if (options.scrapeIntervalS !== undefined)
    doc.setIn(['global', 'scrape_interval'], duration(options.scrapeIntervalS, 'scrapeIntervalS'));
  if (options.evaluationIntervalS !== undefined)
    doc.setIn(
      ['global', 'evaluation_interval'],
      duration(options.evaluationIntervalS, 'evaluationIntervalS'),
    );

  const wanted = new Map<string, string>();
  for (const [service, target] of Object.entries(options.targets)) {
    if (target === undefined) continue;
    if (!(LIVELENS_SERVICES as readonly string[]).includes(service))
      throw new Error(`unknown service ${service} (one of ${LIVELENS_SERVICES.join(', ')})`);
    if (!/^[^\s/:]+:\d+$/.test(target))
      throw new Error(`target for ${service} must be host:port, got ${target}`);
    wanted.set(jobOf(service), target);
  }
  const jobs = doc.get('scrape_configs');
  if (!isSeq(jobs)) throw new Error(`${shipped}: no scrape_configs list`);
  const found = new Set<string>();
  jobs.items = jobs.items.filter((job) => {
    if (!isMap(job)) return false;
    const name = String(job.get('job_name'));
    const target = wanted.get(name);
    if (target === undefined) return false;
    found.add(name);
    const quoted = new Scalar(target);
    quoted.type = Scalar.QUOTE_DOUBLE;
    job.set('static_configs', doc.createNode([{ targets: doc.createNode([quoted], { flow: true }) }]));
    return true;
  });
  for (const job of wanted.keys()) if (!found.has(job)) throw new Error(`${shipped} has no job ${job}`);

  doc.commentBefore = ` Generated by @livelens/deploy-prometheus startPrometheus from ${shipped}:\n targets${
    options.scrapeIntervalS !== undefined || options.evaluationIntervalS !== undefined ? ' and intervals' : ''
  } replaced.\n${doc.commentBefore ?? ''}`;
  const rules = doc.get('rule_files');
  const ruleFiles = isSeq(rules)
    ? rules.items.map((item) => String(item instanceof Scalar ? item.value : item))
    : [];
  return { text: doc.toString(), ruleFiles };
}

/**
 * Starts Prometheus on 127.0.0.1 with the shipped config and rules, scraping `targets`, and resolves once
 * /-/ready answers. The process is tied to this one (`setpriv --pdeathsig KILL`, when util-linux's setpriv
 * is there): it dies with it even on SIGKILL. Call `stop()` when done.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const binaryName = options.binary ?? 'prometheus';
  const binary = await findExecutable(binaryName);
  if (binary === undefined)
    throw new Error(
      `Prometheus binary not found: ${binaryName}. Install Debian's \`prometheus\` package ` +
        '(`npm run setup` or `bash deploy/local/stack.sh up` does), or pass `binary`.',
    );

  const { text, ruleFiles } = await renderConfig(options);
  const ownDir = options.dataDir === undefined;
  const dir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'livelens-prometheus-')));
  const configFile = join(dir, 'prometheus.yml');
  const logFile = options.logFile ?? join(dir, 'prometheus.log');
  const cleanup = () => (ownDir ? rm(dir, { recursive: true, force: true }) : Promise.resolve());

  try {
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(configFile, text);
    for (const file of ruleFiles)
      if (!isAbsolute(file)) await copyFile(join(SHIPPED_CONFIG_DIR, file), join(dir, file));
  } catch (error) {
    await cleanup();
    throw error;
  }

  const setpriv = await findExecutable('setpriv');
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  // A picked free port may be taken before Prometheus binds it: try again on another one.
  const attempts = options.port ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    const port = options.port || (await freePort());
    const args = [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--storage.tsdb.retention.time=1h`,
      `--web.listen-address=127.0.0.1:${port}`,
    ];
    const logFd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = setpriv
        ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', binary, ...args], { stdio: ['ignore', logFd, logFd] })
        : spawn(binary, args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    const server = makeServer(child, port, dir, configFile, logFile, cleanup);
    try {
      await server.waitReady(startTimeoutMs);
      return server.api;
    } catch (error) {
      await server.terminate(5_000);
      const log = await tail(logFile);
      if (attempt < attempts && /address already in use/.test(log)) continue;
      await cleanup();
      const where = ownDir && options.logFile === undefined ? 'Prometheus log' : logFile;
      throw new Error(`${(error as Error).message}\n--- ${where} (tail) ---\n${log || '(empty)'}`);
    }
  }
}

function makeServer(
  child: ChildProcess,
  port: number,
  dir: string,
  configFile: string,
  logFile: string,
  cleanup: () => Promise<void>,
) {
  const url = `http://127.0.0.1:${port}`;
  let exit: { code: number | null; signal: string | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      exit ??= { code: null, signal: null };
      resolve();
    });
  });
  // Without setpriv, at least a normal exit of this process takes Prometheus with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  async function api<T>(path: string, params?: Record<string, string>): Promise<T> {
    const query = params ? `?${new URLSearchParams(params)}` : '';
    const response = await fetch(`${url}${path}${query}`, { signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    let body: { status?: string; data?: T; errorType?: string; error?: string };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`Prometheus ${path}: HTTP ${response.status}: ${text.slice(0, 500)}`);
    }
    if (body.status !== 'success')
      throw new PrometheusApiError(path, body.errorType ?? `HTTP ${response.status}`, body.error ?? text);
    return body.data as T;
  }

  const toSample = (metric: Record<string, string>, [t, v]: [number, string]): PrometheusSample => ({
    metric,
    value: Number(v),
    timestampMs: Math.round(t * 1000),
  });

  const server: PrometheusServer = {
    url,
    port,
    dataDir: dir,
    configFile,
    logFile,
    async query(expr) {
      const data = await api<{ resultType: string; result: unknown }>('/api/v1/query', { query: expr });
      switch (data.resultType) {
        case 'vector':
          return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) =>
            toSample(s.metric, s.value),
          );
        case 'scalar':
          return [toSample({}, data.result as [number, string])];
        default:
          throw new Error(
            `Prometheus query ${expr}: a ${data.resultType} result, expected a vector or scalar`,
          );
      }
    },
    async value(expr) {
      return (await server.query(expr))[0]?.value;
    },
    async waitFor(expr, predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PrometheusSample[] | Error | undefined;
      for (;;) {
        try {
          last = await server.query(expr);
          if (predicate(last)) return last;
        } catch (error) {
          if (error instanceof PrometheusApiError) throw error;
          last = error as Error;
        }
        if (Date.now() >= deadline)
          throw new Error(
            `Prometheus: ${expr} not as expected after ${timeoutMs} ms; last: ${
              last instanceof Error ? last.message : JSON.stringify(last)
            }`,
          );
        await sleep(250);
      }
    },
    async targets() {
      const data = await api<{
        activeTargets: {
          labels: Record<string, string>;
          scrapePool: string;
          scrapeUrl: string;
          health: PrometheusTarget['health'];
          lastError: string;
        }[];
      }>('/api/v1/targets', { state: 'active' });
      return data.activeTargets.map((t) => ({
        job: t.labels.job ?? t.scrapePool,
        instance: t.labels.instance ?? '',
        scrapeUrl: t.scrapeUrl,
        health: t.health,
        lastError: t.lastError,
      }));
    },
    async waitForTargetsUp(jobs, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      const wanted = jobs?.map(jobOf);
      let last: PrometheusTarget[] | Error = [];
      for (;;) {
        try {
          const targets = await server.targets();
          last = targets;
          const configured = new Set(targets.map((t) => t.job));
          const missing = (wanted ?? []).filter((job) => !configured.has(job));
          if (missing.length > 0 && targets.length > 0)
            throw new Error(
              `Prometheus scrapes no job ${missing.join(', ')} (it has ${[...configured].join(', ')})`,
            );
          const selected = targets.filter((t) => wanted === undefined || wanted.includes(t.job));
          if (selected.length > 0 && selected.every((t) => t.health === 'up')) return selected;
        } catch (error) {
          if (error instanceof PrometheusApiError || /scrapes no job/.test((error as Error).message))
            throw error;
          last = error as Error;
        }
        if (Date.now() >= deadline) {
          const state =
            last instanceof Error
              ? last.message
              : last
                  .map((t) => `${t.job} ${t.instance}: ${t.health}${t.lastError ? ` (${t.lastError})` : ''}`)
                  .join('; ');
          throw new Error(`Prometheus targets not up after ${timeoutMs} ms: ${state || 'no targets'}`);
        }
        await sleep(250);
      }
    },
    async rules() {
      const data = await api<{ groups: PrometheusRuleGroup[] }>('/api/v1/rules');
      return data.groups.map((g) => ({
        name: g.name,
        file: g.file,
        rules: g.rules.map((r) => ({
          name: r.name,
          type: r.type,
          query: r.query,
          health: r.health,
          ...(r.state !== undefined && { state: r.state }),
          ...(r.labels !== undefined && { labels: r.labels }),
        })),
      }));
    },
    logTail: (lines) => tail(logFile, lines),
    async stop(timeoutMs = 10_000) {
      await terminate(timeoutMs);
      await cleanup();
    },
  };

  async function terminate(timeoutMs: number) {
    if (exit === undefined) {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      if (exit === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    process.removeListener('exit', killOnExit);
  }

  async function waitReady(timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    for (;;) {
      if (spawnError) throw new Error(`Prometheus could not be started: ${spawnError.message}`);
      if (exit !== undefined)
        throw new Error(
          `Prometheus exited before it was ready (code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''})`,
        );
      try {
        const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        await response.text();
        if (response.status === 200) return;
        lastError = `/-/ready answered ${response.status}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (Date.now() >= deadline)
        throw new Error(`Prometheus not ready on ${url} after ${timeoutMs} ms (${lastError})`);
      await Promise.race([sleep(100), exited]);
    }
  }

  return { api: server, waitReady, terminate };
}
