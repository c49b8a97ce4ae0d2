import { create, type DescService } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  IngestService,
  StartStreamRequestSchema,
  TagService,
  WatchTagsResponseSchema,
} from '@livelens/contracts';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, LiveLensError } from '../errors.js';
import {
  fromGrpcError,
  fromGrpcStatus,
  toGrpcImplementation,
  toGrpcServiceDefinition,
  toGrpcStatus,
} from './adapter.js';

describe('toGrpcServiceDefinition', () => {
  it('keys methods by local name with their full paths and stream flags', () => {
    const ingest = toGrpcServiceDefinition(IngestService);
    expect(Object.keys(ingest).sort()).toEqual(['getStream', 'listStreams', 'startStream', 'stopStream']);
    expect(ingest.startStream?.path).toBe('/livelens.v1.IngestService/StartStream');
    expect(ingest.startStream?.requestStream).toBe(false);
    expect(ingest.startStream?.responseStream).toBe(false);

    const tags = toGrpcServiceDefinition(TagService);
    expect(tags.watchTags?.path).toBe('/livelens.v1.TagService/WatchTags');
    expect(tags.watchTags?.requestStream).toBe(false);
    expect(tags.watchTags?.responseStream).toBe(true);
    expect(tags.getStreamSummary?.path).toBe('/livelens.v1.TagService/GetStreamSummary');
    expect(tags.getStreamSummary?.responseStream).toBe(false);
  });

  it('marks client- and bidi-streaming methods as request streams', () => {
    const bidi = { ...TagService.method.watchTags, methodKind: 'bidi_streaming' as const };
    const clientStreaming = {
      ...TagService.method.getStreamSummary,
      methodKind: 'client_streaming' as const,
    };
    const service = { ...TagService, methods: [bidi, clientStreaming] } as DescService;
    const definition = toGrpcServiceDefinition(service);
    expect(definition.watchTags?.requestStream).toBe(true);
    expect(definition.watchTags?.responseStream).toBe(true);
    expect(definition.getStreamSummary?.requestStream).toBe(true);
    expect(definition.getStreamSummary?.responseStream).toBe(false);
  });

  it('serializes to a Buffer and back without losing fields', () => {
    const method = toGrpcServiceDefinition(IngestService).startStream!;
    const request = create(StartStreamRequestSchema, {
      sourceUrl: 'rtmp://example.test/live/cam-1',
      streamId: 'cam-1',
      labels: { site: 'north', camera: '1' },
      options: { frameRateFps: 2, maxHeight: 480 },
      requestId: 'req-7',
    });
    const bytes = method.requestSerialize(request);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(bytes.byteLength).toBeGreaterThan(0);
    const decoded = method.requestDeserialize(bytes);
    expect(decoded).toEqual(request);
    expect(decoded.$typeName).toBe('livelens.v1.StartStreamRequest');
  });

  it('serializes responses with enums and 64-bit integers', () => {
    const method = toGrpcServiceDefinition(TagService).watchTags!;
    const response = create(WatchTagsResponseSchema, {
      event: { eventId: 'ep-1/3', revision: 3, emittedTimeUnixMs: 1_700_000_000_123n, score: 0.5 },
    });
    const decoded = method.responseDeserialize(method.responseSerialize(response));
    expect(decoded).toEqual(response);
  });
});

describe('status mapping', () => {
  const expected: Record<ErrorCode, grpc.status> = {
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

  it('maps every error code to its status', () => {
    for (const [code, status] of Object.entries(expected)) {
      expect(toGrpcStatus(code as ErrorCode), code).toBe(status);
    }
  });

  it('maps statuses back, round-tripping the codes that have their own status', () => {
    for (const [code, status] of Object.entries(expected)) {
      if (code === 'invalid_config' || code === 'invalid_message') continue;
      expect(fromGrpcStatus(status), code).toBe(code);
    }
    expect(fromGrpcStatus(grpc.status.UNAUTHENTICATED)).toBe('permission_denied');
    expect(fromGrpcStatus(grpc.status.OUT_OF_RANGE)).toBe('invalid_argument');
    expect(fromGrpcStatus(grpc.status.ABORTED)).toBe('failed_precondition');
    expect(fromGrpcStatus(grpc.status.UNIMPLEMENTED)).toBe('internal');
    expect(fromGrpcStatus(grpc.status.UNKNOWN)).toBe('internal');
    expect(fromGrpcStatus(grpc.status.DATA_LOSS)).toBe('internal');
  });

  it('converts a grpc-js error into a LiveLensError with the details and context', () => {
    const grpcError = Object.assign(new Error('14 UNAVAILABLE: connection refused'), {
      code: grpc.status.UNAVAILABLE,
      details: 'connection refused',
    });
    const error = fromGrpcError(grpcError, '/livelens.v1.IngestService/GetStream');
    expect(error).toBeInstanceOf(LiveLensError);
    expect(error.code).toBe('unavailable');
    expect(error.retriable).toBe(true);
    expect(error.message).toBe('connection refused');
    expect(error.context).toEqual({ grpcCode: 14, method: '/livelens.v1.IngestService/GetStream' });
    expect(error.cause).toBe(grpcError);

    const aborted = fromGrpcError({ code: grpc.status.ABORTED, details: 'lost a race' }, '/m');
    expect(aborted.code).toBe('failed_precondition');
    expect(aborted.retriable).toBe(true);
  });
});

describe('toGrpcImplementation', () => {
  const noop = (): void => undefined;

  it('rejects a service implementation with a missing handler', () => {
    const partial = { getStreamSummary: async () => ({}) } as never;
    expect(() => toGrpcImplementation(TagService, partial, noop)).toThrowError(
      expect.objectContaining({
        code: 'invalid_argument',
        message: 'no handler for /livelens.v1.TagService/WatchTags',
      }),
    );
  });

  it('rejects a handler for a bidi-streaming method and leaves an unimplemented one out', () => {
    const bidi = { ...TagService.method.watchTags, methodKind: 'bidi_streaming' as const };
    const unary = TagService.method.getStreamSummary;
    const service = { ...TagService, methods: [bidi, unary] } as DescService;
    expect(() =>
      toGrpcImplementation(service, { watchTags: () => ({}), getStreamSummary: async () => ({}) }, noop),
    ).toThrowError(expect.objectContaining({ code: 'invalid_argument' }));

    const handlers = toGrpcImplementation(service, { getStreamSummary: async () => ({}) }, noop);
    expect(Object.keys(handlers)).toEqual(['getStreamSummary']);
  });
});
