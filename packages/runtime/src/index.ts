export { commonConfigFields } from './config/common.js';
export {
  type ConfigField,
  type ConfigFields,
  type ConfigOf,
  configTableMarkdown,
  configTableRows,
  describeConfig,
  env,
  field,
  loadConfig,
  readmeConfigRows,
} from './config/config.js';
export {
  type ConsumerServiceConfig,
  type ConsumerServiceHandle,
  type ConsumerServiceSpec,
  runConsumerService,
} from './consumer-service.js';
export {
  type ErrorCode,
  type ErrorContext,
  isRetriable,
  LiveLensError,
  type LiveLensErrorOptions,
} from './errors.js';
export * from './grpc/index.js';
export {
  createMetricsRegistry,
  type HealthServer,
  type HealthServerOptions,
  type ReadinessCheck,
  startHealthServer,
} from './health.js';
export * from './kafka/index.js';
export { KeyedLock } from './keyed-lock.js';
export { handleShutdownSignals } from './lifecycle.js';
export { createLogger, type Logger } from './logger.js';
export { connectRedis, createRedis, fromRedisError, type Redis, type RedisClientOptions } from './redis.js';
