// The four LiveLens services as local processes: the built entry points (services/<name>/dist/main.js), each
// with its environment, log file and ports, started in pipeline order and waited on until /readyz answers.
// Attached (the demo, the whole-pipeline test): the children die with this process. Detached (`livelens stack
// up`): they run in their own session with a pid file, and `livelens stack down` stops them.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { livelensHome, logsDir, modelsDir, repoRoot, runDir } from './paths.js';

export const SERVICE_NAMES = ['ingest', 'frame-analyzer', 'asr', 'fusion'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Ports of a local pipeline. The defaults are the ones deploy/prometheus/prometheus.yml scrapes. */
export interface PipelineLayout {
  readonly metricsPorts: Readonly<Record<ServiceName, number>>;
  readonly ingestGrpcPort: number;
  readonly fusionGrpcPort: number;
}

export const DEFAULT_LAYOUT: PipelineLayout = {
  metricsPorts: { ingest: 9464, 'frame-analyzer': 9465, asr: 9466, fusion: 9467 },
  ingestGrpcPort: 50051,
  fusionGrpcPort: 50052,
};

export interface PipelineOptions {
  readonly kafkaBrokers: string;
  readonly redisUrl: string;
  /** @default DEFAULT_LAYOUT */
  readonly layout?: PipelineLayout;
  /** `KAFKA_TOPIC_PREFIX` of every service. @default '' */
  readonly topicPrefix?: string;
  /** Prefix of consumer groups and Redis keys, so a test's pipeline shares nothing with another. @default 'livelens' */
  readonly namespace?: string;
  /** `INGEST_MEDIA_ROOT`: where `file://` sources may be read from. @default none (file sources refused) */
  readonly mediaRoot?: string;
  /** @default 'info' */
  readonly logLevel?: string;
  /** Where `<service>.log` files go. @default `$LIVELENS_HOME/logs` */
  readonly logDir?: string;
  /** Extra environment per service (wins over everything else). */
  readonly env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** How long a service may take to answer /readyz (models load first). @default 180_000 */
  readonly readyTimeoutMs?: number;
  /** Called as each service starts and becomes ready. */
  readonly onProgress?: (service: ServiceName, state: 'starting' | 'ready', elapsedMs: number) => void;
}

export class ServiceStartError extends Error {
  override readonly name = 'ServiceStartError';
}

/** Where a service's built entry point is. */
export const serviceEntry = (name: ServiceName) => resolve(repoRoot, 'services', name, 'dist', 'main.js');

/**
 * What the services take from the CLI's own environment: their settings (`INGEST_*`, `FRAME_ANALYZER_*`,
 * `ASR_*`, `FUSION_*`, `LOG_LEVEL`), and what a GPU or the system needs (`LD_LIBRARY_PATH`, `CUDA_*`, `TMPDIR`,
 * locale). Nothing else (no credentials of the shell); and the CLI's own wiring (brokers, ports, groups,
 * prefixes) wins over them.
 */
const FORWARDED =
  /^(INGEST_|FRAME_ANALYZER_|ASR_|FUSION_|CUDA_|LC_)|^(LOG_LEVEL|LD_LIBRARY_PATH|TMPDIR|LANG|TZ)$/;

export function forwardedEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => FORWARDED.test(e[0]) && e[1] !== undefined),
  );
}

/** The environment of one service of a local pipeline. */
export function serviceEnv(name: ServiceName, options: PipelineOptions): Record<string, string> {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const ns = options.namespace ?? 'livelens';
  const common: Record<string, string> = {
    KAFKA_BROKERS: options.kafkaBrokers,
    REDIS_URL: options.redisUrl,
    KAFKA_TOPIC_PREFIX: options.topicPrefix ?? '',
    KAFKA_CLIENT_ID: `${ns}-${name}`,
    LOG_LEVEL: options.logLevel ?? process.env.LOG_LEVEL ?? 'info',
    METRICS_PORT: String(layout.metricsPorts[name]),
    LIVELENS_HOME: livelensHome(),
    LIVELENS_MODELS_DIR: modelsDir(),
  };
  const own: Record<ServiceName, Record<string, string>> = {
    ingest: {
      INGEST_GRPC_HOST: '127.0.0.1',
      INGEST_GRPC_PORT: String(layout.ingestGrpcPort),
      // The demo's RTMP server and HTTP sources run on this machine: loopback is allowed, nothing else private.
      INGEST_ALLOWED_CIDRS: '127.0.0.0/8',
      INGEST_REDIS_KEY_PREFIX: `${ns}:{ingest}:`,
      ...(options.mediaRoot ? { INGEST_MEDIA_ROOT: options.mediaRoot } : {}),
    },
    'frame-analyzer': { FRAME_ANALYZER_GROUP_ID: `${ns}-frame-analyzer` },
    asr: { ASR_GROUP_ID: `${ns}-asr` },
    fusion: {
      FUSION_GROUP_ID: `${ns}-fusion`,
      FUSION_REDIS_PREFIX: `${ns}:fusion:`,
      FUSION_GRPC_HOST: '127.0.0.1',
      FUSION_GRPC_PORT: String(layout.fusionGrpcPort),
    },
  };
  return { ...forwardedEnv(), ...common, ...own[name], ...(options.env?.[name] ?? {}) };
}

/** A running local pipeline, attached to this process. */
export interface Pipeline {
  readonly layout: PipelineLayout;
  readonly ingestAddress: string;
  readonly fusionAddress: string;
  readonly metricsUrls: Readonly<Record<ServiceName, string>>;
  readonly logFiles: Readonly<Record<ServiceName, string>>;
  readonly pids: () => Readonly<Partial<Record<ServiceName, number>>>;
  /** A service that exited on its own (not by stop()), with its exit code: the caller decides what to do. */
  readonly exited: Promise<{ service: ServiceName; code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM in pipeline order (ingest first), SIGKILL after `timeoutMs`; resolves when all have exited. */
  stop(timeoutMs?: number): Promise<void>;
}

const STOP_ORDER: readonly (readonly ServiceName[])[] = [['ingest'], ['frame-analyzer', 'asr'], ['fusion']];

/** Starts the four services attached to this process and waits until each answers /readyz. */
export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  for (const name of SERVICE_NAMES) assertBuilt(name);
  const logDir = options.logDir ?? logsDir();
  await mkdir(logDir, { recursive: true });
  const children = new Map<ServiceName, ChildProcess>();
  const logFiles = Object.fromEntries(SERVICE_NAMES.map((n) => [n, join(logDir, `${n}.log`)])) as Record<
    ServiceName,
    string
  >;
  let stopping = false;
  let reportExit: (e: { service: ServiceName; code: number | null; signal: NodeJS.Signals | null }) => void =
    () => undefined;
  const exited = new Promise<{ service: ServiceName; code: number | null; signal: NodeJS.Signals | null }>(
    (r) => {
      reportExit = r;
    },
  );

  const stop = async (timeoutMs = 30_000) => {
    stopping = true;
    for (const group of STOP_ORDER) {
      await Promise.all(
        group.map(async (name) => {
          const child = children.get(name);
          if (child) await terminate(child, timeoutMs);
        }),
      );
    }
  };

  await assertPortsFree(layout);
  try {
    // Pipeline order: fusion and the analyzers create and join their topics before ingest publishes.
    for (const name of ['fusion', 'asr', 'frame-analyzer', 'ingest'] as const) {
      const started = Date.now();
      options.onProgress?.(name, 'starting', 0);
      const child = spawnService(name, serviceEnv(name, options), logFiles[name], true);
      children.set(name, child);
      child.once('exit', (code, signal) => {
        if (!stopping) reportExit({ service: name, code, signal });
      });
      await waitReady(
        name,
        child,
        layout.metricsPorts[name],
        logFiles[name],
        options.readyTimeoutMs ?? 180_000,
      );
      options.onProgress?.(name, 'ready', Date.now() - started);
    }
  } catch (error) {
    await stop(5_000);
    throw error;
  }

  return {
    layout,
    ingestAddress: `127.0.0.1:${layout.ingestGrpcPort}`,
    fusionAddress: `127.0.0.1:${layout.fusionGrpcPort}`,
    metricsUrls: Object.fromEntries(
      SERVICE_NAMES.map((n) => [n, `http://127.0.0.1:${layout.metricsPorts[n]}/metrics`]),
    ) as Record<ServiceName, string>,
    logFiles,
    pids: () =>
      Object.fromEntries(
        [...children]
          .filter(([, c]) => c.exitCode === null && c.signalCode === null)
          .map(([n, c]) => [n, c.pid]),
      ),
    exited,
    stop,
  };
}

/** Where a further replica of a service listens, and what sets it apart from the first. */
export interface ReplicaOptions {
  /** A short name, unique per service (`b`, `c`, ...): its log file, Kafka client id and ingest replica id. */
  readonly replica: string;
  readonly metricsPort: number;
  /** ingest and fusion: the port of its gRPC server. */
  readonly grpcPort?: number;
}

/** One service process started by {@link startReplica}. */
export interface ServiceProcess {
  readonly name: ServiceName;
  readonly replica: string;
  readonly pid: number;
  readonly metricsUrl: string;
  /** ingest and fusion: `127.0.0.1:<grpcPort>`. */
  readonly grpcAddress: string | undefined;
  readonly logFile: string;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (a drain), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL at once, no drain (a crashed replica); resolves when it is gone. */
  kill(): Promise<void>;
}

/**
 * Starts one more replica of a service of the pipeline `options` describes (same brokers, topics, consumer
 * groups and Redis keys), on its own ports, attached to this process; waits until it answers /readyz. The
 * replicas of a service share its work through their consumer group (analyzers, fusion) or their leases
 * (ingest).
 */
export async function startReplica(
  name: ServiceName,
  options: PipelineOptions,
  replica: ReplicaOptions,
): Promise<ServiceProcess> {
  assertBuilt(name);
  const base = options.layout ?? DEFAULT_LAYOUT;
  const grpcPort = replica.grpcPort;
  if ((name === 'ingest' || name === 'fusion') && grpcPort === undefined) {
    throw new ServiceStartError(`a replica of ${name} needs a gRPC port of its own`);
  }
  const layout: PipelineLayout = {
    metricsPorts: { ...base.metricsPorts, [name]: replica.metricsPort },
    ingestGrpcPort: name === 'ingest' ? (grpcPort as number) : base.ingestGrpcPort,
    fusionGrpcPort: name === 'fusion' ? (grpcPort as number) : base.fusionGrpcPort,
  };
  // Another process on a port would answer our readiness check while the replica dies on EADDRINUSE.
  for (const port of [replica.metricsPort, ...(grpcPort === undefined ? [] : [grpcPort])]) {
    if (await portAnswers(port)) throw new ServiceStartError(`port ${port} is already in use`);
  }
  const ns = options.namespace ?? 'livelens';
  const env = {
    ...serviceEnv(name, { ...options, layout }),
    KAFKA_CLIENT_ID: `${ns}-${name}-${replica.replica}`,
    ...(name === 'ingest' ? { INGEST_REPLICA_ID: `${ns}-ingest-${replica.replica}` } : {}),
    ...(options.env?.[name] ?? {}),
  };
  const logDir = options.logDir ?? logsDir();
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.${replica.replica}.log`);
  const child = spawnService(name, env, logFile, true);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  try {
    await waitReady(name, child, replica.metricsPort, logFile, options.readyTimeoutMs ?? 180_000);
  } catch (error) {
    await terminate(child, 5_000);
    throw error;
  }
  return {
    name,
    replica: replica.replica,
    pid: child.pid as number,
    metricsUrl: `http://127.0.0.1:${replica.metricsPort}/metrics`,
    grpcAddress: grpcPort === undefined ? undefined : `127.0.0.1:${grpcPort}`,
    logFile,
    exited,
    stop: (timeoutMs = 30_000) => terminate(child, timeoutMs),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Fails when a port of the layout already answers: another pipeline (a second demo, `livelens stack up`)
 * would answer our readiness checks while our service dies on EADDRINUSE.
 */
async function assertPortsFree(layout: PipelineLayout): Promise<void> {
  const ports = [
    ...Object.entries(layout.metricsPorts),
    ['ingest gRPC', layout.ingestGrpcPort],
    ['fusion gRPC', layout.fusionGrpcPort],
  ] as [string, number][];
  const taken: string[] = [];
  await Promise.all(
    ports.map(async ([what, port]) => {
      if (await portAnswers(port)) taken.push(`${port} (${what})`);
    }),
  );
  if (taken.length > 0) {
    throw new ServiceStartError(
      `ports already in use: ${taken.sort().join(', ')}; another LiveLens runs here (\`livelens stack status\`)?`,
    );
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

function assertBuilt(name: ServiceName): void {
  if (!existsSync(serviceEntry(name))) {
    throw new ServiceStartError(
      `${name} is not built (${serviceEntry(name)} is missing): run \`npm run build\` first`,
    );
  }
}

/**
 * Spawns a service with its output appended to `logFile`, in a session of its own: a Ctrl-C in the terminal
 * reaches the CLI only, which stops the services in pipeline order. Attached children also get `setpriv
 * --pdeathsig TERM`: the kernel signals them when this process dies, even by SIGKILL, so a crashed demo
 * leaves nothing behind.
 */
function spawnService(name: ServiceName, env: Record<string, string>, logFile: string, attached: boolean) {
  const fd = openSync(logFile, 'a');
  try {
    const node = [process.execPath, serviceEntry(name)];
    const [command, ...args] =
      attached && existsSync('/usr/bin/setpriv')
        ? ['/usr/bin/setpriv', '--pdeathsig', 'TERM', '--', ...node]
        : node;
    return spawn(command as string, args, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', ...env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
}

async function waitReady(
  name: ServiceName,
  child: ChildProcess,
  port: number,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ServiceStartError(
        `${name} exited during startup (${child.exitCode ?? child.signalCode}); the end of ${logFile}:\n${tail(logFile)}`,
      );
    }
    if (await answersReady(port)) return;
    if (Date.now() > deadline) {
      throw new ServiceStartError(
        `${name} did not become ready on port ${port} within ${timeoutMs / 1000} s; the end of ${logFile}:\n${tail(logFile)}`,
      );
    }
    await sleep(250);
  }
}

/** True when the service's /readyz answers 200. */
export async function answersReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

async function terminate(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  // The timer is cancelled once the child is gone: a pending one would hold the CLI open for `timeoutMs`.
  const timer = new AbortController();
  const killed = await Promise.race([
    gone.then(() => false),
    sleep(timeoutMs, undefined, { signal: timer.signal }).then(
      () => true,
      () => false,
    ),
  ]);
  timer.abort();
  if (killed) {
    child.kill('SIGKILL');
    await gone;
  }
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------- detached (livelens stack up / down)

const pidFile = (name: ServiceName) => join(runDir(), `${name}.pid`);

/** The pid of a detached service this checkout started, if it still runs (its command line names its entry). */
export async function detachedPid(name: ServiceName): Promise<number | undefined> {
  const text = await readFile(pidFile(name), 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(serviceEntry(name)) ? pid : undefined;
}

/**
 * Starts the services in the background (own session, pid files in `$LIVELENS_HOME/run`); a service that runs
 * already is left as it is. Waits until each answers /readyz.
 */
export async function startDetached(options: PipelineOptions): Promise<Record<ServiceName, number>> {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  for (const name of SERVICE_NAMES) assertBuilt(name);
  const logDir = options.logDir ?? logsDir();
  await mkdir(logDir, { recursive: true });
  await mkdir(runDir(), { recursive: true });
  const pids = {} as Record<ServiceName, number>;
  for (const name of ['fusion', 'asr', 'frame-analyzer', 'ingest'] as const) {
    const started = Date.now();
    const running = await detachedPid(name);
    if (running) {
      pids[name] = running;
      options.onProgress?.(name, 'ready', 0);
      continue;
    }
    options.onProgress?.(name, 'starting', 0);
    const logFile = join(logDir, `${name}.log`);
    const child = spawnService(name, serviceEnv(name, options), logFile, false);
    child.unref();
    await writeFile(pidFile(name), `${child.pid}\n`);
    await waitReady(name, child, layout.metricsPorts[name], logFile, options.readyTimeoutMs ?? 180_000);
    pids[name] = child.pid as number;
    options.onProgress?.(name, 'ready', Date.now() - started);
  }
  return pids;
}

/** Stops the detached services (ingest first): SIGTERM, SIGKILL after `timeoutMs`. Returns those stopped. */
export async function stopDetached(timeoutMs = 30_000): Promise<ServiceName[]> {
  const stopped: ServiceName[] = [];
  for (const group of STOP_ORDER) {
    await Promise.all(
      group.map(async (name) => {
        const pid = await detachedPid(name);
        if (pid) {
          await killPid(pid, timeoutMs);
          stopped.push(name);
        }
        await rm(pidFile(name), { force: true });
      }),
    );
  }
  return stopped;
}

async function killPid(pid: number, timeoutMs: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive() && Date.now() < deadline) await sleep(100);
  if (alive()) process.kill(pid, 'SIGKILL');
}
