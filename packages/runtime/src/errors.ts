import { ContractError } from '@livelens/contracts';

/**
 * Error codes of LiveLens. The set is closed and transport-neutral: the gRPC edge maps them to status codes,
 * consumers map them to retry-or-dead-letter, and nothing else needs to know a foreign library's errors.
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'cancelled'
  | 'invalid_config'
  | 'invalid_message'
  | 'internal';

/** Codes whose operation may succeed if tried again later. */
const RETRIABLE: ReadonlySet<ErrorCode> = new Set(['unavailable', 'deadline_exceeded', 'resource_exhausted']);

/** Where an error happened: bounded, non-secret facts for logs. */
export interface ErrorContext {
  readonly streamId?: string;
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string;
  readonly [key: string]: string | number | boolean | undefined;
}

export interface LiveLensErrorOptions {
  code: ErrorCode;
  cause?: unknown;
  /** @default whether `code` is one of unavailable, deadline_exceeded, resource_exhausted */
  retriable?: boolean;
  context?: ErrorContext;
}

/** The one error class of the runtime (and, by extension, of the services built on it). */
export class LiveLensError extends Error {
  override readonly name = 'LiveLensError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(message: string, options: LiveLensErrorOptions) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.retriable = options.retriable ?? RETRIABLE.has(options.code);
    this.context = Object.freeze({ ...options.context });
  }

  /**
   * Converts anything thrown into a LiveLensError. Foreign errors should be converted where they enter
   * (the Kafka, Redis and gRPC modules do); this is the fallback that keeps the message and the cause.
   */
  static from(
    error: unknown,
    fallback: Omit<LiveLensErrorOptions, 'cause'> = { code: 'internal' },
  ): LiveLensError {
    if (error instanceof LiveLensError) return error;
    const message = error instanceof Error ? error.message : String(error);
    // A broken contract (@livelens/contracts) is never retriable: the same bytes fail the same way.
    if (error instanceof ContractError) {
      return new LiveLensError(message, { code: 'invalid_message', cause: error, retriable: false });
    }
    return new LiveLensError(message, { ...fallback, cause: error });
  }
}

/** True when `error` is a LiveLensError that may succeed if retried. */
export function isRetriable(error: unknown): boolean {
  return error instanceof LiveLensError && error.retriable;
}
