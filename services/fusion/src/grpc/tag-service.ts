// TagService over gRPC: WatchTags streams the live tag feed through a per-watcher filter, GetStreamSummary
// reads a stream's fusion state from Redis. Every replica answers every call: the feed carries every replica's
// events and the state lives in Redis.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  type GetStreamSummaryResponse,
  GetStreamSummaryResponseSchema,
  Severity,
  STREAM_ID_PATTERN,
  type TagEvent,
  TagKind,
  type TagService,
  type WatchTagsRequest,
} from '@livelens/contracts';
import { LiveLensError, type ServiceImpl } from '@livelens/runtime';
import { tagEventOf } from '../outputs.js';
import type { FusionStore } from '../store.js';
import { type FusionRules, openEpisodeEvents, type TagInfo } from '../windows/stream-fusion.js';
import type { TagFilter, TagSource } from './tag-feed.js';

/** Taxonomy tag ids are snake_case (taxonomy/schema.ts); a request naming anything else is a client bug. */
const TAG_ID_PATTERN = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const MAX_TAG_ID_LENGTH = 128;

function invalid(message: string, field: string): LiveLensError {
  return new LiveLensError(message, { code: 'invalid_argument', retriable: false, context: { field } });
}

/** A value for an error message: quoted, and cut short so a huge id does not become a huge status. */
const shown = (value: string) => JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);

function checkStreamId(streamId: string, field: string): void {
  if (!STREAM_ID_PATTERN.test(streamId)) {
    throw invalid(`${field} ${shown(streamId)} must match [A-Za-z0-9._-]{1,128}`, field);
  }
}

/**
 * The filter of a WatchTagsRequest, after validating it (`invalid_argument` naming the field): stream ids must
 * be valid stream ids, tag ids snake_case, `kind` and `min_severity` known values, `min_score` in [0, 1].
 * An event passes when every condition given holds: its stream among `stream_ids` (any when empty), its kind
 * `kind` (any when unspecified), severity >= `min_severity`, its tag among `tag_ids` (any when empty), score >=
 * `min_score`. Each event is judged alone: an episode whose OPEN scored below `min_score` shows up at its first
 * UPDATE (or CLOSE) that reaches it.
 */
export function tagFilterOf(request: WatchTagsRequest): TagFilter {
  for (const streamId of request.streamIds) checkStreamId(streamId, 'stream_ids');
  for (const tagId of request.tagIds) {
    if (tagId.length > MAX_TAG_ID_LENGTH || !TAG_ID_PATTERN.test(tagId)) {
      throw invalid(
        `tag_ids ${shown(tagId)} is not a taxonomy tag id (snake_case, at most 128 characters)`,
        'tag_ids',
      );
    }
  }
  if (TagKind[request.kind] === undefined) throw invalid(`kind ${request.kind} is not a TagKind`, 'kind');
  if (Severity[request.minSeverity] === undefined) {
    throw invalid(`min_severity ${request.minSeverity} is not a Severity`, 'min_severity');
  }
  const { minScore, kind, minSeverity } = request;
  if (!Number.isFinite(minScore) || minScore < 0 || minScore > 1) {
    throw invalid(`min_score must be in [0, 1], got ${minScore}`, 'min_score');
  }
  const streams = request.streamIds.length > 0 ? new Set(request.streamIds) : undefined;
  const tags = request.tagIds.length > 0 ? new Set(request.tagIds) : undefined;
  return (event) =>
    (streams === undefined || streams.has(event.streamId)) &&
    (kind === TagKind.UNSPECIFIED || event.kind === kind) &&
    event.severity >= minSeverity &&
    (tags === undefined || tags.has(event.tagId)) &&
    event.score >= minScore;
}

/** A GetStreamSummaryResponse, as `streamSummary` builds it (or a fake in tests). */
export type StreamSummary = MessageInitShape<typeof GetStreamSummaryResponseSchema>;

export interface TagServiceDeps {
  /** The live events WatchTags streams (the replica's TagFeed). */
  readonly feed: TagSource;
  /** A valid stream's summary (`streamSummary(store, rules, id)`); an unknown stream has an empty one. */
  readonly summary: (streamId: string) => Promise<StreamSummary>;
  /**
   * Aborted when the server shuts down: open watches end with `unavailable` (clients watch again, elsewhere)
   * instead of being cancelled at the end of the grace period.
   */
  readonly shutdown?: AbortSignal;
}

/** The TagService handlers (serve them with `createTagGrpcServer`, or `GrpcServer.addService`). */
export function createTagServiceImpl(deps: TagServiceDeps): ServiceImpl<typeof TagService> {
  const { feed, summary, shutdown } = deps;
  return {
    async *watchTags(request, call) {
      // Thrown before anything is sent: the call ends with INVALID_ARGUMENT.
      const filter = tagFilterOf(request);
      if (shutdown?.aborted) {
        throw new LiveLensError('the server is shutting down: watch again', { code: 'unavailable' });
      }
      // The subscription ends when the client goes away (the call's signal: the loop below just ends) or
      // when the server shuts down.
      const signal = shutdown ? AbortSignal.any([call.signal, shutdown]) : call.signal;
      for await (const event of feed.subscribe(filter, signal)) yield { event };
      if (shutdown?.aborted && !call.signal.aborted) {
        throw new LiveLensError('the server is shutting down: watch again', { code: 'unavailable' });
      }
    },

    async getStreamSummary(request) {
      checkStreamId(request.streamId, 'stream_id');
      return summary(request.streamId);
    },
  };
}

/** The tag a state names, or a stand-in for a tag the current taxonomy no longer has. */
function tagOrStandIn(rules: FusionRules, tagId: string): { tag: TagInfo; known: boolean } {
  const tag = rules.tag(tagId);
  if (tag) return { tag, known: true };
  return { tag: { id: tagId, kind: 'risk', name: tagId, severity: 'info', quietPeriodMs: 0 }, known: false };
}

const KIND: Record<TagInfo['kind'], TagKind> = { intent: TagKind.INTENT, risk: TagKind.RISK };

/**
 * A stream's summary from its fusion state in Redis:
 * - `tags`: per tag of `state.summary` (episodes opened and highest score over the current session), sorted
 *   by tag id, kind from the taxonomy;
 * - `open_episodes`: the latest revision of each open episode (`openEpisodeEvents`), as TagEvents emitted now;
 * - `taxonomy_version`: the taxonomy the kinds, names and severities come from (the one loaded here);
 * - `last_event_time_unix_ms`: capture time (Unix ms) of the newest record fusion applied to the stream
 *   (`state.latestCaptureTimeUnixMs`): how current the summary is; 0 when fusion has seen nothing.
 * A stream fusion has no state for (unknown, or expired) gets an empty summary, not an error. A tag the
 * taxonomy no longer has (the state predates a taxonomy change) keeps its counts and episodes with kind and
 * severity unspecified and its id as name.
 */
export async function streamSummary(
  store: Pick<FusionStore, 'load'>,
  rules: FusionRules,
  streamId: string,
  now: () => number = Date.now,
): Promise<GetStreamSummaryResponse> {
  const { state } = await store.load(streamId);
  const emittedAtMs = now();
  const tags = Object.entries(state.summary)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([tagId, counts]) => {
      const tag = rules.tag(tagId);
      return {
        tagId,
        kind: tag ? KIND[tag.kind] : TagKind.UNSPECIFIED,
        episodes: counts.episodes,
        maxScore: counts.maxScore,
      };
    });
  const openEpisodes = openEpisodeEvents(state, rules).map((output): TagEvent => {
    const { tag, known } = tagOrStandIn(rules, output.tagId);
    const event = tagEventOf(output, tag, emittedAtMs);
    if (!known) {
      event.kind = TagKind.UNSPECIFIED;
      event.severity = Severity.UNSPECIFIED;
    }
    return event;
  });
  return create(GetStreamSummaryResponseSchema, {
    streamId,
    tags,
    openEpisodes,
    taxonomyVersion: rules.taxonomyVersion,
    lastEventTimeUnixMs: BigInt(Math.trunc(state.latestCaptureTimeUnixMs)),
  });
}
