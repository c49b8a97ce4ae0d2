import { prefixedTopics } from '@livelens/contracts';
import { connectRedis, createLogger, createRedis, LiveLensError, type Publisher } from '@livelens/runtime';
import { testInfrastructure, uniqueName } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createFusionMetrics } from './metrics.js';
import type { Observation, WindowDecision, WindowInput } from './model.js';
import { FusionProcessor } from './processor.js';
import { FusionStore } from './store.js';
import type { FusionRecord, FusionRules } from './windows/stream-fusion.js';

// The processor on the real Redis, with a recording stand-in for the broker (so it can refuse records) and
// stand-in rules ("code" in a line fires `promo`). The whole service on the real broker: test/fusion.int.test.ts.

const rules: FusionRules = {
  taxonomyVersion: '1.0.0',
  tag: (id) =>
    id === 'promo'
      ? { id, kind: 'intent', name: 'Promo', severity: 'low', quietPeriodMs: 10_000 }
      : undefined,
  evaluate(window: WindowInput): WindowDecision {
    const hits = window.observations.filter((o) => o.text.includes('code'));
    if (hits.length === 0) return { retrieved: [], decisions: [] };
    return {
      retrieved: [{ ruleId: 'promo.code', score: 1 }],
      decisions: [
        {
          tagId: 'promo',
          score: 0.9,
          fired: true,
          review: false,
          evidence: hits.map((o) => ({
            observationId: o.id,
            kind: o.kind,
            source: o.source,
            snippet: o.text,
            mediaTimeMs: o.startMs,
            confidence: o.confidence,
            ruleId: 'promo.code',
          })),
          evaluations: [{ ruleId: 'promo.code', matched: true, score: 0.9, explanation: 'stand-in' }],
          formula: '1 - prod(1 - w_i * c_i)',
          acceptThreshold: 0.6,
          reviewThreshold: 0.3,
        },
      ],
    };
  },
  rationale: () => 'promo',
};

/** Records what is published; refuses (for good) records whose rationale is 'refuse'. */
class RecordingPublisher {
  readonly sent: { topic: string; eventId: string }[] = [];
  refuse = new Set<string>();
  async publish(
    topic: { name: string },
    records: { message: { eventId?: string } } | { message: { eventId?: string } }[],
  ) {
    const list = Array.isArray(records) ? records : [records];
    if (list.some((r) => this.refuse.has(r.message.eventId ?? '')))
      throw new LiveLensError('record too large', { code: 'invalid_argument', retriable: false });
    for (const r of list) this.sent.push({ topic: topic.name, eventId: r.message.eventId ?? '' });
    return [];
  }
}

let offset = 0;
function frame(streamId: string, ptsMs: number, lines: string[] = []): FusionRecord {
  const at = { topic: 'live.frame-analysis.v1', partition: 0, offset: String(offset++) };
  const observations: Observation[] = lines.map((text, i) => ({
    kind: 'screen_text',
    id: `${streamId}/f/${ptsMs}#t${i}`,
    startMs: ptsMs,
    endMs: ptsMs,
    text,
    confidence: 0.9,
    language: '',
    captureTimeUnixMs: 1_000 + ptsMs,
    source: { ...at, recordId: `${streamId}/f/${ptsMs}` },
  }));
  return {
    input: 'frames',
    ...at,
    sessionEpoch: 'e1',
    captureTimeUnixMs: 1_000 + ptsMs,
    mediaTimeMs: ptsMs,
    observations,
  };
}

describe('fusion processor (real Redis)', () => {
  const logger = createLogger({ service: 'processor-test', level: 'silent' });
  const redis = createRedis({ url: testInfrastructure().redisUrl, connectionName: 'processor-test' }, logger);
  afterAll(() => redis.disconnect());

  /** A processor on its own key prefix (or on `prefix`: another replica of the same streams), clock at 1e6. */
  async function setup(prefix = `${uniqueName('fusion')}:`) {
    await connectRedis(redis);
    const publisher = new RecordingPublisher();
    const registry = new Registry();
    let now = 1_000_000;
    const processor: FusionProcessor = new FusionProcessor(
      {
        store: new FusionStore(redis, { prefix, ttlSeconds: 60 }),
        rules,
        publisher: publisher as unknown as Publisher,
        topics: prefixedTopics(''),
        metrics: createFusionMetrics(registry, {
          streams: () => processor.cachedStreams,
          openWindows: () => 0,
        }),
        logger,
        now: () => now,
      },
      {
        window: { sizeMs: 10_000, hopMs: 5_000 },
        allowedLatenessMs: 30_000,
        maxInputSkewMs: 8_000,
        maxObservations: 1_000,
        maxEvidencePerEpisode: 20,
        minScoreIncrease: 0.05,
        maxMediaJumpMs: 3_600_000,
        maxCachedStreams: 100,
      },
    );
    /** A metric's value, summed over the series whose labels include `labels`. */
    const metric = async (name: string, labels: Record<string, string> = {}) =>
      ((await registry.getSingleMetric(name)?.get())?.values ?? [])
        .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
        .reduce((sum, v) => sum + v.value, 0);
    const store = new FusionStore(redis, { prefix, ttlSeconds: 60 });
    return { processor, publisher, metric, store, prefix, advance: (ms: number) => (now += ms) };
  }
  const timing = { idleMs: 60_000, endGraceMs: 5_000 };
  /** Ingest's end of session `epoch`, published at capture time `eventTimeUnixMs` (frames: 1_000 + pts). */
  const end = (epoch: string, eventTimeUnixMs: number, state: 'ended' | 'failed' = 'ended') => ({
    sessionEpoch: epoch,
    state,
    eventTimeUnixMs,
  });

  it('ends a stream that stopped after the idle time: its open episode closes, and it leaves the cache', async () => {
    const { processor, publisher, metric, advance } = await setup();
    for (let t = 0; t <= 24_000; t += 1_000)
      await processor.handle(frame('idle-1', t, t === 12_000 ? ['code A'] : []), 'idle-1');
    expect(publisher.sent.map((s) => s.eventId)).toEqual(['idle-1/e1/promo/5000/0']);
    advance(59_000);
    expect(await processor.flushIdle({ idleMs: 60_000, endGraceMs: 5_000 })).toBe(0);
    advance(1_000);
    expect(await processor.flushIdle({ idleMs: 60_000, endGraceMs: 5_000 })).toBe(1);
    expect(publisher.sent.map((s) => s.eventId)).toEqual([
      'idle-1/e1/promo/5000/0',
      'idle-1/e1/promo/5000/1',
    ]);
    expect(processor.cached('idle-1')).toBeUndefined();
    expect(await metric('livelens_fusion_idle_flushes_total', { reason: 'idle' })).toBe(1);
    // Nothing left to end: a later sweep does nothing.
    expect(await processor.flushIdle({ idleMs: 60_000, endGraceMs: 5_000 })).toBe(0);
  });

  it('ends a stream once its announced end is a grace period old and no record came meanwhile', async () => {
    const { processor, publisher, metric, store, advance } = await setup();
    for (let t = 0; t <= 24_000; t += 1_000)
      await processor.handle(frame('end-1', t, t === 12_000 ? ['code A'] : []), 'end-1');
    expect(publisher.sent.map((s) => s.eventId)).toEqual(['end-1/e1/promo/5000/0']);
    expect(await processor.handleStreamEnd(end('e1', 26_000), 'end-1')).toBe('accepted');
    // Recorded in Redis with the rest of the state; nothing decided yet (the last records may still come).
    expect((await store.load('end-1')).state.ended).toMatchObject({ sessionEpoch: 'e1', state: 'ended' });
    expect(publisher.sent).toHaveLength(1);
    expect(await processor.handleStreamEnd(end('e1', 26_500, 'failed'), 'end-1')).toBe('duplicate');
    advance(4_000);
    expect(await processor.flushIdle(timing)).toBe(0);
    // The session's last analysis comes after the end: taken in, and the grace runs from it.
    await processor.handle(frame('end-1', 25_000, ['code B']), 'end-1');
    advance(4_000);
    expect(await processor.flushIdle(timing)).toBe(0);
    advance(1_000);
    expect(await processor.flushIdle(timing)).toBe(1);
    expect(publisher.sent.map((s) => s.eventId)).toEqual([
      'end-1/e1/promo/5000/0',
      'end-1/e1/promo/5000/1',
      'end-1/e1/promo/5000/2',
    ]);
    expect((await store.load('end-1')).state.episodes).toEqual([]);
    expect(processor.cached('end-1')).toBeUndefined();
    expect(await metric('livelens_fusion_idle_flushes_total', { reason: 'end' })).toBe(1);
    expect(await metric('livelens_fusion_idle_flushes_total', { reason: 'idle' })).toBe(0);
    expect(await metric('livelens_fusion_stream_ends_total', { outcome: 'accepted' })).toBe(1);
    expect(await metric('livelens_fusion_stream_ends_total', { outcome: 'duplicate' })).toBe(1);
    // Nothing left pending: the end was flushed.
    expect(await store.pendingEnds()).toEqual([]);
  });

  it('ends the stream after a restart within the grace: the recorded end is found in Redis, not in a cache', async () => {
    const before = await setup();
    for (let t = 0; t <= 20_000; t += 1_000)
      await before.processor.handle(frame('restart-1', t, t === 12_000 ? ['code A'] : []), 'restart-1');
    expect(await before.processor.handleStreamEnd(end('e1', 22_000), 'restart-1')).toBe('accepted');
    expect(await before.store.pendingEnds()).toEqual(['restart-1']);
    // The replica restarts (its cache is gone) before the grace passed; no record of the stream comes again.
    const after = await setup(before.prefix);
    expect(after.processor.cached('restart-1')).toBeUndefined();
    after.advance(2_000);
    expect(await after.processor.flushIdle(timing)).toBe(0);
    expect(after.processor.cached('restart-1')).toBeUndefined(); // checked, not taken over
    after.advance(3_000);
    expect(await after.processor.flushIdle(timing)).toBe(1);
    // The flush decides the windows still pending (the code at 12 s opens its episode) and closes it.
    expect(before.publisher.sent).toEqual([]);
    expect(after.publisher.sent.map((s) => s.eventId)).toEqual([
      'restart-1/e1/promo/5000/0',
      'restart-1/e1/promo/5000/1',
    ]);
    expect((await after.store.load('restart-1')).state.episodes).toEqual([]);
    expect(await after.store.pendingEnds()).toEqual([]);
    expect(await after.metric('livelens_fusion_idle_flushes_total', { reason: 'end' })).toBe(1);
    // Another replica's timer later finds nothing to do.
    expect(await before.processor.flushIdle(timing)).toBe(0);
  });

  it('ignores the end of an older session and of an unknown stream; dead-letters one without a session', async () => {
    const { processor, publisher, metric, store, advance } = await setup();
    expect(await processor.handleStreamEnd(end('e1', 5_000), 'never-seen')).toBe('unknown_stream');
    expect((await store.load('never-seen')).version).toBe('');
    expect(processor.cached('never-seen')).toBeUndefined();
    for (let t = 0; t <= 24_000; t += 1_000)
      await processor.handle(frame('stale-1', t, t === 12_000 ? ['code A'] : []), 'stale-1');
    // e1 ended before the stream's newest record was captured (1_000 + 24_000): an older session's end.
    expect(await processor.handleStreamEnd(end('e0', 20_000), 'stale-1')).toBe('stale_session');
    expect((await store.load('stale-1')).state.ended).toBeNull();
    advance(10_000);
    expect(await processor.flushIdle(timing)).toBe(0);
    expect(publisher.sent.map((s) => s.eventId)).toEqual(['stale-1/e1/promo/5000/0']);
    await expect(processor.handleStreamEnd(end('', 30_000), 'stale-1')).rejects.toMatchObject({
      retriable: false,
      code: 'invalid_argument',
    });
    expect(await metric('livelens_fusion_stream_ends_total', { outcome: 'stale_session' })).toBe(1);
    expect(await metric('livelens_fusion_stream_ends_total', { outcome: 'unknown_stream' })).toBe(1);
    expect(await metric('livelens_fusion_stream_ends_total', { outcome: 'invalid' })).toBe(1);
  });

  it('keeps an end recorded by one replica while another applies records (compare-and-set), and ends the stream', async () => {
    const a = await setup();
    const b = await setup(a.prefix);
    for (let t = 0; t <= 20_000; t += 1_000)
      await a.processor.handle(frame('cas-1', t, t === 12_000 ? ['code A'] : []), 'cas-1');
    // Replica b takes the end in; replica a's cached copy is stale now.
    expect(await b.processor.handleStreamEnd(end('e1', 22_000), 'cas-1')).toBe('accepted');
    const last = frame('cas-1', 21_000);
    await a.processor.handle(last, 'cas-1');
    expect(await a.metric('livelens_fusion_state_conflicts_total')).toBe(1);
    // Both in the state: a reloaded and applied its record again over b's write.
    const stored = (await a.store.load('cas-1')).state;
    expect(stored.ended?.sessionEpoch).toBe('e1');
    expect(Object.values(stored.offsets)).toEqual([last.offset]);
    a.advance(5_000);
    b.advance(5_000);
    // Both replicas see it due; one ends it, the other finds nothing left.
    const [byA, byB] = await Promise.all([a.processor.flushIdle(timing), b.processor.flushIdle(timing)]);
    expect(byA + byB).toBe(1);
    const closes = [...a.publisher.sent, ...b.publisher.sent].filter((s) => s.eventId.endsWith('/1'));
    expect(closes.map((s) => s.eventId)).toEqual(['cas-1/e1/promo/5000/1']);
  });

  it('leaves out an output the broker refuses for good, publishes the rest, and the stream goes on', async () => {
    const { processor, publisher, metric } = await setup();
    publisher.refuse.add('refuse-1/e1/promo/5000/0');
    for (let t = 0; t <= 40_000; t += 1_000)
      await processor.handle(frame('refuse-1', t, t === 12_000 ? ['code A'] : []), 'refuse-1');
    // The OPEN was refused (logged, counted); its CLOSE went out; no record of the stream was dead-lettered.
    expect(publisher.sent.map((s) => s.eventId)).toEqual(['refuse-1/e1/promo/5000/1']);
    expect(await metric('livelens_fusion_unsendable_outputs_total')).toBe(1);
    expect(processor.cached('refuse-1')?.state.outbox).toEqual([]);
  });
});
