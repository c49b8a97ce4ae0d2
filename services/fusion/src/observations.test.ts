import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  AnalysisStatus,
  FrameAnalysisSchema,
  GapReason,
  StreamEventSchema,
  StreamState,
  TextRegionSchema,
  TranscriptSegmentSchema,
} from '@livelens/contracts';
import { describe, expect, it } from 'vitest';
import { frameRecord, streamEnd, textLines, transcriptRecord } from './observations.js';

const at = { topic: 'live.frame-analysis.v1', partition: 1, offset: '42' };

describe('records to observations', () => {
  it('joins the words of one row into a line, and keeps other rows and far-apart overlays apart', () => {
    // What PP-OCRv4 returned for the demo clip's frame at 0:11: "USE CODE SAVE20" boxed word by word, a price
    // in the other corner of the same row, and a title line above.
    const box = (x0: number, x1: number, y0: number, y1: number) => [
      { x: x0, y: y0 },
      { x: x1, y: y0 },
      { x: x1, y: y1 },
      { x: x0, y: y1 },
    ];
    const lines = textLines(
      [
        { text: 'LIVE', confidence: 0.99, readingOrder: 0, polygon: box(20, 90, 20, 56) },
        { text: 'Detox Tea', confidence: 0.97, readingOrder: 1, polygon: box(120, 290, 21, 57) },
        { text: 'NOW', confidence: 1, readingOrder: 2, polygon: box(20, 110, 470, 518) },
        { text: '$19.99', confidence: 1, readingOrder: 3, polygon: box(135, 300, 468, 520) },
        { text: 'USE', confidence: 0.98, readingOrder: 4, polygon: box(560, 640, 470, 518) },
        { text: 'CODE', confidence: 0.99, readingOrder: 5, polygon: box(665, 780, 469, 519) },
        { text: 'SAVE20', confidence: 0.99, readingOrder: 6, polygon: box(805, 950, 470, 518) },
        { text: ' ', confidence: 0.5, readingOrder: 7, polygon: box(0, 1, 0, 1) },
        { text: 'no polygon', confidence: 0.9, readingOrder: 8, polygon: [] },
      ].map((r) => create(TextRegionSchema, r)),
    );
    expect(lines.map((l) => [l.readingOrder, l.text, l.confidence])).toEqual([
      [0, 'LIVE Detox Tea', 0.97],
      [2, 'NOW $19.99', 1],
      [4, 'USE CODE SAVE20', 0.98],
      [8, 'no polygon', 0.9],
    ]);
    // A taller word first in reading order (its box starts higher) still joins the words to its left.
    const tall = textLines(
      [
        { text: 'SAVE20', confidence: 0.99, readingOrder: 0, polygon: box(805, 950, 88, 140) },
        { text: 'USE', confidence: 0.98, readingOrder: 1, polygon: box(560, 640, 100, 140) },
        { text: 'CODE', confidence: 0.97, readingOrder: 2, polygon: box(665, 780, 100, 140) },
      ].map((r) => create(TextRegionSchema, r)),
    );
    expect(tall.map((l) => [l.readingOrder, l.text, l.confidence])).toEqual([[0, 'USE CODE SAVE20', 0.97]]);
  });

  it('turns a frame analysis into one observation per OCR line, label and detection, at its pts', () => {
    const record = frameRecord(
      create(FrameAnalysisSchema, {
        streamId: 's1',
        sessionEpoch: 'e1',
        frameId: 's1/e1/f/7',
        ptsMs: 7_000n,
        captureTimeUnixMs: 1_000_007_000n,
        textRegions: [
          { text: 'CODE: SAVE20', confidence: 0.97, readingOrder: 0 },
          { text: '  ', confidence: 0.5, readingOrder: 1 },
          { text: '$29.99', confidence: Number.NaN, readingOrder: 2 },
        ],
        labels: [{ name: 'nsfw', score: 1.2 }],
        detections: [{ label: 'person', score: 0.8 }],
        status: AnalysisStatus.COMPLETE,
      }),
      at,
    );
    expect(record).toMatchObject({ input: 'frames', sessionEpoch: 'e1', mediaTimeMs: 7_000, offset: '42' });
    expect(record.lost).toBeUndefined();
    expect(record.observations.map((o) => [o.kind, o.id, o.text, o.confidence, o.startMs, o.endMs])).toEqual([
      ['screen_text', 's1/e1/f/7#t0', 'CODE: SAVE20', 0.97, 7_000, 7_000],
      // A blank line is no observation; a NaN confidence (JSON cannot keep it) is 0.
      ['screen_text', 's1/e1/f/7#t2', '$29.99', 0, 7_000, 7_000],
      ['image_label', 's1/e1/f/7#lnsfw', '', 1, 7_000, 7_000],
      ['image_label', 's1/e1/f/7#d0', '', 0.8, 7_000, 7_000],
    ]);
    expect(record.observations[0]?.source).toEqual({ ...at, recordId: 's1/e1/f/7' });
  });

  it('marks a shed frame as lost media time, with no observations', () => {
    const record = frameRecord(
      create(FrameAnalysisSchema, {
        streamId: 's1',
        sessionEpoch: 'e1',
        frameId: 's1/e1/f/8',
        ptsMs: 8_000n,
        status: AnalysisStatus.SHED_STALE,
      }),
      at,
    );
    expect(record.observations).toEqual([]);
    expect(record.lost).toEqual({ startMs: 8_000, endMs: 8_001 });
  });

  it('takes final transcript segments only, with the mean word probability as confidence', () => {
    const segment = create(TranscriptSegmentSchema, {
      streamId: 's1',
      sessionEpoch: 'e1',
      segmentId: 's1/e1/s/10500',
      startMs: 10_500n,
      endMs: 13_500n,
      text: ' Use code SAVE20. ',
      words: [
        { text: 'Use', confidence: 0.9 },
        { text: 'code', confidence: 0.8 },
        { text: 'SAVE20.', confidence: 0.7 },
      ],
      language: 'en',
      final: true,
      captureTimeUnixMs: 1_000_010_500n,
    });
    const position = { topic: 'live.transcripts.v1', partition: 0, offset: '3' };
    expect(transcriptRecord({ ...segment, final: false }, position)).toBeUndefined();
    const record = transcriptRecord(segment, position);
    expect(record).toMatchObject({
      input: 'transcripts',
      mediaTimeMs: 13_500,
      captureTimeUnixMs: 1_000_010_500,
    });
    // Latency counts from the last chunk when the segment says when it was heard.
    expect(
      transcriptRecord({ ...segment, lastCaptureTimeUnixMs: 1_000_013_600n }, position)?.captureTimeUnixMs,
    ).toBe(1_000_013_600);
    expect(record?.observations).toHaveLength(1);
    expect(record?.observations[0]).toMatchObject({
      kind: 'speech',
      id: 's1/e1/s/10500',
      text: 'Use code SAVE20.',
      startMs: 10_500,
      endMs: 13_500,
      language: 'en',
    });
    expect(record?.observations[0]?.confidence).toBeCloseTo(0.8, 6);
  });

  it('reads the end of a session from ENDED and FAILED state changes only', () => {
    const event = (kind: MessageInitShape<typeof StreamEventSchema>['kind']) =>
      create(StreamEventSchema, {
        streamId: 's1',
        sessionEpoch: 'e1',
        eventTimeUnixMs: 1_000_076_000n,
        kind,
      });
    const change = (state: StreamState) =>
      event({ case: 'stateChange', value: { state, reason: 'x', detail: '', attempt: 0 } });
    expect(streamEnd(change(StreamState.ENDED))).toEqual({
      sessionEpoch: 'e1',
      state: 'ended',
      eventTimeUnixMs: 1_000_076_000,
    });
    expect(streamEnd(change(StreamState.FAILED))).toMatchObject({ state: 'failed' });
    for (const other of [
      StreamState.UNSPECIFIED,
      StreamState.STARTING,
      StreamState.RUNNING,
      StreamState.RECONNECTING,
      StreamState.DEGRADED,
    ])
      expect(streamEnd(change(other)), StreamState[other]).toBeUndefined();
    expect(streamEnd(event({ case: 'gap', value: { reason: GapReason.STALL } }))).toBeUndefined();
    expect(streamEnd(event({ case: undefined }))).toBeUndefined();
  });
});
