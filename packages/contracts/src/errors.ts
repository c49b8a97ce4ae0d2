/** Codes of {@link ContractError}: what was wrong with a record on the wire. */
export type ContractErrorCode = 'decode_failed' | 'invalid_message' | 'unknown_topic';

/**
 * A record that does not satisfy its topic's contract. Never retriable: the same bytes fail the same way,
 * so a consumer dead-letters the record and moves on.
 */
export class ContractError extends Error {
  override readonly name = 'ContractError';
  readonly code: ContractErrorCode;
  readonly retriable = false;
  readonly topic: string | undefined;

  constructor(message: string, options: { code: ContractErrorCode; topic?: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.topic = options.topic;
  }
}
