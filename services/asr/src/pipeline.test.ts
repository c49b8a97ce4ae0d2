import { create } from '@bufbuild/protobuf';
import { type AudioChunk, AudioChunkSchema, type TranscriptSegment, topics } from '@livelens/contracts';
import {
  compileVadConfig,
  type SpeechSegment,
  type VadFlushResult,
  type VadInput,
  type VadResult,
  type WhisperTranscript,
} from '@livelens/inference';
import { type ConsumedRecord, createLogger, LiveLensError, type Publisher } from '@livelens/runtime';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createAsrMetrics } from './metrics.js';
import type { AsrModels, SpeechRecognizer, VoiceActivityDetector } from './models.js';
import { AsrPipeline, type AsrPipelineOptions } from './pipeline.js';

// The pipeline's bookkeeping with scripted models (the real ones run in test/*.int.test.ts): retries after a
// failed publish, the commit limit, gaps, sessions and the idle end.

type Step = { segments?: SpeechSegment[]; open?: VadResult['open']; retainFromSample?: number };

/** A VAD that answers from a script, one step per chunk of a stream, and records what it was asked. */
class ScriptedVad implements VoiceActivityDetector {
  readonly config = compileVadConfig();
  readonly opened: { streamId: string; startSample: number }[] = [];
  readonly processed: string[] = [];
  readonly flushed: string[] = [];
  readonly #received = new Map<string, number>();
  readonly #open = new Map<string, VadResult['open']>();
  constructor(readonly script: Map<string, Step[]>) {}
  open(streamId: string, { startSample }: { startSample: number }) {
    this.opened.push({ streamId, startSample });
    this.#received.set(streamId, startSample);
  }
  has(streamId: string) {
    return this.#received.has(streamId);
  }
  async process(inputs: readonly VadInput[]): Promise<VadResult[]> {
    return inputs.map((input) => {
      this.processed.push(input.streamId);
      const received = (this.#received.get(input.streamId) ?? 0) + (input.pcm as Int16Array).length;
      this.#received.set(input.streamId, received);
      const step = this.script.get(input.streamId)?.shift() ?? {};
      this.#open.set(input.streamId, step.open);
      return {
        streamId: input.streamId,
        segments: step.segments ?? [],
        open: step.open,
        probabilities: new Float32Array(31).fill(step.open ? 0.9 : 0.1),
        firstWindowStart: 0,
        receivedEnd: received,
        speechRatio: 0,
        retainFromSample: step.retainFromSample ?? step.open?.start ?? received - 3_200,
      };
    });
  }
  async flush(streamId: string): Promise<VadFlushResult> {
    this.flushed.push(streamId);
    const open = this.#open.get(streamId);
    const receivedEnd = this.#received.get(streamId) ?? 0;
    this.#received.delete(streamId);
    const segments: SpeechSegment[] = open
      ? [
          {
            start: open.start,
            end: receivedEnd,
            speechStart: open.speechStart,
            speechEnd: receivedEnd,
            reason: 'flush',
          },
        ]
      : [];
    return { streamId, segments, receivedEnd, speechRatio: 0 };
  }
  drop(streamId: string) {
    this.#received.delete(streamId);
  }
  async close() {
    // nothing to release
  }
}

const transcript = (text: string, seconds: number): WhisperTranscript => ({
  text: ` ${text}`,
  tokens: [1],
  language: 'en',
  languageProbability: 0.9,
  avgLogProb: -0.2,
  noSpeechProb: 0.01,
  compressionRatio: 1,
  temperature: 0,
  noSpeech: false,
  words: [{ word: ` ${text}`, start: 0.2, end: seconds - 0.2, probability: 0.9 }],
  durationS: seconds,
  timings: { featuresMs: 1, encoderMs: 1, decodeMs: 1, alignMs: 1 },
});

/** The options of every transcribe call, in order. */
const transcribeCalls: unknown[] = [];
const recognizer: SpeechRecognizer = {
  provider: 'cpu',
  multilingual: false,
  async transcribe(audio, callOptions) {
    transcribeCalls.push(callOptions);
    return transcript(`heard ${(audio.length / 16_000).toFixed(2)} s`, audio.length / 16_000);
  },
  async close() {
    // nothing to release
  },
};

/** A publisher that fails the next `failures` sends (as a broker outage would), then records. */
class FlakyPublisher {
  failures = 0;
  readonly sent: TranscriptSegment[] = [];
  async publish(_spec: unknown, record: { message: unknown }) {
    if (this.failures > 0) {
      this.failures -= 1;
      throw new LiveLensError('broker unavailable', { code: 'unavailable' });
    }
    this.sent.push(record.message as unknown as TranscriptSegment);
    return [];
  }
}

const options: AsrPipelineOptions = {
  language: '',
  beamSize: 1,
  partialIntervalMs: 0,
  idleFlushMs: 5_000,
  maxStreams: 4,
  maxChunkMs: 5_000,
  gapToleranceMs: 50,
  vadMaxBatchSize: 8,
  vadMaxBatchWaitMs: 0,
  maxInFlight: 8,
};

function setup(script: Map<string, Step[]>, overrides: Partial<AsrPipelineOptions> = {}) {
  const vad = new ScriptedVad(script);
  const publisher = new FlakyPublisher();
  let now = 1_000_000;
  const registry = new Registry();
  const pipeline: AsrPipeline = new AsrPipeline(
    {
      models: {
        vad: { detector: vad, model: { id: 'silero-vad-v5', version: '5.0.0' } },
        whisper: { recognizer, model: { id: 'whisper-tiny-en-onnx', version: '1.0.0' } },
      } satisfies AsrModels,
      publisher: publisher as unknown as Publisher,
      transcripts: topics.transcripts,
      metrics: createAsrMetrics(registry, {
        vadQueueDepth: () => 0,
        whisperQueueDepth: () => 0,
        streams: () => pipeline.streamCount,
      }),
      logger: createLogger({ service: 'asr-test', level: 'silent' }),
      now: () => now,
    },
    { ...options, ...overrides },
  );
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    ((await registry.getSingleMetric(name)?.get())?.values ?? [])
      .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .reduce((sum, v) => sum + v.value, 0);
  return {
    vad,
    publisher,
    pipeline,
    metric,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** A 1 s chunk of `streamId` as a consumed record at `offset`. */
function record(
  streamId: string,
  seq: number,
  offset: number,
  {
    startMs = seq * 1_000,
    epoch = 'e1',
    endOfSession = false,
  }: { startMs?: number; epoch?: string; endOfSession?: boolean } = {},
): ConsumedRecord<typeof AudioChunkSchema> {
  const message: AudioChunk = create(AudioChunkSchema, {
    streamId,
    sessionEpoch: epoch,
    seq: BigInt(seq),
    chunkId: `${streamId}/${epoch}/a/${seq}`,
    startMs: BigInt(startMs),
    durationMs: endOfSession ? 0 : 1_000,
    captureTimeUnixMs: BigInt(1_000 + seq),
    sampleRateHz: 16_000,
    channels: 1,
    pcmS16le: new Uint8Array(endOfSession ? 0 : 32_000),
    endOfSession,
  });
  return {
    message,
    key: streamId,
    topic: 'live.audio.v1',
    partition: 0,
    offset: String(offset),
    timestampMs: 0,
    headers: {},
  };
}

const open = (start: number, end: number) => ({
  start,
  speechStart: start + 3_200,
  analysedEnd: end,
  trailingSilenceSamples: 0,
});

describe('AsrPipeline', () => {
  it('holds the commit at an unpublished segment, and a retry after a failed publish publishes it once, same seq', async () => {
    const segment: SpeechSegment = {
      start: 12_800,
      end: 36_800,
      speechStart: 16_000,
      speechEnd: 33_600,
      reason: 'silence',
    };
    const { pipeline, publisher, vad, metric } = setup(
      new Map([
        ['s1', [{ open: open(12_800, 15_872) }, { open: open(12_800, 31_744) }, { segments: [segment] }]],
      ]),
    );
    await pipeline.handle(record('s1', 0, 10));
    // The open segment starts in chunk 0: the commit may not pass it.
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBe('10');
    expect(pipeline.commitLimit('live.audio.v1', 1)).toBeUndefined();
    await pipeline.handle(record('s1', 1, 11));
    publisher.failures = 1;
    await expect(pipeline.handle(record('s1', 2, 12))).rejects.toThrow(/broker unavailable/);
    // Closed, transcribed, not acknowledged: still held at its first chunk.
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBe('10');
    expect(pipeline.timeline('s1')?.pending).toHaveLength(1);
    // The consumer loop retries the same record: the segment goes out; the chunk is not fed to the VAD again.
    await pipeline.handle(record('s1', 2, 12));
    expect(vad.processed).toHaveLength(3);
    expect(
      publisher.sent.map((s) => [s.segmentId, Number(s.seq), s.final, Number(s.startMs), Number(s.endMs)]),
    ).toEqual([['s1/e1/s/800', 0, true, 800, 2_300]]);
    expect(publisher.sent[0]?.sources.map((r) => r.recordId)).toEqual([
      's1/e1/a/0',
      's1/e1/a/1',
      's1/e1/a/2',
    ]);
    expect(publisher.sent[0]?.words.map((w) => [w.text, Number(w.startMs), Number(w.endMs)])).toEqual([
      ['heard 1.50 s', 1_000, 2_100],
    ]);
    // The first chunk's capture, and the last's (when the speech had been heard: latency counts from there).
    expect(publisher.sent[0]?.captureTimeUnixMs).toBe(1_000n);
    expect(publisher.sent[0]?.lastCaptureTimeUnixMs).toBe(1_002n);
    // Published: the commit may move to the chunk holding retainFrom (chunk 2 here).
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBe('12');
    expect(await metric('livelens_asr_chunks_total', { outcome: 'duplicate' })).toBe(1);
    expect(await metric('livelens_asr_errors_total', { kind: 'publish' })).toBe(1);
  });

  it('ends the open segment at a gap and starts a new timeline on the grid at the chunk after it', async () => {
    const { pipeline, publisher, vad } = setup(
      new Map([['s2', [{ open: open(12_800, 15_872) }, { open: open(12_800, 31_744) }, {}]]]),
    );
    await pipeline.handle(record('s2', 0, 0));
    await pipeline.handle(record('s2', 1, 1));
    // Chunks 2 and 3 were lost; chunk 4 starts 4.01 s in.
    await pipeline.handle(record('s2', 4, 2, { startMs: 4_010 }));
    expect(vad.flushed).toEqual(['s2']);
    expect(publisher.sent.map((s) => [s.segmentId, Number(s.startMs), Number(s.endMs)])).toEqual([
      ['s2/e1/s/800', 800, 2_000],
    ]);
    expect(vad.opened.map((o) => o.startSample)).toEqual([0, Math.floor((4_010 * 16) / 512) * 512]);
    expect(pipeline.timeline('s2')?.originSample).toBe(64_000);
  });

  it('dead-letters a chunk going back in time, and starts over on a new session after ending the old one', async () => {
    const { pipeline, publisher } = setup(new Map([['s3', [{ open: open(3_200, 15_872) }, {}]]]));
    await pipeline.handle(record('s3', 0, 0));
    await expect(pipeline.handle(record('s3', 1, 1, { startMs: 0 }))).rejects.toMatchObject({
      code: 'invalid_argument',
      retriable: false,
    });
    expect(publisher.sent).toEqual([]);
    await pipeline.handle(record('s3', 0, 2, { epoch: 'e2' }));
    expect(publisher.sent.map((s) => [s.segmentId, s.sessionEpoch, Number(s.seq)])).toEqual([
      ['s3/e1/s/200', 'e1', 0],
    ]);
    expect(pipeline.timeline('s3')?.sessionEpoch).toBe('e2');
  });

  it('ends an idle stream (its open segment published), frees it, and stops holding the commit', async () => {
    const { pipeline, publisher, advance, metric } = setup(
      new Map([['s4', [{ open: open(3_200, 15_872) }]]]),
    );
    await pipeline.handle(record('s4', 0, 7));
    advance(4_999);
    await pipeline.flushIdle();
    expect(pipeline.streamCount).toBe(1);
    advance(1);
    await pipeline.flushIdle();
    expect(pipeline.streamCount).toBe(0);
    expect(publisher.sent.map((s) => [s.segmentId, s.final, Number(s.endMs)])).toEqual([
      ['s4/e1/s/200', true, 1_000],
    ]);
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBeUndefined();
    expect(await metric('livelens_asr_timelines_ended_total', { reason: 'idle' })).toBe(1);
    expect(await metric('livelens_asr_segment_duration_seconds', { end: 'idle' })).toBeGreaterThan(0);
  });

  it("ends a stream at its session's end marker at once (no idle wait), and a redelivered marker does nothing", async () => {
    const { pipeline, publisher, metric } = setup(new Map([['s6', [{ open: open(3_200, 15_872) }]]]));
    await pipeline.handle(record('s6', 0, 4));
    await pipeline.handle(record('s6', 1, 5, { endOfSession: true }));
    expect(pipeline.streamCount).toBe(0);
    expect(publisher.sent.map((s) => [s.segmentId, s.final, Number(s.endMs)])).toEqual([
      ['s6/e1/s/200', true, 1_000],
    ]);
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBeUndefined();
    expect(await metric('livelens_asr_timelines_ended_total', { reason: 'end_of_session' })).toBe(1);
    expect(await metric('livelens_asr_segment_duration_seconds', { end: 'end_of_session' })).toBeGreaterThan(
      0,
    );
    await pipeline.handle(record('s6', 1, 5, { endOfSession: true }));
    expect(publisher.sent).toHaveLength(1);
    expect(await metric('livelens_asr_chunks_total', { outcome: 'end_of_session' })).toBe(2);
  });

  it("ignores the end marker of another session than the stream's current one", async () => {
    const { pipeline, publisher, metric } = setup(new Map([['s9', [{ open: open(3_200, 15_872) }]]]));
    await pipeline.handle(record('s9', 0, 1, { epoch: 'e2' }));
    // e1's marker, late (its ingest replica lost the lease after e2 started): e2's open segment stays open.
    await pipeline.handle(record('s9', 7, 2, { epoch: 'e1', endOfSession: true }));
    expect(pipeline.streamCount).toBe(1);
    expect(publisher.sent).toEqual([]);
    expect(await metric('livelens_asr_chunks_total', { outcome: 'stale_end' })).toBe(1);
  });

  it('does not end idle streams while the consumer group rebalances, and does again after the assignment', async () => {
    const { pipeline, publisher, advance } = setup(new Map([['s10', [{ open: open(3_200, 15_872) }]]]));
    await pipeline.handle(record('s10', 0, 1));
    pipeline.rebalancing();
    advance(60_000);
    await pipeline.flushIdle();
    expect(pipeline.streamCount).toBe(1);
    await pipeline.retainPartitions('live.audio.v1', [0]);
    await pipeline.flushIdle();
    expect(pipeline.streamCount).toBe(0);
    expect(publisher.sent).toHaveLength(1);
  });

  it('passes the encoder window to Whisper only when one is configured', async () => {
    for (const encoderPaddingS of [undefined, 4]) {
      const { pipeline } = setup(new Map([['s8', [{ open: open(3_200, 15_872) }]]]), { encoderPaddingS });
      transcribeCalls.length = 0;
      await pipeline.handle(record('s8', 0, 1));
      await pipeline.handle(record('s8', 1, 2, { endOfSession: true }));
      expect(transcribeCalls).toHaveLength(1);
      expect((transcribeCalls[0] as { encoderPaddingS?: number }).encoderPaddingS).toBe(encoderPaddingS);
      expect('encoderPaddingS' in (transcribeCalls[0] as object)).toBe(encoderPaddingS !== undefined);
    }
  });

  it('drops the streams of partitions moved to another replica, publishing nothing, and keeps the rest', async () => {
    const { pipeline, publisher, metric } = setup(new Map([['s7', [{ open: open(3_200, 15_872) }]]]));
    await pipeline.handle(record('s7', 0, 9));
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBe('9');
    await pipeline.retainPartitions('live.audio.v1', [0, 1]);
    await pipeline.retainPartitions('live.other.v1', []);
    expect(pipeline.streamCount).toBe(1);
    await pipeline.retainPartitions('live.audio.v1', [1]);
    expect(pipeline.streamCount).toBe(0);
    expect(publisher.sent).toEqual([]);
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBeUndefined();
    expect(await metric('livelens_asr_timelines_ended_total', { reason: 'revoked' })).toBe(1);
  });

  it('retries an idle end whose publish failed at the next check, holding the commit meanwhile', async () => {
    const { pipeline, publisher, advance } = setup(new Map([['s5', [{ open: open(3_200, 15_872) }]]]));
    await pipeline.handle(record('s5', 0, 3));
    advance(6_000);
    publisher.failures = 1;
    await pipeline.flushIdle();
    expect(pipeline.streamCount).toBe(1);
    expect(pipeline.commitLimit('live.audio.v1', 0)).toBe('3');
    await pipeline.flushIdle();
    expect(pipeline.streamCount).toBe(0);
    expect(publisher.sent).toHaveLength(1);
  });

  it('dead-letters the chunks of a stream past maxStreams', async () => {
    const { pipeline } = setup(new Map(), { maxStreams: 1 });
    await pipeline.handle(record('a', 0, 0));
    await expect(pipeline.handle(record('b', 0, 1))).rejects.toMatchObject({
      code: 'resource_exhausted',
      retriable: false,
    });
  });

  it('publishes partials of a long open segment once per interval, then its final, all under one id', async () => {
    const { pipeline, publisher } = setup(
      new Map([
        [
          'p1',
          [
            { open: open(3_200, 15_872) },
            { open: open(3_200, 31_744) },
            { open: open(3_200, 47_616) },
            {
              segments: [
                { start: 3_200, end: 52_000, speechStart: 6_400, speechEnd: 48_800, reason: 'silence' },
              ],
            },
          ],
        ],
      ]),
      { partialIntervalMs: 1_000 },
    );
    for (let seq = 0; seq < 4; seq++) await pipeline.handle(record('p1', seq, seq));
    expect(
      publisher.sent.map((s) => [Number(s.seq), s.final, s.segmentId, Number(s.endMs), s.words.length]),
    ).toEqual([
      [0, false, 'p1/e1/s/200', 1_984, 0],
      [1, false, 'p1/e1/s/200', 2_976, 0],
      [2, true, 'p1/e1/s/200', 3_250, 1],
    ]);
  });
});
