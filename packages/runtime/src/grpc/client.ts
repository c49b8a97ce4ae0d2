import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type Message,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { LiveLensError } from '../errors.js';
import { deserializer, fromGrpcError, methodPath, type SupportedMethodName, serializer } from './adapter.js';

/** Per-call options. */
export interface ClientCallOptions {
  /**
   * Time allowed for the call, from now. Unary: @default `GrpcClientOptions.defaultDeadlineMs`.
   * Server-streaming: none unless given (see `ServerStreamingClientMethod`).
   */
  deadlineMs?: number;
  /** Aborting cancels the call; the call then fails with `cancelled`. */
  signal?: AbortSignal;
  /** Request metadata (text values). */
  metadata?: Record<string, string>;
}

/** Options of a LiveLens gRPC client. */
export interface GrpcClientOptions {
  /** Deadline of unary calls that do not set `deadlineMs`. Every unary call has one. @default 10_000 */
  defaultDeadlineMs?: number;
  /** Largest response message accepted. @default 4_194_304 (4 MiB) */
  maxReceiveMessageBytes?: number;
  /**
   * Largest request message sent; larger ones fail locally with `resource_exhausted`.
   * @default 4_194_304 (4 MiB)
   */
  maxSendMessageBytes?: number;
  /**
   * Interval of keepalive pings while calls are open: how a stream without a deadline notices a dead server.
   * Must stay above the server's minimum ping interval (10 s for LiveLens servers). @default 30_000
   */
  keepaliveTimeMs?: number;
  /** How long a keepalive ping may go unanswered before the connection counts as dead. @default 10_000 */
  keepaliveTimeoutMs?: number;
  /** Transport security. @default grpc.credentials.createInsecure() */
  credentials?: grpc.ChannelCredentials;
}

export const grpcClientDefaults = {
  defaultDeadlineMs: 10_000,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  maxSendMessageBytes: 4 * 1024 * 1024,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 10_000,
} as const;

/** A unary method on the client: resolves with the response or rejects with a LiveLensError. */
export type UnaryClientMethod<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: ClientCallOptions,
) => Promise<MessageShape<O>>;

/**
 * A server-streaming method on the client. The call starts when iteration starts; breaking out of the loop or
 * aborting `signal` cancels it; a failed call throws a LiveLensError from the loop after the messages that
 * arrived before the failure. No deadline unless `deadlineMs` is given: these calls (watchTags) are meant to
 * stay open for as long as the consumer wants, and a deadline would cut a healthy stream; keepalive pings
 * detect a dead server instead.
 */
export type ServerStreamingClientMethod<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: ClientCallOptions,
) => AsyncIterable<MessageShape<O>>;

export type ClientMethod<M> =
  M extends DescMethodUnary<infer I, infer O>
    ? UnaryClientMethod<I, O>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? ServerStreamingClientMethod<I, O>
      : never;

/** A typed client: one method per unary or server-streaming RPC, by local name, plus `close()`. */
export type GrpcClient<S extends DescService> = {
  [K in SupportedMethodName<S>]: ClientMethod<S['method'][K]>;
} & {
  /** Closes the channel; calls in flight fail with `unavailable` or `cancelled`. */
  close(): void;
};

/**
 * A client of a protobuf-es service at `address` (`host:port`). Errors are LiveLensErrors whose code comes
 * from the gRPC status (`fromGrpcStatus`), message from the status details, context `{ grpcCode, method }`.
 */
export function createGrpcClient<S extends DescService>(
  service: S,
  address: string,
  options: GrpcClientOptions = {},
): GrpcClient<S> {
  const config = {
    defaultDeadlineMs: options.defaultDeadlineMs ?? grpcClientDefaults.defaultDeadlineMs,
    maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? grpcClientDefaults.maxReceiveMessageBytes,
    maxSendMessageBytes: options.maxSendMessageBytes ?? grpcClientDefaults.maxSendMessageBytes,
    keepaliveTimeMs: options.keepaliveTimeMs ?? grpcClientDefaults.keepaliveTimeMs,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? grpcClientDefaults.keepaliveTimeoutMs,
  };
  for (const [key, value] of Object.entries(config)) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new LiveLensError(`GrpcClientOptions.${key} must be a positive integer, got ${String(value)}`, {
        code: 'invalid_config',
        context: { option: `GrpcClientOptions.${key}` },
      });
    }
  }
  const client = new grpc.Client(address, options.credentials ?? grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': config.maxSendMessageBytes,
    'grpc.keepalive_time_ms': config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
  });

  const methods: Record<string, unknown> = {
    close: () => client.close(),
  };
  for (const method of service.methods) {
    if (method.localName === 'close') {
      throw new LiveLensError(`method ${methodPath(method)} clashes with the client's close()`, {
        code: 'invalid_argument',
        context: { method: methodPath(method) },
      });
    }
    if (method.methodKind === 'unary') {
      methods[method.localName] = unaryMethod(client, method, config.defaultDeadlineMs);
    } else if (method.methodKind === 'server_streaming') {
      methods[method.localName] = serverStreamingMethod(client, method);
    }
    // Client- and bidi-streaming methods get no client method (the type leaves them out too).
  }
  return methods as GrpcClient<S>;
}

function toMetadata(record: Record<string, string> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(record ?? {})) metadata.set(key, value);
  return metadata;
}

function cancelledBySignal(signal: AbortSignal, method: string): LiveLensError {
  return new LiveLensError('the call was cancelled by its signal', {
    code: 'cancelled',
    cause: signal.reason,
    context: { method },
  });
}

function unaryMethod(
  client: grpc.Client,
  method: DescMethod,
  defaultDeadlineMs: number,
): UnaryClientMethod<DescMessage, DescMessage> {
  const path = methodPath(method);
  const serialize = serializer(method.input);
  const deserialize = deserializer(method.output);
  return (request, options = {}) =>
    new Promise<Message>((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(cancelledBySignal(signal, path));
        return;
      }
      const deadline = Date.now() + (options.deadlineMs ?? defaultDeadlineMs);
      const onAbort = (): void => call.cancel();
      const call = client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        create(method.input, request),
        toMetadata(options.metadata),
        { deadline },
        (error, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(fromGrpcError(error, path));
          else if (response === undefined)
            reject(new LiveLensError('no response message', { code: 'internal' }));
          else resolve(response);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
}

function serverStreamingMethod(
  client: grpc.Client,
  method: DescMethod,
): ServerStreamingClientMethod<DescMessage, DescMessage> {
  const path = methodPath(method);
  const serialize = serializer(method.input);
  const deserialize = deserializer(method.output);
  return (request, options = {}) => ({
    async *[Symbol.asyncIterator]() {
      const { signal } = options;
      if (signal?.aborted) throw cancelledBySignal(signal, path);
      const callOptions: grpc.CallOptions = {};
      if (options.deadlineMs !== undefined) callOptions.deadline = Date.now() + options.deadlineMs;
      const call = client.makeServerStreamRequest(
        path,
        serialize,
        deserialize,
        create(method.input, request),
        toMetadata(options.metadata),
        callOptions,
      );
      let finished = false;
      call.on('status', () => {
        finished = true;
      });
      // grpc-js emits the failed status as an 'error' event, also after we cancel and the loop below is gone;
      // without a listener of our own that late CANCELLED would be an unhandled 'error' and crash the
      // process. The loop still sees errors that arrive while it runs.
      call.on('error', () => {
        finished = true;
      });
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const message of call as AsyncIterable<Message>) yield message;
      } catch (error) {
        throw fromGrpcError(error, path);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        // Reached early when the consumer breaks out or throws: tell the server
        // (test: "cancels the server iterator when the client breaks out early").
        if (!finished) call.cancel();
      }
    },
  });
}
