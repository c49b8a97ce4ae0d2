import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where the integration tests' Kafka and Redis are. */
export interface Infrastructure {
  readonly kafkaBrokers: string[];
  readonly redisUrl: string;
  /** How it was found: for the log line that says which broker the tests ran against. */
  readonly source: 'env' | 'testcontainers' | 'native';
  /** Stops what this run started (testcontainers); the native stack stays up for the next run. */
  readonly stop: () => Promise<void>;
}

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Resolves the real broker and Redis for a test run, in order:
 * 1. `KAFKA_BROKERS` and `REDIS_URL` when both are set (a shared dev stack, CI services);
 * 2. testcontainers (Kafka and Redis modules) when a Docker engine answers;
 * 3. the native stack of deploy/local (Apache Kafka jars + Debian redis-server), started if it is not running.
 */
export async function resolveInfrastructure(
  log: (line: string) => void = console.log,
): Promise<Infrastructure> {
  const { KAFKA_BROKERS: brokers, REDIS_URL: redisUrl } = process.env;
  if (brokers && redisUrl) {
    return {
      kafkaBrokers: brokers.split(','),
      redisUrl,
      source: 'env',
      stop: async () => {
        // not ours to stop
      },
    };
  }
  if (process.env.LIVELENS_TEST_DOCKER !== '0') {
    const viaContainers = await tryTestcontainers(log);
    if (viaContainers) return viaContainers;
  }
  return startNativeStack(log);
}

async function tryTestcontainers(log: (line: string) => void): Promise<Infrastructure | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch (error) {
    log(`[test-support] no Docker engine (${firstLine(error)}): using the native stack`);
    return undefined;
  }
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { RedisContainer } = await import('@testcontainers/redis');
  const [kafka, redis] = await Promise.all([
    new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start(),
    new RedisContainer('redis:7.4-alpine').start(),
  ]);
  log('[test-support] using testcontainers Kafka and Redis');
  return {
    kafkaBrokers: [`${kafka.getHost()}:${kafka.getMappedPort(9093)}`],
    redisUrl: redis.getConnectionUrl(),
    source: 'testcontainers',
    stop: async () => {
      await Promise.all([kafka.stop(), redis.stop()]);
    },
  };
}

async function startNativeStack(log: (line: string) => void): Promise<Infrastructure> {
  const script = resolve(repoRoot, 'deploy/local/stack.sh');
  const started = Date.now();
  try {
    // stack.sh reports progress on stderr; its last line says what runs where.
    const { stderr } = await run('bash', [script, 'up'], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    const lastLine = stderr.trim().split('\n').at(-1) ?? '';
    log(`[test-support] native stack up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${lastLine}`);
  } catch (error) {
    const detail = error as { stdout?: string; stderr?: string };
    throw new Error(
      `could not start the native stack (bash deploy/local/stack.sh up):\n${detail.stdout ?? ''}\n${detail.stderr ?? ''}`,
      { cause: error },
    );
  }
  const { stdout } = await run('bash', [script, 'env']);
  const vars = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  if (!vars.KAFKA_BROKERS || !vars.REDIS_URL) {
    throw new Error(`deploy/local/stack.sh env printed no KAFKA_BROKERS/REDIS_URL:\n${stdout}`);
  }
  return {
    kafkaBrokers: vars.KAFKA_BROKERS.split(','),
    redisUrl: vars.REDIS_URL,
    source: 'native',
    // The native stack stays up for the next run (npm run stack:down stops it).
    stop: async () => {
      // nothing to do
    },
  };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}
