import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IngestService, prefixedTopics } from '@livelens/contracts';
import { createGrpcServer, type Logger, type Publisher, type Redis } from '@livelens/runtime';
import type { Registry } from 'prom-client';
import type { IngestConfig } from './config.js';
import { createIngestGrpcService } from './grpc-service.js';
import { createIngestMetrics, type IngestMetrics } from './metrics.js';
import { Leases } from './ownership/leases.js';
import { StreamStore } from './ownership/stream-store.js';
import { startFfmpegSource } from './source/ffmpeg-source.js';
import { type UrlPolicy, urlPolicyWithDefaults, validateSourceUrl } from './source/url-policy.js';
import { StreamManager } from './stream-manager.js';

export { type IngestConfig, ingestConfigFields, loadIngestConfig } from './config.js';

/** The bundled wrapper that ties ffmpeg's life to this process (see bin/ffmpeg-pdeathsig). */
const PDEATHSIG_WRAPPER = fileURLToPath(new URL('../bin/ffmpeg-pdeathsig', import.meta.url));

/** Which ffmpeg to run: the configured one, else the wrapper where setpriv exists, else ffmpeg on PATH. */
function resolveFfmpegPath(configured: string, logger: Logger): string {
  if (configured !== '') return configured;
  const setpriv = spawnSync('setpriv', ['--version'], { stdio: 'ignore' });
  if (setpriv.status === 0 && existsSync(PDEATHSIG_WRAPPER)) return PDEATHSIG_WRAPPER;
  logger.warn({}, 'setpriv not found: ffmpeg may outlive a killed ingest until its read timeout');
  return 'ffmpeg';
}

export interface IngestDeps {
  publisher: Publisher;
  /** Commands (leases, desired state, status). */
  redis: Redis;
  /** A second connection, for the control channel subscription. */
  subscriber: Redis;
  logger: Logger;
  registry: Registry;
  /** Override for tests: the DNS resolver of the URL policy. */
  resolve?: UrlPolicy['resolve'];
}

export interface IngestServiceHandle {
  readonly metrics: IngestMetrics;
  readonly manager: StreamManager;
  readonly store: StreamStore;
  /** Starts reconciling and serving gRPC; resolves with the bound port. */
  start(): Promise<number>;
  /** Stops serving, stops the streams here and releases their leases. */
  stop(): Promise<void>;
}

/** The ingest service, built from its dependencies (main.ts wires the real ones; tests can too). */
export function createIngestService(deps: IngestDeps, config: IngestConfig): IngestServiceHandle {
  const logger = deps.logger.child({ replicaId: config.replicaId });
  const metrics = createIngestMetrics(deps.registry);
  const store = new StreamStore(deps.redis, config.redisKeyPrefix);
  const leases = new Leases(
    deps.redis,
    config.replicaId,
    config.leaseTtlMs,
    `${config.redisKeyPrefix}lease:`,
  );
  // Checked here, at start: a bad scheme or CIDR in the config is a startup error, not a per-call one.
  const policy = urlPolicyWithDefaults({
    allowedSchemes: config.allowedSchemes,
    mediaRoot: config.mediaRoot === '' ? undefined : config.mediaRoot,
    allowPrivateNetworks: config.allowPrivateNetworks,
    allowedCidrs: config.allowedCidrs,
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  });
  const validate = (url: string) => validateSourceUrl(url, policy);
  const ffmpegPath = resolveFfmpegPath(config.ffmpegPath, logger);
  const manager = new StreamManager(
    {
      store,
      leases,
      publisher: deps.publisher,
      logger,
      metrics,
      subscriber: deps.subscriber,
      validate,
      startSource: (spec, events, log) => startFfmpegSource(spec, events, log, { ffmpegPath }),
      topics: prefixedTopics(config.kafkaTopicPrefix),
    },
    config,
  );
  const server = createGrpcServer({
    onError: (error, method) => logger.error({ err: error, method }, 'gRPC handler failed'),
  });
  server.addService(
    IngestService,
    createIngestGrpcService({
      store,
      manager,
      metrics,
      config,
      validate,
      leaseHolder: (id) => leases.holder(id),
    }),
  );

  return {
    metrics,
    manager,
    store,
    async start() {
      await manager.start();
      const port = await server.listen(config.grpcHost, config.grpcPort);
      logger.info({ port, maxStreams: config.maxStreams }, 'ingest serving');
      return port;
    },
    async stop() {
      await server.shutdown(2_000);
      await manager.shutdown();
    },
  };
}
