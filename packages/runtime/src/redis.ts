import { Redis, type RedisOptions } from 'ioredis';
import { LiveLensError } from './errors.js';
import type { Logger } from './logger.js';

export type { Redis } from 'ioredis';

export interface RedisClientOptions {
  url: string;
  /** A command not answered by then fails (Redis hang: reliability.md T20). @default 2000 */
  commandTimeoutMs?: number;
  /** @default 3000 */
  connectTimeoutMs?: number;
  /** Longest pause between reconnect attempts; attempts back off exponentially with jitter up to it. @default 5000 */
  maxReconnectDelayMs?: number;
  /** Name shown by CLIENT LIST. */
  connectionName?: string;
}

/**
 * An ioredis client for live data: commands fail fast while disconnected instead of queueing without bound
 * (no offline queue), every command has a timeout, reconnects back off with jitter for ever (a Redis outage
 * must not kill the service: readiness reports it), and READONLY after a failover reconnects to the new
 * primary without resending the failed write (reliability.md §5). Errors are logged, never unhandled.
 */
export function createRedis(options: RedisClientOptions, logger: Logger): Redis {
  const log = logger.child({ component: 'redis' });
  const maxDelay = options.maxReconnectDelayMs ?? 5_000;
  const redisOptions: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 2_000,
    connectTimeout: options.connectTimeoutMs ?? 3_000,
    maxRetriesPerRequest: 1,
    connectionName: options.connectionName ?? 'livelens',
    retryStrategy: (attempt) => {
      const delay = Math.min(maxDelay, 100 * 2 ** Math.min(attempt, 10));
      return Math.round(delay / 2 + Math.random() * (delay / 2));
    },
    // true = reconnect only; 2 would resend the command, which is unsafe for non-idempotent writes.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
  const client = new Redis(options.url, redisOptions);
  let lastErrorLogAt = 0;
  client.on('error', (error: Error) => {
    // During an outage every reconnect fails: log at most once every 5 s.
    if (Date.now() - lastErrorLogAt > 5_000) {
      lastErrorLogAt = Date.now();
      log.warn({ err: error }, 'redis error');
    }
  });
  client.on('ready', () => log.info({}, 'redis ready'));
  return client;
}

/** Converts an ioredis error where it enters: timeouts and connection loss are retriable `unavailable`. */
export function fromRedisError(error: unknown, context: Record<string, string> = {}): LiveLensError {
  if (error instanceof LiveLensError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const transient =
    /timed out|Connection is closed|ECONNREFUSED|ECONNRESET|Stream isn't writeable|MaxRetriesPerRequest|LOADING|READONLY/i.test(
      message,
    );
  return new LiveLensError(`Redis: ${message}`, {
    code: transient ? 'unavailable' : 'internal',
    retriable: transient,
    cause: error,
    context,
  });
}

/** Connects and pings, failing with `unavailable` within the command timeout. */
export async function connectRedis(client: Redis): Promise<void> {
  try {
    if (client.status === 'wait') await client.connect();
    await client.ping();
  } catch (error) {
    throw fromRedisError(error, { operation: 'connect' });
  }
}
