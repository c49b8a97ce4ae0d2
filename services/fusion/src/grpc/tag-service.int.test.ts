// TagService on the real broker and Redis: a TagFeed on a unique tags topic, the gRPC server on port 0, the
// runtime's client; tag events published with the test producer, a fusion state written with FusionStore.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  EpisodeState,
  prefixedTopics,
  Severity,
  type TagEvent,
  TagEventSchema,
  TagKind,
  TagService,
  type WatchTagsRequestSchema,
} from '@livelens/contracts';
import {
  connectRedis,
  createGrpcClient,
  createLogger,
  createRedis,
  type GrpcClient,
  KafkaClient,
  LiveLensError,
  type Logger,
  type Publisher,
  type Redis,
} from '@livelens/runtime';
import { startTestProducer } from '@livelens/runtime/testing';
import { testInfrastructure, uniqueName, waitFor } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FusionStore } from '../store.js';
import { emptyStreamState, type FusionRules, type TagInfo } from '../windows/stream-fusion.js';
import { createTagGrpcServer, streamSummary, TagFeed, type TagGrpcServer } from './index.js';

const logger: Logger = createLogger({
  service: 'tag-service-int',
  level: (process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn') as 'warn',
});

/** A stand-in taxonomy: the summary only needs tag kinds, names and severities, and the version. */
const TAGS: Record<string, TagInfo> = {
  promo_code: {
    id: 'promo_code',
    kind: 'intent',
    name: 'Promo code',
    severity: 'info',
    quietPeriodMs: 30_000,
  },
  gambling: { id: 'gambling', kind: 'risk', name: 'Gambling', severity: 'high', quietPeriodMs: 30_000 },
};
const rules: FusionRules = {
  taxonomyVersion: 'int-1.2.3',
  tag: (id) => TAGS[id],
  evaluate: () => {
    throw new Error('not used by the tag service');
  },
  rationale: () => {
    throw new Error('not used by the tag service');
  },
};

function tagEvent(
  streamId: string,
  n: number,
  fields: { tagId: string; kind: TagKind; severity: Severity; score: number; state?: EpisodeState },
): TagEvent {
  return create(TagEventSchema, {
    eventId: `${streamId}/${fields.tagId}/${n}`,
    episodeId: `${streamId}/${fields.tagId}`,
    state: fields.state ?? EpisodeState.OPEN,
    revision: n,
    streamId,
    tagId: fields.tagId,
    name: fields.tagId,
    kind: fields.kind,
    severity: fields.severity,
    score: fields.score,
    taxonomyVersion: rules.taxonomyVersion,
    emittedTimeUnixMs: BigInt(Date.now()),
  });
}

const gambling = (score: number, state = EpisodeState.OPEN) => ({
  tagId: 'gambling',
  kind: TagKind.RISK,
  severity: Severity.HIGH,
  score,
  state,
});
const promo = (score: number) => ({
  tagId: 'promo_code',
  kind: TagKind.INTENT,
  severity: Severity.INFO,
  score,
});
const discount = (score: number) => ({
  tagId: 'fake_discount',
  kind: TagKind.RISK,
  severity: Severity.MEDIUM,
  score,
});

/** A WatchTags call read in the background: what it received, and how it ended. */
function watch(
  client: GrpcClient<typeof TagService>,
  request: MessageInitShape<typeof WatchTagsRequestSchema>,
) {
  const abort = new AbortController();
  const events: TagEvent[] = [];
  let ended: { error?: unknown } | undefined;
  const done = (async () => {
    try {
      for await (const response of client.watchTags(request, { signal: abort.signal })) {
        if (response.event) events.push(response.event);
      }
      ended = {};
    } catch (error) {
      ended = { error };
    }
  })();
  return {
    events,
    ids: () => events.map((e) => e.eventId),
    get ended() {
      return ended;
    },
    cancel: () => abort.abort(),
    done,
  };
}

describe('TagService on the real broker and Redis', () => {
  const prefix = `${uniqueName('t')}.`;
  const topics = prefixedTopics(prefix);
  const streamA = uniqueName('st-a');
  const streamB = uniqueName('st-b');
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  let kafka: KafkaClient;
  let registry: Registry;
  let feed: TagFeed;
  let server: TagGrpcServer;
  let client: GrpcClient<typeof TagService>;
  let producer: Publisher;
  let redis: Redis;
  let store: FusionStore;

  beforeAll(async () => {
    const { kafkaBrokers, redisUrl } = testInfrastructure();
    registry = new Registry();
    kafka = new KafkaClient({ brokers: kafkaBrokers }, { logger, registry });
    await kafka.admin().ensureTopics([topics.tags, topics.dlq], { partitions: 2 });
    cleanups.push(() => kafka.admin().deleteTopics([topics.tags.name, topics.dlq.name]));

    redis = createRedis({ url: redisUrl, connectionName: 'tag-service-int' }, logger);
    await connectRedis(redis);
    cleanups.push(() => redis.disconnect());
    store = new FusionStore(redis, { prefix: `${uniqueName('fusion-grpc')}:`, ttlSeconds: 600 });

    const deadLetters = kafka.publisher({ service: 'fusion' });
    await deadLetters.connect();
    cleanups.push(() => deadLetters.disconnect());
    feed = new TagFeed({
      kafka,
      topics,
      groupPrefix: uniqueName('fusion'),
      publisher: deadLetters,
      logger,
      registry,
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 1_000,
    });
    await feed.start();
    cleanups.push(() => feed.stop());

    server = await createTagGrpcServer(
      { feed, summary: (id) => streamSummary(store, rules, id), logger },
      { host: '127.0.0.1', port: 0, shutdownGraceMs: 500 },
    );
    cleanups.push(() => server.close());
    client = createGrpcClient(TagService, `127.0.0.1:${server.port}`);
    cleanups.push(() => client.close());

    const test = await startTestProducer(kafkaBrokers, logger);
    producer = test.publisher;
    cleanups.push(() => test.stop());

    // The feed starts at the end of the topic once its consumer has joined and fetched: until then, what is
    // published is not seen. Publish markers for both test streams (their partitions) until the feed sees them.
    const probe = new AbortController();
    const seen = new Set<string>();
    const probing = (async () => {
      for await (const event of feed.subscribe((e) => e.tagId === 'warmup', probe.signal)) {
        seen.add(event.streamId);
      }
    })();
    for (let n = 0; seen.size < 2; n += 1) {
      if (n > 100) throw new Error('the tag feed never saw the warm-up events');
      const warmup = { tagId: 'warmup', kind: TagKind.INTENT, severity: Severity.INFO, score: 0 };
      await producer.publish(topics.tags, [
        { message: tagEvent(streamA, n, warmup) },
        { message: tagEvent(streamB, n, warmup) },
      ]);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    probe.abort();
    await probing;
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.warn({ err: error }, 'cleanup failed');
      }
    }
  });

  const watcherGauge = async () =>
    (await registry.getSingleMetric('livelens_fusion_watchers')?.get())?.values[0]?.value ?? 0;

  it('streams each watcher exactly its events, in order; a cancelled watcher ends and the other goes on', async () => {
    const riskOfA = watch(client, { streamIds: [streamA], kind: TagKind.RISK });
    const strong = watch(client, {
      streamIds: [streamA, streamB],
      tagIds: ['gambling', 'promo_code'],
      minScore: 0.5,
    });
    await waitFor('both watchers subscribed', () => (feed.watchers === 2 ? true : undefined));
    expect(await watcherGauge()).toBe(2);

    await producer.publish(topics.tags, [
      { message: tagEvent(streamA, 1, gambling(0.9)) },
      { message: tagEvent(streamA, 2, promo(0.3)) },
      { message: tagEvent(streamB, 1, gambling(0.6)) },
      { message: tagEvent(streamA, 3, gambling(0.95, EpisodeState.UPDATE)) },
      { message: tagEvent(streamB, 2, promo(0.8)) },
      { message: tagEvent(streamA, 4, discount(0.4)) },
      { message: tagEvent(streamB, 3, discount(0.7)) },
      // Last of each stream, and wanted by both watchers: once it is in, everything before it is (per-stream
      // order), so the lists below are complete.
      { message: tagEvent(streamA, 5, gambling(0.99, EpisodeState.CLOSE)) },
      { message: tagEvent(streamB, 4, gambling(0.99, EpisodeState.CLOSE)) },
    ]);
    const a = (n: number, tag: string) => `${streamA}/${tag}/${n}`;
    const b = (n: number, tag: string) => `${streamB}/${tag}/${n}`;
    await waitFor('the last events', () => {
      const risk = riskOfA.ids();
      const wanted = strong.ids();
      return risk.includes(a(5, 'gambling')) &&
        wanted.includes(a(5, 'gambling')) &&
        wanted.includes(b(4, 'gambling'))
        ? true
        : undefined;
    });
    expect(riskOfA.ids()).toEqual([
      a(1, 'gambling'),
      a(3, 'gambling'),
      a(4, 'fake_discount'),
      a(5, 'gambling'),
    ]);
    // Per stream in order (the two streams may sit on different partitions: no order between them).
    const ofStream = (ids: string[], streamId: string) => ids.filter((id) => id.startsWith(`${streamId}/`));
    expect(ofStream(strong.ids(), streamA)).toEqual([a(1, 'gambling'), a(3, 'gambling'), a(5, 'gambling')]);
    expect(ofStream(strong.ids(), streamB)).toEqual([b(1, 'gambling'), b(2, 'promo_code'), b(4, 'gambling')]);
    expect(strong.ids()).toHaveLength(6);
    // The events arrive whole.
    expect(riskOfA.events[0]).toMatchObject({
      streamId: streamA,
      tagId: 'gambling',
      kind: TagKind.RISK,
      severity: Severity.HIGH,
      state: EpisodeState.OPEN,
      taxonomyVersion: 'int-1.2.3',
    });
    expect(riskOfA.events[0]?.score).toBeCloseTo(0.9, 6);

    // Cancelling one watcher ends its stream (the client reports the cancel) and the server's subscription.
    riskOfA.cancel();
    await riskOfA.done;
    expect(riskOfA.ended?.error).toBeInstanceOf(LiveLensError);
    expect(riskOfA.ended?.error).toMatchObject({ code: 'cancelled' });
    await waitFor('the cancelled subscription to end', () => (feed.watchers === 1 ? true : undefined));
    expect(await watcherGauge()).toBe(1);

    await producer.publish(topics.tags, {
      message: tagEvent(streamA, 6, gambling(0.97, EpisodeState.UPDATE)),
    });
    await waitFor('the other watcher to go on', () =>
      strong.ids().includes(a(6, 'gambling')) ? true : undefined,
    );
    expect(strong.ended).toBeUndefined();
    expect(riskOfA.ids()).toHaveLength(4);

    strong.cancel();
    await strong.done;
    await waitFor('no watcher left', () => (feed.watchers === 0 ? true : undefined));
    const sent = (await registry.getSingleMetric('livelens_fusion_watch_events_total')?.get())?.values.find(
      (v) => v.labels.outcome === 'sent',
    );
    // 4 + 7 delivered through gRPC, plus the warm-up probe's.
    expect(sent?.value).toBeGreaterThanOrEqual(11);
  });

  it('ends open watches with unavailable when the server closes, so clients watch again elsewhere', async () => {
    const other = await createTagGrpcServer(
      { feed, summary: (id) => streamSummary(store, rules, id), logger },
      { host: '127.0.0.1', port: 0, shutdownGraceMs: 5_000 },
    );
    const otherClient = createGrpcClient(TagService, `127.0.0.1:${other.port}`);
    try {
      const watcher = watch(otherClient, { streamIds: [streamA] });
      await waitFor('the watcher subscribed', () => (feed.watchers === 1 ? true : undefined));
      const closing = Date.now();
      await other.close();
      await watcher.done;
      // Ended by the server at once, not cancelled after the grace period.
      expect(Date.now() - closing).toBeLessThan(2_000);
      expect(watcher.ended?.error).toMatchObject({ code: 'unavailable' });
      expect(feed.watchers).toBe(0);
    } finally {
      otherClient.close();
    }
  });

  it("returns a stream's summary from its fusion state in Redis", async () => {
    const streamId = uniqueName('st-summary');
    const state = emptyStreamState(streamId);
    state.sessionEpoch = 'e1';
    state.latestCaptureTimeUnixMs = 1_700_000_123_456;
    state.summary = {
      gambling: { episodes: 2, maxScore: 0.875 },
      promo_code: { episodes: 3, maxScore: 0.5 },
    };
    state.episodes = [
      {
        episodeId: `${streamId}/e1/gambling/40000`,
        tagId: 'gambling',
        revision: 1,
        spanStartMs: 40_000,
        spanEndMs: 55_000,
        lastFiredEndMs: 55_000,
        score: 0.875,
        emittedScore: 0.875,
        evidence: [
          {
            observationId: 'o1',
            kind: 'speech',
            source: { topic: 'live.transcripts.v1', partition: 1, offset: '42', recordId: 'seg-1' },
            snippet: 'place your bets',
            mediaTimeMs: 41_000,
            confidence: 0.9,
            ruleId: 'gambling.bets',
          },
        ],
        trace: {
          retrieved: [{ ruleId: 'gambling.bets', score: 0.8 }],
          evaluations: [
            { ruleId: 'gambling.bets', matched: true, score: 0.875, explanation: 'bets in speech' },
          ],
          formula: '1 - prod(1 - w_i * c_i)',
          threshold: 0.6,
          window: { startMs: 45_000, endMs: 55_000 },
        },
        rationale: 'Bets were invited in speech.',
        latestCaptureTimeUnixMs: 1_700_000_120_000,
      },
    ];
    expect(await store.save(streamId, '', state)).toBeDefined();
    cleanups.push(() => redis.del(store.key(streamId)));

    const before = Date.now();
    const summary = await client.getStreamSummary({ streamId });
    expect(summary.streamId).toBe(streamId);
    expect(summary.taxonomyVersion).toBe('int-1.2.3');
    expect(summary.lastEventTimeUnixMs).toBe(1_700_000_123_456n);
    expect(summary.tags.map((t) => ({ ...t, $typeName: undefined }))).toEqual([
      { $typeName: undefined, tagId: 'gambling', kind: TagKind.RISK, episodes: 2, maxScore: 0.875 },
      { $typeName: undefined, tagId: 'promo_code', kind: TagKind.INTENT, episodes: 3, maxScore: 0.5 },
    ]);
    expect(summary.openEpisodes).toHaveLength(1);
    const episode = summary.openEpisodes[0];
    expect(episode).toMatchObject({
      eventId: `${streamId}/e1/gambling/40000/1`,
      episodeId: `${streamId}/e1/gambling/40000`,
      state: EpisodeState.UPDATE,
      revision: 1,
      streamId,
      tagId: 'gambling',
      name: 'Gambling',
      kind: TagKind.RISK,
      severity: Severity.HIGH,
      score: 0.875,
      window: { startMs: 40_000n, endMs: 55_000n },
      rationale: 'Bets were invited in speech.',
      taxonomyVersion: 'int-1.2.3',
      incomplete: false,
    });
    expect(episode?.evidence.map((e) => [e.snippet, e.source?.offset, e.ruleId])).toEqual([
      ['place your bets', 42n, 'gambling.bets'],
    ]);
    expect(episode?.trace?.threshold).toBeCloseTo(0.6, 6);
    expect(Number(episode?.emittedTimeUnixMs)).toBeGreaterThanOrEqual(before);
  });

  it('returns an empty summary for an unknown stream, and invalid_argument for an invalid id', async () => {
    const streamId = uniqueName('st-unknown');
    const summary = await client.getStreamSummary({ streamId });
    expect(summary).toMatchObject({
      streamId,
      tags: [],
      openEpisodes: [],
      taxonomyVersion: 'int-1.2.3',
      lastEventTimeUnixMs: 0n,
    });
    const error = await client.getStreamSummary({ streamId: 'not a stream id' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('invalid_argument');
    expect((error as LiveLensError).message).toMatch(/stream_id "not a stream id" must match/);
  });
});
