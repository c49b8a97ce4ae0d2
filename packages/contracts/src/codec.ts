import { type DescMessage, fromBinary, type MessageShape, toBinary } from '@bufbuild/protobuf';
import { ContractError } from './errors.js';
import type { TopicSpec } from './topics.js';

/** Serialises a message for its topic. Checks it first: a producer must not publish what consumers reject. */
export function encodeRecord<Desc extends DescMessage>(
  spec: TopicSpec<Desc>,
  message: MessageShape<Desc>,
): Uint8Array {
  const problems = spec.validate(message);
  if (problems.length > 0) {
    throw new ContractError(
      `refusing to encode an invalid ${spec.schema.typeName} for ${spec.name}: ${problems.join('; ')}`,
      {
        code: 'invalid_message',
        topic: spec.name,
      },
    );
  }
  return toBinary(spec.schema, message);
}

/**
 * Parses and checks one record's value. Throws {@link ContractError} with code `decode_failed` for bytes that
 * are not the topic's message type, and `invalid_message` for a message that breaks the topic's checks.
 */
export function decodeRecord<Desc extends DescMessage>(
  spec: TopicSpec<Desc>,
  value: Uint8Array | null | undefined,
): MessageShape<Desc> {
  if (value === null || value === undefined || value.length === 0) {
    throw new ContractError(`empty record value on ${spec.name}`, {
      code: 'decode_failed',
      topic: spec.name,
    });
  }
  let message: MessageShape<Desc>;
  try {
    message = fromBinary(spec.schema, value);
  } catch (cause) {
    throw new ContractError(
      `cannot decode ${spec.schema.typeName} from ${value.length} bytes on ${spec.name}: ${(cause as Error).message}`,
      { code: 'decode_failed', topic: spec.name, cause },
    );
  }
  const problems = spec.validate(message);
  if (problems.length > 0) {
    throw new ContractError(`invalid ${spec.schema.typeName} on ${spec.name}: ${problems.join('; ')}`, {
      code: 'invalid_message',
      topic: spec.name,
    });
  }
  return message;
}
