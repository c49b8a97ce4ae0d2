/**
 * The ffmpeg source against broken and hostile inputs, with real ffmpeg: every case ends in exactly one
 * `failed` exit with the right machine reason, and nothing from a forbidden local file is ever delivered.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@livelens/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFfmpegSource } from './ffmpeg-source.js';
import type { FailureReason, PcmChunk, SampledFrame, SourceExit, SourceKind, SourceSpec } from './types.js';

const logger = createLogger({ service: 'ingest-test', level: 'silent' });

let dir: string;
let http: Server;
let httpBase: string;
let stall: TcpServer;
const stalled: Socket[] = [];
let stallPort: number;
/** The first line of /etc/passwd: it must never show up in a frame, a PCM chunk or a failure detail. */
const passwdLine = readFileSync('/etc/passwd', 'utf8').split('\n')[0]!;

function spec(kind: SourceKind, input: string, overrides: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind,
    input,
    frameRateFps: 2,
    sceneChangeThreshold: 0,
    maxHeight: 360,
    audioChunkMs: 1000,
    realtime: false,
    rwTimeoutMs: 3000,
    maxFrameBytes: 1024 * 1024,
    maxPixels: 1920 * 1080,
    jpegQuality: 5,
    ...overrides,
  };
}

async function runToExit(s: SourceSpec) {
  const frames: SampledFrame[] = [];
  const audio: PcmChunk[] = [];
  const exits: SourceExit[] = [];
  const source = startFfmpegSource(
    s,
    {
      onFrame: (f) => frames.push(f),
      onAudio: (c) => audio.push(c),
      onDropped: () => undefined,
      onExit: (e) => exits.push(e),
    },
    logger,
  );
  const exit = await source.exited;
  expect(exits).toEqual([exit]);
  return { exit, frames, audio };
}

function expectFailed(exit: SourceExit, reason: FailureReason | FailureReason[]): void {
  expect(exit.kind).toBe('failed');
  if (exit.kind !== 'failed') return;
  if (Array.isArray(reason)) expect(reason).toContain(exit.reason);
  else expect(exit.reason, exit.detail).toBe(reason);
  expect(exit.exitCode).not.toBe(0);
  expect(exit.detail.length).toBeGreaterThan(0);
  expect(exit.detail).not.toContain(passwdLine);
}

function ffmpeg(args: string[]): void {
  const result = spawnSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${result.stderr}`);
}

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livelens-source-fail-'));
  await writeFile(join(dir, 'notes.txt'), 'hello\nthis is not a video\n'.repeat(50));
  await writeFile(join(dir, 'notes.mp4'), 'hello\nthis is not a video\n'.repeat(50));
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'testsrc2=s=160x90:r=10:d=1',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    join(dir, 'seg0.ts'),
  ]);
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'color=s=2000x2000:r=5:d=0.2',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    join(dir, 'huge.mp4'),
  ]);
  ffmpeg(['-f', 'lavfi', '-i', 'sine=d=1', join(dir, 'tone.wav')]);
  const playlist = (...segments: string[]) =>
    ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0']
      .concat(
        segments.flatMap((s) => ['#EXTINF:1.0,', s]),
        ['#EXT-X-ENDLIST', ''],
      )
      .join('\n');
  await writeFile(join(dir, 'passwd.m3u8'), playlist('file:///etc/passwd'));
  await writeFile(join(dir, 'passwd-ts.m3u8'), playlist('file:///etc/passwd?.ts'));
  await writeFile(join(dir, 'concat.m3u8'), playlist('concat:/etc/passwd|seg0.ts'));
  await writeFile(join(dir, 'subfile.m3u8'), playlist('subfile,,start,0,end,100,,:/etc/passwd'));
  await writeFile(join(dir, 'mixed.m3u8'), playlist('seg0.ts', 'file:///etc/passwd?.ts', 'seg0.ts'));

  // Serves the temp dir; /status/<code>/... answers with that status.
  http = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const status = /^\/status\/(\d{3})\//.exec(url.pathname);
    if (status) {
      res.writeHead(Number(status[1])).end('no');
      return;
    }
    try {
      const body = readFileSync(join(dir, url.pathname.replace(/^\/+/, '').replace(/\.\.+/g, '')));
      res.writeHead(200).end(body);
    } catch (err) {
      res.writeHead(404).end(String((err as Error).message));
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpBase = `http://127.0.0.1:${(http.address() as { port: number }).port}`;

  // Accepts and never answers: a stalled origin.
  stall = createTcpServer((socket) => stalled.push(socket));
  await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
  stallPort = (stall.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of stalled) socket.destroy();
  await new Promise((resolve) => stall?.close(resolve));
  await new Promise((resolve) => http?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('failing inputs', () => {
  it('a text file named .mp4 fails with invalid_data', async () => {
    const { exit, frames } = await runToExit(spec('file', join(dir, 'notes.mp4')));
    expectFailed(exit, 'invalid_data');
    expect(frames).toEqual([]);
  });

  it('a .txt file fails with format_not_allowed: without the whitelist ffmpeg renders it as video (tty demuxer)', async () => {
    const { exit, frames } = await runToExit(spec('file', join(dir, 'notes.txt')));
    expectFailed(exit, 'format_not_allowed');
    if (exit.kind === 'failed') expect(exit.detail).toContain('[tty @ ');
    expect(frames).toEqual([]);
  });

  it('a missing file fails with no_such_file', async () => {
    expectFailed((await runToExit(spec('file', join(dir, 'missing.mp4')))).exit, 'no_such_file');
  });

  it('an audio-only file fails with no_video_stream', async () => {
    expectFailed((await runToExit(spec('file', join(dir, 'tone.wav')))).exit, 'no_video_stream');
  });

  it('a picture over maxPixels fails with too_large', async () => {
    expectFailed(
      (await runToExit(spec('file', join(dir, 'huge.mp4'), { maxPixels: 1_000_000 }))).exit,
      'too_large',
    );
  });

  it('a closed TCP port over rtmp:// fails with connection_refused, and the stream key stays out of the detail', async () => {
    const port = await freePort();
    const { exit } = await runToExit(spec('rtmp', `rtmp://127.0.0.1:${port}/live/s3cr3t-stream-key`));
    expectFailed(exit, 'connection_refused');
    if (exit.kind === 'failed') {
      expect(exit.detail).not.toContain('s3cr3t-stream-key');
      expect(exit.detail).toContain('<input>: Connection refused');
    }
  });

  it('an HTTP 404 fails with http_404, a 503 with http_503', async () => {
    expectFailed((await runToExit(spec('http', `${httpBase}/status/404/clip.mp4`))).exit, 'http_404');
    expectFailed((await runToExit(spec('http', `${httpBase}/status/503/clip.mp4`))).exit, 'http_503');
  });

  it('an origin that accepts and never answers fails with timeout after rwTimeoutMs', async () => {
    const started = Date.now();
    const { exit } = await runToExit(
      spec('http', `http://127.0.0.1:${stallPort}/live.mp4`, { rwTimeoutMs: 1000 }),
    );
    expectFailed(exit, 'timeout');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('hostile inputs', () => {
  it.each([
    ['passwd.m3u8', 'segment_not_allowed'],
    ['passwd-ts.m3u8', 'protocol_not_allowed'],
  ] as const)(
    'an HLS playlist %s pointing at /etc/passwd fails with %s and delivers nothing',
    async (name, reason) => {
      const { exit, frames, audio } = await runToExit(spec('hls', `${httpBase}/${name}`));
      expectFailed(exit, reason);
      expect(frames).toEqual([]);
      expect(audio).toEqual([]);
    },
  );

  it.each(['concat.m3u8', 'subfile.m3u8'])(
    'an HLS playlist with a %s segment fails and delivers nothing',
    async (name) => {
      const { exit, frames, audio } = await runToExit(spec('hls', `${httpBase}/${name}`));
      expectFailed(exit, ['protocol_not_allowed', 'segment_not_allowed', 'invalid_data']);
      expect(frames).toEqual([]);
      expect(audio).toEqual([]);
    },
  );

  it('a file:// segment between two good ones is skipped: frames from the good ones only, no passwd bytes', async () => {
    const { exit, frames, audio } = await runToExit(spec('hls', `${httpBase}/mixed.m3u8`));
    expect(['eof', 'failed']).toContain(exit.kind);
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) expect(frame.jpeg.includes(passwdLine)).toBe(false);
    for (const chunk of audio) expect(chunk.pcm.includes(passwdLine)).toBe(false);
  });

  it('a playlist where a media file is expected fails with format_not_allowed (http and file kinds)', async () => {
    expectFailed((await runToExit(spec('http', `${httpBase}/passwd.m3u8`))).exit, 'format_not_allowed');
    expectFailed((await runToExit(spec('file', join(dir, 'passwd.m3u8')))).exit, 'format_not_allowed');
  });
});
