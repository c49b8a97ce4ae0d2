import kafkajs from 'kafkajs';

// kafkajs is CommonJS and Node's ESM loader sees only some of its exports by name: take the error classes
// from the default export (a named import works under vitest and fails in the built service).
const { KafkaJSError, KafkaJSProtocolError } = kafkajs;

import { type ErrorContext, LiveLensError } from '../errors.js';

/**
 * Converts a kafkajs error where it enters LiveLens. Retriability follows kafkajs (which follows the
 * protocol's error table), except for the few codes that mean a caller mistake.
 */
export function fromKafkaError(error: unknown, context: ErrorContext = {}): LiveLensError {
  if (error instanceof LiveLensError) return error;
  if (error instanceof KafkaJSProtocolError) {
    switch (error.type) {
      case 'UNKNOWN_TOPIC_OR_PARTITION':
        return new LiveLensError(`Kafka: unknown topic or partition (${error.message})`, {
          code: 'failed_precondition',
          retriable: false,
          cause: error,
          context,
        });
      case 'MESSAGE_TOO_LARGE':
      case 'RECORD_LIST_TOO_LARGE':
        return new LiveLensError(`Kafka: message too large (${error.message})`, {
          code: 'invalid_argument',
          retriable: false,
          cause: error,
          context,
        });
      case 'TOPIC_AUTHORIZATION_FAILED':
      case 'GROUP_AUTHORIZATION_FAILED':
      case 'CLUSTER_AUTHORIZATION_FAILED':
        return new LiveLensError(`Kafka: ${error.message}`, {
          code: 'permission_denied',
          cause: error,
          context,
        });
      default:
        return new LiveLensError(`Kafka: ${error.message}`, {
          code: error.retriable ? 'unavailable' : 'internal',
          retriable: error.retriable,
          cause: error,
          context,
        });
    }
  }
  if (error instanceof KafkaJSError) {
    const retriable =
      error.name !== 'KafkaJSNonRetriableError' &&
      (error.retriable || /Timeout|Connection|Retries|NoBrokerAvailable/.test(error.name));
    return new LiveLensError(`Kafka: ${error.message}`, {
      code: retriable ? 'unavailable' : 'internal',
      retriable,
      cause: error,
      context,
    });
  }
  return LiveLensError.from(error);
}

/** True for the errors kafkajs uses to say the group is rebalancing and this member's batch is stale. */
export function isRebalanceError(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return (
    type === 'REBALANCE_IN_PROGRESS' ||
    type === 'NOT_COORDINATOR_FOR_GROUP' ||
    type === 'ILLEGAL_GENERATION' ||
    type === 'UNKNOWN_MEMBER_ID'
  );
}
