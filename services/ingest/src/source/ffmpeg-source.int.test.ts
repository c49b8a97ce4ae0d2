/**
 * The ffmpeg source against real ffmpeg, on clips it generates into a temp dir: sampling rate and pts,
 * scaling, scene cuts, audio chunking and its clock, sources without audio, stop(), and a killed parent.
 * Hostile and failing inputs are in ffmpeg-source-failures.int.test.ts.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger } from '@livelens/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFfmpegSource } from './ffmpeg-source.js';
import type { PcmChunk, SampledFrame, SourceExit, SourceSpec } from './types.js';

const logger = createLogger({ service: 'ingest-test', level: 'warn' });

let dir: string;

/** Generates an H.264 clip (testsrc2, 25 fps) with optional solid-red cut and a 1 kHz tone. */
function makeClip(
  name: string,
  options: {
    width: number;
    height: number;
    durationS: number;
    cutAtS?: number;
    audio?: 'tone' | 'late' | 'none';
  },
): string {
  const { width, height, durationS, cutAtS, audio = 'tone' } = options;
  const out = join(dir, name);
  const size = `${width}x${height}`;
  const args = [
    '-nostdin',
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=s=${size}:r=25:d=${durationS}`,
  ];
  const maps: string[] = [];
  if (cutAtS !== undefined) {
    args.push('-f', 'lavfi', '-i', `color=c=red:s=${size}:r=25:d=${durationS}`);
    args.push('-filter_complex', `[0:v][1:v]overlay=enable='gte(t,${cutAtS})'[v]`);
    maps.push('-map', '[v]');
  } else {
    maps.push('-map', '0:v');
  }
  if (audio !== 'none') {
    const audioInput = cutAtS !== undefined ? 2 : 1;
    // 'late': the audio track starts 0.5 s after the video (its first sample has pts 0.5).
    if (audio === 'late') args.push('-itsoffset', '0.5');
    args.push(
      '-f',
      'lavfi',
      '-i',
      `sine=f=1000:sample_rate=44100:d=${audio === 'late' ? durationS - 0.5 : durationS}`,
    );
    maps.push('-map', `${audioInput}:a`, '-c:a', 'aac', '-b:a', '64k');
    // The tone is silent until the cut, so its onset marks the cut on the audio clock.
    if (cutAtS !== undefined) maps.push('-filter:a', `volume=enable='lt(t,${cutAtS})':volume=0`);
  }
  args.push(...maps);
  args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', out);
  const result = spawnSync('ffmpeg', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg could not make ${name}: ${result.stderr}`);
  return out;
}

function fileSpec(input: string, overrides: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind: 'file',
    input,
    frameRateFps: 2,
    sceneChangeThreshold: 0,
    maxHeight: 720,
    audioChunkMs: 500,
    realtime: false,
    rwTimeoutMs: 5000,
    maxFrameBytes: 2 * 1024 * 1024,
    maxPixels: 4096 * 2160,
    jpegQuality: 5,
    ...overrides,
  };
}

interface Run {
  frames: SampledFrame[];
  audio: PcmChunk[];
  dropped: unknown[];
  exits: SourceExit[];
  startedAtMs: number;
  exit: Promise<SourceExit>;
  source: ReturnType<typeof startFfmpegSource>;
}

function run(spec: SourceSpec, tempDir?: string): Run {
  const frames: SampledFrame[] = [];
  const audio: PcmChunk[] = [];
  const dropped: unknown[] = [];
  const exits: SourceExit[] = [];
  const startedAtMs = Date.now();
  const source = startFfmpegSource(
    spec,
    {
      onFrame: (frame) => frames.push(frame),
      onAudio: (chunk) => audio.push(chunk),
      onDropped: (what) => dropped.push(what),
      onExit: (exit) => exits.push(exit),
    },
    logger,
    { tempDir },
  );
  return { frames, audio, dropped, exits, startedAtMs, exit: source.exited, source };
}

/** True while `pid` exists and is not a zombie. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false; // no /proc entry: gone
  }
}

async function waitUntil(what: string, done: () => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - start;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livelens-source-int-'));
  makeClip('long.mp4', { width: 320, height: 180, durationS: 20 });
  makeClip('long-noaudio.mp4', { width: 320, height: 180, durationS: 20, audio: 'none' });
  makeClip('short.mp4', { width: 320, height: 180, durationS: 3 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ffmpeg source on a file replayed in real time', () => {
  it('samples 2 fps with exact pts, scales 1280x720 to 640x360, adds a scene_change frame at the cut, and chunks gapless audio on the same clock', async () => {
    const clip = makeClip('cut-720p.mp4', { width: 1280, height: 720, durationS: 4, cutAtS: 2.2 });
    const r = run(fileSpec(clip, { realtime: true, maxHeight: 360, sceneChangeThreshold: 0.3 }));
    const exit = await r.exit;
    expect(exit).toEqual({ kind: 'eof' });
    expect(r.exits).toHaveLength(1);

    const interval = r.frames.filter((f) => f.reason === 'interval');
    const scene = r.frames.filter((f) => f.reason === 'scene_change');
    // 4 s at 2 fps: 8 interval frames (±10% allows 7.2..8.8).
    expect(interval.length).toBeGreaterThanOrEqual(7.2);
    expect(interval.length).toBeLessThanOrEqual(8.8);
    expect(scene).toHaveLength(1);
    expect(scene[0]!.ptsMs).toBe(2200);
    expect(scene[0]!.sceneScore).toBeGreaterThan(0.3);

    const pts = r.frames.map((f) => f.ptsMs);
    for (let i = 1; i < pts.length; i += 1) expect(pts[i]!).toBeGreaterThan(pts[i - 1]!);
    const gaps = interval.slice(1).map((f, i) => f.ptsMs - interval[i]!.ptsMs);
    // A slot grid at 25 fps input: each gap is 500 ms ± one input frame (40 ms).
    for (const gap of gaps) expect(Math.abs(gap - 500)).toBeLessThanOrEqual(40);
    expect(interval[0]!.ptsMs).toBe(0);

    for (const frame of r.frames) {
      expect([frame.width, frame.height]).toEqual([640, 360]);
      expect(frame.jpeg.subarray(0, 2).toString('hex')).toBe('ffd8');
      expect(frame.jpeg.subarray(-2).toString('hex')).toBe('ffd9');
    }

    // Real-time pacing: a frame arrives close to its stream time (no encoder frame-threading delay).
    const lateness = r.frames.map((f) => f.receivedAtMs - r.startedAtMs - f.ptsMs);
    expect(Math.max(...lateness)).toBeLessThan(1500);
    const span = r.frames.at(-1)!.receivedAtMs - r.frames[0]!.receivedAtMs;
    expect(span).toBeGreaterThan(3000); // paced, not decoded as fast as possible
    console.info(
      `2 fps real-time: ${interval.length} interval frames in 4 s (${((interval.length / 8 - 1) * 100).toFixed(1)}% vs 8),` +
        ` gaps ${Math.min(...gaps)}..${Math.max(...gaps)} ms, lateness ${Math.min(...lateness)}..${Math.max(...lateness)} ms`,
    );

    // Audio: exact 500 ms chunks, contiguous, then one shorter tail.
    expect(r.audio.length).toBeGreaterThanOrEqual(8);
    r.audio.forEach((chunk, i) => {
      expect(chunk.startMs).toBe(i * 500);
      if (i < r.audio.length - 1) {
        expect(chunk.durationMs).toBe(500);
        expect(chunk.pcm.length).toBe(16_000);
      } else {
        expect(chunk.durationMs).toBeLessThanOrEqual(500);
        expect(chunk.pcm.length).toBe(chunk.durationMs * 32);
      }
    });
    const totalMs = r.audio.reduce((ms, c) => ms + c.durationMs, 0);
    expect(Math.abs(totalMs - 4000)).toBeLessThan(100);
    // The tone starts at the cut: its onset on the audio clock matches the scene_change frame's pts.
    const pcm = Buffer.concat(r.audio.map((c) => c.pcm));
    let onset = -1;
    for (let i = 0; i < pcm.length / 2; i += 1) {
      if (Math.abs(pcm.readInt16LE(i * 2)) > 1500) {
        onset = i / 16;
        break;
      }
    }
    expect(Math.abs(onset - scene[0]!.ptsMs)).toBeLessThan(40);
  });
});

describe('ffmpeg source on files read as fast as possible', () => {
  it('does not upscale a 640x360 input with maxHeight 720, and yields frames only when there is no audio', async () => {
    const clip = makeClip('noaudio-360p.mp4', { width: 640, height: 360, durationS: 2, audio: 'none' });
    const r = run(fileSpec(clip, { maxHeight: 720 }));
    expect(await r.exit).toEqual({ kind: 'eof' });
    expect(r.frames.map((f) => f.ptsMs)).toEqual([0, 520, 1000, 1520]);
    for (const frame of r.frames) expect([frame.width, frame.height]).toEqual([640, 360]);
    expect(r.audio).toEqual([]);
  });

  it('pads late-starting audio with silence so sample 0 is at video time 0', async () => {
    const clip = makeClip('late-audio.mkv', { width: 320, height: 180, durationS: 2, audio: 'late' });
    const r = run(fileSpec(clip, { audioChunkMs: 100 }));
    expect(await r.exit).toEqual({ kind: 'eof' });
    const pcm = Buffer.concat(r.audio.map((c) => c.pcm));
    const totalMs = pcm.length / 32;
    expect(Math.abs(totalMs - 2000)).toBeLessThan(60); // without first_pts=0 it would be ~1500
    let onset = -1;
    for (let i = 0; i < pcm.length / 2; i += 1) {
      if (Math.abs(pcm.readInt16LE(i * 2)) > 1500) {
        onset = i / 16;
        break;
      }
    }
    expect(Math.abs(onset - 500)).toBeLessThan(40);
  });

  it('drops JPEGs over maxFrameBytes and reports their size', async () => {
    const clip = makeClip('big-jpegs.mp4', { width: 640, height: 360, durationS: 1, audio: 'none' });
    const r = run(fileSpec(clip, { maxFrameBytes: 1024, jpegQuality: 2 }));
    expect(await r.exit).toEqual({ kind: 'eof' });
    expect(r.frames).toEqual([]);
    expect(r.dropped).toHaveLength(2);
    for (const d of r.dropped) {
      expect(d).toMatchObject({ kind: 'frame_too_large' });
      expect((d as { bytes: number }).bytes).toBeGreaterThan(1024);
    }
  });
});

describe('live network kinds', () => {
  /** A local ffmpeg serving `short.mp4` in real time to one client (listen mode), like a live origin. */
  function publisher(url: string, format: 'flv' | 'mpegts'): ChildProcess {
    const args = ['-nostdin', '-v', 'error', '-re', '-i', join(dir, 'short.mp4'), '-c', 'copy', '-f', format];
    if (format === 'flv') args.push('-listen', '1');
    return spawn('ffmpeg', [...args, url], { stdio: 'ignore' });
  }

  it.each([
    ['rtmp', 'flv'],
    ['srt', 'mpegts'],
  ] as const)(
    'reads %s from a live publisher until it stops: frames and audio, then eof',
    async (kind, format) => {
      const port = 20_000 + Math.floor(Math.random() * 20_000);
      const served =
        kind === 'rtmp' ? `rtmp://127.0.0.1:${port}/live/key` : `srt://127.0.0.1:${port}?mode=listener`;
      const input = kind === 'rtmp' ? served : `srt://127.0.0.1:${port}`;
      // The publisher needs a moment to listen; a source that came too early fails to connect and is retried.
      for (let attempt = 1; ; attempt += 1) {
        const origin = publisher(served, format);
        try {
          await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
          const r = run(fileSpec(input, { kind, realtime: false }));
          const exit = await r.exit;
          if (exit.kind === 'failed' && attempt < 5) continue;
          expect(exit).toEqual({ kind: 'eof' });
          expect(r.frames.length).toBeGreaterThanOrEqual(5); // 3 s at 2 fps, minus what a late join misses
          expect(r.audio.length).toBeGreaterThanOrEqual(3);
          const pts = r.frames.map((f) => f.ptsMs);
          for (let i = 1; i < pts.length; i += 1) expect(pts[i]!).toBeGreaterThan(pts[i - 1]!);
          return;
        } finally {
          origin.kill('SIGKILL');
        }
      }
    },
  );
});

describe('stopping', () => {
  it('stop() during a live-paced run ends as stopped, reaps ffmpeg and removes the socket dir', async () => {
    const clip = join(dir, 'long.mp4');
    const tempDir = join(dir, 'sockets-stop');
    await mkdir(tempDir);
    const r = run(fileSpec(clip, { realtime: true }), tempDir);
    await waitUntil('a first frame and audio', () => r.frames.length > 0 && r.audio.length > 0, 10_000);
    const pid = r.source.pid!;
    expect(processAlive(pid)).toBe(true);
    expect(await readdir(tempDir)).toHaveLength(1); // the private socket dir
    const stopped = r.source.stop();
    expect(r.source.stop()).toBe(stopped); // idempotent
    await stopped;
    expect(r.exits).toEqual([{ kind: 'stopped' }]);
    expect(processAlive(pid)).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false); // reaped, not a zombie
    expect(await readdir(tempDir)).toEqual([]);
    expect(await r.source.stop()).toBeUndefined();
  });

  it('stop() escalates to SIGKILL when ffmpeg does not exit on SIGTERM (here: it is SIGSTOPped)', async () => {
    const r = run(fileSpec(join(dir, 'long.mp4'), { realtime: true }));
    await waitUntil('a first frame', () => r.frames.length > 0, 10_000);
    const pid = r.source.pid!;
    process.kill(pid, 'SIGSTOP');
    const started = Date.now();
    await r.source.stop(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(r.exits).toEqual([{ kind: 'stopped' }]);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('a crash (a signal we did not send) fails with reason killed', async () => {
    const r = run(fileSpec(join(dir, 'long.mp4'), { realtime: true }));
    await waitUntil('a first frame', () => r.frames.length > 0, 10_000);
    process.kill(r.source.pid!, 'SIGSEGV');
    expect(await r.exit).toMatchObject({
      kind: 'failed',
      reason: 'killed',
      signal: 'SIGSEGV',
      exitCode: null,
    });
  });

  it('stop() right after start never leaves a process behind', async () => {
    const clip = join(dir, 'long.mp4');
    const r = run(fileSpec(clip, { realtime: true }));
    await r.source.stop(500);
    expect(r.exits).toEqual([{ kind: 'stopped' }]);
    expect(r.source.pid).toBeUndefined();
  });
});

describe('when the Node process dies', () => {
  // The child imports the adapter by absolute URL and runs under tsx; it prints ffmpeg's pid after the first
  // frame, then the test SIGKILLs it: no stop(), no exit handlers.
  const CHILD = `
const { startFfmpegSource } = await import(process.argv[2]);
const log = { child: () => log, info() {}, warn() {}, error() {}, debug() {} };
let told = false;
const source = startFfmpegSource(JSON.parse(process.argv[3]), {
  onFrame() { if (!told) { told = true; process.stdout.write(JSON.stringify({ pid: source.pid }) + '\\n'); } },
  onAudio() {}, onDropped() {}, onExit(exit) { process.stdout.write(JSON.stringify({ exit }) + '\\n'); },
}, log, { tempDir: process.argv[4] });
`;

  it.each([
    ['long.mp4', 'with audio: the next PCM write'],
    ['long-noaudio.mp4', 'frames only: the next JPEG write, within 1/fps'],
  ])('ffmpeg on %s dies soon after its parent is SIGKILLed (EPIPE %s)', async (name) => {
    const clip = join(dir, name);
    const script = join(dir, 'orphan-child.mjs');
    await writeFile(script, CHILD);
    const adapter = pathToFileURL(fileURLToPath(new URL('./ffmpeg-source.ts', import.meta.url))).href;
    const child: ChildProcess = spawn(
      process.execPath,
      // The socket dir goes under the test dir: a SIGKILLed parent cannot remove it (see README).
      ['--import', 'tsx', script, adapter, JSON.stringify(fileSpec(clip, { realtime: true })), dir],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    );
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (data: Buffer) => {
        out += data.toString();
        const line = out.split('\n').find((l) => l.includes('"pid"'));
        if (line) resolve((JSON.parse(line) as { pid: number }).pid);
      });
      child.once('exit', (code) => reject(new Error(`child exited early with ${code}: ${out}`)));
      setTimeout(() => reject(new Error('no pid from the child in 20 s')), 20_000).unref();
    });
    expect(processAlive(pid)).toBe(true);
    child.kill('SIGKILL');
    const tookMs = await waitUntil('the orphaned ffmpeg to exit', () => !processAlive(pid), 5000);
    console.info(`${name}: orphaned ffmpeg gone ${tookMs} ms after its parent was SIGKILLed`);
  });
});

describe('with the pdeathsig wrapper (bin/ffmpeg-pdeathsig)', () => {
  // A silent source: ffmpeg writes nothing, so EPIPE can never tell it that its parent died. Only the
  // kernel's parent-death signal can; without it ffmpeg would wait for its (here 60 s) read timeout.
  const CHILD = `
const { startFfmpegSource } = await import(process.argv[2]);
const log = { child: () => log, info() {}, warn() {}, error() {}, debug() {} };
const source = startFfmpegSource(JSON.parse(process.argv[3]), {
  onFrame() {}, onAudio() {}, onDropped() {}, onExit() {},
}, log, { tempDir: process.argv[4], ffmpegPath: process.argv[5] });
const timer = setInterval(() => {
  if (source.pid) { clearInterval(timer); process.stdout.write(JSON.stringify({ pid: source.pid }) + '\\n'); }
}, 20);
`;

  it('kills ffmpeg at once when the Node process is SIGKILLed, even while ffmpeg writes nothing', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket)); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const script = join(dir, 'pdeathsig-child.mjs');
    await writeFile(script, CHILD);
    const adapter = pathToFileURL(fileURLToPath(new URL('./ffmpeg-source.ts', import.meta.url))).href;
    const wrapper = fileURLToPath(new URL('../../bin/ffmpeg-pdeathsig', import.meta.url));
    const spec = fileSpec(`http://127.0.0.1:${port}/live.mp4`, { kind: 'http', rwTimeoutMs: 60_000 });
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', script, adapter, JSON.stringify(spec), dir, wrapper],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
      },
    );
    try {
      const pid = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (data: Buffer) => {
          out += data.toString();
          const line = out.split('\n').find((l) => l.includes('"pid"'));
          if (line) resolve((JSON.parse(line) as { pid: number }).pid);
        });
        child.once('exit', (code) => reject(new Error(`child exited early with ${code}: ${out}`)));
        setTimeout(() => reject(new Error('no pid from the child in 20 s')), 20_000).unref();
      });
      // ffmpeg (not a shell or setpriv: the wrapper execs) is running and connected to the silent origin.
      await waitUntil('ffmpeg to connect', () => sockets.length > 0, 10_000);
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('ffmpeg');
      child.kill('SIGKILL');
      const tookMs = await waitUntil('the orphaned ffmpeg to exit', () => !processAlive(pid), 3_000);
      console.info(
        `silent source: ffmpeg gone ${tookMs} ms after its parent was SIGKILLed (read timeout 60 s)`,
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

describe('when ffmpeg cannot be started', () => {
  // In a child process: fluent-ffmpeg keeps the ffmpeg path process-wide.
  const CHILD = `
const { startFfmpegSource } = await import(process.argv[2]);
const log = { child: () => log, info() {}, warn() {}, error() {}, debug() {} };
const source = startFfmpegSource(JSON.parse(process.argv[3]), {
  onFrame() {}, onAudio() {}, onDropped() {}, onExit(exit) { process.stdout.write(JSON.stringify(exit)); },
}, log, { ffmpegPath: '/nonexistent/ffmpeg', tempDir: process.argv[4] });
`;

  it('fails with spawn_failed and leaves no socket dir', async () => {
    const script = join(dir, 'spawn-fail-child.mjs');
    await writeFile(script, CHILD);
    const tempDir = join(dir, 'sockets-spawn-fail');
    await mkdir(tempDir);
    const adapter = pathToFileURL(fileURLToPath(new URL('./ffmpeg-source.ts', import.meta.url))).href;
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', script, adapter, JSON.stringify(fileSpec(join(dir, 'short.mp4'))), tempDir],
      { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 30_000 },
    );
    expect(JSON.parse(result.stdout)).toEqual({
      kind: 'failed',
      reason: 'spawn_failed',
      detail: 'spawn /nonexistent/ffmpeg ENOENT',
      exitCode: null,
      signal: null,
    });
    expect(await readdir(tempDir)).toEqual([]);
  });
});
