/**
 * The ffmpeg source adapter: one supervised ffmpeg process per stream, sampled JPEGs on stdout, PCM on a
 * private unix socket, per-frame pts and scene scores on stderr. See README.md in this folder.
 *
 * fluent-ffmpeg is archived upstream; the project accepts it knowingly and keeps it behind this one module.
 * Only `runProcess` below touches it: the argv is built by ffmpeg-args.ts, and the rest (splitting, matching,
 * chunking, classifying) does not know how ffmpeg was spawned, so moving to `spawn(ffmpeg, argv, { shell:
 * false })` replaces one function.
 */
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { LiveLensError, type Logger } from '@livelens/runtime';
import ffmpeg from 'fluent-ffmpeg';
import { type AudioSocket, openAudioSocket } from './audio-socket.js';
import { buildFfmpegArgs, type FfmpegArgs, validateSourceSpec } from './ffmpeg-args.js';
import { FrameMatcher } from './frame-matcher.js';
import { JpegSplitter, type SplitResult } from './jpeg-splitter.js';
import { PcmChunker } from './pcm-chunker.js';
import { classifyFailure, FrameMetaParser, isNoAudioStream, StderrRing } from './stderr.js';
import type { FfmpegSource, SourceEvents, SourceExit, SourceSpec } from './types.js';

export type * from './types.js';

/** Options of the adapter itself (not of the stream). */
export interface FfmpegSourceOptions {
  /** The ffmpeg binary. fluent-ffmpeg keeps it process-wide. @default FFMPEG_PATH, else `ffmpeg` on PATH */
  ffmpegPath?: string;
  /** Where the private socket directory is made. @default os.tmpdir() */
  tempDir?: string;
  /** How long a JPEG waits for its stderr record before its pts is estimated. @default 2000 */
  matchWaitMs?: number;
  /** After ffmpeg exits, how long stdout and the audio socket may take to drain. @default 2000 */
  drainAfterExitMs?: number;
}

/** @default graceMs of `stop()` */
export const DEFAULT_STOP_GRACE_MS = 2000;

/** What one ffmpeg process ended with. */
interface ProcessOutcome {
  /** False when ffmpeg was never started (not found, or stop() came first). */
  spawned: boolean;
  /** fluent-ffmpeg's error, if it reported one (a non-zero exit, a signal, a spawn failure). */
  error: Error | undefined;
  exitCode: number | null;
  signal: string | null;
  /** The last stderr lines, scrubbed. */
  lines: string[];
  framesSent: number;
}

/**
 * Starts ffmpeg on `spec` and reports through `events` until it ends; `onExit` comes exactly once.
 * @throws LiveLensError 'invalid_argument' when the spec is invalid (nothing is started then).
 */
export function startFfmpegSource(
  spec: SourceSpec,
  events: SourceEvents,
  logger: Logger,
  options: FfmpegSourceOptions = {},
): FfmpegSource {
  validateSourceSpec(spec);
  const log = logger.child({ component: 'ffmpeg-source', sourceKind: spec.kind });
  if (options.ffmpegPath) ffmpeg.setFfmpegPath(options.ffmpegPath);

  let stopRequested = false;
  let stopPromise: Promise<void> | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let proc: ChildProcess | undefined;
  let resolveExited: (exit: SourceExit) => void = () => undefined;
  const exited = new Promise<SourceExit>((resolve) => {
    resolveExited = resolve;
  });

  const call = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      log.error({ err, callback: what }, 'source callback threw');
    }
  };
  const alive = (p: ChildProcess | undefined): p is ChildProcess =>
    p !== undefined && p.exitCode === null && p.signalCode === null;
  const signalProcess = (signal: NodeJS.Signals): void => {
    if (alive(proc)) proc.kill(signal);
  };

  const run = async (): Promise<SourceExit> => {
    // Audio on first; an input without audio makes ffmpeg 5.1 refuse the audio output before it reads a
    // single packet, so that one case is retried once without it (ffmpeg-source.int.test.ts "yields frames only when there is no audio").
    let withAudio = true;
    for (;;) {
      const outcome = await runProcess(withAudio);
      if (stopRequested) return { kind: 'stopped' };
      if (withAudio && outcome.framesSent === 0 && isNoAudioStream(outcome.lines)) {
        log.info('input has no audio stream; restarting ffmpeg for frames only');
        withAudio = false;
        continue;
      }
      if (!outcome.spawned) {
        return {
          kind: 'failed',
          reason: 'spawn_failed',
          detail: outcome.error?.message ?? 'ffmpeg did not start',
          exitCode: null,
          signal: null,
        };
      }
      if (
        outcome.error === undefined &&
        (outcome.exitCode === 0 || outcome.exitCode === null) &&
        !outcome.signal
      ) {
        return { kind: 'eof' };
      }
      return {
        kind: 'failed',
        reason: classifyFailure(outcome.lines, outcome.signal),
        detail: outcome.lines.join('\n'),
        exitCode: outcome.exitCode,
        signal: outcome.signal,
      };
    }
  };

  /** One ffmpeg process, from socket setup to the last byte read. */
  const runProcess = async (withAudio: boolean): Promise<ProcessOutcome> => {
    const outcome: ProcessOutcome = {
      spawned: false,
      error: undefined,
      exitCode: null,
      signal: null,
      lines: [],
      framesSent: 0,
    };
    if (stopRequested) return outcome;
    const ring = new StderrRing(spec.kind === 'file' ? undefined : spec.input);
    const parser = new FrameMetaParser();
    const splitter = new JpegSplitter(spec.maxFrameBytes);
    const chunker = new PcmChunker(spec.audioChunkMs);
    const matcher = new FrameMatcher({
      frameRateFps: spec.frameRateFps,
      sceneChangeThreshold: spec.sceneChangeThreshold,
      maxWaitMs: options.matchWaitMs,
      warn: (message, fields) => log.warn(fields, message),
      emit: (frame) => {
        outcome.framesSent += 1;
        call('onFrame', () => events.onFrame(frame));
      },
    });
    const onSplit = (results: SplitResult[]): void => {
      for (const result of results) {
        if (result.kind === 'frame') {
          matcher.addJpeg(result.frame, Date.now());
          continue;
        }
        matcher.addDropped();
        if (result.kind === 'too_large') {
          log.warn(
            { bytes: result.bytes, maxFrameBytes: spec.maxFrameBytes },
            'JPEG larger than maxFrameBytes dropped',
          );
          call('onDropped', () => events.onDropped({ kind: 'frame_too_large', bytes: result.bytes }));
        } else {
          log.warn({ bytes: result.bytes, why: result.why }, 'corrupt JPEG dropped');
          call('onDropped', () => events.onDropped({ kind: 'corrupt_jpeg' }));
        }
      }
    };
    const onPcm = (data: Buffer): void => {
      for (const chunk of chunker.push(data, Date.now())) call('onAudio', () => events.onAudio(chunk));
    };

    let socket: AudioSocket | undefined;
    const tick = setInterval(() => matcher.tick(Date.now()), 250);
    tick.unref();
    try {
      socket = withAudio ? await openAudioSocket(onPcm, log, options.tempDir) : undefined;
      const args = buildFfmpegArgs(spec, socket?.path);
      let stdoutFinished: () => void = () => undefined;
      const stdoutDone = new Promise<void>((resolve) => {
        stdoutFinished = resolve;
      });
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          try {
            onSplit(splitter.push(chunk));
          } catch (err) {
            log.error({ err }, 'JPEG splitter failed on a chunk');
          }
          callback();
        },
      });
      sink.on('finish', () => stdoutFinished());
      sink.on('close', () => stdoutFinished());

      const onStderrLine = (line: string): void => {
        const parsed = parser.push(line);
        if (!parsed.consumed) ring.push(line);
        for (const record of parsed.completed) matcher.addRecord(record);
      };
      if (stopRequested) return outcome;
      const result = await runWithFluent(args, sink, onStderrLine, (child) => {
        proc = child;
        // A failed spawn (ENOENT, EACCES) still yields a ChildProcess, without a pid.
        outcome.spawned = child.pid !== undefined;
        child.once('exit', (code, signal) => {
          outcome.exitCode = code;
          outcome.signal = signal;
        });
        log.info({ pid: child.pid, argv: redactedArgv(args) }, 'ffmpeg started');
        // stop() came while fluent-ffmpeg was still probing capabilities: no point in a grace period.
        if (stopRequested) child.kill('SIGKILL');
      });
      outcome.error = result.error;
      if (outcome.error && !outcome.spawned) log.error({ err: outcome.error }, 'ffmpeg could not be started');
      if (!proc && outcome.error) {
        // Without the ChildProcess (a future fluent-ffmpeg), the status is only in the message.
        outcome.exitCode =
          Number(/exited with code (\d+)/.exec(outcome.error.message)?.[1] ?? Number.NaN) || null;
        outcome.signal = /killed with signal (\w+)/.exec(outcome.error.message)?.[1] ?? null;
      }
      if (outcome.spawned) {
        // fluent-ffmpeg reports the end once the process exited and stderr closed, not stdout: wait for the
        // last JPEG and PCM bytes, bounded, so a stuck pipe can never hold the exit back.
        const drains = [stdoutDone, socket?.connected ? socket.closed : Promise.resolve()];
        const drained = await withTimeout(Promise.all(drains), options.drainAfterExitMs ?? 2000);
        if (!drained) log.warn('stdout or the audio socket did not drain after ffmpeg exited');
      }
      for (const record of parser.end()) matcher.addRecord(record);
      onSplit(splitter.end());
      matcher.flush(Date.now());
      for (const chunk of chunker.flush(Date.now())) call('onAudio', () => events.onAudio(chunk));
      outcome.lines = ring.snapshot();
      log.info(
        {
          pid: proc?.pid,
          exitCode: outcome.exitCode,
          signal: outcome.signal,
          frames: outcome.framesSent,
          estimatedPts: matcher.estimated,
        },
        'ffmpeg exited',
      );
      return outcome;
    } catch (err) {
      throw LiveLensError.from(err, { code: 'internal' });
    } finally {
      clearInterval(tick);
      await socket?.close();
      proc = undefined;
    }
  };

  void run()
    .catch((err: unknown): SourceExit => {
      log.error({ err }, 'ffmpeg source failed');
      if (stopRequested) return { kind: 'stopped' };
      const detail = err instanceof Error ? err.message : String(err);
      return { kind: 'failed', reason: 'unknown', detail, exitCode: null, signal: null };
    })
    .then((exit) => {
      clearTimeout(killTimer);
      if (exit.kind === 'failed')
        log.warn({ reason: exit.reason, exitCode: exit.exitCode }, 'ffmpeg source failed');
      call('onExit', () => events.onExit(exit));
      resolveExited(exit);
    });

  return {
    get pid() {
      return proc?.pid;
    },
    exited,
    stop(graceMs = DEFAULT_STOP_GRACE_MS) {
      if (!stopPromise) {
        stopRequested = true;
        signalProcess('SIGTERM');
        killTimer = setTimeout(() => {
          if (alive(proc)) log.warn({ pid: proc?.pid, graceMs }, 'ffmpeg ignored SIGTERM; sending SIGKILL');
          signalProcess('SIGKILL');
        }, graceMs);
        stopPromise = exited.then(() => undefined);
      }
      return stopPromise;
    },
  };
}

/**
 * The only fluent-ffmpeg code: runs `args` with stdout piped into `sink`, stderr lines to `onStderrLine`,
 * and resolves when fluent-ffmpeg reports the end (process exited, stderr closed), with its error if any.
 */
function runWithFluent(
  args: FfmpegArgs,
  sink: Writable,
  onStderrLine: (line: string) => void,
  onSpawn: (child: ChildProcess) => void,
): Promise<{ error: Error | undefined }> {
  const command = ffmpeg(args.input)
    // Spread, not an array: given one array, fluent-ffmpeg splits every option holding exactly one space.
    .inputOptions(...args.inputOptions)
    .output(sink, { end: true })
    .outputOptions(...args.videoOutputOptions);
  if (args.audioTarget && args.audioOutputOptions) {
    command.output(args.audioTarget).outputOptions(...args.audioOutputOptions);
  }
  // fluent-ffmpeg adds `pipe:1` for the stream output and would add `-y` for file outputs; anything else it
  // changed would void the reviewed argv.
  const built = command._getArguments();
  if (!isDeepStrictEqual(built, args.argv)) {
    return Promise.reject(new LiveLensError('fluent-ffmpeg changed the reviewed argv', { code: 'internal' }));
  }
  return new Promise((resolve) => {
    command.on('start', () => {
      // fluent-ffmpeg sets `ffmpegProc` just before 'start' and does not type it; it is the ChildProcess we
      // need for the pid, the exact exit code and signal, and signals that cannot hit a reused pid.
      const child = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
      if (child) onSpawn(child);
    });
    command.on('stderr', onStderrLine);
    command.on('end', () => resolve({ error: undefined }));
    command.on('error', (error: Error) => resolve({ error }));
    command.run();
  });
}

/** The argv for logs: the input (credentials, stream keys) replaced. */
function redactedArgv(args: FfmpegArgs): string[] {
  return args.argv.map((arg) => (arg === args.input ? '<input>' : arg));
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
