// Fusion outputs as protobuf: TagEvent for live.tags.v1, ReviewItem for live.review.v1.

import { create } from '@bufbuild/protobuf';
import {
  EpisodeState,
  Modality,
  type ReviewItem,
  ReviewItemSchema,
  ReviewReason,
  Severity,
  type TagEvent,
  TagEventSchema,
  TagKind,
} from '@livelens/contracts';
import type { EvidenceItem, ObservationKind } from './model.js';
import type { ReviewOutput, TagEventOutput, TagInfo, TraceRecord } from './windows/stream-fusion.js';

const MODALITY: Record<ObservationKind, Modality> = {
  speech: Modality.SPEECH,
  screen_text: Modality.VISUAL_TEXT,
  image_label: Modality.VISUAL,
};
const SEVERITY: Record<TagInfo['severity'], Severity> = {
  info: Severity.INFO,
  low: Severity.LOW,
  medium: Severity.MEDIUM,
  high: Severity.HIGH,
  critical: Severity.CRITICAL,
};
const STATE = { open: EpisodeState.OPEN, update: EpisodeState.UPDATE, close: EpisodeState.CLOSE } as const;

function evidenceOf(items: readonly EvidenceItem[]) {
  return items.map((e) => ({
    modality: MODALITY[e.kind],
    source: {
      topic: e.source.topic,
      partition: e.source.partition,
      offset: BigInt(e.source.offset),
      recordId: e.source.recordId,
    },
    snippet: e.snippet,
    mediaTimeMs: BigInt(Math.round(e.mediaTimeMs)),
    confidence: e.confidence,
    ruleId: e.ruleId,
  }));
}

function traceOf(trace: TraceRecord) {
  return {
    retrievedRules: trace.retrieved.map((r) => ({ ruleId: r.ruleId, retrievalScore: r.score })),
    evaluations: trace.evaluations.map((e) => ({ ...e })),
    scoreFormula: trace.formula,
    threshold: trace.threshold,
    window: { startMs: BigInt(trace.window.startMs), endMs: BigInt(trace.window.endMs) },
  };
}

export function tagEventOf(output: TagEventOutput, tag: TagInfo, emittedAtMs: number): TagEvent {
  return create(TagEventSchema, {
    eventId: output.eventId,
    episodeId: output.episodeId,
    state: STATE[output.state],
    revision: output.revision,
    streamId: output.streamId,
    tagId: output.tagId,
    name: tag.name,
    kind: tag.kind === 'intent' ? TagKind.INTENT : TagKind.RISK,
    severity: SEVERITY[tag.severity],
    score: output.score,
    window: { startMs: BigInt(output.window.startMs), endMs: BigInt(output.window.endMs) },
    evidence: evidenceOf(output.evidence),
    trace: traceOf(output.trace),
    rationale: output.rationale,
    taxonomyVersion: output.taxonomyVersion,
    emittedTimeUnixMs: BigInt(emittedAtMs),
    incomplete: output.incomplete,
  });
}

export function reviewItemOf(output: ReviewOutput, createdAtMs: number): ReviewItem {
  return create(ReviewItemSchema, {
    reviewId: output.reviewId,
    streamId: output.streamId,
    tagId: output.tagId,
    episodeId: output.episodeId,
    reason: ReviewReason.NEAR_THRESHOLD,
    score: output.score,
    threshold: output.threshold,
    window: { startMs: BigInt(output.window.startMs), endMs: BigInt(output.window.endMs) },
    evidence: evidenceOf(output.evidence),
    trace: traceOf(output.trace),
    taxonomyVersion: output.taxonomyVersion,
    createdTimeUnixMs: BigInt(createdAtMs),
  });
}
