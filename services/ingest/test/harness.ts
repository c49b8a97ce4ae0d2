import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { DescMessage } from '@bufbuild/protobuf';
import { IngestService, prefixedTopics, type TopicSpec } from '@livelens/contracts';
import {
  connectRedis,
  createGrpcClient,
  createLogger,
  createRedis,
  type GrpcClient,
  KafkaClient,
} from '@livelens/runtime';
import { collectTopic } from '@livelens/runtime/testing';
import { repoRoot, testInfrastructure, uniqueName } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { loadIngestConfig } from '../src/config.js';
import { createIngestService } from '../src/service.js';

const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));
export const mediaRoot = `${repoRoot}/.livelens/media`;

/** A namespace for one test: its own topics and Redis keys, so tests never see each other's streams. */
export function testNamespace() {
  const prefix = `${uniqueName('t')}.`;
  return { prefix, topics: prefixedTopics(prefix) };
}

/** The environment of an ingest replica in tests: real broker and Redis, short timeouts, loopback allowed. */
export function ingestEnv(prefix: string, overrides: Record<string, string> = {}): Record<string, string> {
  const { kafkaBrokers, redisUrl } = testInfrastructure();
  return {
    KAFKA_BROKERS: kafkaBrokers.join(','),
    REDIS_URL: redisUrl,
    KAFKA_TOPIC_PREFIX: prefix,
    INGEST_REDIS_KEY_PREFIX: `${prefix}{ingest}:`,
    INGEST_GRPC_HOST: '127.0.0.1',
    INGEST_GRPC_PORT: '0',
    METRICS_PORT: '0',
    INGEST_ALLOWED_CIDRS: '127.0.0.0/8',
    INGEST_MEDIA_ROOT: mediaRoot,
    INGEST_STALL_TIMEOUT_MS: '6000',
    INGEST_RW_TIMEOUT_MS: '4000',
    INGEST_RECONNECT_BASE_MS: '300',
    INGEST_RECONNECT_MAX_MS: '1500',
    INGEST_RECONNECT_MAX_ATTEMPTS: '3',
    INGEST_LEASE_TTL_MS: '3000',
    INGEST_RECONCILE_INTERVAL_MS: '500',
    INGEST_TOPIC_PARTITIONS: '2',
    LOG_LEVEL: process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn',
    ...overrides,
  };
}

/** An ingest replica in this process, built the way main.ts builds it. */
export async function startIngest(env: Record<string, string>) {
  const config = loadIngestConfig(env);
  const logger = createLogger({ service: `ingest-${config.replicaId}`, level: config.logLevel });
  const registry = new Registry();
  const kafka = new KafkaClient({ brokers: config.kafkaBrokers }, { logger, registry });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  await kafka
    .admin()
    .ensureTopics([topics.frames, topics.audio, topics.streamEvents, topics.dlq], { partitions: 2 });
  const publisher = kafka.publisher({ service: 'ingest' });
  await publisher.connect();
  const redis = createRedis({ url: config.redisUrl }, logger);
  const subscriber = createRedis({ url: config.redisUrl }, logger);
  await Promise.all([connectRedis(redis), connectRedis(subscriber)]);
  const service = createIngestService({ publisher, redis, subscriber, logger, registry }, config);
  const port = await service.start();
  const client = createGrpcClient(IngestService, `127.0.0.1:${port}`);
  return {
    config,
    service,
    registry,
    client,
    port,
    async stop() {
      client.close();
      await service.stop();
      await publisher.disconnect();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

/** An ingest replica as its own process (src/main.ts under tsx), for kill -9 tests. */
export async function spawnIngest(env: Record<string, string>): Promise<{
  child: ChildProcess;
  port: number;
  client: GrpcClient<typeof IngestService>;
}> {
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ingest did not start within 30 s:\n${output}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.includes('ingest serving')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
      if (output.length > 1_000_000) output = output.slice(-100_000);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ingest exited with ${code} before serving:\n${output}`));
    });
  });
  return { child, port, client: createGrpcClient(IngestService, `127.0.0.1:${port}`) };
}

export async function killProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** Reads a topic from the beginning into an array, for assertions; `stop()` when done. */
export function collect<D extends DescMessage>(spec: TopicSpec<D>) {
  // The namespace's dead-letter topic: the test prefix is whatever precedes "live." in the topic's name.
  const dlq = prefixedTopics(spec.name.slice(0, spec.name.indexOf('live.'))).dlq as unknown as TopicSpec;
  return collectTopic(
    testInfrastructure().kafkaBrokers,
    spec,
    dlq,
    createLogger({ service: 'collector', level: 'warn' }),
  );
}
