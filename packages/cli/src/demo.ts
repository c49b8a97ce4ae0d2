// `livelens demo`: the whole pipeline on one machine, end to end. Starts the local stack, fetches the models,
// starts the four services, generates a live-commerce clip, publishes it to a local nginx-rtmp in real time,
// starts ingestion over gRPC, and prints the tags as they arrive with a live status line. Ctrl-C stops it all.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  EpisodeState,
  IngestService,
  StreamState,
  type TagEvent,
  TagKind,
  TagService,
} from '@livelens/contracts';
import { createGrpcClient, LiveLensError } from '@livelens/runtime';
import {
  type FfmpegSource,
  generateClip,
  publishRtmp,
  type RtmpServer,
  startRtmpServer,
} from '@livelens/test-support/media';
import { type DemoClip, LIVE_COMMERCE_CLIP } from './clips.js';
import { formatTagEvent, mediaTime } from './format.js';
import { Progress } from './progress.js';
import { DEFAULT_LAYOUT, detachedPid, type Pipeline, SERVICE_NAMES, startPipeline } from './services.js';
import { CliError, ensureModels, runStackScript, stackEnv } from './stack.js';
import { type PipelineTotals, scrape, statusLine } from './status.js';

export interface DemoOptions {
  /** Any stream URL or a local file path; default: the generated live-commerce clip over RTMP. */
  readonly source?: string;
  /** Publish the generated clip in a loop until Ctrl-C. */
  readonly loop?: boolean;
  readonly streamId?: string;
  /** Skip `stack.sh up` and `models fetch` (they ran already). */
  readonly skipSetup?: boolean;
  readonly out?: NodeJS.WriteStream;
  /** Aborted by Ctrl-C (main wires SIGINT/SIGTERM to it). */
  readonly signal?: AbortSignal;
}

/** Returns the exit code: 0 when the demo ran (and, for the generated clip, every expected tag arrived). */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const tty = Boolean(out.isTTY) && process.env.CI !== 'true';
  const say = (line: string) => out.write(`${tty ? '\r\x1b[2K' : ''}${line}\n`);
  const signal = options.signal ?? new AbortController().signal;

  for (const name of SERVICE_NAMES) {
    if (await detachedPid(name)) {
      throw new CliError(
        `${name} already runs in the background (livelens stack up): stop it with \`livelens stack down\`, ` +
          'or use `livelens streams start URL` and `livelens tags watch` with the running services',
      );
    }
  }
  // Ctrl-C (or SIGTERM) during any step below ends the demo at that step: the steps race `interrupted`.
  const interrupted = new Promise<never>((_, reject) => {
    const stop = () => reject(new Interrupted());
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  interrupted.catch(() => undefined);
  const step = <T>(work: Promise<T>): Promise<T> => Promise.race([work, interrupted]);

  try {
    if (!options.skipSetup) {
      // The local stack unless both are given (a partial setting would point at a stack that is not up).
      if (!(process.env.KAFKA_BROKERS && process.env.REDIS_URL)) await step(runStackScript('up', 'stack'));
      await step(ensureModels());
    }
    return await demoSteps(options, out, tty, say, signal, step);
  } catch (error) {
    if (error instanceof Interrupted) {
      say('-- interrupted');
      return 130;
    }
    throw error;
  }
}

class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

async function demoSteps(
  options: DemoOptions,
  out: NodeJS.WriteStream,
  tty: boolean,
  say: (line: string) => void,
  signal: AbortSignal,
  step: <T>(work: Promise<T>) => Promise<T>,
): Promise<number> {
  const infra = await step(stackEnv());

  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  };
  try {
    // The source: the generated clip on a local RTMP server, a local file, or any URL.
    let sourceUrl: string;
    let mediaRoot: string | undefined;
    let clip: DemoClip | undefined;
    let publisher: FfmpegSource | undefined;
    let publishStartedMs = 0;
    let generated: Awaited<ReturnType<typeof generateClip>> | undefined;
    let publish: (() => Promise<void>) | undefined;
    if (options.source) {
      ({ sourceUrl, mediaRoot } = resolveSource(options.source));
    } else {
      clip = LIVE_COMMERCE_CLIP;
      const progress = new Progress('clip');
      progress.detail('generating the live-commerce clip (ffmpeg + espeak-ng)');
      generated = await step(generateClip(clip.options));
      progress.finish(`${generated.path} (${generated.durationS} s${generated.cached ? ', cached' : ''})`);
      // Stopped however the demo ends, also when Ctrl-C comes while it starts.
      const rtmpStarting = startRtmpServer();
      cleanups.push(async () => (await rtmpStarting.catch(() => undefined))?.stop());
      const rtmp: RtmpServer = await step(rtmpStarting);
      const url = rtmp.url(`demo-${randomUUID().slice(0, 8)}`);
      const file = generated.path;
      const name = clip.name;
      sourceUrl = url;
      // Published once ingest plays the stream, so that media time 0 is the clip's start.
      publish = async () => {
        const publishing = publishRtmp(file, url, { loop: options.loop ?? false });
        cleanups.push(async () => (await publishing.catch(() => undefined))?.stop());
        const p = await publishing;
        publisher = p;
        publishStartedMs = Date.now();
        say(`publishing ${name} to ${url} in real time${options.loop ? ' (looping)' : ''}`);
      };
    }

    const starting = startPipeline({
      ...infra,
      layout: DEFAULT_LAYOUT,
      ...(mediaRoot ? { mediaRoot } : {}),
      onProgress: (service, state, ms) =>
        say(state === 'ready' ? `  ${service} ready (${(ms / 1000).toFixed(1)} s)` : `  starting ${service}`),
    });
    // Interrupted while the services start: they are stopped once started (startPipeline stops them itself
    // when it fails).
    cleanups.push(async () => (await starting.catch(() => undefined))?.stop());
    const pipeline: Pipeline = await step(starting);
    say(`pipeline up; logs in ${dirname(pipeline.logFiles.ingest)}`);

    const ingest = createGrpcClient(IngestService, pipeline.ingestAddress);
    const tags = createGrpcClient(TagService, pipeline.fusionAddress);
    cleanups.push(async () => {
      ingest.close();
      tags.close();
    });
    const streamId = options.streamId ?? `demo-${Date.now().toString(36)}`;

    // Tags: printed as they arrive; episodes tracked so that the end waits for their close.
    const watch = new AbortController();
    const open = new Set<string>();
    const firstSeen = new Map<string, number>();
    const seen: TagEvent[] = [];
    const watching = (async () => {
      try {
        for await (const { event } of tags.watchTags({ streamIds: [streamId] }, { signal: watch.signal })) {
          if (!event) continue;
          seen.push(event);
          if (!firstSeen.has(event.tagId)) firstSeen.set(event.tagId, Date.now());
          if (event.state === EpisodeState.CLOSE) open.delete(event.episodeId);
          else open.add(event.episodeId);
          say(formatTagEvent(event, { color: tty }));
        }
      } catch (error) {
        if (!watch.signal.aborted) say(`tag watch ended: ${LiveLensError.from(error).message}`);
      }
    })();
    cleanups.push(async () => {
      watch.abort();
      await watching;
    });
    // WatchTags reads the tags topic from its end: let it join before the stream starts.
    await step(sleep(1_000));

    const started = await step(
      ingest.startStream({ sourceUrl, streamId, options: { frameRateFps: 1 }, requestId: randomUUID() }),
    );
    // However the demo ends, the stream is stopped: ingest keeps wanted streams in Redis across restarts,
    // and the next demo or `stack up` would start this one again.
    let stopped = false;
    const stopStream = async () => {
      if (stopped) return;
      stopped = true;
      await ingest.stopStream({ streamId }, { deadlineMs: 5_000 }).catch(() => undefined);
    };
    cleanups.push(stopStream);
    say(`stream ${started.stream?.streamId} started (${started.stream?.sourceUrl}); Ctrl-C stops the demo`);
    await step(publish?.() ?? Promise.resolve());

    // The status line.
    let previous: PipelineTotals | undefined;
    const status = setInterval(
      async () => {
        const current = await scrape(pipeline.metricsUrls);
        const line = statusLine(previous, current);
        previous = current;
        if (tty) out.write(`\r\x1b[2K${line}`);
        else say(line);
      },
      tty ? 1_000 : 10_000,
    );
    cleanups.push(async () => clearInterval(status));

    // Until the clip ends (or the source ends, or Ctrl-C, or a service dies).
    type End = {
      kind: 'interrupted' | 'service_exited' | 'clip_published' | 'stream_ended';
      text: string;
      failed?: boolean;
    };
    const ended = new Promise<End>((resolveEnd) => {
      const interrupt = () => resolveEnd({ kind: 'interrupted', text: 'interrupted' });
      if (signal.aborted) interrupt();
      else signal.addEventListener('abort', interrupt, { once: true });
      pipeline.exited.then(({ service, code, signal: s }) =>
        resolveEnd({
          kind: 'service_exited',
          text: `${service} exited (${code ?? s}); see ${pipeline.logFiles[service]}`,
        }),
      );
      if (publisher && !options.loop)
        publisher.exited.then(() => resolveEnd({ kind: 'clip_published', text: 'clip published' }));
      const poll = setInterval(async () => {
        const info = await ingest.getStream({ streamId }).catch(() => undefined);
        const state = info?.stream?.state;
        if (state === StreamState.ENDED || state === StreamState.FAILED) {
          resolveEnd({
            kind: 'stream_ended',
            text: `stream ${StreamState[state]}: ${info?.stream?.lastError || 'source ended'}`,
            failed: state === StreamState.FAILED,
          });
        }
      }, 2_000);
      cleanups.push(async () => clearInterval(poll));
    });
    const why = await ended;
    say(`-- ${why.text}`);
    if (why.kind === 'interrupted' || why.kind === 'service_exited') {
      say('stopping...');
      return why.kind === 'interrupted' ? 130 : 1;
    }

    // Stop the stream: its open episodes are closed by fusion (end of stream), then the demo stops everything.
    if (why.kind === 'clip_published') await sleep(2_000);
    await stopStream();
    const deadline = Date.now() + 30_000;
    while ((open.size > 0 || seen.length === 0) && Date.now() < deadline) {
      if (signal.aborted) return 130;
      await sleep(500);
    }
    say(
      open.size === 0
        ? `stream stopped; every tag episode closed (${seen.length} tag events)`
        : `stream stopped; ${open.size} episode(s) still open after 30 s`,
    );
    // A source that failed (refused, not media, gave up reconnecting) is a failed demo, said above.
    if (!clip || !generated) return why.failed ? 1 : 0;

    // The generated clip: did each expected tag arrive, and how long after its cue?
    let missing = 0;
    say(`expected tags of the ${clip.name} clip (cue → tag, in media time):`);
    for (const expected of clip.expected) {
      const at = firstSeen.get(expected.tagId);
      const cueS = expected.cueEndS(generated);
      if (at === undefined) missing += 1;
      say(
        at === undefined
          ? `  MISSING ${expected.tagId}  (${expected.cue} at ${mediaTime(cueS * 1000)})`
          : `  ok      ${expected.tagId}  ${((at - publishStartedMs) / 1000 - cueS).toFixed(1)} s after ${expected.cue} at ${mediaTime(cueS * 1000)}`,
      );
    }
    const risks = [...new Set(seen.filter((e) => e.kind === TagKind.RISK).map((e) => e.tagId))];
    say(`risk tags: ${risks.join(', ') || 'none'}`);
    return missing === 0 ? 0 : 1;
  } finally {
    say('stopping the services and the source...');
    await cleanup();
    say('stopped.');
  }
}

/** `--source`: a local path becomes a file:// URL under a media root the ingest service is allowed to read. */
export function resolveSource(source: string): { sourceUrl: string; mediaRoot?: string } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    if (source.startsWith('file://')) return { sourceUrl: source, mediaRoot: dirname(fileURLToPath(source)) };
    return { sourceUrl: source };
  }
  const path = resolve(source);
  if (!existsSync(path)) throw new CliError(`--source ${source}: no such file (and not a URL)`, 2);
  // Encoded (spaces, #, %): ingest reads the URL, not the shell's path.
  return { sourceUrl: pathToFileURL(path).href, mediaRoot: dirname(path) };
}
