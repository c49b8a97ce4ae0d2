/**
 * The one path from a protobuf-es v2 service descriptor to grpc-js: a service definition (paths, stream
 * flags, binary codecs), a handler adapter (cancellation, deadlines, backpressure, error mapping) and the
 * status-code mapping in both directions. grpc-js has no code generator for protobuf-es; with this, none is
 * needed.
 *
 * gRPC status codes appear here and nowhere else: handlers throw `LiveLensError`, clients receive
 * `LiveLensError`, and this file translates at the edge.
 */

import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type Message,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { type ErrorCode, LiveLensError } from '../errors.js';

/** What a handler knows about the call it serves. */
export interface CallContext {
  /**
   * Aborted when the client cancels, the deadline passes or the server shuts down. `signal.reason` is a
   * LiveLensError with code `cancelled` or `deadline_exceeded`. Long waits inside a handler should honour it.
   */
  readonly signal: AbortSignal;
  /** The client's deadline, when it sent one. */
  readonly deadline: Date | undefined;
  /** Request metadata with text values; binary (`-bin`) entries are left out. Keys are lower-case. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The client's address as grpc-js reports it (`ipv4:127.0.0.1:53422`). */
  readonly peer: string;
}

/** A unary method: one request in, one response out. */
export type UnaryImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  call: CallContext,
) => Promise<MessageInitShape<O>>;

/**
 * A server-streaming method: every yielded value is one response message; returning ends the call with OK,
 * throwing ends it with the mapped status. The iterator is `return()`ed when the client goes away.
 */
export type ServerStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  call: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

/** The handler type for one method descriptor, or `never` for the kinds the adapter does not serve. */
export type MethodImpl<M> =
  M extends DescMethodUnary<infer I, infer O>
    ? UnaryImpl<I, O>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? ServerStreamingImpl<I, O>
      : never;

/** Local names of the methods the adapter serves and calls (unary and server-streaming). */
export type SupportedMethodName<S extends DescService> = {
  [K in keyof S['method']]: S['method'][K] extends { methodKind: 'unary' | 'server_streaming' } ? K : never;
}[keyof S['method']];

/**
 * The implementation of a service: one handler per unary or server-streaming method, keyed by the method's
 * local name (`startStream`). Client- and bidi-streaming methods are not served (they answer UNIMPLEMENTED).
 */
export type ServiceImpl<S extends DescService> = {
  [K in SupportedMethodName<S>]: MethodImpl<S['method'][K]>;
};

/** Called with every error that reaches a client as INTERNAL: the place to log it. */
export type GrpcErrorHook = (error: unknown, methodPath: string) => void;

type AnyMethodDefinition = grpc.MethodDefinition<Message, Message>;

/** `/livelens.v1.IngestService/StartStream`: the HTTP/2 path of a method. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Serializes a message to the Buffer grpc-js expects, without copying the bytes. */
export function serializer(schema: DescMessage): (message: Message) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** Parses a message; grpc-js turns a throw here into an INTERNAL status. */
export function deserializer(schema: DescMessage): (bytes: Buffer) => Message {
  return (bytes) => fromBinary(schema, bytes);
}

/**
 * The grpc-js service definition of a protobuf-es service: one entry per method keyed by its local name, with
 * the method's path, stream flags and binary codecs. All four method kinds are described; the server and
 * client helpers serve and call unary and server-streaming methods.
 */
export function toGrpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, AnyMethodDefinition> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition;
}

const TO_GRPC: Readonly<Record<ErrorCode, grpc.status>> = {
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  permission_denied: grpc.status.PERMISSION_DENIED,
  not_found: grpc.status.NOT_FOUND,
  already_exists: grpc.status.ALREADY_EXISTS,
  resource_exhausted: grpc.status.RESOURCE_EXHAUSTED,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
  deadline_exceeded: grpc.status.DEADLINE_EXCEEDED,
  cancelled: grpc.status.CANCELLED,
  invalid_config: grpc.status.INVALID_ARGUMENT,
  invalid_message: grpc.status.INVALID_ARGUMENT,
  internal: grpc.status.INTERNAL,
};

/** The gRPC status a LiveLens error code is sent as. */
export function toGrpcStatus(code: ErrorCode): grpc.status {
  return TO_GRPC[code];
}

/**
 * The LiveLens error code for a gRPC status received by a client. Statuses without a LiveLens counterpart:
 * UNAUTHENTICATED → permission_denied, OUT_OF_RANGE → invalid_argument, ABORTED → failed_precondition
 * (the client conversion marks it retriable); UNKNOWN, UNIMPLEMENTED, DATA_LOSS and OK (never an error)
 * → internal.
 */
export function fromGrpcStatus(status: grpc.status): ErrorCode {
  switch (status) {
    case grpc.status.CANCELLED:
      return 'cancelled';
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.OUT_OF_RANGE:
      return 'invalid_argument';
    case grpc.status.DEADLINE_EXCEEDED:
      return 'deadline_exceeded';
    case grpc.status.NOT_FOUND:
      return 'not_found';
    case grpc.status.ALREADY_EXISTS:
      return 'already_exists';
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.UNAUTHENTICATED:
      return 'permission_denied';
    case grpc.status.RESOURCE_EXHAUSTED:
      return 'resource_exhausted';
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.ABORTED:
      return 'failed_precondition';
    case grpc.status.UNAVAILABLE:
      return 'unavailable';
    default:
      return 'internal';
  }
}

/**
 * Converts what a grpc-js client call failed with into a LiveLensError: code from the status, message = the
 * status details, context `{ grpcCode, method }`, the grpc-js error as `cause`.
 */
export function fromGrpcError(error: unknown, method: string): LiveLensError {
  if (error instanceof LiveLensError) return error;
  const { code, details } = (error ?? {}) as { code?: unknown; details?: unknown };
  if (typeof code !== 'number' || !(code in grpc.status)) {
    return LiveLensError.from(error, { code: 'internal', context: { method } });
  }
  return new LiveLensError(typeof details === 'string' && details !== '' ? details : grpc.status[code]!, {
    code: fromGrpcStatus(code),
    cause: error,
    // ABORTED (a lost race, a conflicting write) is worth retrying from the top; FAILED_PRECONDITION is not.
    ...(code === grpc.status.ABORTED ? { retriable: true } : {}),
    context: { grpcCode: code, method },
  });
}

/** What the client is told about an error: LiveLensErrors keep their message, the rest is generic. */
function toStatusObject(error: unknown, path: string, onError: GrpcErrorHook): Partial<grpc.StatusObject> {
  if (error instanceof LiveLensError && error.code !== 'internal') {
    return { code: toGrpcStatus(error.code), details: error.message };
  }
  // Unexpected errors and `internal` LiveLensErrors (often `LiveLensError.from(foreign)`, carrying a foreign
  // message) are logged here and reach the client without message or stack
  // (test: "delivers an unexpected throw as internal without its message, and reports it to onError").
  reportSafely(onError, error, path);
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}

function reportSafely(onError: GrpcErrorHook, error: unknown, path: string): void {
  try {
    onError(error, path);
  } catch (hookError) {
    // A failing log hook must not take the call (or the process) down; stderr is the last resort.
    console.error('grpc onError hook failed', { method: path, error, hookError });
  }
}

/**
 * For an error thrown after the call was cancelled: the client is gone and grpc-js drops any status, and an
 * abort error from the handler's own waits is the expected way out, not a bug. Anything else is still logged.
 */
function reportUnlessAbort(error: unknown, signal: AbortSignal, path: string, onError: GrpcErrorHook): void {
  const isAbort =
    error === signal.reason ||
    (error instanceof Error && error.name === 'AbortError') ||
    (error instanceof LiveLensError && (error.code === 'cancelled' || error.code === 'deadline_exceeded'));
  if (!isAbort) reportSafely(onError, error, path);
}

/** Text metadata as a plain record; repeated keys keep their first value. */
function metadataRecord(metadata: grpc.Metadata): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === 'string') record[key] = value;
  }
  return record;
}

function deadlineDate(deadline: grpc.Deadline): Date | undefined {
  if (deadline instanceof Date) return deadline;
  return Number.isFinite(deadline) ? new Date(deadline) : undefined;
}

type ServerCall = grpc.ServerUnaryCall<Message, Message> | grpc.ServerWritableStream<Message, Message>;

/**
 * Builds the CallContext of a call: its signal aborts on the grpc-js 'cancelled' event (client cancel, broken
 * connection, forced shutdown, passed deadline) and, as a backstop, by our own timer at the deadline
 * (test: "fails a slow handler with deadline_exceeded").
 */
function openCallContext(call: ServerCall, maxCallMs?: number): { context: CallContext; close: () => void } {
  const controller = new AbortController();
  // The server caps its own work too (reliability.md §4): a client that sends no deadline, or a far one,
  // gets the server's limit.
  const clientDeadline = deadlineDate(call.getDeadline());
  const cap = maxCallMs === undefined ? undefined : new Date(Date.now() + maxCallMs);
  const deadline = cap && (!clientDeadline || cap < clientDeadline) ? cap : clientDeadline;
  const onCancelled = (): void => {
    // grpc-js reports a passed deadline as a plain 'cancelled' (its own deadline timer closes the stream, a
    // few ms before ours fires); the reason should still say what happened.
    if (deadline && Date.now() >= deadline.getTime()) abortOnDeadline();
    else controller.abort(new LiveLensError('the client cancelled the call', { code: 'cancelled' }));
  };
  const abortOnDeadline = (): void => {
    controller.abort(new LiveLensError('the call deadline passed', { code: 'deadline_exceeded' }));
  };
  call.once('cancelled', onCancelled);
  let timer: NodeJS.Timeout | undefined;
  if (deadline) {
    timer = setTimeout(abortOnDeadline, Math.max(0, deadline.getTime() - Date.now()));
  }
  // grpc-js may have seen the cancellation before the handler ran.
  if (call.cancelled) onCancelled();
  const context: CallContext = {
    signal: controller.signal,
    deadline,
    metadata: metadataRecord(call.metadata),
    peer: call.getPeer(),
  };
  return {
    context,
    close: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancelled);
    },
  };
}

function unaryHandler(
  method: DescMethod,
  impl: UnaryImpl<DescMessage, DescMessage>,
  onError: GrpcErrorHook,
  maxUnaryCallMs: number | undefined,
): grpc.handleUnaryCall<Message, Message> {
  const path = methodPath(method);
  return (call, callback) => {
    const { context, close } = openCallContext(call, maxUnaryCallMs);
    void serveUnary(call, method, impl, context, onError, path)
      .then((result) => (result.ok ? callback(null, result.response) : callback(result.status)))
      .finally(close);
  };
}

type UnaryResult = { ok: true; response: Message } | { ok: false; status: Partial<grpc.StatusObject> };

async function serveUnary(
  call: grpc.ServerUnaryCall<Message, Message>,
  method: DescMethod,
  impl: UnaryImpl<DescMessage, DescMessage>,
  context: CallContext,
  onError: GrpcErrorHook,
  path: string,
): Promise<UnaryResult> {
  try {
    // `await` also turns a handler that throws before returning its promise into a rejection; `create` throws
    // when the handler returned something that does not fit the output message.
    // Raced with the signal: a handler that ignores it cannot hold the call past the deadline or a cancel.
    const response = await Promise.race([impl(call.request, context), rejectOnAbort(context.signal)]);
    return { ok: true, response: create(method.output, response) };
  } catch (error) {
    if (context.signal.aborted) {
      reportUnlessAbort(error, context.signal, path, onError);
      return { ok: false, status: toStatusObject(context.signal.reason, path, onError) };
    }
    return { ok: false, status: toStatusObject(error, path, onError) };
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Waits until the call can take more data ('drain') or is aborted. grpc-js destroys the stream on cancel,
 * after which 'drain' never comes; the abort signal is what wakes us then.
 */
function drainOrAbort(call: grpc.ServerWritableStream<Message, Message>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
    if (signal.aborted) done();
  });
}

function serverStreamingHandler(
  method: DescMethod,
  impl: ServerStreamingImpl<DescMessage, DescMessage>,
  onError: GrpcErrorHook,
): grpc.handleServerStreamingCall<Message, Message> {
  const path = methodPath(method);
  return (call) => {
    const { context, close } = openCallContext(call);
    void serveStream(call, method, impl, context, onError, path).finally(close);
  };
}

async function serveStream(
  call: grpc.ServerWritableStream<Message, Message>,
  method: DescMethod,
  impl: ServerStreamingImpl<DescMessage, DescMessage>,
  context: CallContext,
  onError: GrpcErrorHook,
  path: string,
): Promise<void> {
  const { signal } = context;
  let iterator: AsyncIterator<MessageInitShape<DescMessage>> | undefined;
  let closing: Promise<void> | undefined;
  // `return()` at most once, whether the abort or the loop's exit gets there first.
  const closeIterator = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await iterator?.return?.();
      } catch (error) {
        reportSafely(onError, error, path);
      }
    })();
    return closing;
  };
  // Return the iterator as soon as the client goes away. An async generator parked at `yield` (the usual
  // case: we are waiting for 'drain' or for the next turn) runs its `finally` right away; one busy in an
  // `await` runs it at its next `yield`, so long waits inside a handler should honour `signal`
  // (test: "cancels the server iterator when the client breaks out early").
  const onAbort = (): void => {
    void closeIterator();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    iterator = impl(call.request, context)[Symbol.asyncIterator]();
    while (!signal.aborted) {
      const next = await iterator.next();
      if (next.done || signal.aborted) break;
      // Backpressure: write() returns false once the Writable's buffer (16 messages) is full; wait for it to
      // drain instead of buffering an unbounded stream in memory.
      if (!call.write(create(method.output, next.value))) await drainOrAbort(call, signal);
    }
    if (!signal.aborted) call.end();
  } catch (error) {
    // Writes before the error are flushed first; then the mapped status ends the call.
    if (!signal.aborted) call.emit('error', toStatusObject(error, path, onError));
    else reportUnlessAbort(error, signal, path, onError);
  } finally {
    signal.removeEventListener('abort', onAbort);
    await closeIterator();
  }
}

/**
 * grpc-js handlers for a service implementation, keyed like `toGrpcServiceDefinition`. Throws
 * `invalid_argument` when a handler is missing or given for a client- or bidi-streaming method.
 */
export function toGrpcImplementation<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  onError: GrpcErrorHook,
  maxUnaryCallMs?: number,
): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  const given = impl as Record<string, unknown>;
  for (const method of service.methods) {
    const handler = given[method.localName];
    switch (method.methodKind) {
      case 'unary':
      case 'server_streaming':
        if (typeof handler !== 'function') {
          throw new LiveLensError(`no handler for ${methodPath(method)}`, {
            code: 'invalid_argument',
            context: { method: methodPath(method) },
          });
        }
        handlers[method.localName] =
          method.methodKind === 'unary'
            ? unaryHandler(method, handler as UnaryImpl<DescMessage, DescMessage>, onError, maxUnaryCallMs)
            : serverStreamingHandler(
                method,
                handler as ServerStreamingImpl<DescMessage, DescMessage>,
                onError,
              );
        break;
      default:
        // Left out of `handlers`, grpc-js answers UNIMPLEMENTED for these methods.
        if (handler !== undefined) {
          throw new LiveLensError(
            `${method.methodKind} method ${methodPath(method)} is not supported by the LiveLens gRPC adapter`,
            { code: 'invalid_argument', context: { method: methodPath(method) } },
          );
        }
    }
  }
  return handlers;
}
