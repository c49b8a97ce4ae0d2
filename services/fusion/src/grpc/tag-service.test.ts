import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  EpisodeState,
  GetStreamSummaryRequestSchema,
  Severity,
  type TagEvent,
  TagEventSchema,
  TagKind,
  WatchTagsRequestSchema,
} from '@livelens/contracts';
import { type CallContext, createLogger, LiveLensError } from '@livelens/runtime';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { emptyStreamState, type FusionRules, type TagInfo } from '../windows/stream-fusion.js';
import { createWatchMetrics, TagFanout, type TagFilter, type TagSource } from './tag-feed.js';
import { createTagServiceImpl, streamSummary, tagFilterOf } from './tag-service.js';

const logger = createLogger({ service: 'tag-service-test', level: 'silent' });

function tagEvent(fields: {
  n: number;
  streamId?: string;
  tagId?: string;
  kind?: TagKind;
  severity?: Severity;
  score?: number;
}): TagEvent {
  const streamId = fields.streamId ?? 'st-a';
  const tagId = fields.tagId ?? 'promo_code';
  return create(TagEventSchema, {
    eventId: `${streamId}/${tagId}/${fields.n}`,
    episodeId: `${streamId}/${tagId}`,
    state: EpisodeState.OPEN,
    streamId,
    tagId,
    kind: fields.kind ?? TagKind.INTENT,
    severity: fields.severity ?? Severity.LOW,
    score: fields.score ?? 0.9,
  });
}

const request = (init: MessageInitShape<typeof WatchTagsRequestSchema>) =>
  create(WatchTagsRequestSchema, init);

function callContext(signal = new AbortController().signal): CallContext {
  return { signal, deadline: undefined, metadata: {}, peer: 'ipv4:127.0.0.1:1' };
}

/** A feed that records the filters it was given and serves a fixed list of events through them. */
class FakeFeed implements TagSource {
  readonly filters: TagFilter[] = [];
  constructor(private readonly events: readonly TagEvent[]) {}
  async *subscribe(filter: TagFilter, signal: AbortSignal): AsyncIterable<TagEvent> {
    this.filters.push(filter);
    for (const event of this.events) {
      if (signal.aborted) return;
      if (filter(event)) yield event;
    }
  }
}

const noSummary = async () => {
  throw new Error('not expected in this test');
};

async function watched(feed: TagSource, init: MessageInitShape<typeof WatchTagsRequestSchema>) {
  const impl = createTagServiceImpl({ feed, summary: noSummary });
  const ids: string[] = [];
  for await (const response of impl.watchTags(request(init), callContext())) {
    ids.push((response.event as TagEvent).eventId);
  }
  return ids;
}

async function watchError(init: MessageInitShape<typeof WatchTagsRequestSchema>): Promise<LiveLensError> {
  const feed = new FakeFeed([tagEvent({ n: 1 })]);
  const error = await watched(feed, init).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LiveLensError);
  // Refused before subscribing: nothing was sent.
  expect(feed.filters).toHaveLength(0);
  return error as LiveLensError;
}

describe('WatchTags validation', () => {
  it.each([
    [{ streamIds: ['ok', 'not ok'] }, 'stream_ids', /stream_ids "not ok" must match/],
    [{ streamIds: [''] }, 'stream_ids', /stream_ids "" must match/],
    [{ streamIds: ['x'.repeat(129)] }, 'stream_ids', /must match/],
    [{ tagIds: ['Promo Code'] }, 'tag_ids', /tag_ids "Promo Code" is not a taxonomy tag id/],
    [{ tagIds: [''] }, 'tag_ids', /is not a taxonomy tag id/],
    [{ minScore: -0.01 }, 'min_score', /min_score must be in \[0, 1\], got -0.01/],
    [{ minScore: 1.5 }, 'min_score', /min_score must be in \[0, 1\], got 1.5/],
    [{ minScore: Number.NaN }, 'min_score', /got NaN/],
    [{ kind: 7 as TagKind }, 'kind', /kind 7 is not a TagKind/],
    [{ minSeverity: 9 as Severity }, 'min_severity', /min_severity 9 is not a Severity/],
  ])('refuses %j with invalid_argument naming %s', async (init, field, message) => {
    const error = await watchError(init);
    expect(error.code).toBe('invalid_argument');
    expect(error.retriable).toBe(false);
    expect(error.context.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('accepts the edges: min_score 0 and 1, the longest stream id, an empty request', async () => {
    const events = [tagEvent({ n: 1, score: 1 })];
    expect(await watched(new FakeFeed(events), { minScore: 0 })).toEqual(['st-a/promo_code/1']);
    expect(await watched(new FakeFeed(events), { minScore: 1 })).toEqual(['st-a/promo_code/1']);
    expect(await watched(new FakeFeed(events), { streamIds: ['x'.repeat(128), 'st-a'] })).toEqual([
      'st-a/promo_code/1',
    ]);
    expect(await watched(new FakeFeed(events), {})).toEqual(['st-a/promo_code/1']);
  });
});

describe('WatchTags filtering', () => {
  const events = [
    tagEvent({ n: 1, streamId: 'st-a', tagId: 'promo_code', kind: TagKind.INTENT, severity: Severity.INFO }),
    tagEvent({ n: 2, streamId: 'st-a', tagId: 'gambling', kind: TagKind.RISK, severity: Severity.HIGH }),
    tagEvent({ n: 3, streamId: 'st-b', tagId: 'gambling', kind: TagKind.RISK, severity: Severity.MEDIUM }),
    tagEvent({ n: 4, streamId: 'st-b', tagId: 'promo_code', score: 0.5 }),
    tagEvent({ n: 5, streamId: 'st-c', tagId: 'fake_discount', kind: TagKind.RISK, score: 0.49 }),
    tagEvent({ n: 6, streamId: 'st-c', tagId: 'weapons', kind: TagKind.RISK, severity: Severity.CRITICAL }),
  ];
  const ids = (list: TagEvent[]) => list.map((e) => e.eventId);

  const cases: [string, MessageInitShape<typeof WatchTagsRequestSchema>, number[]][] = [
    ['nothing', {}, [1, 2, 3, 4, 5, 6]],
    ['stream_ids', { streamIds: ['st-a', 'st-c'] }, [1, 2, 5, 6]],
    ['kind intent', { kind: TagKind.INTENT }, [1, 4]],
    ['kind risk', { kind: TagKind.RISK }, [2, 3, 5, 6]],
    ['min_severity', { minSeverity: Severity.MEDIUM }, [2, 3, 6]],
    ['tag_ids', { tagIds: ['gambling', 'weapons'] }, [2, 3, 6]],
    ['min_score (inclusive)', { minScore: 0.5 }, [1, 2, 3, 4, 6]],
    [
      'all of them together',
      {
        streamIds: ['st-a', 'st-b'],
        kind: TagKind.RISK,
        minSeverity: Severity.MEDIUM,
        tagIds: ['gambling'],
        minScore: 0.6,
      },
      [2, 3],
    ],
  ];
  it.each(cases)('by %s', async (_name, init, expected) => {
    const wanted = events.filter((_, i) => expected.includes(i + 1));
    expect(await watched(new FakeFeed(events), init)).toEqual(ids(wanted));
    expect(ids(events.filter(tagFilterOf(request(init))))).toEqual(ids(wanted));
  });

  it('ends cleanly, without error, when the client cancels, and unsubscribes', async () => {
    const registry = new Registry();
    const feed = new TagFanout({ metrics: createWatchMetrics(registry), logger });
    const impl = createTagServiceImpl({ feed, summary: noSummary });
    const client = new AbortController();
    const iterator = impl
      .watchTags(request({ streamIds: ['st-a'] }), callContext(client.signal))
      [Symbol.asyncIterator]();
    const first = iterator.next();
    // The handler subscribes on its first step; events from then on are the watcher's.
    await new Promise((resolve) => setImmediate(resolve));
    expect(feed.watchers).toBe(1);
    feed.publish(tagEvent({ n: 1, streamId: 'st-b' }));
    feed.publish(tagEvent({ n: 2, streamId: 'st-a' }));
    expect((await first).value).toMatchObject({ event: { eventId: 'st-a/promo_code/2' } });
    const second = iterator.next();
    client.abort();
    expect(await second).toEqual({ value: undefined, done: true });
    expect(feed.watchers).toBe(0);
  });

  it('ends open watches with unavailable when the server shuts down', async () => {
    const feed = new TagFanout({ metrics: createWatchMetrics(new Registry()), logger });
    const shutdown = new AbortController();
    const impl = createTagServiceImpl({ feed, summary: noSummary, shutdown: shutdown.signal });
    const iterator = impl.watchTags(request({}), callContext())[Symbol.asyncIterator]();
    const pending = iterator.next();
    await new Promise((resolve) => setImmediate(resolve));
    expect(feed.watchers).toBe(1);
    shutdown.abort();
    await expect(pending).rejects.toMatchObject({ code: 'unavailable' });
    expect(feed.watchers).toBe(0);
    // And refuses new ones.
    const late = impl.watchTags(request({}), callContext())[Symbol.asyncIterator]();
    await expect(late.next()).rejects.toMatchObject({ code: 'unavailable' });
  });
});

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
  taxonomyVersion: 'unit-1.0.0',
  tag: (id) => TAGS[id],
  evaluate: () => {
    throw new Error('not used by summaries');
  },
  rationale: () => {
    throw new Error('not used by summaries');
  },
};

function storedState(streamId: string) {
  const state = emptyStreamState(streamId);
  state.sessionEpoch = 'e1';
  state.latestCaptureTimeUnixMs = 1_700_000_123_456;
  state.summary = {
    promo_code: { episodes: 2, maxScore: 0.8 },
    gambling: { episodes: 1, maxScore: 0.95 },
    retired_tag: { episodes: 4, maxScore: 0.7 },
  };
  const trace = {
    retrieved: [{ ruleId: 'gambling.odds', score: 0.7 }],
    evaluations: [{ ruleId: 'gambling.odds', matched: true, score: 0.95, explanation: 'odds in speech' }],
    formula: '1 - prod(1 - w_i * c_i)',
    threshold: 0.6,
    window: { startMs: 10_000, endMs: 20_000 },
  };
  const episode = (tagId: string, revision: number) => ({
    episodeId: `${streamId}/e1/${tagId}/10000`,
    tagId,
    revision,
    spanStartMs: 10_000,
    spanEndMs: 25_000,
    lastFiredEndMs: 25_000,
    score: 0.95,
    emittedScore: 0.95,
    evidence: [],
    trace,
    rationale: 'Odds were read out.',
    latestCaptureTimeUnixMs: 1_700_000_120_000,
  });
  state.episodes = [episode('gambling', 2), episode('retired_tag', 0)];
  return state;
}

describe('streamSummary', () => {
  it("summarises a stream's state: counts, open episodes at their latest revision, versions and times", async () => {
    const store = { load: async (id: string) => ({ version: '3', state: storedState(id) }) };
    const summary = await streamSummary(store, rules, 'st-a', () => 1_700_000_200_000);
    expect(summary.streamId).toBe('st-a');
    expect(summary.taxonomyVersion).toBe('unit-1.0.0');
    expect(summary.lastEventTimeUnixMs).toBe(1_700_000_123_456n);
    expect(summary.tags.map((t) => [t.tagId, t.kind, t.episodes, t.maxScore])).toEqual([
      ['gambling', TagKind.RISK, 1, 0.95],
      ['promo_code', TagKind.INTENT, 2, 0.8],
      ['retired_tag', TagKind.UNSPECIFIED, 4, 0.7],
    ]);
    expect(summary.openEpisodes).toHaveLength(2);
    const [gambling, retired] = summary.openEpisodes;
    expect(gambling).toMatchObject({
      eventId: 'st-a/e1/gambling/10000/2',
      state: EpisodeState.UPDATE,
      revision: 2,
      tagId: 'gambling',
      name: 'Gambling',
      kind: TagKind.RISK,
      severity: Severity.HIGH,
      score: 0.95,
      window: { startMs: 10_000n, endMs: 25_000n },
      rationale: 'Odds were read out.',
      taxonomyVersion: 'unit-1.0.0',
      emittedTimeUnixMs: 1_700_000_200_000n,
    });
    // A tag the taxonomy no longer has keeps its episode, with what is unknown left unspecified.
    expect(retired).toMatchObject({
      state: EpisodeState.OPEN,
      tagId: 'retired_tag',
      name: 'retired_tag',
      kind: TagKind.UNSPECIFIED,
      severity: Severity.UNSPECIFIED,
    });
  });

  it('gives an unknown stream an empty summary', async () => {
    const store = { load: async (id: string) => ({ version: '', state: emptyStreamState(id) }) };
    const summary = await streamSummary(store, rules, 'st-unknown');
    expect(summary).toMatchObject({
      streamId: 'st-unknown',
      tags: [],
      openEpisodes: [],
      taxonomyVersion: 'unit-1.0.0',
      lastEventTimeUnixMs: 0n,
    });
  });
});

describe('GetStreamSummary', () => {
  it('refuses an invalid stream id with invalid_argument, without reading anything', async () => {
    const asked: string[] = [];
    const impl = createTagServiceImpl({
      feed: new FakeFeed([]),
      summary: async (id) => {
        asked.push(id);
        return { streamId: id };
      },
    });
    for (const streamId of ['', 'a b', 'x'.repeat(129), '../etc']) {
      const error = await impl
        .getStreamSummary(create(GetStreamSummaryRequestSchema, { streamId }), callContext())
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toMatchObject({ code: 'invalid_argument', context: { field: 'stream_id' } });
    }
    expect(asked).toEqual([]);
    expect(
      await impl.getStreamSummary(create(GetStreamSummaryRequestSchema, { streamId: 'st-a' }), callContext()),
    ).toEqual({ streamId: 'st-a' });
    expect(asked).toEqual(['st-a']);
  });
});
