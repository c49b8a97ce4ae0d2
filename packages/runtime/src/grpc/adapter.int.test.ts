import { setTimeout as sleep } from 'node:timers/promises';
import type { DescService } from '@bufbuild/protobuf';
import { EpisodeState, IngestService, Severity, StreamState, TagKind, TagService } from '@livelens/contracts';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LiveLensError } from '../errors.js';
import type { CallContext, ServiceImpl } from './adapter.js';
import { createGrpcClient, type GrpcClient, type GrpcClientOptions } from './client.js';
import { createGrpcServer, type GrpcServerOptions } from './server.js';

/** Starts a real server on 127.0.0.1:0 with one service and a client to it; both go away after the test. */
async function serve<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: { server?: GrpcServerOptions; client?: GrpcClientOptions } = {},
): Promise<GrpcClient<S>> {
  const server = createGrpcServer(options.server);
  server.addService(service, impl);
  const port = await server.listen('127.0.0.1', 0);
  expect(port).toBeGreaterThan(0);
  const client = createGrpcClient(service, `127.0.0.1:${port}`, options.client);
  onTestFinished(async () => {
    client.close();
    await server.shutdown(500);
    expect(server.state).toBe('stopped');
  });
  return client;
}

/** An IngestService whose methods fail the test unless a test overrides them. */
function ingest(overrides: Partial<ServiceImpl<typeof IngestService>>): ServiceImpl<typeof IngestService> {
  const unexpected = async (): Promise<never> => {
    throw new Error('not expected in this test');
  };
  return {
    startStream: unexpected,
    stopStream: unexpected,
    getStream: unexpected,
    listStreams: unexpected,
    ...overrides,
  };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function rejectionOf(promise: Promise<unknown>): Promise<LiveLensError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LiveLensError);
  return error as LiveLensError;
}

async function abortedSignalOf(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return signal.reason;
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  return signal.reason;
}

describe('unary calls', () => {
  it('round-trips scalar, map, message, enum and 64-bit fields, and passes metadata', async () => {
    let seen: CallContext | undefined;
    const client = await serve(
      IngestService,
      ingest({
        startStream: async (request, call) => {
          seen = call;
          return {
            stream: {
              streamId: request.streamId,
              sourceUrl: request.sourceUrl,
              labels: request.labels,
              options: request.options,
              state: StreamState.RUNNING,
              startedTimeUnixMs: 1_700_000_000_123n,
              framesPublished: 2n ** 40n,
              lastError: call.metadata['x-trace-id'] ?? '',
            },
          };
        },
        listStreams: async (request) => ({
          streams: request.states.map((state, i) => ({ streamId: `s-${i}`, state })),
        }),
      }),
    );

    const response = await client.startStream(
      {
        sourceUrl: 'rtmp://example.test/live/cam-1',
        streamId: 'cam-1',
        labels: { site: 'north', 'camera.id': '1' },
        options: { frameRateFps: 2.5, maxHeight: 480 },
        requestId: 'req-7',
      },
      { metadata: { 'x-trace-id': 'trace-42' } },
    );
    expect(response.$typeName).toBe('livelens.v1.StartStreamResponse');
    expect(response.stream?.streamId).toBe('cam-1');
    expect(response.stream?.sourceUrl).toBe('rtmp://example.test/live/cam-1');
    expect(response.stream?.labels).toEqual({ site: 'north', 'camera.id': '1' });
    expect(response.stream?.options?.frameRateFps).toBe(2.5);
    expect(response.stream?.options?.maxHeight).toBe(480);
    expect(response.stream?.state).toBe(StreamState.RUNNING);
    expect(response.stream?.startedTimeUnixMs).toBe(1_700_000_000_123n);
    expect(response.stream?.framesPublished).toBe(1_099_511_627_776n);
    expect(response.stream?.lastError).toBe('trace-42');

    expect(seen?.peer).toMatch(/127\.0\.0\.1/);
    expect(seen?.deadline).toBeInstanceOf(Date);
    // The default unary deadline is 10 s.
    expect(seen!.deadline!.getTime() - Date.now()).toBeGreaterThan(5_000);
    expect(seen?.signal.aborted).toBe(false);

    const list = await client.listStreams({ states: [StreamState.DEGRADED, StreamState.RUNNING] });
    expect(list.streams.map((s) => [s.streamId, s.state])).toEqual([
      ['s-0', StreamState.DEGRADED],
      ['s-1', StreamState.RUNNING],
    ]);
  });

  it('delivers a LiveLensError thrown by a handler with its code and message', async () => {
    const errors: unknown[] = [];
    const client = await serve(
      IngestService,
      ingest({
        startStream: async () => {
          throw new LiveLensError('bad url', { code: 'invalid_argument' });
        },
      }),
      { server: { onError: (error) => errors.push(error) } },
    );
    const error = await rejectionOf(client.startStream({ sourceUrl: 'ftp://nope' }));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toBe('bad url');
    expect(error.retriable).toBe(false);
    expect(error.context).toEqual({ grpcCode: 3, method: '/livelens.v1.IngestService/StartStream' });
    // Expected errors are the client's business, not the server's log.
    expect(errors).toEqual([]);
  });

  it('delivers an unexpected throw as internal without its message, and reports it to onError', async () => {
    const errors: Array<[unknown, string]> = [];
    const secret = new TypeError('password=hunter2 at db.internal:5432');
    const client = await serve(
      IngestService,
      ingest({
        getStream: () => {
          // Thrown synchronously, before any promise exists.
          throw secret;
        },
      }),
      { server: { onError: (error, path) => errors.push([error, path]) } },
    );
    const error = await rejectionOf(client.getStream({ streamId: 'cam-1' }));
    expect(error.code).toBe('internal');
    expect(error.message).toBe('internal error');
    expect(JSON.stringify({ message: error.message, context: error.context })).not.toContain('hunter2');
    expect(String(error.cause)).not.toContain('hunter2');
    expect(errors).toEqual([[secret, '/livelens.v1.IngestService/GetStream']]);
  });

  it('fails a slow handler with deadline_exceeded and aborts the handler signal', async () => {
    const aborted = deferred<unknown>();
    const client = await serve(
      IngestService,
      ingest({
        stopStream: async (_request, call) => {
          aborted.resolve(await abortedSignalOf(call.signal));
          return {};
        },
      }),
    );
    const started = Date.now();
    const error = await rejectionOf(client.stopStream({ streamId: 'cam-1' }, { deadlineMs: 200 }));
    expect(error.code).toBe('deadline_exceeded');
    expect(error.retriable).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(2_000);
    const reason = await aborted.promise;
    expect(reason).toBeInstanceOf(LiveLensError);
    expect((reason as LiveLensError).code).toBe('deadline_exceeded');
  });

  it('caps a unary call at the server limit even when the client sent a far deadline and the handler ignores its signal', async () => {
    const client = await serve(
      IngestService,
      ingest({ stopStream: () => new Promise(() => undefined) }), // never settles
      { server: { maxUnaryCallMs: 300 } },
    );
    const started = Date.now();
    const error = await rejectionOf(client.stopStream({ streamId: 'cam-1' }, { deadlineMs: 10_000 }));
    expect(error.code).toBe('deadline_exceeded');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('cancels a call when the caller aborts its signal', async () => {
    const aborted = deferred<unknown>();
    const client = await serve(
      IngestService,
      ingest({
        stopStream: async (_request, call) => {
          aborted.resolve(await abortedSignalOf(call.signal));
          return {};
        },
      }),
    );
    const controller = new AbortController();
    const pending = client.stopStream({ streamId: 'cam-1' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error = await rejectionOf(pending);
    expect(error.code).toBe('cancelled');
    expect(((await aborted.promise) as LiveLensError).code).toBe('cancelled');
  });

  it('rejects a request larger than maxReceiveMessageBytes with resource_exhausted', async () => {
    let calls = 0;
    const client = await serve(
      IngestService,
      ingest({
        startStream: async () => {
          calls += 1;
          return {};
        },
      }),
    );
    // The server default is 64 KiB.
    const error = await rejectionOf(client.startStream({ sourceUrl: `rtmp://x/${'a'.repeat(70_000)}` }));
    expect(error.code).toBe('resource_exhausted');
    expect(error.context.grpcCode).toBe(8);
    expect(calls).toBe(0);
    // Just under the limit still works.
    await client.startStream({ sourceUrl: `rtmp://x/${'a'.repeat(60_000)}` });
    expect(calls).toBe(1);
  });
});

/** A TagService whose getStreamSummary is not used by the streaming tests. */
function tags(watchTags: ServiceImpl<typeof TagService>['watchTags']): ServiceImpl<typeof TagService> {
  return {
    watchTags,
    getStreamSummary: async (request) => ({ streamId: request.streamId }),
  };
}

describe('server-streaming calls', () => {
  it('yields every event of watchTags in order, then ends', async () => {
    const count = 1_000;
    let request: unknown;
    const client = await serve(
      TagService,
      tags(async function* (req) {
        request = req;
        for (let i = 0; i < count; i++) {
          yield {
            event: {
              eventId: `ep-1/${i}`,
              revision: i,
              streamId: req.streamIds[0] ?? '',
              kind: TagKind.RISK,
              severity: Severity.HIGH,
              state: i === count - 1 ? EpisodeState.CLOSE : EpisodeState.UPDATE,
              // ~2 MB in all: more than the HTTP/2 flow-control window, so the server must wait for 'drain'.
              rationale: 'r'.repeat(2_000),
            },
          };
        }
      }),
    );
    const received: number[] = [];
    for await (const response of client.watchTags({ streamIds: ['cam-1'], kind: TagKind.RISK })) {
      expect(response.event?.eventId).toBe(`ep-1/${response.event?.revision}`);
      expect(response.event?.streamId).toBe('cam-1');
      expect(response.event?.severity).toBe(Severity.HIGH);
      expect(response.event?.rationale.length).toBe(2_000);
      received.push(response.event?.revision ?? -1);
    }
    expect(received).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(request).toMatchObject({
      streamIds: ['cam-1'],
      kind: TagKind.RISK,
      minSeverity: Severity.UNSPECIFIED,
    });
  });

  it('holds the producer back while the consumer is slow (backpressure)', async () => {
    let produced = 0;
    const finallyRan = deferred<void>();
    const client = await serve(
      TagService,
      tags(async function* () {
        try {
          for (let i = 0; i < 10_000; i++) {
            produced = i + 1;
            yield { event: { revision: i, rationale: 'r'.repeat(2_000) } };
          }
        } finally {
          finallyRan.resolve();
        }
      }),
    );
    let consumed = 0;
    for await (const response of client.watchTags({})) {
      expect(response.event?.revision).toBe(consumed);
      consumed += 1;
      if (consumed === 5) {
        await sleep(300);
        break;
      }
    }
    // Without waiting for 'drain' the generator would have run through all 10 000 events (20 MB) by now; with
    // it, only what fits the buffers on the way (writable, HTTP/2 windows, the client's readable) is made.
    expect(produced).toBeGreaterThan(5);
    expect(produced).toBeLessThan(1_000);
    await finallyRan.promise;
  });

  it('cancels the server iterator when the client breaks out early', async () => {
    const finallyRan = deferred<void>();
    let serverSignal: AbortSignal | undefined;
    let produced = 0;
    const client = await serve(
      TagService,
      tags(async function* (_request, call) {
        serverSignal = call.signal;
        try {
          for (let i = 0; ; i++) {
            produced = i + 1;
            yield { event: { eventId: `ep/${i}`, revision: i } };
            await sleep(5);
          }
        } finally {
          finallyRan.resolve();
        }
      }),
    );
    const received: number[] = [];
    for await (const response of client.watchTags({})) {
      received.push(response.event?.revision ?? -1);
      if (received.length === 3) break;
    }
    expect(received).toEqual([0, 1, 2]);
    await finallyRan.promise;
    expect(serverSignal?.aborted).toBe(true);
    expect(serverSignal?.reason).toMatchObject({ code: 'cancelled' });
    const producedAtCancel = produced;
    await sleep(100);
    expect(produced).toBe(producedAtCancel);
  });

  it('ends the stream with the mapped status after the events yielded before a throw', async () => {
    const client = await serve(
      TagService,
      tags(async function* () {
        yield { event: { revision: 1 } };
        yield { event: { revision: 2 } };
        throw new LiveLensError('stream cam-9 is unknown', { code: 'not_found' });
      }),
    );
    const received: number[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const response of client.watchTags({ streamIds: ['cam-9'] })) {
          received.push(response.event?.revision ?? -1);
        }
      })(),
    );
    expect(received).toEqual([1, 2]);
    expect(error.code).toBe('not_found');
    expect(error.message).toBe('stream cam-9 is unknown');
    expect(error.context.method).toBe('/livelens.v1.TagService/WatchTags');
  });

  it('cancels the stream when the consumer aborts its signal', async () => {
    const serverAborted = deferred<unknown>();
    const errors: unknown[] = [];
    const client = await serve(
      TagService,
      tags(async function* (_request, call) {
        yield { event: { revision: 1 } };
        const reason = await abortedSignalOf(call.signal);
        serverAborted.resolve(reason);
        // The usual way out of a wait that honours the signal: not an error worth logging.
        throw reason;
      }),
      { server: { onError: (error) => errors.push(error) } },
    );
    const controller = new AbortController();
    const received: number[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const response of client.watchTags({}, { signal: controller.signal })) {
          received.push(response.event?.revision ?? -1);
          controller.abort();
        }
      })(),
    );
    expect(received).toEqual([1]);
    expect(error.code).toBe('cancelled');
    expect(((await serverAborted.promise) as LiveLensError).code).toBe('cancelled');
    await sleep(50);
    expect(errors).toEqual([]);
  });

  it('cancels open streams on shutdown after the grace period', async () => {
    const finallyRan = deferred<void>();
    const server = createGrpcServer();
    server.addService(
      TagService,
      tags(async function* (_request, call) {
        try {
          yield { event: { revision: 1 } };
          await abortedSignalOf(call.signal);
        } finally {
          finallyRan.resolve();
        }
      }),
    );
    const port = await server.listen('127.0.0.1', 0);
    const client = createGrpcClient(TagService, `127.0.0.1:${port}`);
    onTestFinished(() => client.close());
    const iterator = client.watchTags({})[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.event?.revision).toBe(1);
    const next = iterator.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    const started = Date.now();
    await server.shutdown(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(server.state).toBe('stopped');
    await finallyRan.promise;
    const error = await next;
    expect(error).toBeInstanceOf(LiveLensError);
    // grpc-js reports the destroyed session as CANCELLED ("Call cancelled").
    expect(['cancelled', 'unavailable']).toContain((error as LiveLensError).code);
  });
});
