import { type ConfigOf, commonConfigFields, env, field, LiveLensError, loadConfig } from '@livelens/runtime';
import { z } from 'zod';
import { checkWindowSpec } from './windows/windows.js';

/** The fusion service's configuration: the shared fields plus its own (the README table is generated from these). */
export const fusionConfigFields = {
  ...commonConfigFields,
  taxonomyPath: field(
    'FUSION_TAXONOMY_PATH',
    z.string(),
    'The taxonomy YAML (tags, cues, rules, thresholds). Empty = the one shipped with the service (taxonomy/livecommerce.yaml).',
    '',
  ),
  windowMs: field(
    'FUSION_WINDOW_MS',
    env.int(1_000, 300_000),
    'Length of the sliding windows of media time the rules decide on.',
    '10000',
  ),
  hopMs: field(
    'FUSION_HOP_MS',
    env.int(500, 300_000),
    'A new window starts every hop (at most the window length).',
    '5000',
  ),
  allowedLatenessMs: field(
    'FUSION_ALLOWED_LATENESS_MS',
    env.int(0, 600_000),
    "Data up to this much media time behind the stream watermark is still taken in (its windows decided again); older data is dead-lettered and counted. Covers one input lagging the other, e.g. while a crashed replica's partitions move (session timeout + rejoin).",
    '120000',
  ),
  maxInputSkewMs: field(
    'FUSION_MAX_INPUT_SKEW_MS',
    env.int(0, 600_000),
    'The stream watermark follows the slower input but never lags the faster one by more than this (a quiet input, e.g. no speech, does not stall tags).',
    '8000',
  ),
  earlyFiring: field(
    'FUSION_EARLY_FIRING',
    env.bool(),
    'Open a tag as soon as the evidence so far in a window accepts it, instead of when the window and the slower input are complete (the window is still decided again when complete). Cuts the time to a new tag from up to window + skew to a few seconds; an exception later in the same window cannot take an early open back.',
    'true',
  ),
  maxMediaJumpMs: field(
    'FUSION_MAX_MEDIA_JUMP_MS',
    env.int(1_000, 86_400_000),
    "A record this far ahead of the stream's media time is dead-lettered (a broken or wrapped clock), not allowed to decide every window in between.",
    '3600000',
  ),
  idleFlushMs: field(
    'FUSION_IDLE_FLUSH_MS',
    env.int(1_000, 86_400_000),
    'A stream with no record for this long (wall time) is ended: its pending windows decided, its open episodes closed.',
    '60000',
  ),
  endGraceMs: field(
    'FUSION_END_GRACE_MS',
    env.int(0, 3_600_000),
    "A stream whose session ingest announced as ended (live.stream-events.v1: ENDED, FAILED) is ended once no record came for this long (wall time, at most FUSION_IDLE_FLUSH_MS): the session's last frame analyses and transcripts come later than the announcement.",
    '5000',
  ),
  maxObservations: field(
    'FUSION_MAX_OBSERVATIONS',
    env.int(10, 1_000_000),
    'Observations one stream holds at most (the oldest go first, counted).',
    '5000',
  ),
  maxEvidence: field('FUSION_MAX_EVIDENCE', env.int(1, 1_000), 'Evidence items kept per tag episode.', '20'),
  minScoreIncrease: field(
    'FUSION_MIN_SCORE_INCREASE',
    env.number(0, 1),
    'A higher score alone makes an open episode emit an UPDATE when it rises by at least this (new evidence always does).',
    '0.05',
  ),
  stateTtlSeconds: field(
    'FUSION_STATE_TTL_SECONDS',
    env.int(60, 30 * 86_400),
    "A stream's state in Redis expires after this long without a record.",
    '86400',
  ),
  redisKeyPrefix: field(
    'FUSION_REDIS_PREFIX',
    z.string(),
    'Prefix of the Redis keys of the stream states.',
    'livelens:fusion:',
  ),
  maxCachedStreams: field(
    'FUSION_MAX_CACHED_STREAMS',
    env.int(1, 1_000_000),
    'Stream states cached in memory (Redis holds them all).',
    '10000',
  ),
  grpcHost: field('FUSION_GRPC_HOST', env.string(), 'Address the TagService gRPC server binds.', '0.0.0.0'),
  grpcPort: field(
    'FUSION_GRPC_PORT',
    env.int(0, 65_535),
    'Port of the TagService gRPC API (0 = any free port).',
    '50052',
  ),
  groupId: field(
    'FUSION_GROUP_ID',
    env.string(),
    'Kafka consumer group prefix: <id>-frames and <id>-transcripts consume the two inputs, <id>-stream-events the ends of sessions.',
    'livelens-fusion',
  ),
  maxInFlight: field('FUSION_MAX_IN_FLIGHT', env.int(1, 4_096), 'Records in flight per input.', '64'),
  sessionTimeoutMs: field(
    'FUSION_SESSION_TIMEOUT_MS',
    env.int(6_000, 300_000),
    "Kafka consumer session timeout: how soon a crashed replica's partitions move to the others.",
    '30000',
  ),
  createTopics: field(
    'FUSION_CREATE_TOPICS',
    env.bool(),
    'Create missing topics at start (dev; production pre-creates).',
    'true',
  ),
  topicPartitions: field(
    'FUSION_TOPIC_PARTITIONS',
    env.int(1, 1_024),
    'Partitions of topics it creates.',
    '8',
  ),
} as const;

export type FusionConfig = ConfigOf<typeof fusionConfigFields>;

/** Reads and validates the fusion config from the environment (main.ts is its only caller). */
export function loadFusionConfig(
  source: Readonly<Record<string, string | undefined>> = process.env,
): FusionConfig {
  const config = loadConfig(fusionConfigFields, source);
  try {
    checkWindowSpec({ sizeMs: config.windowMs, hopMs: config.hopMs });
  } catch (error) {
    throw new LiveLensError(
      `invalid configuration:\n  FUSION_WINDOW_MS, FUSION_HOP_MS: ${(error as Error).message}`,
      {
        code: 'invalid_config',
        retriable: false,
        cause: error,
      },
    );
  }
  return config;
}
