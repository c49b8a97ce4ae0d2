import { z } from 'zod';
import { env, field } from './config.js';

/**
 * Fields every service shares. A service spreads these into its own field record, so one deployment
 * configures Kafka, Redis, logs and the metrics port the same way everywhere.
 */
export const commonConfigFields = {
  logLevel: field(
    'LOG_LEVEL',
    env.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    'Log level (pino).',
    'info',
  ),
  kafkaBrokers: field(
    'KAFKA_BROKERS',
    env.hostPorts(),
    'Kafka bootstrap brokers, host:port[,host:port].',
    '127.0.0.1:19092',
  ),
  kafkaClientId: field(
    'KAFKA_CLIENT_ID',
    env.string(),
    'Kafka client id, shown in broker logs and quotas.',
    'livelens',
  ),
  kafkaTopicPrefix: field(
    'KAFKA_TOPIC_PREFIX',
    z.string().regex(/^[a-z0-9._-]*$/, 'expected [a-z0-9._-]*'),
    'Prefix of every topic name (e.g. "staging."), so deployments can share a cluster. Empty = none.',
    '',
  ),
  redisUrl: field('REDIS_URL', env.url(['redis', 'rediss']), 'Redis URL.', 'redis://127.0.0.1:16379'),
  metricsPort: field(
    'METRICS_PORT',
    env.int(0, 65535),
    'Port of /metrics, /healthz and /readyz (0 = any free port).',
    '9464',
  ),
  shutdownTimeoutMs: field(
    'SHUTDOWN_TIMEOUT_MS',
    env.int(1000, 600_000),
    'How long SIGTERM may take to drain in-flight work before the process exits anyway.',
    '25000',
  ),
} as const;
