// The demo's flow, with assertions: the four built services as processes on the real broker and Redis, real
// models, generated clips published to a real nginx-rtmp in real time, ingestion started over gRPC, tags read
// over gRPC and from the topic, and a real Prometheus scraping the services.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  EpisodeState,
  IngestService,
  prefixedTopics,
  StreamState,
  type TagEvent,
  TagKind,
  TagService,
} from '@livelens/contracts';
import { type PrometheusServer, startPrometheus } from '@livelens/deploy-prometheus';
import { createGrpcClient } from '@livelens/runtime';
import { collectTopic, testLogger } from '@livelens/runtime/testing';
import { testInfrastructure, uniqueName, waitFor } from '@livelens/test-support';
import {
  type FfmpegSource,
  type GeneratedClip,
  generateClip,
  publishRtmp,
  type RtmpServer,
  startRtmpServer,
} from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENIGN_CLIP, type DemoClip, LIVE_COMMERCE_CLIP } from '../src/clips.js';
import { formatTagEvent } from '../src/format.js';
import { type Pipeline, SERVICE_NAMES, startPipeline } from '../src/services.js';
import { ensureModels } from '../src/stack.js';
import { parseMetrics, sum } from '../src/status.js';
import { freeLayout } from './layout.js';

const bin = new URL('../bin/livelens.js', import.meta.url).pathname;
const run = promisify(execFile);

/** How late a tag may arrive after its cue, in media time (the issue's bound). */
const MAX_TAG_DELAY_S = 10;
/** How long after the stream is stopped its episodes must be closed (the end grace plus a window). */
const MAX_CLOSE_AFTER_STOP_S = 20;

interface Run {
  readonly clip: DemoClip;
  readonly generated: GeneratedClip;
  readonly streamId: string;
  publisher?: FfmpegSource;
  publishedAtMs: number;
  stoppedAtMs: number;
}

/** A tag event as it arrived over WatchTags. */
interface Watched {
  readonly event: TagEvent;
  readonly atMs: number;
}

describe('the whole pipeline, as `livelens demo` runs it', () => {
  const logger = testLogger('pipeline-test');
  const ns = uniqueName('e2e');
  const topics = prefixedTopics(`${ns}.`);
  let logDir: string;
  let pipeline: Pipeline | undefined;
  let rtmp: RtmpServer | undefined;
  let prometheus: PrometheusServer | undefined;
  const collectors: { stop(): Promise<void> }[] = [];
  const watched: Watched[] = [];
  const watch = new AbortController();
  let watching: Promise<void> = Promise.resolve();
  let runs: Run[] = [];
  let cliWatch: ChildProcess | undefined;
  let cliOut = '';
  let analyses: Awaited<ReturnType<typeof collectTopic<typeof topics.frameAnalysis.schema>>>;
  let transcripts: Awaited<ReturnType<typeof collectTopic<typeof topics.transcripts.schema>>>;
  let tags: Awaited<ReturnType<typeof collectTopic<typeof topics.tags.schema>>>;

  beforeAll(async () => {
    const { kafkaBrokers, redisUrl } = testInfrastructure();
    logDir = await mkdtemp(join(tmpdir(), 'livelens-e2e-'));
    // The models the services load, fetched and verified as `livelens models fetch` does (cached: a sha256 check).
    await ensureModels();
    const [commerce, benign] = await Promise.all([
      generateClip(LIVE_COMMERCE_CLIP.options),
      generateClip(BENIGN_CLIP.options),
    ]);
    rtmp = await startRtmpServer();
    const layout = await freeLayout();
    const partitions = (service: string) => ({ [`${service}_TOPIC_PARTITIONS`]: '2' });
    pipeline = await startPipeline({
      kafkaBrokers: kafkaBrokers.join(','),
      redisUrl,
      layout,
      topicPrefix: `${ns}.`,
      namespace: ns,
      logDir,
      logLevel: 'info',
      env: {
        ingest: partitions('INGEST'),
        'frame-analyzer': partitions('FRAME_ANALYZER'),
        asr: partitions('ASR'),
        // Only the end of stream may close the episodes here, not the idle flush.
        fusion: { ...partitions('FUSION'), FUSION_IDLE_FLUSH_MS: '600000', FUSION_END_GRACE_MS: '3000' },
      },
    });
    prometheus = await startPrometheus({
      targets: Object.fromEntries(SERVICE_NAMES.map((n) => [n, `127.0.0.1:${layout.metricsPorts[n]}`])),
      scrapeIntervalS: 1,
    });
    analyses = await collectTopic(kafkaBrokers, topics.frameAnalysis, topics.dlq, logger);
    transcripts = await collectTopic(kafkaBrokers, topics.transcripts, topics.dlq, logger);
    tags = await collectTopic(kafkaBrokers, topics.tags, topics.dlq, logger);
    collectors.push(analyses, transcripts, tags);

    const client = createGrpcClient(TagService, pipeline.fusionAddress);
    watching = (async () => {
      try {
        for await (const { event } of client.watchTags({}, { signal: watch.signal })) {
          if (event) watched.push({ event, atMs: Date.now() });
        }
      } catch (error) {
        if (!watch.signal.aborted) throw error;
      } finally {
        client.close();
      }
    })();
    runs = [
      {
        clip: LIVE_COMMERCE_CLIP,
        generated: commerce,
        streamId: `${ns}-commerce`,
        publishedAtMs: 0,
        stoppedAtMs: 0,
      },
      { clip: BENIGN_CLIP, generated: benign, streamId: `${ns}-benign`, publishedAtMs: 0, stoppedAtMs: 0 },
    ];
  }, 600_000);

  afterAll(async () => {
    cliWatch?.kill('SIGKILL');
    watch.abort();
    await watching.catch(() => undefined);
    for (const run of runs) await run.publisher?.stop().catch(() => undefined);
    await Promise.all(collectors.map((c) => c.stop().catch(() => undefined)));
    await prometheus?.stop();
    await pipeline?.stop();
    await rtmp?.stop();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  }, 120_000);

  const eventsOf = (streamId: string) => watched.filter((w) => w.event.streamId === streamId);

  it('runs two live streams end to end: started over gRPC, published in real time, stopped at their end', async () => {
    const p = pipeline as Pipeline;
    const ingest = createGrpcClient(IngestService, p.ingestAddress);
    try {
      // The CLI follows the commerce stream's tags as a user would (JSON lines), alongside the test's watcher.
      cliWatch = spawn(
        process.execPath,
        [bin, 'tags', 'watch', '--json', '--stream', (runs[0] as Run).streamId, '--fusion', p.fusionAddress],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      cliWatch.stdout?.on('data', (chunk: Buffer) => {
        cliOut += chunk.toString();
      });
      // Both WatchTags calls (the test's and the bin's, which starts tsx first) join the tags topic at its end.
      await waitFor(
        'two WatchTags subscriptions on fusion',
        async () => {
          const metrics = parseMetrics(await (await fetch(p.metricsUrls.fusion)).text());
          return sum(metrics, 'livelens_fusion_watchers') >= 2 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      for (const run of runs) {
        const url = (rtmp as RtmpServer).url(run.streamId);
        await ingest.startStream({ sourceUrl: url, streamId: run.streamId, options: { frameRateFps: 1 } });
        run.publisher = await publishRtmp(run.generated.path, url);
        run.publishedAtMs = Date.now();
      }
      const exited = Promise.race([
        p.exited.then(({ service, code }) => {
          throw new Error(`${service} exited (${code}) mid-stream; its log is ${p.logFiles[service]}`);
        }),
        Promise.all(runs.map((run) => run.publisher?.exited)),
      ]);
      // Once media flows, `livelens streams list --state running` shows both.
      await waitFor(
        'both streams to run',
        async () => {
          const states = await Promise.all(runs.map((r) => ingest.getStream({ streamId: r.streamId })));
          return states.every((s) => s.stream?.state === StreamState.RUNNING) ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 500 },
      );
      const listed = await run(process.execPath, [
        bin,
        'streams',
        'list',
        '--state',
        'running',
        '--ingest',
        p.ingestAddress,
      ]);
      for (const r of runs) expect(listed.stdout).toMatch(new RegExp(`^${r.streamId}\\tRUNNING\\t`, 'm'));
      await exited;
      await sleep(2_000); // the last second of media through ingest
      for (const run of runs) {
        run.stoppedAtMs = Date.now();
        await ingest.stopStream({ streamId: run.streamId });
      }
      // Every episode that opened is closed by the end of stream.
      await waitFor(
        'every tag episode of both streams to close after the streams were stopped',
        () => (runs.every((run) => openEpisodes(eventsOf(run.streamId)).size === 0) ? true : undefined),
        { timeoutMs: MAX_CLOSE_AFTER_STOP_S * 1000 + 10_000, intervalMs: 500 },
      );
    } finally {
      ingest.close();
    }
    for (const w of watched) process.stdout.write(`${formatTagEvent(w.event)}\n`);
  }, 300_000);

  it('publishes each expected tag within 10 s of media time after its cue', () => {
    const run = runs[0] as Run;
    const events = eventsOf(run.streamId);
    const report: string[] = [];
    const delays: { tagId: string; delayS: number }[] = [];
    for (const expected of run.clip.expected) {
      const first = events.find(
        (w) => w.event.tagId === expected.tagId && w.event.state === EpisodeState.OPEN,
      );
      const cueS = expected.cueEndS(run.generated);
      const delayS = first ? (first.atMs - run.publishedAtMs) / 1000 - cueS : Number.NaN;
      report.push(`${expected.tagId}: ${first ? `${delayS.toFixed(1)} s` : 'missing'} after ${expected.cue}`);
      delays.push({ tagId: expected.tagId, delayS });
    }
    process.stdout.write(`tag delay after the cue, media time:\n  ${report.join('\n  ')}\n`);
    for (const { tagId, delayS } of delays) {
      expect(Number.isNaN(delayS), `${tagId} never arrived`).toBe(false);
      expect(delayS, `${tagId}: ${report.join('; ')}`).toBeLessThanOrEqual(MAX_TAG_DELAY_S);
      // Not before its cue either (beyond the clock's slack): the tag must come from the cue, not from other
      // evidence earlier in the clip.
      expect(delayS, `${tagId}: ${report.join('; ')}`).toBeGreaterThanOrEqual(-1);
    }
  });

  it('points every piece of evidence at a real upstream record', async () => {
    await waitFor('the tags topic to hold what WatchTags saw', () =>
      tags.records.length >= watched.length ? true : undefined,
    );
    const upstream = new Map<string, string>();
    for (const r of analyses.records) {
      upstream.set(`${topics.frameAnalysis.name}/${r.partition}/${r.offset}`, r.message.frameId);
    }
    for (const r of transcripts.records) {
      upstream.set(`${topics.transcripts.name}/${r.partition}/${r.offset}`, r.message.segmentId);
    }
    let checked = 0;
    for (const { message: event } of tags.records) {
      expect(event.evidence.length, `${event.tagId} has no evidence`).toBeGreaterThan(0);
      for (const evidence of event.evidence) {
        const source = evidence.source;
        const key = `${source?.topic}/${source?.partition}/${source?.offset}`;
        expect(upstream.get(key), `${event.tagId}: evidence ${key} (${source?.recordId})`).toBe(
          source?.recordId,
        );
        expect(source?.recordId.startsWith(`${event.streamId}/`)).toBe(true);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('closes every open episode when its stream is stopped, soon after the stop', () => {
    for (const run of runs) {
      const events = eventsOf(run.streamId);
      const opened = new Set(
        events.filter((w) => w.event.state === EpisodeState.OPEN).map((w) => w.event.episodeId),
      );
      for (const episodeId of opened) {
        const close = events.find(
          (w) => w.event.episodeId === episodeId && w.event.state === EpisodeState.CLOSE,
        );
        expect(close, `episode ${episodeId} was not closed`).toBeDefined();
      }
      const lastClose = Math.max(
        0,
        ...events.filter((w) => w.event.state === EpisodeState.CLOSE).map((w) => w.atMs),
      );
      if (opened.size > 0)
        expect((lastClose - run.stoppedAtMs) / 1000).toBeLessThanOrEqual(MAX_CLOSE_AFTER_STOP_S);
    }
    expect(eventsOf((runs[0] as Run).streamId).length).toBeGreaterThan(0);
  });

  it("`livelens tags watch --json` printed the commerce stream's episodes, and Ctrl-C ends it with 130", async () => {
    const child = cliWatch as ChildProcess;
    const code = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    child.kill('SIGINT');
    expect(await code).toBe(130);
    const printed = cliOut
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { streamId: string; episodeId: string; tagId: string });
    const commerce = (runs[0] as Run).streamId;
    expect(printed.every((e) => e.streamId === commerce)).toBe(true);
    const episodes = (list: { episodeId: string }[]) => [...new Set(list.map((e) => e.episodeId))].sort();
    expect(episodes(printed)).toEqual(episodes(eventsOf(commerce).map((w) => w.event)));
    expect(printed.map((e) => e.tagId)).toContain('health_claims');
  });

  it('gives the benign clip no risk tag', () => {
    const run = runs[1] as Run;
    const risks = eventsOf(run.streamId).filter((w) => w.event.kind === TagKind.RISK);
    expect(risks.map((w) => `${w.event.tagId}: ${w.event.rationale}`)).toEqual([]);
    // It was analysed all the same: its frames and speech reached fusion's inputs.
    expect(transcripts.records.some((r) => r.message.streamId === run.streamId && r.message.final)).toBe(
      true,
    );
    expect(analyses.records.some((r) => r.message.streamId === run.streamId)).toBe(true);
  });

  it('lets a real Prometheus read the end-to-end latency the services export', async () => {
    const server = prometheus as PrometheusServer;
    await server.waitForTargetsUp(undefined, 30_000);
    // What fusion's own /metrics says, against what Prometheus scraped from it.
    const direct = parseMetrics(await (await fetch((pipeline as Pipeline).metricsUrls.fusion)).text());
    const count = sum(direct, 'livelens_fusion_end_to_end_latency_seconds_count', { state: 'open' });
    expect(count).toBeGreaterThan(0);
    await server.waitFor(
      'sum(livelens_fusion_end_to_end_latency_seconds_count{state="open"})',
      (samples) => samples[0]?.value === count,
      15_000,
    );
    const p95 =
      (await server.value(
        'histogram_quantile(0.95, sum by (le) (rate(livelens_fusion_end_to_end_latency_seconds_bucket{state="open"}[5m])))',
      )) ?? Number.NaN;
    expect(Number.isFinite(p95)).toBe(true);
    expect(p95).toBeGreaterThan(0);
    expect(p95).toBeLessThan(60);
    process.stdout.write(
      `end-to-end latency p95 of new tags (capture → tag acknowledged), via Prometheus: ${p95.toFixed(2)} s\n`,
    );
    // Where the time goes, per stage (for the report; the bound is on the tags above).
    for (const [what, metric] of [
      ['frame analysis (capture → analysed)', 'livelens_frame_analyzer_end_to_end_lag_seconds'],
      ['speech (capture of the last chunk → final segment)', 'livelens_asr_end_to_end_lag_seconds'],
      ['publish at ingest (capture → acked)', 'livelens_ingest_publish_latency_seconds'],
    ] as const) {
      const q = async (quantile: number) =>
        (await server.value(`histogram_quantile(${quantile}, sum by (le) (rate(${metric}_bucket[5m])))`)) ??
        Number.NaN;
      process.stdout.write(
        `  ${what}: p50 ${(await q(0.5)).toFixed(2)} s, p95 ${(await q(0.95)).toFixed(2)} s\n`,
      );
    }
  });
});

/** Episodes opened and not (yet) closed. */
function openEpisodes(events: readonly Watched[]): Set<string> {
  const open = new Set<string>();
  for (const { event } of events) {
    if (event.state === EpisodeState.CLOSE) open.delete(event.episodeId);
    else open.add(event.episodeId);
  }
  return open;
}
