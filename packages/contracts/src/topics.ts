import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { FrameAnalysisSchema } from './gen/livelens/v1/analysis_pb.js';
import { DeadLetterSchema } from './gen/livelens/v1/dlq_pb.js';
import { AudioChunkSchema, FrameSampleSchema } from './gen/livelens/v1/media_pb.js';
import { StreamEventSchema } from './gen/livelens/v1/stream_pb.js';
import { ReviewItemSchema, TagEventSchema } from './gen/livelens/v1/tags_pb.js';
import { TranscriptSegmentSchema } from './gen/livelens/v1/transcript_pb.js';

/** Stream ids: what a Kafka key, a Redis key part and a file name can all carry safely. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * One topic's contract: its name, its message type, how a record is keyed, and the checks a decoded record
 * must pass beyond the wire format. Producers and consumers both go through it, so the two sides cannot drift.
 */
export interface TopicSpec<Desc extends DescMessage = DescMessage> {
  /** Versioned topic name, e.g. "live.frames.v1". */
  readonly name: string;
  readonly schema: Desc;
  /** The record key. Every LiveLens topic is keyed by stream id, so one stream keeps its order. */
  readonly key: (message: MessageShape<Desc>) => string;
  /** Problems with a decoded message; empty when it is valid. */
  readonly validate: (message: MessageShape<Desc>) => string[];
  /** What `createTopics` uses when nothing overrides it. */
  readonly defaults: {
    readonly partitions: number;
    /** @default 7 days */
    readonly retentionMs: number;
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

function streamIdProblems(streamId: string): string[] {
  if (streamId === '') return ['stream_id is empty'];
  if (!STREAM_ID_PATTERN.test(streamId))
    return [`stream_id ${JSON.stringify(streamId)} is not [A-Za-z0-9._-]{1,128}`];
  return [];
}

function topic<Desc extends DescMessage>(
  spec: Omit<TopicSpec<Desc>, 'key' | 'defaults'> & {
    key?: TopicSpec<Desc>['key'];
    defaults?: Partial<TopicSpec<Desc>['defaults']>;
  },
): TopicSpec<Desc> {
  return {
    key: (message) => (message as unknown as { streamId: string }).streamId,
    ...spec,
    defaults: { partitions: 8, retentionMs: 7 * DAY_MS, ...spec.defaults },
  };
}

/** The topics of LiveLens, by role. Names are part of the contract: a new version is a new topic. */
export const topics = {
  frames: topic({
    name: 'live.frames.v1',
    schema: FrameSampleSchema,
    // Frames are large (JPEG inside): keep them one day, the replay horizon of the analyzers.
    defaults: { retentionMs: DAY_MS },
    validate: (m) => [
      ...streamIdProblems(m.streamId),
      ...(m.jpeg.length === 0 ? ['jpeg is empty'] : []),
      ...(m.width === 0 || m.height === 0 ? [`frame size ${m.width}x${m.height} is empty`] : []),
      ...(m.frameId === '' ? ['frame_id is empty'] : []),
    ],
  }),
  audio: topic({
    name: 'live.audio.v1',
    schema: AudioChunkSchema,
    defaults: { retentionMs: DAY_MS },
    validate: (m) => [
      ...streamIdProblems(m.streamId),
      ...(m.sampleRateHz !== 16000 ? [`sample_rate_hz is ${m.sampleRateHz}, expected 16000`] : []),
      ...(m.channels !== 1 ? [`channels is ${m.channels}, expected 1`] : []),
      ...(m.pcmS16le.length % 2 !== 0 ? ['pcm_s16le has an odd number of bytes'] : []),
      ...(m.chunkId === '' ? ['chunk_id is empty'] : []),
      ...(m.endOfSession && (m.pcmS16le.length > 0 || m.durationMs !== 0)
        ? ['an end_of_session record carries samples']
        : []),
    ],
  }),
  streamEvents: topic({
    name: 'live.stream-events.v1',
    schema: StreamEventSchema,
    defaults: { retentionMs: 30 * DAY_MS },
    validate: (m) => [
      ...streamIdProblems(m.streamId),
      ...(m.kind.case === undefined ? ['kind is not set (state_change or gap)'] : []),
    ],
  }),
  frameAnalysis: topic({
    name: 'live.frame-analysis.v1',
    schema: FrameAnalysisSchema,
    validate: (m) => [...streamIdProblems(m.streamId), ...(m.frameId === '' ? ['frame_id is empty'] : [])],
  }),
  transcripts: topic({
    name: 'live.transcripts.v1',
    schema: TranscriptSegmentSchema,
    validate: (m) => [
      ...streamIdProblems(m.streamId),
      ...(m.segmentId === '' ? ['segment_id is empty'] : []),
      ...(m.endMs < m.startMs ? [`end_ms ${m.endMs} is before start_ms ${m.startMs}`] : []),
    ],
  }),
  tags: topic({
    name: 'live.tags.v1',
    schema: TagEventSchema,
    defaults: { retentionMs: 30 * DAY_MS },
    validate: (m) => [
      ...streamIdProblems(m.streamId),
      ...(m.tagId === '' ? ['tag_id is empty'] : []),
      ...(m.episodeId === '' ? ['episode_id is empty'] : []),
      ...(m.state === 0 ? ['state is unspecified'] : []),
    ],
  }),
  review: topic({
    name: 'live.review.v1',
    schema: ReviewItemSchema,
    defaults: { retentionMs: 30 * DAY_MS },
    validate: (m) => [...streamIdProblems(m.streamId), ...(m.tagId === '' ? ['tag_id is empty'] : [])],
  }),
  dlq: topic({
    name: 'live.dlq.v1',
    schema: DeadLetterSchema,
    // Dead letters keep the original key (often a stream id, but it may be garbage): key by source instead.
    key: (m) => `${m.sourceTopic}/${m.sourcePartition}`,
    defaults: { partitions: 1, retentionMs: 30 * DAY_MS },
    validate: (m) => (m.sourceTopic === '' ? ['source_topic is empty'] : []),
  }),
} as const;

/** Every topic LiveLens declares, for `createTopics` and tooling. */
export const allTopics: readonly TopicSpec[] = Object.values(topics) as readonly TopicSpec[];

/** The topics with `prefix` in front of every name (a deployment's namespace; tests' unique topics). */
export function prefixedTopics(prefix: string): typeof topics {
  if (prefix === '') return topics;
  return Object.fromEntries(
    Object.entries(topics).map(([role, spec]) => [role, { ...spec, name: `${prefix}${spec.name}` }]),
  ) as unknown as typeof topics;
}

/**
 * The same contract under another topic name: tests make unique topics per test, and a deployment may
 * prefix its topics. The message type, key and checks stay those of `spec`.
 */
export function renameTopic<Desc extends DescMessage>(spec: TopicSpec<Desc>, name: string): TopicSpec<Desc> {
  return { ...spec, name };
}
