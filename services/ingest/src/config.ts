import { hostname } from 'node:os';
import { type ConfigOf, commonConfigFields, env, field, loadConfig } from '@livelens/runtime';
import { z } from 'zod';

/** The ingest service's configuration: the shared fields plus its own (README table is generated from these). */
export const ingestConfigFields = {
  ...commonConfigFields,
  grpcHost: field(
    'INGEST_GRPC_HOST',
    env.string(),
    'Address the IngestService gRPC server binds.',
    '0.0.0.0',
  ),
  grpcPort: field(
    'INGEST_GRPC_PORT',
    env.int(0, 65535),
    'Port of the IngestService gRPC server (0 = any).',
    '50051',
  ),
  replicaId: field(
    'INGEST_REPLICA_ID',
    env.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected [A-Za-z0-9._-]{1,64}'),
    "This replica's id in leases and events (default: hostname-pid).",
    `${hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 40)}-${process.pid}`,
  ),
  maxStreams: field('INGEST_MAX_STREAMS', env.int(1, 1000), 'Streams one replica pulls at most.', '8'),
  mediaRoot: field(
    'INGEST_MEDIA_ROOT',
    z.string(),
    'Directory file:// sources must be under. Empty = file sources refused.',
    '',
  ),
  allowedSchemes: field(
    'INGEST_ALLOWED_SCHEMES',
    env.list(),
    'Source URL schemes accepted.',
    'rtmp,rtmps,http,https,srt,file',
  ),
  allowPrivateNetworks: field(
    'INGEST_ALLOW_PRIVATE_NETWORKS',
    env.bool(),
    'Allow sources on loopback, private and link-local addresses (SSRF guard off: dev only).',
    'false',
  ),
  allowedCidrs: field(
    'INGEST_ALLOWED_CIDRS',
    z.string().transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
    'CIDRs allowed although private (e.g. 127.0.0.0/8 for local tests, or a CDN range). Empty = none.',
    '',
  ),
  maxFrameRateFps: field(
    'INGEST_MAX_FRAME_RATE_FPS',
    env.number(0.01, 30),
    'Highest frame rate a stream may ask.',
    '5',
  ),
  defaultMaxHeight: field(
    'INGEST_DEFAULT_MAX_HEIGHT',
    env.int(64, 4320),
    'Frame height when a stream asks none.',
    '720',
  ),
  maxHeightLimit: field(
    'INGEST_MAX_HEIGHT_LIMIT',
    env.int(64, 4320),
    'Largest frame height a stream may ask.',
    '1080',
  ),
  maxFrameBytes: field(
    'INGEST_MAX_FRAME_BYTES',
    env.int(16 * 1024, 3 * 1024 * 1024),
    'A JPEG frame larger than this is dropped (with a gap record).',
    String(1024 * 1024),
  ),
  maxPixels: field(
    'INGEST_MAX_PIXELS',
    env.int(64 * 64, 8192 * 8192),
    'Largest decoded picture (width*height) ffmpeg accepts: the decompression-bomb guard.',
    String(3840 * 2160),
  ),
  ffmpegPath: field(
    'INGEST_FFMPEG_PATH',
    z.string(),
    'The ffmpeg to run. Empty = bin/ffmpeg-pdeathsig (ffmpeg killed with ingest, via setpriv) when setpriv exists, else ffmpeg on PATH.',
    '',
  ),
  jpegQuality: field('INGEST_JPEG_QUALITY', env.int(2, 31), 'ffmpeg mjpeg -q:v (2 best .. 31 worst).', '5'),
  rwTimeoutMs: field(
    'INGEST_RW_TIMEOUT_MS',
    env.int(1000, 120_000),
    'Network read timeout of ffmpeg.',
    '10000',
  ),
  stallTimeoutMs: field(
    'INGEST_STALL_TIMEOUT_MS',
    env.int(1000, 300_000),
    'No video frame for this long: the source counts as stalled and is reconnected.',
    '15000',
  ),
  reconnectMaxAttempts: field(
    'INGEST_RECONNECT_MAX_ATTEMPTS',
    env.int(0, 1000),
    'Reconnects in a row before a stream is failed.',
    '8',
  ),
  reconnectBaseMs: field(
    'INGEST_RECONNECT_BASE_MS',
    env.int(10, 60_000),
    'First reconnect delay (then doubling, jittered).',
    '500',
  ),
  reconnectMaxMs: field('INGEST_RECONNECT_MAX_MS', env.int(10, 600_000), 'Longest reconnect delay.', '15000'),
  leaseTtlMs: field(
    'INGEST_LEASE_TTL_MS',
    env.int(1000, 600_000),
    "Stream lease lifetime in Redis; a dead replica's streams move after at most this.",
    '10000',
  ),
  reconcileIntervalMs: field(
    'INGEST_RECONCILE_INTERVAL_MS',
    env.int(100, 60_000),
    'How often a replica looks for streams without an owner.',
    '2000',
  ),
  publishQueueMax: field(
    'INGEST_PUBLISH_QUEUE_MAX',
    env.int(1, 10_000),
    'Records per stream and topic waiting for the broker; past it new samples are shed (gap records).',
    '64',
  ),
  publishQueueMaxBytes: field(
    'INGEST_PUBLISH_QUEUE_MAX_BYTES',
    env.int(1024 * 1024, 1024 * 1024 * 1024),
    'Bytes of frames per stream waiting for the broker; past it new frames are shed (gap records).',
    String(16 * 1024 * 1024),
  ),
  redisKeyPrefix: field(
    'INGEST_REDIS_KEY_PREFIX',
    env.string().regex(/^[A-Za-z0-9:{}._-]+$/, 'expected [A-Za-z0-9:{}._-]+'),
    'Prefix of every Redis key and channel of ingest (replicas that share streams share it).',
    'livelens:{ingest}:',
  ),
  createTopics: field(
    'INGEST_CREATE_TOPICS',
    env.bool(),
    'Create missing topics at start (dev; production pre-creates).',
    'true',
  ),
  topicPartitions: field(
    'INGEST_TOPIC_PARTITIONS',
    env.int(1, 1024),
    'Partitions of topics it creates.',
    '8',
  ),
} as const;

export type IngestConfig = ConfigOf<typeof ingestConfigFields>;

/** Reads and validates the ingest config from the environment (main.ts is its only caller). */
export function loadIngestConfig(
  source: Readonly<Record<string, string | undefined>> = process.env,
): IngestConfig {
  return loadConfig(ingestConfigFields, source);
}
