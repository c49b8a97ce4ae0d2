import { create } from '@bufbuild/protobuf';
import { EpisodeState, Modality, Severity, TagEventSchema, TagKind } from '@livelens/contracts';
import { describe, expect, it, vi } from 'vitest';
import { resolveSource } from '../src/demo.js';
import { formatTagEvent, mediaTime } from '../src/format.js';
import { main } from '../src/main.js';
import { serviceEnv } from '../src/services.js';
import { parseMetrics, statusLine, sum } from '../src/status.js';

/** Runs the CLI in-process, capturing what it writes. */
async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('livelens command line', () => {
  it('prints help for the command and each subcommand, exit 0', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const command of ['demo', 'stack', 'models', 'streams', 'tags', 'dlq']) {
      expect(top.stdout).toContain(command);
      const help = await cli(command, '--help');
      expect(help.code, command).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: livelens ${command}`));
    }
  });

  it('refuses unknown commands, actions and options with exit 2 and the usage', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing command/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['stack'], /missing action \(up, down or status\)/],
      [['stack', 'sideways'], /unknown action "sideways"/],
      [['models', 'download'], /unknown action "download"/],
      [['streams', 'start'], /streams start takes one URL/],
      [['streams', 'start', 'rtmp://x/live/a', '--fps', 'fast'], /--fps must be a positive number/],
      [['streams', 'start', 'rtmp://x/live/a', '--label', 'nokey'], /--label takes KEY=VALUE/],
      [['streams', 'list', '--state', 'melted'], /unknown --state "melted"/],
      [['tags'], /missing action \(watch\)/],
      [['tags', 'watch', '--kind', 'spicy'], /--kind must be intent or risk/],
      [['tags', 'watch', '--min-score', '2'], /--min-score must be in \[0, 1\]/],
      [['demo', '--colour'], /Unknown option '--colour'/],
      [['dlq', '--since', 'yesterday'], /--since: expected a duration like 30s/],
      [['dlq', '--limit', '0'], /--limit must be a positive integer/],
      [['demo', '--source', 'x.mp4', '--loop'], /--loop applies to the generated clip/],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(...argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stderr, argv.join(' ')).toMatch(message);
      expect(result.stderr, argv.join(' ')).toContain('usage: livelens');
    }
  });

  it('says which service cannot be reached, exit 1', async () => {
    const streams = await cli('streams', 'list', '--ingest', '127.0.0.1:1');
    expect(streams.code).toBe(1);
    expect(streams.stderr).toMatch(/cannot reach the ingest service .*livelens stack up/);
  });
});

describe('status line', () => {
  const text = [
    '# HELP livelens_fusion_tag_events_total x',
    '# TYPE livelens_fusion_tag_events_total counter',
    'livelens_fusion_tag_events_total{kind="intent",tag="promo_code",state="open"} 3',
    'livelens_fusion_tag_events_total{kind="risk",tag="health_claims",state="open"} 1',
    'livelens_frame_analyzer_consumer_lag_messages{topic="live.frames.v1",partition="0"} 4',
    'livelens_frame_analyzer_consumer_lag_messages{topic="live.frames.v1",partition="1"} -1',
    'livelens_asr_dlq_messages_total{topic="live.audio.v1",code="invalid_argument"} 2',
    'weird_label{a="x\\"y"} +Inf',
  ].join('\n');

  it('parses the Prometheus text format and sums by labels', () => {
    const samples = parseMetrics(text);
    expect(samples).toHaveLength(6);
    expect(sum(samples, 'livelens_fusion_tag_events_total')).toBe(4);
    expect(sum(samples, 'livelens_fusion_tag_events_total', { kind: 'risk' })).toBe(1);
    expect(samples.at(-1)).toEqual({ name: 'weird_label', labels: { a: 'x"y' }, value: Infinity });
  });

  it('shows rates between two scrapes and levels from the last', () => {
    const base = {
      streams: 2,
      framesShed: 0,
      consumerLag: 4,
      tagEvents: 4,
      deadLetters: 0,
      down: [] as 'asr'[],
    };
    const first = { ...base, atMs: 0, framesAnalyzed: 10, audioSeconds: 20 };
    const second = {
      ...base,
      atMs: 2_000,
      framesAnalyzed: 14,
      audioSeconds: 24,
      deadLetters: 2,
      down: ['asr'],
    };
    expect(statusLine(first, second as never)).toBe(
      'streams 2 · frames 2.0/s · audio 2.00 s/s · lag 4 · shed 0 · tags 4 · dlq 2 · DOWN: asr',
    );
    expect(statusLine(undefined, first as never)).toContain('frames 0.0/s');
  });
});

describe('tag format', () => {
  it('prints time, stream, tag, score, evidence and the rationale', () => {
    const event = create(TagEventSchema, {
      streamId: 'demo-1',
      tagId: 'health_claims',
      kind: TagKind.RISK,
      severity: Severity.HIGH,
      state: EpisodeState.OPEN,
      score: 0.87,
      window: { startMs: 20_000n, endMs: 30_000n },
      emittedTimeUnixMs: BigInt(Date.UTC(2026, 0, 1, 12, 0, 5, 250)),
      rationale: "Health claims (risk, score 0.87): the streamer said 'a miracle cure for diabetes' at 0:26.",
      evidence: [
        {
          modality: Modality.SPEECH,
          snippet: 'It is a miracle cure\nfor diabetes.',
          mediaTimeMs: 26_300n,
          confidence: 0.9,
          source: { topic: 'live.transcripts.v1', partition: 3, offset: 41n, recordId: 'demo-1/x/s/4' },
        },
      ],
    });
    const text = formatTagEvent(event);
    expect(text).toContain(
      '12:00:05.250  demo-1  health_claims  risk/high  score 0.87  OPEN  media 0:20.0–0:30.0',
    );
    expect(text).toContain(
      'said "It is a miracle cure for diabetes." at 0:26.3 (0.90, live.transcripts.v1@3:41)',
    );
    expect(text).toContain("why: Health claims (risk, score 0.87): the streamer said 'a miracle cure");
    expect(mediaTime(61_500)).toBe('1:01.5');
  });
});

describe('demo source and service environment', () => {
  it('turns a local file into a file:// URL under its folder, keeps URLs, refuses a missing file', () => {
    const file = new URL('../package.json', import.meta.url).pathname;
    const local = resolveSource(file);
    expect(local.sourceUrl).toBe(`file://${file}`);
    expect(file.startsWith(`${local.mediaRoot}/`)).toBe(true);
    expect(resolveSource('rtmp://example.com/live/key')).toEqual({
      sourceUrl: 'rtmp://example.com/live/key',
    });
    expect(() => resolveSource('/no/such/clip.mp4')).toThrow(/no such file/);
  });

  it('gives each service its ports, namespace and only loopback as a private source', () => {
    const options = { kafkaBrokers: 'k:1', redisUrl: 'redis://r:2', namespace: 'ns', topicPrefix: 't.' };
    expect(serviceEnv('ingest', options)).toMatchObject({
      KAFKA_BROKERS: 'k:1',
      KAFKA_TOPIC_PREFIX: 't.',
      METRICS_PORT: '9464',
      INGEST_GRPC_PORT: '50051',
      INGEST_ALLOWED_CIDRS: '127.0.0.0/8',
      INGEST_REDIS_KEY_PREFIX: 'ns:{ingest}:',
    });
    expect(
      serviceEnv('fusion', { ...options, env: { fusion: { FUSION_END_GRACE_MS: '1000' } } }),
    ).toMatchObject({
      METRICS_PORT: '9467',
      FUSION_GROUP_ID: 'ns-fusion',
      FUSION_GRPC_PORT: '50052',
      FUSION_END_GRACE_MS: '1000',
    });
    expect(serviceEnv('asr', options).ASR_GROUP_ID).toBe('ns-asr');
  });
});
