// Fusion's gRPC edge: the TagService (WatchTags over the live tag feed, GetStreamSummary over the Redis state).

import { TagService } from '@livelens/contracts';
import { createGrpcServer, type GrpcServerOptions, type Logger } from '@livelens/runtime';
import { createTagServiceImpl, type TagServiceDeps } from './tag-service.js';

export {
  createWatchMetrics,
  DEFAULT_MAX_QUEUED_PER_WATCHER,
  TagFanout,
  TagFeed,
  type TagFeedOptions,
  type TagFeedState,
  type TagFilter,
  type TagSource,
  type WatchMetrics,
} from './tag-feed.js';
export {
  createTagServiceImpl,
  type StreamSummary,
  streamSummary,
  type TagServiceDeps,
  tagFilterOf,
} from './tag-service.js';

export interface TagGrpcServerOptions {
  /** Interface to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  host: string;
  /** Port to listen on; 0 = any free port (the bound one is `TagGrpcServer.port`). */
  port: number;
  /** How long `close()` waits for unary calls in flight before cancelling them. @default 2_000 */
  shutdownGraceMs?: number;
  /** Server limits and keepalive. @default the runtime's `grpcServerDefaults` */
  server?: Omit<GrpcServerOptions, 'onError'>;
}

export interface TagGrpcServer {
  /** The bound port. */
  readonly port: number;
  /**
   * Stops serving: open watches end at once with `unavailable` (clients watch again, elsewhere), unary calls
   * in flight get `shutdownGraceMs` to finish. Does not stop the feed (its owner does, `TagFeed.stop()`).
   */
  close(): Promise<void>;
}

/**
 * A gRPC server serving TagService, listening on `host:port`. The feed should be started (`TagFeed.start()`)
 * by its owner, before or after; watchers that connect before it runs simply see events once it does.
 */
export async function createTagGrpcServer(
  deps: Omit<TagServiceDeps, 'shutdown'> & { logger: Logger },
  options: TagGrpcServerOptions,
): Promise<TagGrpcServer> {
  const logger = deps.logger.child({ component: 'tag-grpc' });
  const shutdown = new AbortController();
  const server = createGrpcServer({
    ...options.server,
    onError: (error, method) => logger.error({ err: error, method }, 'gRPC handler failed'),
  });
  server.addService(
    TagService,
    createTagServiceImpl({ feed: deps.feed, summary: deps.summary, shutdown: shutdown.signal }),
  );
  const port = await server.listen(options.host, options.port);
  logger.info({ host: options.host, port }, 'tag service serving');
  return {
    port,
    async close() {
      // Watch streams never finish on their own: end them first, so shutdown's grace is only for unary calls.
      shutdown.abort();
      await server.shutdown(options.shutdownGraceMs ?? 2_000);
      logger.info({ port }, 'tag service stopped');
    },
  };
}
