export {
  type CallContext,
  fromGrpcError,
  fromGrpcStatus,
  type GrpcErrorHook,
  type MethodImpl,
  type ServerStreamingImpl,
  type ServiceImpl,
  type SupportedMethodName,
  toGrpcServiceDefinition,
  toGrpcStatus,
  type UnaryImpl,
} from './adapter.js';
export {
  type ClientCallOptions,
  type ClientMethod,
  createGrpcClient,
  type GrpcClient,
  type GrpcClientOptions,
  grpcClientDefaults,
  type ServerStreamingClientMethod,
  type UnaryClientMethod,
} from './client.js';
export {
  createGrpcServer,
  type GrpcServer,
  type GrpcServerOptions,
  type GrpcServerState,
  grpcServerDefaults,
  type ResolvedGrpcServerOptions,
  resolveGrpcServerOptions,
} from './server.js';
