import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EpisodeState, Modality, type TagEvent, TagService } from '@livelens/contracts';
import { createGrpcClient } from '@livelens/runtime';
import { waitFor } from '@livelens/test-support';
import { describe, expect, it } from 'vitest';
import { collect, comparable, fusionEnv, startFusion, startProducer, testNamespace } from './harness.js';
import { publishSteps, STREAM, scenario } from './scenario.js';

// Fusion on the real broker and Redis with the shipped taxonomy, fed crafted frame analyses and transcript
// segments (what the frame analyzer and the ASR publish), out-of-order and late ones included.

const TEST_ENV = { FUSION_ALLOWED_LATENESS_MS: '10000' };
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** The latest event of every episode, by episode id. */
function episodes(events: readonly TagEvent[]): Map<string, TagEvent> {
  const out = new Map<string, TagEvent>();
  for (const e of events) {
    const seen = out.get(e.episodeId);
    if (!seen || seen.revision < e.revision) out.set(e.episodeId, e);
  }
  return out;
}

describe('fusion on the real broker and Redis', () => {
  it('tags what is seen and said, with cross-modal evidence, one episode per occurrence; dead-letters what is too late', async () => {
    const ns = testNamespace();
    const fusion = await startFusion(fusionEnv(ns, TEST_ENV));
    const tags = await collect(ns.topics.tags, ns.topics.dlq);
    const dlq = await collect(ns.topics.dlq, ns.topics.dlq);
    const producer = await startProducer();
    // A TagService client watching one tag of the stream, over gRPC, as a moderation system would.
    const client = createGrpcClient(TagService, `127.0.0.1:${fusion.service.grpcPort}`);
    const abort = new AbortController();
    const watched: TagEvent[] = [];
    const watching = (async () => {
      for await (const r of client.watchTags(
        { streamIds: [STREAM], tagIds: ['promo_code'] },
        { signal: abort.signal },
      ))
        if (r.event) watched.push(r.event);
    })().catch(() => undefined);
    try {
      await publishSteps(producer.publisher, producer.kafka.admin(), ns, scenario(Date.now()));
      await waitFor('the dead letter', () => (dlq.records.length >= 1 ? true : undefined));
      await waitFor('every episode closed', () => {
        const open = [...episodes(tags.messages()).values()].filter((e) => e.state !== EpisodeState.CLOSE);
        return tags.records.length > 0 && open.length === 0 ? true : undefined;
      });
      const events = tags.messages();
      const byEpisode = episodes(events);
      const report = events
        .map((e) => `${EpisodeState[e.state]} ${e.eventId} ${e.score.toFixed(2)} ${e.rationale}`)
        .join('\n');
      console.info(`[fusion] ${events.length} tag events:\n${report}`);
      const tagIds = new Set([...byEpisode.values()].map((e) => e.tagId));
      // Exactly these: the price on screen with "link" said within 10 s is a call to action; "this game is so
      // fun" is not gambling; the casino line came too late and was dead-lettered, not used.
      expect([...tagIds].sort(), report).toEqual([
        'call_to_action',
        'link_in_bio',
        'off_platform_diversion',
        'price_mention',
        'promo_code',
      ]);
      expect(byEpisode.size, report).toBe(5);
      // One episode per occurrence, each opened once and closed once.
      for (const [id, last] of byEpisode) {
        const mine = events.filter((e) => e.episodeId === id);
        expect(
          mine.filter((e) => e.state === EpisodeState.OPEN),
          id,
        ).toHaveLength(1);
        expect(
          mine.filter((e) => e.state === EpisodeState.CLOSE),
          id,
        ).toHaveLength(1);
        expect(
          mine.map((e) => e.revision),
          id,
        ).toEqual(mine.map((_, i) => i));
        expect(last.eventId).toBe(`${id}/${last.revision}`);
        expect(last.rationale.length).toBeGreaterThan(20);
        expect(last.taxonomyVersion).toBe(fusion.rules.taxonomyVersion);
      }
      // The promo code: said (the segment, with its id) and shown (the frame), both in the evidence.
      const promo = [...byEpisode.values()].find((e) => e.tagId === 'promo_code');
      expect(promo?.episodeId.startsWith(`${STREAM}/e1/promo_code/`)).toBe(true);
      const speech = promo?.evidence.find((e) => e.modality === Modality.SPEECH);
      const screen = promo?.evidence.find((e) => e.modality === Modality.VISUAL_TEXT);
      expect(speech?.source?.recordId).toBe(`${STREAM}/e1/s/10500`);
      expect(speech?.source?.topic).toBe(ns.topics.transcripts.name);
      expect(speech?.snippet.toLowerCase()).toContain('save20');
      expect(screen?.source?.recordId).toMatch(new RegExp(`^${STREAM}/e1/f/1[234]$`));
      expect(Number(screen?.mediaTimeMs)).toBeGreaterThanOrEqual(12_000);
      expect(promo?.trace?.retrievedRules.length).toBeGreaterThan(0);
      expect(promo?.trace?.evaluations.some((e) => e.matched)).toBe(true);
      // WhatsApp came from the final segment (the partial was skipped).
      const diversion = [...byEpisode.values()].find((e) => e.tagId === 'off_platform_diversion');
      expect(diversion?.evidence.some((e) => e.source?.recordId === `${STREAM}/e1/s/25000`)).toBe(true);
      expect(await fusion.metric('livelens_fusion_records_total', { outcome: 'partial' })).toBe(1);
      // The too-late segment: dead-lettered with the reason, counted.
      const [letter] = dlq.messages();
      expect(letter?.reason).toMatch(/late record: media time 4000 ms is \d+ ms behind the stream watermark/);
      expect(letter?.sourceTopic).toBe(ns.topics.transcripts.name);
      expect(await fusion.metric('livelens_fusion_late_records_total', { input: 'transcripts' })).toBe(1);
      // WatchTags streamed the promo code's events, and only those; GetStreamSummary counts every tag.
      await waitFor('the watcher to see the promo code close', () =>
        watched.length >= 2 ? true : undefined,
      );
      expect(watched.map((e) => e.eventId)).toEqual(
        events.filter((e) => e.tagId === 'promo_code').map((e) => e.eventId),
      );
      const summary = await client.getStreamSummary({ streamId: STREAM });
      expect(summary.tags.map((t) => [t.tagId, t.episodes]).sort()).toEqual(
        [...tagIds].sort().map((id) => [id, 1]),
      );
      expect(summary.openEpisodes).toEqual([]);
      expect(summary.taxonomyVersion).toBe(fusion.rules.taxonomyVersion);
      // Every event's latency (capture of its newest evidence → acknowledged) is in the histogram.
      expect(await fusion.metric('livelens_fusion_end_to_end_latency_seconds')).toBe(events.length);
    } finally {
      abort.abort();
      await watching;
      client.close();
      await Promise.all([tags.stop(), dlq.stop(), producer.stop()]);
      await fusion.stop();
    }
  }, 180_000);

  it('killed with SIGKILL mid-stream and restarted, emits the same tag events as an uninterrupted run', async () => {
    const captureStartMs = Date.now();
    // The uninterrupted run, in this process.
    const a = testNamespace();
    const reference = await startFusion(fusionEnv(a, TEST_ENV));
    const tagsA = await collect(a.topics.tags, a.topics.dlq);
    const producer = await startProducer();
    let child: ChildProcess | undefined;
    const b = testNamespace();
    const tagsB = await collect(b.topics.tags, b.topics.dlq);
    try {
      await publishSteps(producer.publisher, producer.kafka.admin(), a, scenario(captureStartMs));
      await reference.stop();
      await waitFor('the reference run: every episode closed', () => {
        const latest = [...episodes(tagsA.messages()).values()];
        return latest.length > 0 && latest.every((e) => e.state === EpisodeState.CLOSE) ? true : undefined;
      });

      const expected = new Map(tagsA.messages().map((e) => [e.eventId, comparable(e, a.prefix)]));
      // The same input into a fusion process killed with SIGKILL mid-stream, then restarted.
      const env = { ...process.env, ...fusionEnv(b, TEST_ENV) } as Record<string, string>;
      const spawnFusion = () =>
        spawn(process.execPath, ['--import', 'tsx', mainTs], { env, stdio: 'ignore' });
      child = spawnFusion();
      let killed = false;
      let beforeKill = 0;
      await publishSteps(producer.publisher, producer.kafka.admin(), b, scenario(captureStartMs), {
        stepTimeoutMs: 60_000,
        onStep: async (i) => {
          // Step 26: the first episodes are open (decided at ~23 s), the WhatsApp one not yet.
          if (killed || i !== 26) return;
          killed = true;
          beforeKill = new Set(tagsB.messages().map((e) => e.eventId)).size;
          child?.kill('SIGKILL');
          await new Promise((resolve) => child?.once('exit', resolve));
          child = spawnFusion();
        },
      });
      expect(killed).toBe(true);
      // Killed mid-stream: some events were out before, the rest came from the restarted process.
      expect(beforeKill).toBeGreaterThan(0);
      expect(beforeKill).toBeLessThan(expected.size);
      await waitFor('the restarted run to catch up', () =>
        new Set(tagsB.messages().map((e) => e.eventId)).size >= expected.size ? true : undefined,
      );
      const got = new Map(tagsB.messages().map((e) => [e.eventId, comparable(e, b.prefix)]));
      expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [id, event] of expected) expect(got.get(id), id).toBe(event);
    } finally {
      child?.kill('SIGKILL');
      await Promise.all([tagsA.stop(), tagsB.stop(), producer.stop()]);
      if (reference.service.loops.some((l) => l.state === 'running')) await reference.stop();
    }
  }, 300_000);
});
