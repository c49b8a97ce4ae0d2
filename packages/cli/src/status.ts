// The demo's live status line, read from the services' own /metrics (the numbers an SRE sees in Prometheus).
import type { ServiceName } from './services.js';

/** One sample of the Prometheus text format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line.trim());
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    samples.push({ name: m[1] as string, labels, value });
  }
  return samples;
}

/** The sum of a metric's samples whose labels match `where`. */
export function sum(samples: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** What the status line shows, from one scrape of every service. */
export interface PipelineTotals {
  readonly atMs: number;
  readonly streams: number;
  readonly framesAnalyzed: number;
  readonly framesShed: number;
  readonly audioSeconds: number;
  readonly consumerLag: number;
  readonly tagEvents: number;
  readonly deadLetters: number;
  /** Services whose /metrics did not answer. */
  readonly down: readonly ServiceName[];
}

export async function scrape(urls: Readonly<Record<ServiceName, string>>): Promise<PipelineTotals> {
  const down: ServiceName[] = [];
  const bySvc = {} as Record<ServiceName, Sample[]>;
  await Promise.all(
    (Object.keys(urls) as ServiceName[]).map(async (name) => {
      try {
        const response = await fetch(urls[name], { signal: AbortSignal.timeout(2_000) });
        bySvc[name] = parseMetrics(await response.text());
      } catch {
        down.push(name);
        bySvc[name] = [];
      }
    }),
  );
  const all = Object.values(bySvc).flat();
  const lag = all
    .filter((s) => s.name.endsWith('_consumer_lag_messages'))
    .reduce((total, s) => total + Math.max(0, s.value), 0);
  return {
    atMs: Date.now(),
    streams: sum(bySvc.ingest, 'livelens_ingest_active_streams'),
    framesAnalyzed: sum(bySvc['frame-analyzer'], 'livelens_frame_analyzer_frames_analyzed_total'),
    framesShed: sum(bySvc['frame-analyzer'], 'livelens_frame_analyzer_frames_shed_total'),
    audioSeconds: sum(bySvc.asr, 'livelens_asr_audio_seconds_total'),
    consumerLag: lag,
    tagEvents: sum(bySvc.fusion, 'livelens_fusion_tag_events_total'),
    deadLetters: all
      .filter((s) => /^livelens_[a-z_]+_dlq_messages_total$/.test(s.name))
      .reduce((t, s) => t + s.value, 0),
    down,
  };
}

/** The status line between two scrapes: rates over the interval, levels from the newer one. */
export function statusLine(previous: PipelineTotals | undefined, current: PipelineTotals): string {
  const dt = previous ? Math.max(0.001, (current.atMs - previous.atMs) / 1000) : 0;
  const rate = (now: number, before: number | undefined) =>
    previous && before !== undefined ? Math.max(0, (now - before) / dt) : 0;
  const parts = [
    `streams ${current.streams}`,
    `frames ${rate(current.framesAnalyzed, previous?.framesAnalyzed).toFixed(1)}/s`,
    `audio ${rate(current.audioSeconds, previous?.audioSeconds).toFixed(2)} s/s`,
    `lag ${current.consumerLag}`,
    `shed ${current.framesShed}`,
    `tags ${current.tagEvents}`,
  ];
  if (current.deadLetters > 0) parts.push(`dlq ${current.deadLetters}`);
  if (current.down.length > 0) parts.push(`DOWN: ${current.down.join(', ')}`);
  return parts.join(' · ');
}
