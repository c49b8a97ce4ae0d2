import type { DescService } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { LiveLensError } from '../errors.js';
import {
  type GrpcErrorHook,
  type ServiceImpl,
  toGrpcImplementation,
  toGrpcServiceDefinition,
} from './adapter.js';

/** Options of a LiveLens gRPC server. Every field has a default suited to a control API. */
export interface GrpcServerOptions {
  /**
   * Largest request message accepted; larger ones fail with RESOURCE_EXHAUSTED before a handler runs. Control
   * requests are small, and a low cap bounds what one client can make the server buffer.
   * @default 65_536 (64 KiB)
   */
  maxReceiveMessageBytes?: number;
  /**
   * Largest response message sent; a larger one fails the call with RESOURCE_EXHAUSTED.
   * @default 4_194_304 (4 MiB)
   */
  maxSendMessageBytes?: number;
  /** Concurrent calls (HTTP/2 streams) per client connection. @default 100 */
  maxConcurrentStreams?: number;
  /**
   * Longest a unary handler may run, whatever deadline the client sent (or none): then its signal aborts
   * with deadline_exceeded and the call fails so. Server-streaming calls (watches) are not capped.
   * @default 30_000
   */
  maxUnaryCallMs?: number;
  /**
   * How often the server pings each client connection to find dead clients (a watcher whose host vanished
   * would keep its server-streaming call open forever otherwise).
   * @default 60_000
   */
  keepaliveTimeMs?: number;
  /** How long a keepalive ping may go unanswered before the connection is closed. @default 20_000 */
  keepaliveTimeoutMs?: number;
  /**
   * Whether clients may send keepalive pings while they have no call open
   * (`grpc.keepalive_permit_without_calls`). grpc-js 1.14 does not enforce a client ping policy at all (it
   * never answers GOAWAY too_many_pings), so this and `minPingIntervalMs` are advertised for parity with
   * C-core servers and proxies that read them.
   * @default true
   */
  keepalivePermitWithoutCalls?: boolean;
  /**
   * Shortest interval between client pings the server is meant to accept
   * (`grpc.http2.min_ping_interval_without_data_ms`); clients must ping less often than this. See
   * `keepalivePermitWithoutCalls` on enforcement.
   * @default 10_000
   */
  minPingIntervalMs?: number;
  /**
   * A connection without calls for this long is closed (clients reconnect on their next call).
   * @default 300_000 (5 min)
   */
  maxConnectionIdleMs?: number;
  /**
   * Transport security; TLS usually ends at the mesh or ingress.
   * @default grpc.ServerCredentials.createInsecure()
   */
  credentials?: grpc.ServerCredentials;
  /**
   * Called with every error that reaches a client as INTERNAL (unexpected throws and `internal`
   * LiveLensErrors), with the method path; pass the service's logger here.
   * @default writes the error to stderr
   */
  onError?: GrpcErrorHook;
}

/** `GrpcServerOptions` with every default applied. */
export type ResolvedGrpcServerOptions = Required<GrpcServerOptions>;

export const grpcServerDefaults = {
  maxReceiveMessageBytes: 64 * 1024,
  maxSendMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 100,
  maxUnaryCallMs: 30_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  keepalivePermitWithoutCalls: true,
  minPingIntervalMs: 10_000,
  maxConnectionIdleMs: 300_000,
} as const satisfies Partial<ResolvedGrpcServerOptions>;

const defaultOnError: GrpcErrorHook = (error, methodPath) => {
  console.error('grpc handler failed', { method: methodPath, error });
};

/** Applies defaults and checks that every number is a positive integer. */
export function resolveGrpcServerOptions(options: GrpcServerOptions = {}): ResolvedGrpcServerOptions {
  const resolved: ResolvedGrpcServerOptions = {
    ...grpcServerDefaults,
    ...stripUndefined(options),
    credentials: options.credentials ?? grpc.ServerCredentials.createInsecure(),
    onError: options.onError ?? defaultOnError,
  };
  for (const key of [
    'maxReceiveMessageBytes',
    'maxSendMessageBytes',
    'maxConcurrentStreams',
    'keepaliveTimeMs',
    'keepaliveTimeoutMs',
    'minPingIntervalMs',
    'maxConnectionIdleMs',
    'maxUnaryCallMs',
  ] as const) {
    requirePositiveInteger(`GrpcServerOptions.${key}`, resolved[key]);
  }
  return resolved;
}

/** The grpc-js channel options a resolved configuration compiles to. */
export function toServerChannelOptions(options: ResolvedGrpcServerOptions): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes,
    'grpc.max_send_message_length': options.maxSendMessageBytes,
    'grpc.max_concurrent_streams': options.maxConcurrentStreams,
    'grpc.keepalive_time_ms': options.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': options.keepalivePermitWithoutCalls ? 1 : 0,
    'grpc.http2.min_ping_interval_without_data_ms': options.minPingIntervalMs,
    'grpc.max_connection_idle_ms': options.maxConnectionIdleMs,
  };
}

/** Where a server is in its life. */
export type GrpcServerState = 'created' | 'listening' | 'stopping' | 'stopped';

export interface GrpcServer {
  /** Serves a protobuf-es service. Throws `invalid_argument` for a missing or unsupported handler. */
  addService<S extends DescService>(service: S, impl: ServiceImpl<S>): void;
  /**
   * Binds and starts serving; resolves with the bound port (useful with port 0). Fails with `unavailable`.
   */
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops accepting calls and waits for running calls to finish, for at most `graceMs`; then cancels what is
   * left (handlers see their signal abort). Resolves once the server is stopped.
   */
  shutdown(graceMs: number): Promise<void>;
  readonly state: GrpcServerState;
}

/** A grpc-js server that serves protobuf-es services through the adapter. */
export function createGrpcServer(options: GrpcServerOptions = {}): GrpcServer {
  const config = resolveGrpcServerOptions(options);
  const server = new grpc.Server(toServerChannelOptions(config));
  let state: GrpcServerState = 'created';

  return {
    get state() {
      return state;
    },

    addService(service, impl) {
      server.addService(
        toGrpcServiceDefinition(service),
        toGrpcImplementation(service, impl, config.onError, config.maxUnaryCallMs),
      );
    },

    listen(host, port) {
      if (state !== 'created') {
        return Promise.reject(
          new LiveLensError(`cannot listen: the server is ${state}`, { code: 'failed_precondition' }),
        );
      }
      // An IPv6 literal needs brackets in a grpc-js address.
      const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
      return new Promise((resolve, reject) => {
        server.bindAsync(address, config.credentials, (error, boundPort) => {
          if (error) {
            reject(
              new LiveLensError(`cannot listen on ${address}: ${error.message}`, {
                code: 'unavailable',
                cause: error,
                context: { address },
              }),
            );
            return;
          }
          // Since grpc-js 1.10 bindAsync also starts serving; `start()` is deprecated.
          state = 'listening';
          resolve(boundPort);
        });
      });
    },

    async shutdown(graceMs) {
      if (state === 'stopped' || state === 'stopping') return;
      state = 'stopping';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          // Open server streams (watchers) never finish on their own: cancel them. This also completes the
          // tryShutdown below, whose sessions are now closed.
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown((error) => {
          clearTimeout(timer);
          if (error) server.forceShutdown();
          resolve();
        });
      });
      state = 'stopped';
    },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new LiveLensError(`${name} must be a positive integer, got ${String(value)}`, {
      code: 'invalid_config',
      context: { option: name },
    });
  }
}
