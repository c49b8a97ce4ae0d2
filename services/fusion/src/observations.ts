// The edge between Kafka and the fusion state machine: a consumed FrameAnalysis or final TranscriptSegment
// becomes a FusionRecord of observations on the stream's media clock; a StreamEvent that ends a session
// becomes a StreamEnd.

import {
  AnalysisStatus,
  type FrameAnalysis,
  StreamState as IngestStreamState,
  type StreamEvent,
  type TextRegion,
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

/** An OCR region as fusion reads it. */
interface TextBox {
  text: string;
  confidence: number;
  readingOrder: number;
  box: { left: number; right: number; top: number; bottom: number } | undefined;
}

/**
 * The frame's text lines: the detector often boxes the words of one line apart ("USE", "CODE", "SAVE20" for
 * the overlay "USE CODE SAVE20"), and a phrase or a code is only read whole. Regions on the same row (their
 * vertical extents overlap by half the smaller height) with a gap under 1.5 heights between them are joined,
 * left to right, with a space; the line's confidence is its lowest word's, its id its first region's in
 * reading order. Regions
 * without a polygon stay as they are. Blank regions are dropped.
 */
export function textLines(regions: readonly TextRegion[]): TextBox[] {
  const boxes: TextBox[] = regions
    .filter((r) => r.text.trim() !== '')
    .map((r) => ({
      text: r.text,
      confidence: probability(r.confidence),
      readingOrder: r.readingOrder,
      box:
        r.polygon.length >= 3
          ? {
              left: Math.min(...r.polygon.map((p) => p.x)),
              right: Math.max(...r.polygon.map((p) => p.x)),
              top: Math.min(...r.polygon.map((p) => p.y)),
              bottom: Math.max(...r.polygon.map((p) => p.y)),
            }
          : undefined,
    }));
  // Lines are grown left to right from their leftmost word (not in reading order: the OCR's reading order may
  // put a taller word of the row first, and a line only grows rightwards).
  const lines: TextBox[] = boxes.filter((b) => !b.box);
  const placed = new Set<TextBox>();
  const byLeft = boxes.filter((b) => b.box).sort((a, b) => (a.box?.left ?? 0) - (b.box?.left ?? 0));
  for (const start of byLeft) {
    if (placed.has(start) || !start.box) continue;
    placed.add(start);
    const lineBox = { ...start.box };
    let line: TextBox = { ...start, box: lineBox };
    for (const next of byLeft) {
      const b = next.box;
      if (placed.has(next) || !b || b.left < lineBox.left) continue;
      const height = Math.min(lineBox.bottom - lineBox.top, b.bottom - b.top);
      const overlap = Math.min(lineBox.bottom, b.bottom) - Math.max(lineBox.top, b.top);
      const gap = b.left - lineBox.right;
      if (height <= 0 || overlap < height / 2 || gap > 1.5 * height || gap < -height / 2) continue;
      placed.add(next);
      line = {
        ...line,
        text: `${line.text} ${next.text}`,
        confidence: Math.min(line.confidence, next.confidence),
        readingOrder: Math.min(line.readingOrder, next.readingOrder),
      };
      lineBox.right = Math.max(lineBox.right, b.right);
      lineBox.top = Math.min(lineBox.top, b.top);
      lineBox.bottom = Math.max(lineBox.bottom, b.bottom);
    }
    lines.push(line);
  }
  lines.sort((a, b) => a.readingOrder - b.readingOrder);
  return lines;
}

/**
 * A frame's analysis: one `screen_text` observation per OCR text line (words of one row joined, see textLines), one `image_label` per label and detection,
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
    for (const line of textLines(analysis.textRegions)) {
      observations.push({
        ...base,
        kind: 'screen_text',
        id: `${analysis.frameId}#t${line.readingOrder}`,
        text: line.text,
        confidence: line.confidence,
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
  // What the segment says was known once its last chunk was heard: latency counts from there.
  const capture = Number(
    segment.lastCaptureTimeUnixMs > 0n ? segment.lastCaptureTimeUnixMs : segment.captureTimeUnixMs,
  );
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
