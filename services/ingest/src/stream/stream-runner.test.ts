import { GapReason, Modality, StreamState } from '@livelens/contracts';
import { createLogger, type Publisher } from '@livelens/runtime';
import { waitFor } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createIngestMetrics } from '../metrics.js';
import type { StreamStatus } from '../ownership/stream-store.js';
import type { FfmpegSource, SourceEvents, SourceExit } from '../source/types.js';
import { StreamRunner } from './stream-runner.js';

// Unit tests of the runner alone: the source and the broker are stand-ins here, so the tests can make the
// broker stall on command. The real ffmpeg, broker and Redis run in test/*.int.test.ts.

const logger = createLogger({ service: 'runner-test', level: 'silent' });
const settings = {
  rwTimeoutMs: 1_000,
  stallTimeoutMs: 60_000,
  reconnectMaxAttempts: 2,
  reconnectBaseMs: 10,
  reconnectMaxMs: 20,
  publishQueueMax: 3,
  maxFrameBytes: 1_000_000,
  maxPixels: 1_000_000,
  jpegQuality: 5,
  statusIntervalMs: 60_000,
};
const spec = {
  streamId: 's1',
  sourceUrl: 'rtmp://example.com/live/x',
  redactedUrl: 'rtmp://example.com/live/***',
  options: { frameRateFps: 1, sceneChangeThreshold: 0, maxHeight: 720, audioChunkMs: 1000 },
  labels: {},
  requestId: '',
  createdAtMs: 0,
};

/** A broker stand-in: records what each topic received; frames can be held back (a slow broker). */
function broker() {
  const sent = new Map<string, unknown[]>();
  let holdFrames: Promise<void> | undefined;
  let release: () => void = () => undefined;
  const publisher = {
    async publish(topic: { name: string }, records: { message: unknown }[]) {
      if (topic.name.includes('frames') && holdFrames) await holdFrames;
      sent.set(topic.name, [...(sent.get(topic.name) ?? []), ...records.map((r) => r.message)]);
      return [];
    },
  } as unknown as Publisher;
  return {
    publisher,
    sent: (topic: string) => (sent.get(topic) ?? []) as Record<string, unknown>[],
    hold: () => {
      holdFrames = new Promise((resolve) => {
        release = resolve;
      });
    },
    release: () => {
      holdFrames = undefined;
      release();
    },
  };
}

/** A source stand-in driven by the test: emit frames, end with an exit. */
function scriptedSource() {
  const runs: { events: SourceEvents; exit: (e: SourceExit) => void }[] = [];
  const startSource = (_spec: unknown, events: SourceEvents): FfmpegSource => {
    let exited = false;
    const exit = (e: SourceExit) => {
      if (exited) return;
      exited = true;
      events.onExit(e);
    };
    runs.push({ events, exit });
    return {
      pid: 1,
      exited: new Promise(() => undefined),
      stop: async () => exit({ kind: 'stopped' }),
    } as unknown as FfmpegSource;
  };
  const frame = (ptsMs: number) => ({
    jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xd9]),
    ptsMs,
    width: 2,
    height: 2,
    sceneScore: 0,
    reason: 'interval' as const,
    receivedAtMs: Date.now(),
  });
  return { runs, startSource, frame };
}

function newRunner(b: ReturnType<typeof broker>, s: ReturnType<typeof scriptedSource>) {
  const statuses: StreamStatus[] = [];
  const runner = new StreamRunner(
    spec,
    {
      publisher: b.publisher,
      logger,
      metrics: createIngestMetrics(new Registry()),
      replicaId: 'r1',
      validate: async () => ({
        kind: 'rtmp',
        input: spec.sourceUrl,
        redactedUrl: spec.redactedUrl,
        addresses: [],
      }),
      startSource: s.startSource,
      writeStatus: async (_id, status) => {
        statuses.push(status);
      },
    },
    settings,
  );
  return { runner, statuses };
}

type Event = {
  kind: {
    case: string;
    value: {
      state?: StreamState;
      reason?: unknown;
      firstSeq?: bigint;
      lastSeq?: bigint;
      modality?: Modality;
    };
  };
};

describe('StreamRunner', () => {
  it('sheds frames the broker cannot take, records them as one BACKPRESSURE gap with their seq range, and recovers', async () => {
    const b = broker();
    const s = scriptedSource();
    const { runner } = newRunner(b, s);
    runner.start();
    await waitFor('the source to start', () => s.runs[0]);
    const run = s.runs[0];
    if (!run) throw new Error('no run');
    run.events.onFrame(s.frame(0));
    await waitFor('frame 0 sent', () => (b.sent('live.frames.v1').length === 1 ? true : undefined));
    b.hold(); // the broker stalls
    for (let i = 1; i <= 8; i += 1) run.events.onFrame(s.frame(i * 1000));
    // 1 in flight + 3 queued (publishQueueMax): seqs 5..8 were shed.
    expect(runner.state).toBe(StreamState.DEGRADED);
    b.release();
    await waitFor('the queue to drain', () => (b.sent('live.frames.v1').length === 4 ? true : undefined));
    run.events.onFrame(s.frame(9000)); // accepted again: the gap closes
    await waitFor('frame 9', () => (b.sent('live.frames.v1').length === 5 ? true : undefined));
    expect(runner.state).toBe(StreamState.RUNNING);
    await runner.stop('requested');

    const sentSeqs = b.sent('live.frames.v1').map((m) => Number(m.seq));
    expect(sentSeqs).toEqual([0, 1, 2, 3, 9]);
    const events = b.sent('live.stream-events.v1') as unknown as Event[];
    const gaps = events.filter((e) => e.kind.case === 'gap').map((e) => e.kind.value);
    // One gap with the exact shed range: sent + shed = every seq, nothing lost without a record.
    expect(gaps).toHaveLength(1);
    expect(gaps[0]?.reason).toBe(GapReason.BACKPRESSURE);
    expect(gaps[0]?.modality).toBe(Modality.VIDEO);
    expect([Number(gaps[0]?.firstSeq), Number(gaps[0]?.lastSeq)]).toEqual([4, 8]);
    expect((gaps[0] as { hasSeqRange?: boolean }).hasSeqRange).toBe(true);
    const states = events
      .filter((e) => e.kind.case === 'stateChange')
      .map((e) => StreamState[e.kind.value.state ?? 0]);
    expect(states).toEqual(['RUNNING', 'DEGRADED', 'RUNNING', 'ENDED']);
  });

  it("ends the session's audio with an in-band end_of_session record after its last chunk", async () => {
    const b = broker();
    const s = scriptedSource();
    const { runner } = newRunner(b, s);
    runner.start();
    await waitFor('the source to start', () => s.runs[0]);
    const run = s.runs[0];
    if (!run) throw new Error('no run');
    const pcm = Buffer.alloc(32_000);
    run.events.onAudio({ pcm, startMs: 0, durationMs: 1000, receivedAtMs: Date.now() });
    run.events.onAudio({
      pcm: pcm.subarray(0, 8000),
      startMs: 1000,
      durationMs: 250,
      receivedAtMs: Date.now(),
    });
    await waitFor('two chunks sent', () => (b.sent('live.audio.v1').length === 2 ? true : undefined));
    await runner.stop('requested');

    const audio = b.sent('live.audio.v1');
    expect(audio.map((m) => [Number(m.seq), Number(m.startMs), m.durationMs, m.endOfSession])).toEqual([
      [0, 0, 1000, false],
      [1, 1000, 250, false],
      [2, 1250, 0, true],
    ]);
    expect((audio[2]?.pcmS16le as Uint8Array | undefined)?.byteLength).toBe(0);
    expect(audio[2]?.chunkId).toBe(`s1/${runner.sessionEpoch}/a/2`);
  });

  it('reconnects on a transient failure with a RECONNECT gap, fails at once on a permanent one', async () => {
    const b = broker();
    const s = scriptedSource();
    const { runner, statuses } = newRunner(b, s);
    runner.start();
    await waitFor('run 1', () => s.runs[0]);
    s.runs[0]?.events.onFrame(s.frame(0));
    s.runs[0]?.exit({
      kind: 'failed',
      reason: 'connection_failed',
      detail: 'reset',
      exitCode: 1,
      signal: null,
    });
    await waitFor('run 2', () => s.runs[1]);
    s.runs[1]?.events.onFrame(s.frame(0)); // ffmpeg's own clock restarts at 0
    s.runs[1]?.exit({
      kind: 'failed',
      reason: 'protocol_not_allowed',
      detail: 'nope',
      exitCode: 1,
      signal: null,
    });
    await runner.done;

    const events = b.sent('live.stream-events.v1') as unknown as Event[];
    const states = events
      .filter((e) => e.kind.case === 'stateChange')
      .map((e) => StreamState[e.kind.value.state ?? 0]);
    expect(states).toEqual(['RUNNING', 'RECONNECTING', 'RUNNING', 'FAILED']);
    const gap = events.find((e) => e.kind.case === 'gap')?.kind.value;
    expect(gap?.reason).toBe(GapReason.RECONNECT);
    expect((gap as { hasSeqRange?: boolean }).hasSeqRange).toBe(false); // nothing sampled was lost: media time only
    // Media time went on across the reconnect: the second run's first frame is after the first run's.
    const pts = b.sent('live.frames.v1').map((m) => Number(m.ptsMs));
    expect(pts[1]).toBeGreaterThan(pts[0] ?? 0);
    expect(statuses.at(-1)?.state).toBe(StreamState.FAILED);
    expect(statuses.at(-1)?.lastError).toMatch(/protocol_not_allowed/);
    expect(statuses.at(-1)?.restarts).toBe(1);
  });

  it('gives up after the reconnect limit when the source never delivers', async () => {
    const b = broker();
    const s = scriptedSource();
    const { runner } = newRunner(b, s);
    runner.start();
    for (let i = 0; i < 3; i += 1) {
      await waitFor(`run ${i + 1}`, () => s.runs[i]);
      s.runs[i]?.exit({
        kind: 'failed',
        reason: 'connection_refused',
        detail: '',
        exitCode: 1,
        signal: null,
      });
    }
    await runner.done;
    expect(s.runs).toHaveLength(3); // the first try and 2 reconnects (reconnectMaxAttempts)
    const events = b.sent('live.stream-events.v1') as unknown as Event[];
    const last = events.filter((e) => e.kind.case === 'stateChange').at(-1)?.kind.value;
    expect(last?.state).toBe(StreamState.FAILED);
    expect(last?.reason).toBe('connection_refused');
  });
});
