// The edge between Kafka and the fusion state machine: a consumed FrameAnalysis or final TranscriptSegment
// becomes a FusionRecord of observations on the stream's media clock; a StreamEvent that ends a session
// becomes a StreamEnd.

import {
  AnalysisStatus,
  type FrameAnalysis,
  StreamState as IngestStreamState,
  type StreamEvent,
  type TranscriptSegment,
} from '@livelens/contracts';
import type { Observation, ObservationSource } from './model.js';
import type { FusionRecord, StreamEnd } from './windows/stream-fusion.js';

/** A probability from the wire, clamped to [0, 1]; NaN (which JSON cannot keep) becomes 0. */
const probability = (value: number) => (Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0);

/** Where a consumed record sits. */
export interface RecordPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/**
 * A frame's analysis: one `screen_text` observation per OCR line, one `image_label` per label and detection,
 * all at the frame's pts. A frame shed before analysis (SHED_STALE) has no observations and marks its media
 * time as lost, so episodes over it say `incomplete`.
 */
export function frameRecord(analysis: FrameAnalysis, at: RecordPosition): FusionRecord {
  const pts = Number(analysis.ptsMs);
  const capture = Number(analysis.captureTimeUnixMs);
  const source: ObservationSource = { ...at, recordId: analysis.frameId };
  const base = { startMs: pts, endMs: pts, language: '', captureTimeUnixMs: capture, source };
  const observations: Observation[] = [];
  if (analysis.status !== AnalysisStatus.SHED_STALE) {
    for (const region of analysis.textRegions) {
      if (region.text.trim() === '') continue;
      observations.push({
        ...base,
        kind: 'screen_text',
        id: `${analysis.frameId}#t${region.readingOrder}`,
        text: region.text,
        confidence: probability(region.confidence),
      });
    }
    for (const label of analysis.labels)
      observations.push({
        ...base,
        kind: 'image_label',
        id: `${analysis.frameId}#l${label.name}`,
        text: '',
        label: { name: label.name, score: probability(label.score) },
        confidence: probability(label.score),
      });
    for (const [i, detection] of analysis.detections.entries())
      observations.push({
        ...base,
        kind: 'image_label',
        id: `${analysis.frameId}#d${i}`,
        text: '',
        label: { name: detection.label, score: probability(detection.score) },
        confidence: probability(detection.score),
      });
  }
  return {
    input: 'frames',
    ...at,
    sessionEpoch: analysis.sessionEpoch,
    captureTimeUnixMs: capture,
    mediaTimeMs: pts,
    observations,
    ...(analysis.status === AnalysisStatus.SHED_STALE ? { lost: { startMs: pts, endMs: pts + 1 } } : {}),
  };
}

/**
 * A final transcript segment: one `speech` observation over [start_ms, end_ms), its confidence the mean word
 * probability (or exp(avg_logprob) without words). Partials return undefined: they are superseded by the
 * final with the same segment id, and taking them in would make the final look like a duplicate or late.
 */
export function transcriptRecord(segment: TranscriptSegment, at: RecordPosition): FusionRecord | undefined {
  if (!segment.final) return undefined;
  const startMs = Number(segment.startMs);
  const endMs = Math.max(startMs, Number(segment.endMs));
  const capture = Number(segment.captureTimeUnixMs);
  const confidence =
    segment.words.length > 0
      ? segment.words.reduce((sum, w) => sum + w.confidence, 0) / segment.words.length
      : Math.min(1, Math.exp(segment.avgLogprob));
  const observations: Observation[] =
    segment.text.trim() === ''
      ? []
      : [
          {
            kind: 'speech',
            id: segment.segmentId,
            startMs,
            endMs,
            text: segment.text.trim(),
            confidence: probability(confidence),
            language: segment.language,
            captureTimeUnixMs: capture,
            source: { ...at, recordId: segment.segmentId },
          },
        ];
  return {
    input: 'transcripts',
    ...at,
    sessionEpoch: segment.sessionEpoch,
    captureTimeUnixMs: capture,
    mediaTimeMs: endMs,
    observations,
  };
}

/**
 * The end of a session a stream event announces: a state change to ENDED (stopped on request, source EOF) or
 * FAILED (ingest gave up). Every other event (the other states, gap records) returns undefined: fusion skips
 * it without touching the stream's state.
 */
export function streamEnd(event: StreamEvent): StreamEnd | undefined {
  if (event.kind.case !== 'stateChange') return undefined;
  const { state } = event.kind.value;
  if (state !== IngestStreamState.ENDED && state !== IngestStreamState.FAILED) return undefined;
  return {
    sessionEpoch: event.sessionEpoch,
    state: state === IngestStreamState.ENDED ? 'ended' : 'failed',
    eventTimeUnixMs: Number(event.eventTimeUnixMs),
  };
}
