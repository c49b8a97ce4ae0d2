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

  async function setup() {
    await connectRedis(redis);
    const publisher = new RecordingPublisher();
    const registry = new Registry();
    let now = 1_000_000;
    const processor: FusionProcessor = new FusionProcessor(
      {
        store: new FusionStore(redis, { prefix: `${uniqueName('fusion')}:`, ttlSeconds: 60 }),
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
    const metric = async (name: string) =>
      ((await registry.getSingleMetric(name)?.get())?.values ?? []).reduce((sum, v) => sum + v.value, 0);
    return { processor, publisher, metric, advance: (ms: number) => (now += ms) };
  }

  it('ends a stream that stopped after the idle time: its open episode closes, and it leaves the cache', async () => {
    const { processor, publisher, metric, advance } = await setup();
    for (let t = 0; t <= 24_000; t += 1_000)
      await processor.handle(frame('idle-1', t, t === 12_000 ? ['code A'] : []), 'idle-1');
    expect(publisher.sent.map((s) => s.eventId)).toEqual(['idle-1/e1/promo/5000/0']);
    advance(59_000);
    expect(await processor.flushIdle(60_000)).toBe(0);
    advance(1_000);
    expect(await processor.flushIdle(60_000)).toBe(1);
    expect(publisher.sent.map((s) => s.eventId)).toEqual([
      'idle-1/e1/promo/5000/0',
      'idle-1/e1/promo/5000/1',
    ]);
    expect(processor.cached('idle-1')).toBeUndefined();
    expect(await metric('livelens_fusion_idle_flushes_total')).toBe(1);
    // Nothing left to end: a later sweep does nothing.
    expect(await processor.flushIdle(60_000)).toBe(0);
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
