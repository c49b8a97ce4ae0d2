import { randomUUID } from 'node:crypto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { StreamInfoSchema } from '@livelens/contracts';
import { type IngestService, STREAM_ID_PATTERN, StreamState } from '@livelens/contracts';
import { LiveLensError, type ServiceImpl } from '@livelens/runtime';
import type { IngestConfig } from './config.js';
import type { IngestMetrics } from './metrics.js';
import {
  pendingStatus,
  type StoredStream,
  type StreamOptionsResolved,
  type StreamStore,
} from './ownership/stream-store.js';
import type { ValidatedSource } from './source/url-policy.js';
import type { StreamManager } from './stream-manager.js';

const LABEL_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

function invalid(message: string): LiveLensError {
  return new LiveLensError(message, { code: 'invalid_argument', retriable: false });
}

/** Applies defaults and limits to the requested sampling options (zero means "default"). */
export function resolveOptions(
  requested:
    | { frameRateFps: number; sceneChangeThreshold: number; maxHeight: number; audioChunkMs: number }
    | undefined,
  config: IngestConfig,
): StreamOptionsResolved {
  const fps = requested?.frameRateFps || 1;
  // Below 0.05 fps (one frame in 20 s) a live stream would look stalled between frames.
  if (!Number.isFinite(fps) || fps < 0.05 || fps > config.maxFrameRateFps) {
    throw invalid(
      `frame_rate_fps must be in [0.05, ${config.maxFrameRateFps}], got ${requested?.frameRateFps}`,
    );
  }
  const scene = requested?.sceneChangeThreshold ?? 0;
  if (!Number.isFinite(scene) || scene < 0 || scene > 1) {
    throw invalid(`scene_change_threshold must be in [0, 1], got ${scene}`);
  }
  const maxHeight = requested?.maxHeight || config.defaultMaxHeight;
  if (maxHeight < 64 || maxHeight > config.maxHeightLimit) {
    throw invalid(`max_height must be in [64, ${config.maxHeightLimit}], got ${maxHeight}`);
  }
  const audioChunkMs = requested?.audioChunkMs || 1000;
  // At most 5 s: the ASR refuses (dead-letters) longer chunks by default (ASR_MAX_CHUNK_MS).
  if (audioChunkMs < 100 || audioChunkMs > 5_000) {
    throw invalid(`audio_chunk_ms must be in [100, 5000], got ${audioChunkMs}`);
  }
  return { frameRateFps: fps, sceneChangeThreshold: scene, maxHeight, audioChunkMs };
}

function checkLabels(labels: Record<string, string>): void {
  const entries = Object.entries(labels);
  if (entries.length > 32) throw invalid(`at most 32 labels, got ${entries.length}`);
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key))
      throw invalid(`label key ${JSON.stringify(key.slice(0, 80))} must match [A-Za-z0-9_.-]{1,64}`);
    if (value.length > 256) throw invalid(`label ${key} is longer than 256 characters`);
  }
}

/** The StreamInfo of a stored stream (the URL is always the redacted one). */
export function toStreamInfo(stored: StoredStream): MessageInitShape<typeof StreamInfoSchema> {
  const { spec, status } = stored;
  return {
    streamId: spec.streamId,
    sourceUrl: spec.redactedUrl,
    state: status.state,
    options: spec.options,
    labels: spec.labels,
    sessionEpoch: status.sessionEpoch,
    ownerReplicaId: status.ownerReplicaId,
    startedTimeUnixMs: BigInt(status.startedAtMs),
    framesPublished: BigInt(status.framesPublished),
    audioSecondsPublished: status.audioSecondsPublished,
    restarts: status.restarts,
    lastError: status.lastError,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * IngestService over gRPC. Every replica answers every call: desired state and status live in Redis, and the
 * replica that takes a stream is whichever gets its lease (this one first, when it has room).
 */
export function createIngestGrpcService(deps: {
  store: StreamStore;
  manager: StreamManager;
  metrics: IngestMetrics;
  config: IngestConfig;
  validate: (url: string) => Promise<ValidatedSource>;
  leaseHolder: (streamId: string) => Promise<string | undefined>;
}): ServiceImpl<typeof IngestService> {
  const { store, manager, metrics, config, validate, leaseHolder } = deps;

  const mustGet = async (streamId: string) => {
    if (!STREAM_ID_PATTERN.test(streamId))
      throw invalid(`stream_id ${JSON.stringify(streamId.slice(0, 80))} is not valid`);
    const stored = await store.get(streamId);
    if (!stored) throw new LiveLensError(`stream ${streamId} not found`, { code: 'not_found' });
    return stored;
  };

  return {
    async startStream(request) {
      try {
        if (request.requestId.length > 128) throw invalid('request_id is longer than 128 characters');
        const streamId = request.streamId || `st-${randomUUID().slice(0, 12)}`;
        if (!STREAM_ID_PATTERN.test(streamId)) {
          throw invalid(
            `stream_id ${JSON.stringify(streamId.slice(0, 80))} must match [A-Za-z0-9._-]{1,128}`,
          );
        }
        const options = resolveOptions(request.options, config);
        checkLabels(request.labels);
        const source = await validate(request.sourceUrl);
        const [desired, capacity] = await Promise.all([
          store.desiredIds(),
          store.capacity(config.leaseTtlMs * 2),
        ]);
        if (!desired.includes(streamId) && desired.length >= capacity) {
          throw new LiveLensError(
            `at capacity: ${desired.length} streams running, the replicas take ${capacity}`,
            {
              code: 'resource_exhausted',
              retriable: true,
            },
          );
        }
        const created = await store.create(
          {
            streamId,
            sourceUrl: request.sourceUrl,
            redactedUrl: source.redactedUrl,
            options,
            labels: request.labels,
            requestId: request.requestId,
            createdAtMs: Date.now(),
          },
          pendingStatus(),
          capacity,
        );
        if (created.outcome === 'full') {
          throw new LiveLensError(
            `at capacity: the live replicas take ${capacity} streams and all are taken`,
            {
              code: 'resource_exhausted',
              retriable: true,
            },
          );
        }
        if (created.outcome === 'exists') {
          throw new LiveLensError(`stream ${streamId} already exists`, { code: 'already_exists' });
        }
        if (created.outcome === 'created') await manager.tryTake(created.streamId);
        return { stream: toStreamInfo(await mustGet(created.streamId)) };
      } catch (error) {
        metrics.rejectedStarts.inc({ code: LiveLensError.from(error).code });
        throw error;
      }
    },

    async stopStream(request) {
      const stored = await mustGet(request.streamId);
      if (stored.desired === 'running') {
        await store.markStopped(request.streamId);
        await manager.stopLocal(request.streamId, 'requested');
      }
      // The owner (maybe another replica) stops on the control message; wait briefly for its final status.
      const deadline = Date.now() + 5_000;
      let latest = await mustGet(request.streamId);
      while (
        Date.now() < deadline &&
        latest.status.state !== StreamState.ENDED &&
        latest.status.state !== StreamState.FAILED &&
        latest.status.ownerReplicaId !== ''
      ) {
        await sleep(100);
        latest = await mustGet(request.streamId);
      }
      if (
        latest.status.state !== StreamState.ENDED &&
        latest.status.state !== StreamState.FAILED &&
        (latest.status.ownerReplicaId === '' || !(await leaseHolder(request.streamId)))
      ) {
        // No replica runs it (never started, or its owner died): it ends here.
        const status = { ...latest.status, state: StreamState.ENDED, updatedAtMs: Date.now() };
        await store.writeStatus(request.streamId, status);
        latest = { ...latest, status };
      }
      return { stream: toStreamInfo(latest) };
    },

    async getStream(request) {
      return { stream: toStreamInfo(await mustGet(request.streamId)) };
    },

    async listStreams(request) {
      const states = new Set(request.states);
      const all = await store.list();
      return {
        streams: all.filter((s) => states.size === 0 || states.has(s.status.state)).map(toStreamInfo),
      };
    },
  };
}
