import { EpisodeState, GapReason, Modality, StreamState, type TagEvent } from '@livelens/contracts';
import { waitFor } from '@livelens/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  analysis,
  collect,
  fusionEnv,
  segment,
  startFusion,
  startProducer,
  stateChange,
  streamEvent,
  testNamespace,
} from './harness.js';

// The end of a stream as ingest announces it (live.stream-events.v1: a state change to ENDED), on the real
// broker and Redis with the shipped taxonomy. The idle flush is set far out (10 min), so only the announced
// end can close an episode here; the end grace is short to keep the test quick.

const GRACE_MS = 1_500;
const TEST_ENV = { FUSION_IDLE_FLUSH_MS: '600000', FUSION_END_GRACE_MS: String(GRACE_MS) };

describe('fusion: the announced end of a stream', () => {
  const ns = testNamespace();
  let fusion: Awaited<ReturnType<typeof startFusion>>;
  let tags: Awaited<ReturnType<typeof collect<typeof ns.topics.tags.schema>>>;
  let dlq: Awaited<ReturnType<typeof collect<typeof ns.topics.dlq.schema>>>;
  let producer: Awaited<ReturnType<typeof startProducer>>;

  beforeAll(async () => {
    fusion = await startFusion(fusionEnv(ns, TEST_ENV));
    tags = await collect(ns.topics.tags, ns.topics.dlq);
    dlq = await collect(ns.topics.dlq, ns.topics.dlq);
    producer = await startProducer();
  });
  afterAll(async () => {
    await Promise.all([tags?.stop(), dlq?.stop(), producer?.stop()]);
    await fusion?.stop();
  });

  /** The latest event of each of the stream's episodes. */
  const latest = (streamId: string): TagEvent[] => {
    const out = new Map<string, TagEvent>();
    for (const e of tags.messages())
      if (e.streamId === streamId && (out.get(e.episodeId)?.revision ?? -1) < e.revision)
        out.set(e.episodeId, e);
    return [...out.values()];
  };
  /**
   * 31 s of a stream (frames 0–30 s, "CODE: SAVE20" on screen at 12–14 s, the code said at 10.5–13.5 s): the
   * promo code episode opens, and stays open (its quiet period, 20 s, has not passed on the media clock).
   */
  const publishShow = async (streamId: string, epoch: string, captureStartMs: number) => {
    const c = { epoch, captureStartMs };
    await producer.publisher.publish(
      ns.topics.frameAnalysis,
      Array.from({ length: 31 }, (_, t) => ({
        message: analysis(streamId, t * 1_000, t >= 12 && t <= 14 ? ['CODE: SAVE20', '$29.99'] : [], c),
      })),
    );
    await producer.publisher.publish(ns.topics.transcripts, {
      message: segment(streamId, 10_500, 13_500, 'Use code SAVE20 at checkout, link in my bio.', c),
    });
    await waitFor(
      `${streamId}: the promo code episode open`,
      () => (latest(streamId).some((e) => e.tagId === 'promo_code') ? true : undefined),
      { timeoutMs: 60_000 },
    );
  };
  const publishEvent = (event: ReturnType<typeof streamEvent>) =>
    producer.publisher.publish(ns.topics.streamEvents, { message: event });

  it("closes the stream's open episodes seconds after ENDED; the last transcript, published after it, counts", async () => {
    const stream = 'end-a';
    const captureStartMs = Date.now();
    await publishShow(stream, 'e1', captureStartMs);
    expect(latest(stream).every((e) => e.state !== EpisodeState.CLOSE)).toBe(true);
    // What is not an end is skipped; garbage on the topic is dead-lettered.
    await publishEvent(stateChange(stream, StreamState.RUNNING, { seq: 0 }));
    await publishEvent(
      streamEvent(
        stream,
        { case: 'gap', value: { modality: Modality.VISUAL, reason: GapReason.STALL } },
        { seq: 1 },
      ),
    );
    await producer.publisher.sendRaw(ns.topics.streamEvents.name, [
      { key: stream, value: Buffer.from('\x08\x96\x01 not a stream event \xff\xff') },
    ]);

    const endedAt = Date.now();
    await publishEvent(
      stateChange(stream, StreamState.ENDED, { seq: 2, eventTimeUnixMs: captureStartMs + 31_000 }),
    );
    // The ASR's last final segment, published after the end (it comes once the ASR has the session's last
    // audio): it still counts.
    await producer.publisher.publish(ns.topics.transcripts, {
      message: segment(stream, 25_000, 28_000, 'DM me on WhatsApp to order.', { captureStartMs }),
    });
    const closed = await waitFor(
      'every episode of the stream closed, the last transcript in',
      () => {
        const now = latest(stream);
        return now.some((e) => e.tagId === 'off_platform_diversion') &&
          now.every((e) => e.state === EpisodeState.CLOSE)
          ? now
          : undefined;
      },
      { timeoutMs: 15_000 },
    );
    const elapsedMs = Date.now() - endedAt;
    console.info(`[fusion] closed ${closed.length} episodes ${elapsedMs} ms after the end was published`);
    expect(elapsedMs).toBeLessThan(10_000);
    const promo = closed.find((e) => e.tagId === 'promo_code');
    expect(promo?.episodeId).toMatch(new RegExp(`^${stream}/e1/promo_code/`));
    expect(promo?.evidence.some((e) => e.modality === Modality.SPEECH)).toBe(true);
    const diversion = closed.find((e) => e.tagId === 'off_platform_diversion');
    expect(diversion?.evidence.some((e) => e.source?.recordId === `${stream}/e1/s/25000`)).toBe(true);
    expect(await fusion.metric('livelens_fusion_stream_ends_total', { outcome: 'accepted' })).toBe(1);
    expect(await fusion.metric('livelens_fusion_stream_ends_total')).toBe(1);
    // The flush counts once its outputs are out and the end is cleared from Redis: just after the closes came.
    await waitFor('the end flush counted', async () =>
      (await fusion.metric('livelens_fusion_idle_flushes_total', { reason: 'end' })) > 0 ? true : undefined,
    );
    expect(await fusion.metric('livelens_fusion_idle_flushes_total', { reason: 'idle' })).toBe(0);
    const letter = await waitFor('the dead letter', () => dlq.messages()[0]);
    expect(letter.sourceTopic).toBe(ns.topics.streamEvents.name);
    expect(letter.errorCode).toMatch(/decode_failed|invalid_message/);
  }, 120_000);

  it("ignores the end of an older session: the current session's episodes stay open until its own end", async () => {
    const stream = 'end-b';
    const captureStartMs = Date.now();
    await publishShow(stream, 'e2', captureStartMs);
    // e1 ended before e2 began capturing.
    await publishEvent(
      stateChange(stream, StreamState.ENDED, {
        epoch: 'e1',
        seq: 9,
        eventTimeUnixMs: captureStartMs - 60_000,
      }),
    );
    await waitFor('the stale end taken in', async () =>
      (await fusion.metric('livelens_fusion_stream_ends_total', { outcome: 'stale_session' })) === 1
        ? true
        : undefined,
    );
    // Twice the grace period (and the checks in between): nothing closed.
    await new Promise((resolve) => setTimeout(resolve, 2 * GRACE_MS + 1_000));
    expect(latest(stream).length).toBeGreaterThan(0);
    expect(latest(stream).filter((e) => e.state === EpisodeState.CLOSE)).toEqual([]);
    // Its own end (FAILED ends a session too) closes them.
    await publishEvent(
      stateChange(stream, StreamState.FAILED, {
        epoch: 'e2',
        seq: 3,
        eventTimeUnixMs: captureStartMs + 31_000,
        reason: 'reconnect_budget_spent',
      }),
    );
    await waitFor(
      'every episode of the stream closed',
      () => (latest(stream).every((e) => e.state === EpisodeState.CLOSE) ? true : undefined),
      { timeoutMs: 15_000 },
    );
    expect(await fusion.metric('livelens_fusion_stream_ends_total', { outcome: 'accepted' })).toBe(2);
  }, 120_000);
});
