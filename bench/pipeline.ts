// How many live streams this machine carries through the whole pipeline in real time.
//
//   npm run bench [-- --streams 1,2,3,4,6,8 --seconds 60 --warmup 20 --modes ours,baseline --providers cpu]
//
// N generated live streams (1280x720 25 fps H.264/AAC over nginx-rtmp, looped with -c copy: on screen a price
// and a promo code, spoken a call to action, the code, a link-in-bio line, a health claim, a diversion and
// small talk, about half the time speech) go through the four built services as processes, on the real
// broker and Redis, with the real models. Ingest samples 1 frame/s and continuous 16 kHz audio.
//
// Two deployments, in the same run, on the same inputs:
//   ours:     one replica of each service for all N streams: the analyzers batch the frames and VAD chunks of
//             different streams (FRAME_ANALYZER_MAX_BATCH_SIZE 8, ASR_VAD_MAX_BATCH_SIZE 32, the defaults);
//   baseline: the naive deployment: per stream its own frame-analyzer and asr (one inference session per stream)
//             with batching off (batch size 1), and its own ingest and fusion (topics are per deployment, so a
//             per-stream analyzer needs per-stream topics).
// For each N (up the list until an N does not keep up, then bisecting the gap) the streams run `--warmup` s,
// then are measured for `--seconds` s, after the previous N's backlog has drained. End-to-end latency is exact,
// per record, from the output topics: frames (capture → analysed, the analyzer's own timestamp), speech
// (capture of the segment's last audio chunk → final transcript read here), tags (capture of the newest record
// behind the evidence → tag event read here; opens and updates apart). An N keeps up when:
//   - frames, speech and tag opens each have p95 under `--p95` s (5); tag updates wait for complete windows by
//     design (fusion's early firing opens tags, not updates) and are reported only;
//   - ingest publishes at least 90 % of N frames/s and N s/s of audio, with no gap and nothing shed;
//   - the frame analyzer gets through (analyses + frames shed as stale) at least 90 % of the frames ingest
//     publishes, with under 2 % shed, and the ASR through at least 90 % of the audio;
//   - with `--providers cuda,...`, the frame analyzer ran on the GPU.
// CPU is /proc/<pid>/stat at the window's edges (ingest's ffmpeg children apart), memory the highest VmRSS per
// service and of all of them together, sampled every second; stage rates are the services' own counters.
// Publishers (ffmpeg -c copy) are not counted. The largest N is printed as "≥ N" when the list ended first.
//
// Prints Markdown tables and writes bench/results/pipeline.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  ensureModels,
  type Pipeline,
  parseMetrics,
  type Sample,
  type ServiceName,
  scrape,
  startPipeline,
  sum,
} from '@livelens/cli';
import {
  AnalysisStatus,
  EpisodeState,
  IngestService,
  prefixedTopics,
  StreamState,
} from '@livelens/contracts';
import { createGrpcClient, type Logger } from '@livelens/runtime';
import { collectTopic, testLogger } from '@livelens/runtime/testing';
import { repoRoot, resolveInfrastructure, uniqueName } from '@livelens/test-support';
import {
  type FfmpegSource,
  generateClip,
  publishRtmp,
  type RtmpServer,
  startRtmpServer,
} from '@livelens/test-support/media';
// The whole-pipeline tests' layout on free ports.
import { freeLayout } from '../packages/cli/test/layout.js';
import { childrenOf, cpuSeconds, rssMb } from './proc.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const counts = arg('streams', '1,2,3,4,6,8').split(',').map(Number);
const seconds = Number(arg('seconds', '60'));
const warmupS = Number(arg('warmup', '20'));
const modes = arg('modes', 'ours,baseline').split(',') as Mode[];
const p95BoundS = Number(arg('p95', '5'));
const providers = arg('providers', 'cpu');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function usage(problem: string): never {
  console.error(`bench/pipeline.ts: ${problem}`);
  process.exit(2);
}
if (!counts.every((n, i) => Number.isInteger(n) && n > 0 && (i === 0 || n > (counts[i - 1] as number)))) {
  usage(`--streams takes increasing positive integers, e.g. 1,2,4 (got ${arg('streams', '')})`);
}
if (!(seconds >= 5) || !(warmupS >= 0) || !(p95BoundS > 0)) usage('--seconds >= 5, --warmup >= 0, --p95 > 0');
if (modes.length === 0 || !modes.every((m) => m === 'ours' || m === 'baseline')) {
  usage(`--modes takes ours and/or baseline (got ${modes.join(',')})`);
}

type Mode = 'ours' | 'baseline';
const SERVICES: readonly ServiceName[] = ['ingest', 'frame-analyzer', 'asr', 'fusion'];

const CLIP = {
  durationS: 60,
  width: 1280,
  height: 720,
  fps: 25,
  background: 'testsrc2',
  overlays: [
    { text: 'LIVE  Detox Tea', fromS: 0, toS: 60, position: 'top-left', fontSize: 40 },
    { text: 'NOW $19.99', fromS: 0, toS: 60, position: 'bottom-left', fontSize: 56 },
    { text: 'USE CODE SAVE20', fromS: 15, toS: 40, position: 'bottom-right', fontSize: 56 },
  ],
  speech: [
    { text: 'This detox tea is only nineteen ninety nine today. Add to cart and buy now.', atS: 2 },
    { text: 'Only twelve left in stock, so hurry.', atS: 8.5 },
    { text: 'Use code SAVE20 at checkout for twenty percent off.', atS: 12 },
    { text: 'The link is in my bio, tap the link to shop.', atS: 22 },
    { text: 'It is a miracle cure for diabetes.', atS: 31 },
    { text: 'For wholesale prices, message me on WhatsApp.', atS: 40 },
    { text: 'Shipping is free on orders over fifty dollars.', atS: 45 },
    { text: 'Thanks for watching everyone, we will be back tomorrow with more deals.', atS: 50 },
    { text: 'Every order ships tomorrow morning.', atS: 56 },
  ],
} as const;

/** The services of one deployment and how to reach them. */
interface Deployment {
  readonly pipeline: Pipeline;
  readonly prefix: string;
  readonly collectors: Collectors;
}
type Collectors = Awaited<ReturnType<typeof startCollectors>>;

async function startCollectors(brokers: string[], prefix: string, logger: Logger) {
  const topics = prefixedTopics(prefix);
  const analyses = await collectTopic(brokers, topics.frameAnalysis, topics.dlq, logger);
  const transcripts = await collectTopic(brokers, topics.transcripts, topics.dlq, logger);
  const tags = await collectTopic(brokers, topics.tags, topics.dlq, logger);
  return {
    topics,
    analyses,
    transcripts,
    tags,
    stop: () => Promise.all([analyses.stop(), transcripts.stop(), tags.stop()]),
  };
}

async function startDeployment(
  mode: Mode,
  index: number,
  infra: { kafkaBrokers: string[]; redisUrl: string },
  ns: string,
  logger: Logger,
): Promise<Deployment> {
  const name = `${ns}-${mode}-${index}`;
  const prefix = `${name}.`;
  const partitions = mode === 'ours' ? '8' : '1';
  const p = (service: string) => ({ [`${service}_TOPIC_PARTITIONS`]: partitions });
  const gpu = { FRAME_ANALYZER_EXECUTION_PROVIDERS: providers, ASR_EXECUTION_PROVIDERS: providers };
  const naive: { fa: Record<string, string>; asr: Record<string, string> } =
    mode === 'baseline'
      ? { fa: { FRAME_ANALYZER_MAX_BATCH_SIZE: '1' }, asr: { ASR_VAD_MAX_BATCH_SIZE: '1' } }
      : { fa: {}, asr: {} };
  const pipeline = await startPipeline({
    kafkaBrokers: infra.kafkaBrokers.join(','),
    redisUrl: infra.redisUrl,
    layout: await freeLayout(),
    topicPrefix: prefix,
    namespace: name,
    logLevel: 'warn',
    logDir: join(repoRoot, '.livelens', 'logs', 'bench', name),
    env: {
      ingest: { ...p('INGEST'), INGEST_MAX_STREAMS: '64' },
      'frame-analyzer': { ...p('FRAME_ANALYZER'), ...gpu, ...naive.fa },
      asr: { ...p('ASR'), ...gpu, ...naive.asr },
      fusion: p('FUSION'),
    },
  });
  return { pipeline, prefix, collectors: await startCollectors(infra.kafkaBrokers, prefix, logger) };
}

// ---------------------------------------------------------------- measuring

/** The processes of each service kind over a set of deployments (ingest's ffmpeg children apart). */
function processes(deployments: readonly Deployment[]): Record<string, number[]> {
  const out: Record<string, number[]> = {
    ingest: [],
    'ingest ffmpeg': [],
    'frame-analyzer': [],
    asr: [],
    fusion: [],
  };
  for (const d of deployments) {
    const pids = d.pipeline.pids();
    for (const service of SERVICES) {
      const pid = pids[service];
      if (pid === undefined) continue;
      out[service]?.push(pid);
      if (service === 'ingest') out['ingest ffmpeg']?.push(...childrenOf(pid, 'ffmpeg'));
    }
  }
  return out;
}

async function scrapeAll(deployments: readonly Deployment[]): Promise<Sample[]> {
  const all: Sample[] = [];
  for (const d of deployments) {
    for (const service of SERVICES) {
      const response = await fetch(d.pipeline.metricsUrls[service], { signal: AbortSignal.timeout(5_000) });
      all.push(...parseMetrics(await response.text()));
    }
  }
  return all;
}

function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (rank - lo);
}

interface Latency {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}
const latency = (values: readonly number[]): Latency => ({
  n: values.length,
  p50: percentile(values, 0.5),
  p95: percentile(values, 0.95),
  p99: percentile(values, 0.99),
});

/** The paths whose p95 decides whether an N keeps up (tag updates wait for complete windows: reported only). */
const BOUNDED = ['frames', 'speech', 'tag opens'] as const;
type LatencyPath = (typeof BOUNDED)[number] | 'tag updates';

interface Trial {
  readonly mode: Mode;
  readonly streams: number;
  readonly windowS: number;
  readonly keepsUp: boolean;
  readonly why: string;
  readonly rates: Record<string, number>;
  readonly shedFraction: number;
  readonly latency: Record<LatencyPath, Latency>;
  readonly cpuCores: Record<string, number>;
  readonly peakRssMb: Record<string, number>;
  /** The highest sum of every service's RSS at one sample (the per-service peaks may come at different times). */
  readonly peakTotalRssMb: number;
  /** Whether the previous trial's backlog had drained before this one started. */
  readonly startedDrained: boolean;
  readonly processes: Record<string, number>;
  /** The ONNX Runtime providers the analyses of the window name (`models[].execution_provider`). */
  readonly executionProviders: string[];
}

/**
 * Per-record latencies (s) of the records read within [fromMs, toMs] for the given streams. A frame counts
 * from its capture; a final transcript from the capture of its last audio chunk (`last_capture_time_unix_ms`:
 * when the speech it holds had been heard); a tag from the newest of those behind its evidence.
 */
function latencies(
  collectors: readonly Collectors[],
  streamIds: ReadonlySet<string>,
  fromMs: number,
  toMs: number,
) {
  const frames: number[] = [];
  const speech: number[] = [];
  const opens: number[] = [];
  const updates: number[] = [];
  const inWindow = (receivedAtMs: number, streamId: string) =>
    receivedAtMs >= fromMs && receivedAtMs <= toMs && streamIds.has(streamId);
  const key = (
    topic: string | undefined,
    partition: number | undefined,
    offset: bigint | string | undefined,
  ) => `${topic}/${partition}/${offset}`;
  for (const c of collectors) {
    const heard = new Map<string, number>();
    for (const r of c.analyses.records) {
      heard.set(key(c.topics.frameAnalysis.name, r.partition, r.offset), Number(r.message.captureTimeUnixMs));
      if (inWindow(r.receivedAtMs, r.message.streamId) && r.message.status === AnalysisStatus.COMPLETE) {
        frames.push((Number(r.message.analyzedTimeUnixMs) - Number(r.message.captureTimeUnixMs)) / 1000);
      }
    }
    for (const r of c.transcripts.records) {
      const last = Number(r.message.lastCaptureTimeUnixMs);
      if (last === 0) continue;
      heard.set(key(c.topics.transcripts.name, r.partition, r.offset), last);
      if (inWindow(r.receivedAtMs, r.message.streamId) && r.message.final)
        speech.push((r.receivedAtMs - last) / 1000);
    }
    for (const r of c.tags.records) {
      const e = r.message;
      if (!inWindow(r.receivedAtMs, e.streamId) || e.state === EpisodeState.CLOSE) continue;
      const newest = Math.max(
        0,
        ...e.evidence.map(
          (ev) => heard.get(key(ev.source?.topic, ev.source?.partition, ev.source?.offset)) ?? 0,
        ),
      );
      if (newest === 0) continue;
      (e.state === EpisodeState.OPEN ? opens : updates).push((r.receivedAtMs - newest) / 1000);
    }
  }
  return {
    frames: latency(frames),
    speech: latency(speech),
    'tag opens': latency(opens),
    'tag updates': latency(updates),
  };
}

async function runTrial(
  mode: Mode,
  n: number,
  deployments: readonly Deployment[],
  rtmp: RtmpServer,
  ensurePublishers: (n: number) => Promise<void>,
): Promise<Trial> {
  await ensurePublishers(n);
  // ours: all streams on deployment 0; baseline: stream i on deployment i.
  const used = mode === 'ours' ? [deployments[0] as Deployment] : deployments.slice(0, n);
  const streamIds = Array.from({ length: n }, (_, i) => `${mode}-n${n}-s${i}`);
  const clients = used.map((d) => createGrpcClient(IngestService, d.pipeline.ingestAddress));
  // The previous N's backlog is not this N's load: let it drain first (and say so when it did not).
  const startedDrained = await drain(used);
  const clientOf = (i: number) => (mode === 'ours' ? clients[0] : clients[i]) as (typeof clients)[number];
  try {
    for (const [i, streamId] of streamIds.entries()) {
      await clientOf(i).startStream({
        sourceUrl: rtmp.url(`bench-${i}`),
        streamId,
        options: { frameRateFps: 1 },
      });
    }
    const deadline = Date.now() + 60_000;
    while (true) {
      const states = await Promise.all(streamIds.map((streamId, i) => clientOf(i).getStream({ streamId })));
      if (states.every((s) => s.stream?.state === StreamState.RUNNING)) break;
      if (Date.now() > deadline) throw new Error(`${mode} n=${n}: streams did not all start within 60 s`);
      await sleep(500);
    }
    await sleep(warmupS * 1000);

    const pidsAt = () => processes(used);
    // Counters are read around the window (their own interval is the divisor); CPU right at its edges, with the
    // last value seen kept for a process that exits inside it (an ffmpeg restarted by ingest).
    const before = await scrapeAll(used);
    const beforeAtMs = Date.now();
    const cpuStart = new Map<number, number>();
    const cpuLast = new Map<number, number>();
    const readCpu = (pid: number) => {
      const now = cpuSeconds(pid);
      if (now > 0) cpuLast.set(pid, now);
      return now;
    };
    for (const pid of Object.values(pidsAt()).flat()) cpuStart.set(pid, readCpu(pid));
    const fromMs = Date.now();
    const peak: Record<string, number> = {};
    let peakTotal = 0;
    const counted: Record<string, Set<number>> = {};
    while (Date.now() - fromMs < seconds * 1000) {
      let all = 0;
      for (const [kind, pids] of Object.entries(pidsAt())) {
        const total = pids.reduce((s, pid) => s + rssMb(pid), 0);
        all += total;
        peak[kind] = Math.max(peak[kind] ?? 0, total);
        counted[kind] ??= new Set();
        for (const pid of pids) {
          counted[kind].add(pid);
          if (!cpuStart.has(pid))
            cpuStart.set(pid, readCpu(pid)); // a process started in the window
          else readCpu(pid);
        }
      }
      peakTotal = Math.max(peakTotal, all);
      await sleep(1_000);
    }
    for (const pid of cpuLast.keys()) readCpu(pid);
    const toMs = Date.now();
    const windowS = (toMs - fromMs) / 1000;
    const after = await scrapeAll(used);
    const rateS = (Date.now() - beforeAtMs) / 1000;
    const cpuCores: Record<string, number> = {};
    for (const [kind, pids] of Object.entries(counted)) {
      cpuCores[kind] =
        [...pids].reduce((s, pid) => s + Math.max(0, (cpuLast.get(pid) ?? 0) - (cpuStart.get(pid) ?? 0)), 0) /
        windowS;
    }
    const delta = (metric: string) => (sum(after, metric) - sum(before, metric)) / rateS;
    const rates = {
      'ingest frames/s': delta('livelens_ingest_frames_published_total'),
      'ingest audio s/s': delta('livelens_ingest_audio_published_seconds_total'),
      'analyzed frames/s': delta('livelens_frame_analyzer_frames_analyzed_total'),
      'shed frames/s': delta('livelens_frame_analyzer_frames_shed_total'),
      'asr audio s/s': delta('livelens_asr_audio_seconds_total'),
      'asr speech s/s': delta('livelens_asr_speech_seconds_total'),
      'fusion records/s': delta('livelens_fusion_records_total'),
      'tag events/s': delta('livelens_fusion_tag_events_total'),
      'ingest gaps/s': delta('livelens_ingest_gaps_total'),
      'ingest samples shed/s': delta('livelens_ingest_samples_shed_total'),
    };
    const executionProviders = [
      ...new Set(
        used.flatMap((d) =>
          d.collectors.analyses.records
            .filter((r) => r.receivedAtMs >= fromMs && r.receivedAtMs <= toMs)
            .flatMap((r) => r.message.models.map((m) => `${m.modelId}: ${m.executionProvider}`)),
        ),
      ),
    ].sort();
    const shedFraction = rates['shed frames/s'] / Math.max(1e-9, rates['ingest frames/s']);
    const lat = latencies(
      used.map((d) => d.collectors),
      new Set(streamIds),
      fromMs,
      toMs,
    );
    const reasons: string[] = [];
    // A GPU run that fell back to the CPU is not a GPU figure (the ASR names no provider in its records: its log
    // says which one loaded).
    const wanted = providers.split(',')[0] ?? 'cpu';
    if (wanted !== 'cpu' && !executionProviders.some((p) => p.endsWith(`: ${wanted}`))) {
      reasons.push(`the frame analyzer did not run on ${wanted} (${executionProviders.join(', ')})`);
    }
    for (const path of BOUNDED) {
      const l = lat[path];
      if (l.n === 0) reasons.push(`no ${path} in the window`);
      else if (!(l.p95 < p95BoundS)) reasons.push(`${path} p95 ${l.p95.toFixed(1)} s`);
    }
    // Ingest keeps up with the sources: N frames/s and N s/s of audio, no gap, nothing shed on its way out.
    if (rates['ingest frames/s'] < 0.9 * n)
      reasons.push(`ingest ${rates['ingest frames/s'].toFixed(2)} frames/s of ${n}`);
    if (rates['ingest audio s/s'] < 0.9 * n)
      reasons.push(`ingest audio ${rates['ingest audio s/s'].toFixed(2)} s/s of ${n}`);
    if (rates['ingest gaps/s'] > 0 || rates['ingest samples shed/s'] > 0)
      reasons.push('ingest reported gaps or shed samples');
    const framesDone = rates['analyzed frames/s'] + rates['shed frames/s'];
    if (framesDone < 0.9 * rates['ingest frames/s'])
      reasons.push(`frames ${framesDone.toFixed(2)}/s of ${rates['ingest frames/s'].toFixed(2)}/s`);
    if (rates['asr audio s/s'] < 0.9 * rates['ingest audio s/s'])
      reasons.push(
        `audio ${rates['asr audio s/s'].toFixed(2)} of ${rates['ingest audio s/s'].toFixed(2)} s/s`,
      );
    if (shedFraction > 0.02) reasons.push(`${(shedFraction * 100).toFixed(1)} % of frames shed`);
    return {
      mode,
      streams: n,
      windowS,
      keepsUp: reasons.length === 0,
      why: reasons.join('; '),
      rates,
      shedFraction,
      latency: lat,
      cpuCores,
      peakRssMb: peak,
      peakTotalRssMb: peakTotal,
      startedDrained,
      processes: Object.fromEntries(Object.entries(counted).map(([k, v]) => [k, v.size])),
      executionProviders,
    };
  } finally {
    for (const [i, streamId] of streamIds.entries()) {
      await clientOf(i)
        .stopStream({ streamId })
        .catch(() => undefined);
    }
    for (const c of clients) c.close();
  }
}

/**
 * Waits (up to 60 s) until no consumer of the deployments has lag on two scrapes 2 s apart (the gauge is set
 * per fetched batch, so one zero may precede records still on their way). False when it did not drain.
 */
async function drain(deployments: readonly Deployment[]): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  let zeros = 0;
  while (Date.now() < deadline) {
    // The status line's scrape: its consumer lag is the same sum over every partition of every consumer.
    const totals = await Promise.all(deployments.map((d) => scrape(d.pipeline.metricsUrls)));
    const quiet = totals.every((t) => t.down.length === 0 && t.consumerLag === 0);
    zeros = quiet ? zeros + 1 : 0;
    if (zeros >= 2) return true;
    await sleep(2_000);
  }
  return false;
}

// ---------------------------------------------------------------- report

const PATHS: readonly LatencyPath[] = [...BOUNDED, 'tag updates'];
const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const KINDS = ['ingest', 'ingest ffmpeg', 'frame-analyzer', 'asr', 'fusion'] as const;

function table(headers: string[], rows: (string | number)[][]): string {
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function report(trials: readonly Trial[], machine: string, speechShare: number): string {
  const out: string[] = [];
  out.push(
    `Whole pipeline, ${seconds} s windows after ${warmupS} s warm-up; 1280x720 25 fps clip, 1 fps frames, audio ${(speechShare * 100).toFixed(0)} % speech; providers ${providers} (ran: ${[...new Set(trials.flatMap((t) => t.executionProviders))].join(', ')}); ${machine}`,
  );
  out.push(
    table(
      [
        'deployment',
        'streams',
        'keeps up',
        'frames in/s',
        'analyzed/s',
        'shed %',
        'audio in s/s',
        'asr s/s',
        'fusion records/s',
        'tag events/s',
      ],
      trials.map((t) => [
        t.mode,
        t.streams,
        `${t.keepsUp ? 'yes' : `no (${t.why})`}${t.startedDrained ? '' : ' (started before the previous backlog drained)'}`,
        f(t.rates['ingest frames/s'] as number, 2),
        f(t.rates['analyzed frames/s'] as number, 2),
        f(t.shedFraction * 100),
        f(t.rates['ingest audio s/s'] as number, 2),
        f(t.rates['asr audio s/s'] as number, 2),
        f(t.rates['fusion records/s'] as number, 2),
        f(t.rates['tag events/s'] as number, 2),
      ]),
    ),
  );
  out.push(
    table(
      ['deployment', 'streams', ...PATHS.map((p) => `${p} p50/p95/p99 s (n)`)],
      trials.map((t) => [
        t.mode,
        t.streams,
        ...PATHS.map((k) => {
          const l = t.latency[k];
          return `${f(l.p50, 2)} / ${f(l.p95, 2)} / ${f(l.p99, 2)} (${l.n})`;
        }),
      ]),
    ),
  );
  out.push(
    table(
      [
        'deployment',
        'streams',
        ...KINDS.map((k) => `${k} CPU cores / peak RSS MB`),
        'total cores',
        'cores per stream',
        'total peak RSS MB',
      ],
      trials.map((t) => [
        t.mode,
        t.streams,
        ...KINDS.map((k) => `${f(t.cpuCores[k] ?? 0, 2)} / ${f(t.peakRssMb[k] ?? 0, 0)}`),
        f(total(t.cpuCores), 2),
        f(total(t.cpuCores) / t.streams, 2),
        f(t.peakTotalRssMb, 0),
      ]),
    ),
  );
  // The largest N that kept up; "≥ N" when no larger N was tried (the list ended first).
  const bestN = (mode: Mode) =>
    Math.max(0, ...trials.filter((t) => t.mode === mode && t.keepsUp).map((t) => t.streams));
  const best = (mode: Mode) => {
    const n = bestN(mode);
    const failedAbove = trials.some((t) => t.mode === mode && !t.keepsUp && t.streams > n);
    return failedAbove || n === 0 ? String(n) : `≥ ${n}`;
  };
  if (modes.includes('ours') && modes.includes('baseline')) {
    const ratioRows: (string | number)[][] = [];
    for (const ours of trials.filter((t) => t.mode === 'ours')) {
      const base = trials.find((t) => t.mode === 'baseline' && t.streams === ours.streams);
      if (!base) continue;
      ratioRows.push([
        ours.streams,
        f(total(ours.cpuCores) / total(base.cpuCores), 2),
        f(ours.peakTotalRssMb / base.peakTotalRssMb, 2),
        f(ours.latency['tag opens'].p95 / base.latency['tag opens'].p95, 2),
        f(ours.latency.frames.p95 / base.latency.frames.p95, 2),
        f(ours.latency.speech.p95 / base.latency.speech.p95, 2),
      ]);
    }
    out.push(
      `Largest N that keeps up: ours ${best('ours')}, baseline ${best('baseline')} (ours/baseline ${bestN('baseline') > 0 ? f(bestN('ours') / bestN('baseline'), 2) : 'n/a: the baseline kept up with none'})`,
    );
    out.push(
      table(
        [
          'streams',
          'CPU ours/baseline',
          'total peak RSS ours/baseline',
          'tag opens p95 ours/baseline',
          'frames p95 ours/baseline',
          'speech p95 ours/baseline',
        ],
        ratioRows,
      ),
    );
  } else {
    for (const mode of modes) out.push(`Largest N that keeps up (${mode}): ${best(mode)}`);
  }
  return out.join('\n\n');
}
const total = (r: Record<string, number>) => Object.values(r).reduce((s, x) => s + x, 0);

// ---------------------------------------------------------------- main

async function main() {
  const logger = testLogger('bench-pipeline');
  const infra = await resolveInfrastructure((line) => console.log(line));
  await ensureModels();
  const clip = await generateClip(CLIP);
  const speechShare = clip.speech.reduce((s, l) => s + l.durationS, 0) / clip.durationS;
  const rtmp = await startRtmpServer();
  const publishers: FfmpegSource[] = [];
  const ensurePublishers = async (n: number) => {
    while (publishers.length < n) {
      publishers.push(await publishRtmp(clip.path, rtmp.url(`bench-${publishers.length}`), { loop: true }));
    }
  };
  const ns = uniqueName('bench');
  const load = [loadavg()[0] as number];
  const trials: Trial[] = [];
  try {
    for (const mode of modes) {
      const deployments: Deployment[] = [];
      try {
        const attempt = async (n: number) => {
          const needed = mode === 'ours' ? 1 : n;
          // Bisecting down: a baseline deployment no stream uses would still cost memory and polling.
          while (deployments.length > needed) {
            const extra = deployments.pop() as Deployment;
            await extra.collectors.stop().catch(() => undefined);
            await extra.pipeline.stop();
          }
          while (deployments.length < needed) {
            console.log(`${mode}: starting deployment ${deployments.length} (models load)`);
            deployments.push(await startDeployment(mode, deployments.length, infra, ns, logger));
          }
          console.log(`${mode}: ${n} streams, ${warmupS} s warm-up, ${seconds} s measured`);
          const trial = await runTrial(mode, n, deployments, rtmp, ensurePublishers);
          trials.push(trial);
          console.log(
            `  ${trial.keepsUp ? 'keeps up' : `does not keep up: ${trial.why}`}; tag opens p95 ${f(trial.latency['tag opens'].p95, 2)} s, frames p95 ${f(trial.latency.frames.p95, 2)} s, speech p95 ${f(trial.latency.speech.p95, 2)} s, ${f(total(trial.cpuCores), 2)} cores, ${f(trial.peakTotalRssMb, 0)} MB`,
          );
          return trial.keepsUp;
        };
        // Up the list until an N does not keep up, then bisect the gap to the last N that did.
        let kept = 0;
        for (const n of counts) {
          if (await attempt(n)) {
            kept = n;
            continue;
          }
          let failed = n;
          while (failed - kept > 1) {
            const mid = Math.floor((kept + failed) / 2);
            if (await attempt(mid)) kept = mid;
            else failed = mid;
          }
          break;
        }
      } finally {
        for (const d of deployments) {
          await d.collectors.stop().catch(() => undefined);
          await d.pipeline.stop();
        }
      }
    }
  } finally {
    for (const p of publishers) await p.stop().catch(() => undefined);
    await rtmp.stop();
    await infra.stop();
  }
  load.push(loadavg()[0] as number);
  const ffmpeg = execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${ffmpeg.split(' Copyright')[0]}; load average ${f(load[0] as number, 2)} before, ${f(load[1] as number, 2)} after`;
  const text = report(trials, machine, speechShare);
  console.log(`\n${text}\n`);
  mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
  writeFileSync(
    join(repoRoot, 'bench/results/pipeline.json'),
    JSON.stringify({ machine, seconds, warmupS, providers, speechShare, p95BoundS, trials }, null, 2),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
