import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { promtool } from '../prometheus/metric-names.js';
import {
  environmentProblems,
  livelensRole,
  mountProblems,
  referenceProblems,
  schemaProblems,
} from './src/compose-checks.js';
import {
  type ComposeDocument,
  type ComposeService,
  dependsOn,
  durationMs,
  environmentOf,
  healthcheckCommand,
  hostPathOf,
  loadCompose,
  mountsOf,
  portsOf,
  servicesOf,
} from './src/compose-file.js';
import { COMPOSE_GO_VERSION, composeSpecSchema } from './src/compose-schema.js';
import { execForm, last, parseDockerfile } from './src/dockerfile.js';
import { repo } from './src/workspaces.js';

// deploy/compose/compose.yaml against the official Compose Specification schema (compose-go's, through the Go
// module proxy) and against the repository: the paths it mounts and builds, each service's own config, the
// broker settings of deploy/local, and the Prometheus and Grafana files it mounts. No Docker engine is needed
// (none runs here): what only a running stack can show is listed in README.md.

const here = dirname(fileURLToPath(import.meta.url));
const composeText = readFileSync(join(here, 'compose.yaml'), 'utf8');
/** The document as Compose sees it with no variable set (every `${VAR:-default}` at its default). */
const doc = loadCompose(composeText, {});
const services = new Map(servicesOf(doc));
const service = (name: string) => services.get(name) as ComposeService;
const LIVELENS = ['ingest', 'frame-analyzer', 'asr', 'fusion'] as const;

type Validate = ((data: unknown) => boolean) & { errors?: Parameters<typeof schemaProblems>[0] };
let validate: Validate;

const run = promisify(execFile);
const temps: string[] = [];

beforeAll(async () => {
  const { schema } = await composeSpecSchema();
  // strict: false: Ajv's own strict mode rejects schema styles the JSON Schema spec allows (a `properties`
  // without `type`); validation itself is the standard 2020-12 semantics.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  // The one custom format compose-go registers (schema/schema.go): a Go duration.
  ajv.addFormat(
    'duration',
    /^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/,
  );
  validate = ajv.compile(schema) as Validate;
}, 240_000);

afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe('compose.yaml and the Compose Specification', () => {
  it(`is valid against the Compose Specification schema (compose-go ${COMPOSE_GO_VERSION})`, () => {
    const ok = validate(doc);
    expect(schemaProblems(validate.errors)).toEqual([]);
    expect(ok).toBe(true);
    // Also with every variable set, as a user would override them.
    const custom = loadCompose(composeText, {
      LIVELENS_TAG: '1.2.3',
      LIVELENS_KAFKA_PORT: '29092',
      LIVELENS_REDIS_PORT: '26379',
      LIVELENS_LOG_LEVEL: 'debug',
      LIVELENS_COMPOSE_MEDIA: '/srv/media',
      LIVELENS_INGEST_ALLOWED_CIDRS: '172.16.0.0/12',
    });
    expect(validate(custom), schemaProblems(validate.errors).join('\n')).toBe(true);
    expect(service('asr').image).toBe('livelens/asr:dev');
    expect((custom.services as Record<string, ComposeService>).asr?.image).toBe('livelens/asr:1.2.3');
  });

  it('rejects a broken document: a misspelt key, an unknown depends_on condition, a mount without a type', () => {
    const broken = structuredClone(doc) as ComposeDocument & { services: Record<string, ComposeService> };
    const asr = broken.services.asr as ComposeService;
    asr.enviroment = asr.environment;
    delete asr.environment;
    (broken.services.fusion as ComposeService).depends_on = { kafka: { condition: 'healthy' } };
    (broken.services.ingest as ComposeService).volumes = [{ source: './media', target: '/media' }];
    expect(validate(broken)).toBe(false);
    const problems = schemaProblems(validate.errors);
    expect(problems).toContain('/services/asr: must NOT have unevaluated properties (enviroment)');
    expect(problems).toContain(
      '/services/fusion/depends_on/kafka/condition: must be equal to one of the allowed values (service_started, service_healthy, service_completed_successfully)',
    );
    expect(problems).toContain("/services/ingest/volumes/0: must have required property 'type'");
    // The shipped document has none of these.
    expect(validate(doc)).toBe(true);
  });

  it('resolves every reference: depends_on, health conditions, named volumes, build contexts and targets', () => {
    expect(referenceProblems(doc, here)).toEqual([]);
    const broken = structuredClone(doc) as ComposeDocument & { services: Record<string, ComposeService> };
    (broken.services.asr as ComposeService).depends_on = {
      modells: { condition: 'service_completed_successfully' },
    };
    (broken.services.models as ComposeService).build = {
      context: '../..',
      dockerfile: 'services/asr/Dockerfile',
      target: 'model',
    };
    expect(referenceProblems(broken, here)).toEqual([
      'models: services/asr/Dockerfile has no stage model',
      'asr: depends_on modells, which is not a service',
    ]);
  });

  it('mounts only paths that exist in the repository', () => {
    expect(mountProblems(doc, here)).toEqual([]);
    const binds = servicesOf(doc).flatMap(([, s]) => mountsOf(s, here).filter((m) => m.type === 'bind'));
    expect(binds.map((m) => relative(repo, m.source)).sort()).toEqual([
      'deploy/compose/media',
      'deploy/compose/prometheus.yml',
      'deploy/grafana/dashboards',
      'deploy/grafana/provisioning',
      'deploy/prometheus/alerts.yml',
    ]);
  });
});

describe('the LiveLens services in compose.yaml', () => {
  it('builds each service, and the model fetcher, from its own Dockerfile as livelens/<name>', () => {
    const roles = servicesOf(doc).flatMap(([name, s]) => {
      const role = livelensRole(s, here);
      return role ? [[name, role.role, relative(repo, role.dockerfile), s.image]] : [];
    });
    expect(roles).toEqual([
      ['models', 'models', 'services/asr/Dockerfile', 'livelens/models:dev'],
      ['fusion', 'fusion', 'services/fusion/Dockerfile', 'livelens/fusion:dev'],
      ['asr', 'asr', 'services/asr/Dockerfile', 'livelens/asr:dev'],
      [
        'frame-analyzer',
        'frame-analyzer',
        'services/frame-analyzer/Dockerfile',
        'livelens/frame-analyzer:dev',
      ],
      ['ingest', 'ingest', 'services/ingest/Dockerfile', 'livelens/ingest:dev'],
    ]);
  });

  it('gives each service only variables its config declares (or its code reads)', () => {
    expect(environmentProblems(doc, here)).toEqual([]);
    const broken = structuredClone(doc) as ComposeDocument & { services: Record<string, ComposeService> };
    const ingest = broken.services.ingest as ComposeService;
    ingest.environment = { ...(ingest.environment as object), INGEST_GRPC_PORTS: '50051', ASR_GROUP_ID: 'x' };
    expect(environmentProblems(broken, here)).toEqual([
      'ingest: INGEST_GRPC_PORTS is not a variable @livelens/ingest reads',
      'ingest: ASR_GROUP_ID is not a variable @livelens/ingest reads',
    ]);
  });

  it.each(LIVELENS)('%s: its own config loader accepts the environment compose gives it', async (name) => {
    const config = await loadServiceConfig(name, service(name));
    expect(config.kafkaBrokers).toEqual(['kafka:9092']);
    expect(config.redisUrl).toBe('redis://redis:6379');
    expect(config.metricsPort).toBe(9464);
    // The host names are compose services; Kafka's internal listener and Redis's port are the ones they use.
    expect(services.has('kafka') && services.has('redis')).toBe(true);
    expect(environmentOf(service('kafka')).get('KAFKA_ADVERTISED_LISTENERS')).toContain(
      'PLAINTEXT://kafka:9092',
    );
    // A value the loader refuses is caught the same way.
    const broken = structuredClone(service(name));
    (broken.environment as Record<string, string>).KAFKA_BROKERS = 'kafka';
    await expect(loadServiceConfig(name, broken)).rejects.toThrow(/KAFKA_BROKERS: expected host:port/);
  });

  it('publishes and probes the ports each service listens on; healthchecks are /readyz', async () => {
    const listens: Record<string, number[]> = {};
    for (const name of LIVELENS) {
      const config = await loadServiceConfig(name, service(name));
      const grpc = config.grpcPort as number | undefined;
      listens[name] = [config.metricsPort as number, ...(grpc === undefined ? [] : [grpc])];
      const s = service(name);
      expect(
        portsOf(s)
          .map((p) => p.target)
          .sort(),
        name,
      ).toEqual([...(listens[name] as number[])].sort());
      // Published on the loopback only (no TLS, no authentication).
      for (const p of portsOf(s)) expect(p.hostIp, name).toBe('127.0.0.1');
      expect(healthcheckCommand(s), name).toContain(`http://127.0.0.1:${config.metricsPort}/readyz`);
      // The Dockerfile EXPOSEs the same ports.
      const dockerfile = parseDockerfile(readFileSync(join(repo, `services/${name}/Dockerfile`), 'utf8'));
      const expose = (last(dockerfile.stages.at(-1) as never, 'EXPOSE')?.args ?? '').split(/\s+/).map(Number);
      expect(expose.sort(), name).toEqual([...(listens[name] as number[])].sort());
    }
    // The metrics ports on the host are the local layout's (deploy/prometheus: 9464..9467).
    const hostMetrics = LIVELENS.map((n) => portsOf(service(n)).find((p) => p.target === 9464)?.published);
    expect(hostMetrics).toEqual(['9464', '9465', '9466', '9467']);
    expect(listens).toEqual({
      ingest: [9464, 50051],
      'frame-analyzer': [9464],
      asr: [9464],
      fusion: [9464, 50052],
    });
  });

  it('starts them in the documented order, each after the previous one is ready', () => {
    // docs/operations.md: fusion, asr, frame-analyzer, ingest; the analyzers once the models are fetched.
    const waits = (name: string) => Object.fromEntries(dependsOn(service(name)));
    expect(waits('fusion')).toEqual({ kafka: 'service_healthy', redis: 'service_healthy' });
    expect(waits('asr')).toMatchObject({
      models: 'service_completed_successfully',
      fusion: 'service_healthy',
    });
    expect(waits('frame-analyzer')).toMatchObject({
      models: 'service_completed_successfully',
      asr: 'service_healthy',
    });
    expect(waits('ingest')).toMatchObject({
      fusion: 'service_healthy',
      asr: 'service_healthy',
      'frame-analyzer': 'service_healthy',
    });
    expect(service('models').restart).toBe('no');
  });

  it('gives each service time to drain and restarts it; the analyzers read the models volume read-only', async () => {
    for (const name of LIVELENS) {
      const s = service(name);
      const config = await loadServiceConfig(name, s);
      expect(durationMs(s.stop_grace_period as string), name).toBeGreaterThan(
        config.shutdownTimeoutMs as number,
      );
      expect(s.restart, name).toBe('unless-stopped');
      expect(s.cap_drop, name).toEqual(['ALL']);
    }
    for (const name of ['asr', 'frame-analyzer']) {
      const dir = environmentOf(service(name)).get('LIVELENS_MODELS_DIR');
      expect(mountsOf(service(name), here), name).toContainEqual({
        type: 'volume',
        source: 'models',
        target: dir,
        readOnly: true,
      });
    }
    expect(mountsOf(service('models'), here)).toContainEqual({
      type: 'volume',
      source: 'models',
      target: environmentOf(service('models')).get('LIVELENS_MODELS_DIR'),
      readOnly: false,
    });
  });

  it('lets ingest read file:// sources from the media mount only', async () => {
    const config = await loadServiceConfig('ingest', service('ingest'));
    expect(config.mediaRoot).toBe('/media');
    expect(hostPathOf(service('ingest'), here, '/media')).toBe(join(here, 'media'));
    expect(mountsOf(service('ingest'), here).find((m) => m.target === '/media')?.readOnly).toBe(true);
  });
});

describe('the healthchecks, run', () => {
  // The commands themselves, run here against a stand-in server: node's fetch, exit 0 on 200, 1 otherwise.
  let server: Server;
  let port: number;
  const status = new Map<string, number>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = status.get(req.url ?? '') ?? 404;
      res.end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  const exitCode = async (argv: string[], env: Record<string, string> = {}) => {
    const [bin, ...args] = argv;
    try {
      await run(bin === 'node' ? process.execPath : (bin as string), args, {
        env: { ...process.env, ...env },
      });
      return 0;
    } catch (error) {
      return (error as { code: number }).code;
    }
  };

  it.each(LIVELENS)("%s: the image's HEALTHCHECK probes /healthz on METRICS_PORT", async (name) => {
    const file = parseDockerfile(readFileSync(join(repo, `services/${name}/Dockerfile`), 'utf8'));
    const args = last(file.stages.at(-1) as never, 'HEALTHCHECK')?.args ?? '';
    const cmd = execForm(/^(?:--\S+\s+)*CMD\s+(.*)$/s.exec(args)?.[1] ?? '') as string[];
    const env = { METRICS_PORT: String(port) };
    status.set('/healthz', 200);
    expect(await exitCode(cmd, env)).toBe(0);
    status.set('/healthz', 503);
    expect(await exitCode(cmd, env)).toBe(1);
  });

  it("compose's healthcheck probes /readyz: healthy only once the service is ready", async () => {
    const test = (service('ingest').healthcheck as { test: string[] }).test;
    expect(test[0]).toBe('CMD');
    const cmd = test.slice(1).map((a) => a.replace('127.0.0.1:9464', `127.0.0.1:${port}`));
    status.set('/readyz', 200);
    expect(await exitCode(cmd)).toBe(0);
    status.set('/readyz', 503);
    expect(await exitCode(cmd)).toBe(1);
    status.delete('/readyz');
    expect(await exitCode(cmd)).toBe(1);
  });
});

describe('Kafka and Redis in compose.yaml', () => {
  it('runs the Kafka version and the broker settings that matter of deploy/local (KRaft, 4 MiB, no auto-create)', () => {
    const pom = readFileSync(join(repo, 'deploy/local/kafka/pom.xml'), 'utf8');
    const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
    expect(service('kafka').image).toBe(`apache/kafka:${version}`);
    const env = environmentOf(service('kafka'));
    const stack = stackKafkaProperties();
    const matter = [
      'auto.create.topics.enable',
      'message.max.bytes',
      'replica.fetch.max.bytes',
      'num.partitions',
      'default.replication.factor',
      'min.insync.replicas',
      'offsets.topic.replication.factor',
      'transaction.state.log.replication.factor',
      'transaction.state.log.min.isr',
      'share.coordinator.state.topic.replication.factor',
      'share.coordinator.state.topic.min.isr',
      'group.initial.rebalance.delay.ms',
    ];
    const asEnv = (property: string) => `KAFKA_${property.toUpperCase().replace(/\./g, '_')}`;
    expect(Object.fromEntries(matter.map((p) => [p, env.get(asEnv(p))]))).toEqual(
      Object.fromEntries(matter.map((p) => [p, stack.get(p)])),
    );
    expect(env.get('KAFKA_AUTO_CREATE_TOPICS_ENABLE')).toBe('false');
    expect(env.get('KAFKA_MESSAGE_MAX_BYTES')).toBe(String(4 * 1024 * 1024));
    // Single-node KRaft: broker and controller in one process, voting for itself.
    expect(env.get('KAFKA_PROCESS_ROLES')).toBe('broker,controller');
    expect(env.get('KAFKA_CONTROLLER_QUORUM_VOTERS')).toBe(`${env.get('KAFKA_NODE_ID')}@kafka:9093`);
    // CLUSTER_ID is a base64url UUID (16 bytes), as `kafka-storage format` requires.
    expect(Buffer.from(env.get('CLUSTER_ID') as string, 'base64url')).toHaveLength(16);
    // Its data on the volume the image declares, writable by its user.
    expect(mountsOf(service('kafka'), here)).toContainEqual({
      type: 'volume',
      source: 'kafka-data',
      target: env.get('KAFKA_LOG_DIRS'),
      readOnly: false,
    });
  });

  it('runs Redis with persistence and without eviction (docs/operations.md)', () => {
    expect(service('redis').command).toEqual(
      expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']),
    );
    expect(portsOf(service('redis'))[0]?.target).toBe(6379);
  });
});

describe('Prometheus and Grafana in compose.yaml', () => {
  const shipped = parse(
    readFileSync(join(repo, 'deploy/prometheus/prometheus.yml'), 'utf8'),
  ) as PrometheusConfig;
  const ours = parse(readFileSync(join(here, 'prometheus.yml'), 'utf8')) as PrometheusConfig;

  it('scrapes with deploy/prometheus/prometheus.yml unchanged but for the targets (same jobs, rules, intervals)', () => {
    const withoutTargets = (c: PrometheusConfig) => ({
      ...c,
      scrape_configs: c.scrape_configs.map((s) => ({
        ...s,
        static_configs: s.static_configs.map(() => ({})),
      })),
    });
    expect(withoutTargets(ours)).toEqual(withoutTargets(shipped));
    expect(ours.scrape_configs.map((s) => s.job_name)).toEqual(shipped.scrape_configs.map((s) => s.job_name));
    expect(ours.rule_files).toEqual(['alerts.yml']);
  });

  it('points every job at its compose service on that service METRICS_PORT', async () => {
    for (const job of ours.scrape_configs) {
      const targets = job.static_configs.flatMap((s) => s.targets);
      expect(targets, job.job_name).toHaveLength(1);
      const [host, port] = (targets[0] as string).split(':');
      expect(job.job_name).toBe(`livelens-${host}`);
      const config = await loadServiceConfig(host as string, service(host as string));
      expect(Number(port), job.job_name).toBe(config.metricsPort);
    }
  });

  it('mounts the config and the shipped alerts.yml where Prometheus reads them', () => {
    const prom = service('prometheus');
    // The image reads /etc/prometheus/prometheus.yml (its default --config.file); rule files resolve beside it.
    expect(prom.command).toBeUndefined();
    expect(hostPathOf(prom, here, '/etc/prometheus/prometheus.yml')).toBe(join(here, 'prometheus.yml'));
    for (const rule of ours.rule_files) {
      expect(hostPathOf(prom, here, join('/etc/prometheus', rule))).toBe(
        join(repo, 'deploy/prometheus', rule),
      );
    }
  });

  it('passes promtool check config as the container sees it (mounts laid out, rule file resolved)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'livelens-compose-prometheus-'));
    temps.push(root);
    for (const m of mountsOf(service('prometheus'), here).filter((x) => x.type === 'bind')) {
      const target = join(root, m.target);
      mkdirSync(dirname(target), { recursive: true });
      if (statSync(m.source).isDirectory()) cpSync(m.source, target, { recursive: true });
      else copyFileSync(m.source, target);
    }
    const result = await promtool(['check', 'config', join(root, 'etc/prometheus/prometheus.yml')], root);
    expect(result.output).toContain('SUCCESS: 1 rule files found');
    expect(result.code, result.output).toBe(0);
  });

  it('provisions the datasource and the dashboard from deploy/grafana, on the compose Prometheus', () => {
    const grafana = service('grafana');
    const provisioning = hostPathOf(grafana, here, '/etc/grafana/provisioning');
    expect(provisioning).toBe(join(repo, 'deploy/grafana/provisioning'));
    // The dashboard provider's folder is mounted from deploy/grafana/dashboards.
    const providers = parse(
      readFileSync(join(provisioning as string, 'dashboards/livelens.yml'), 'utf8'),
    ) as {
      providers: { options: { path: string } }[];
    };
    for (const p of providers.providers) {
      const dir = hostPathOf(grafana, here, p.options.path);
      expect(dir).toBe(join(repo, 'deploy/grafana/dashboards'));
      expect(existsSync(join(dir as string, 'livelens-pipeline.json'))).toBe(true);
    }
    // The datasource URL is this compose file's Prometheus service on the port it listens on.
    const datasources = parse(
      readFileSync(join(provisioning as string, 'datasources/prometheus.yml'), 'utf8'),
    ) as {
      datasources: { url: string }[];
    };
    const url = new URL(datasources.datasources[0]?.url as string);
    expect(services.has(url.hostname)).toBe(true);
    expect(portsOf(service(url.hostname)).map((p) => p.target)).toContain(Number(url.port));
    // The home dashboard path resolves through the mounts.
    const home = environmentOf(grafana).get('GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH') as string;
    expect(hostPathOf(grafana, here, home)).toBe(
      join(repo, 'deploy/grafana/dashboards/livelens-pipeline.json'),
    );
  });
});

interface PrometheusConfig {
  global: Record<string, unknown>;
  rule_files: string[];
  scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
}

/** Loads a service's config with its own loader (services/<name>/src/config.ts) from the compose environment. */
async function loadServiceConfig(name: string, s: ComposeService): Promise<Record<string, unknown>> {
  const module = (await import(pathToFileURL(join(repo, `services/${name}/src/config.ts`)).href)) as Record<
    string,
    unknown
  >;
  const loader = Object.entries(module).find(
    ([k, v]) => /^load\w+Config$/.test(k) && typeof v === 'function',
  );
  if (!loader) throw new Error(`services/${name}/src/config.ts exports no load...Config`);
  const env = Object.fromEntries([...environmentOf(s)].filter(([, v]) => v !== undefined));
  return (loader[1] as (source: Record<string, string | undefined>) => Record<string, unknown>)(env);
}

/** The broker properties deploy/local/stack.sh writes (its server.properties heredoc, variables substituted). */
function stackKafkaProperties(): Map<string, string> {
  const script = readFileSync(join(repo, 'deploy/local/stack.sh'), 'utf8');
  const vars = new Map(
    [...script.matchAll(/^([A-Z_]+)=(\d+)\b/gm)].map((m) => [m[1] as string, m[2] as string]),
  );
  const body = /cat >"\$KAFKA_SERVER_PROPS\.tmp" <<EOF\n([\s\S]*?)\nEOF/.exec(script)?.[1] ?? '';
  const props = new Map<string, string>();
  for (const line of body.split('\n')) {
    const m = /^([a-z][a-z0-9.]*)=(.*)$/.exec(line.trim());
    if (m)
      props.set(
        m[1] as string,
        (m[2] as string).replace(/\$(\w+)/g, (w, v: string) => vars.get(v) ?? w),
      );
  }
  return props;
}
