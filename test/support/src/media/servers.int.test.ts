import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../index.js';
import { type GeneratedClip, generateClip } from './generate.js';
import { probeMedia } from './probe.js';
import { ffmpegPids, freeTcpPort, listProcesses, pidExists, udpPortBound } from './process.js';
import {
  bodyRoute,
  fileRoute,
  HOSTILE_SEGMENT_URIS,
  hangingRoute,
  hostileHlsPlaylist,
  nonMediaResponse,
  publishRtmp,
  redirectRoute,
  type StoppableHandle,
  startHlsLive,
  startHttpServer,
  startRtmpServer,
  startSrtSource,
} from './servers.js';

// A small live-shopping-like clip: moving pattern, a price overlay, a spoken line. Cached after the first run.
let clip: GeneratedClip;
beforeAll(async () => {
  clip = await generateClip({
    durationS: 4,
    width: 640,
    height: 360,
    overlays: [{ text: '$29.99 — code SAVE20', fromS: 0, toS: 4 }],
    speech: [{ text: 'link in my bio', atS: 1 }],
  });
}, 30_000);

// Whatever a test started is stopped even when it fails half-way.
const started: StoppableHandle[] = [];
function track<T extends StoppableHandle>(handle: T): T {
  started.push(handle);
  return handle;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.stop({ abrupt: true })));
});

function streamsOf(result: Awaited<ReturnType<typeof probeMedia>>) {
  return result.streams.map((s) => ({
    type: s.codec_type,
    codec: s.codec_name,
    width: s.width,
    height: s.height,
  }));
}

const EXPECTED_STREAMS = expect.arrayContaining([
  { type: 'video', codec: 'h264', width: 640, height: 360 },
  expect.objectContaining({ type: 'audio', codec: 'aac' }),
]);

function expectAllGone(handles: readonly StoppableHandle[]) {
  const pids = handles.flatMap((h) => h.pids());
  expect(pids.filter(pidExists)).toEqual([]);
  expect(ffmpegPids({ childrenOf: process.pid })).toEqual([]);
  expect(listProcesses('nginx').filter((p) => p.ppid === process.pid)).toEqual([]);
}

describe('RTMP (nginx-rtmp)', () => {
  it('relays a published clip that ffprobe reads back, and leaves no process after stop', async () => {
    const server = track(await startRtmpServer());
    expect(server.url('shop 1')).toBe(`rtmp://127.0.0.1:${server.port}/live/shop%201`);
    const url = server.url(uniqueName('shop'));
    const publisher = track(await publishRtmp(clip.path, url, { loop: true }));
    expect(publisher.progress().outTimeS).toBeGreaterThan(0);

    expect(streamsOf(await probeMedia(url))).toEqual(EXPECTED_STREAMS);
    expect(await readFile(server.logPath, 'utf8')).toMatch(/publish: name='shop-/);

    // The source dies mid-stream: SIGKILL, no clean RTMP close.
    await publisher.stop({ abrupt: true });
    expect((await publisher.exited).signal).toBe('SIGKILL');
    await server.stop();
    expectAllGone([server, publisher]);
  }, 30_000);
});

describe('failures say what failed', () => {
  it('reports a publish nobody accepts, and a missing RTMP module, with the tool and its stderr', async () => {
    const nobody = `rtmp://127.0.0.1:${await freeTcpPort()}/live/${uniqueName('k')}`;
    await expect(publishRtmp(clip.path, nobody)).rejects.toMatchObject({
      code: 'not_ready',
      tool: 'ffmpeg',
      stderr: expect.stringMatching(/connection refused/i),
    });
    await expect(startRtmpServer({ modulePath: '/nonexistent/ngx_rtmp_module.so' })).rejects.toMatchObject({
      code: 'missing_tool',
    });
    await expect(publishRtmp('/nonexistent.mp4', nobody)).rejects.toMatchObject({ code: 'invalid_options' });
    expect(ffmpegPids({ childrenOf: process.pid })).toEqual([]);
  }, 30_000);
});

describe('live HLS', () => {
  it('serves a live playlist over HTTP that ffprobe reads, without an end', async () => {
    const hls = track(await startHlsLive(clip.path, { loop: true }));
    const response = await fetch(hls.playlistUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    const playlist = await response.text();
    expect(playlist.match(/^#EXTINF:/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(playlist).not.toContain('#EXT-X-ENDLIST');
    const segment = playlist.split('\n').find((l) => l.endsWith('.ts'));
    const segmentResponse = await fetch(new URL(segment ?? 'missing', hls.playlistUrl));
    expect(segmentResponse.headers.get('content-type')).toBe('video/mp2t');
    expect((await segmentResponse.arrayBuffer()).byteLength).toBeGreaterThan(1000);

    expect(streamsOf(await probeMedia(hls.playlistUrl))).toEqual(EXPECTED_STREAMS);

    await hls.stop();
    expect(existsSync(hls.dir)).toBe(false);
    await expect(fetch(hls.playlistUrl)).rejects.toThrow();
    expectAllGone([hls]);
  }, 30_000);
});

describe('SRT', () => {
  it('lets one caller read the stream, then listens again with reaccept', async () => {
    const once = track(await startSrtSource(clip.path, { loop: true }));
    expect(once.url).toBe(`srt://127.0.0.1:${once.port}`);
    const again = track(await startSrtSource(clip.path, { loop: true, reaccept: true }));

    const [first, second] = await Promise.all([probeMedia(once.url), probeMedia(again.url)]);
    expect(streamsOf(first)).toEqual(EXPECTED_STREAMS);
    expect(streamsOf(second)).toEqual(EXPECTED_STREAMS);

    // Its caller gone, a plain listener's ffmpeg fails its next write and exits on its own.
    const exit = await once.exited;
    expect(exit.code).not.toBe(0);
    // With reaccept, a fresh listener takes the port and a second caller gets the stream from the start.
    await waitFor(
      'a second SRT listener',
      () => (again.pids().length >= 2 && udpPortBound(again.port)) || undefined,
    );
    expect(streamsOf(await probeMedia(again.url))).toEqual(EXPECTED_STREAMS);

    await Promise.all([once.stop(), again.stop()]);
    expectAllGone([once, again]);
  }, 40_000);
});

describe('HTTP server', () => {
  it('serves files with ranges, redirects, bodies, 404s and a hanging response', async () => {
    const http = track(
      await startHttpServer({
        '/clip.mp4': fileRoute(clip.path),
        '/moved': redirectRoute('/clip.mp4'),
        '/teapot': bodyRoute('short and stout', { status: 418 }),
        '/login': nonMediaResponse(),
        '/hang': hangingRoute(),
      }),
    );
    const size = (await readFile(clip.path)).length;
    const full = await fetch(http.url('/moved'));
    expect(full.status).toBe(200);
    expect(full.headers.get('content-type')).toBe('video/mp4');
    expect((await full.arrayBuffer()).byteLength).toBe(size);

    const part = await fetch(http.url('/clip.mp4'), { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${size}`);
    expect((await part.arrayBuffer()).byteLength).toBe(10);

    const teapot = await fetch(http.url('/teapot'));
    expect([teapot.status, await teapot.text()]).toEqual([418, 'short and stout']);
    const login = await fetch(http.url('/login'));
    expect([login.status, login.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(await login.text()).toContain('<html>');
    expect((await fetch(http.url('/nothing'))).status).toBe(404);
    await expect(fetch(http.url('/hang'), { signal: AbortSignal.timeout(300) })).rejects.toThrow();

    // ffprobe reads the progressive file through the redirect.
    expect(streamsOf(await probeMedia(http.url('/moved')))).toEqual(EXPECTED_STREAMS);
    expect(http.requests.map((r) => `${r.path} ${r.status}`)).toContain('/moved 302');
    await http.stop();
  }, 30_000);

  it('serves hostile HLS playlists whose segments are local files and ffmpeg protocols', async () => {
    const http = track(
      await startHttpServer({
        '/file.m3u8': hostileHlsPlaylist(),
        '/protocols.m3u8': hostileHlsPlaylist({ variant: 'protocols' }),
      }),
    );
    const files = await fetch(http.url('/file.m3u8'));
    expect(files.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    const fileText = await files.text();
    expect(fileText.startsWith('#EXTM3U\n')).toBe(true);
    expect(fileText).toContain('\nfile:///etc/passwd\n');
    const protocols = await (await fetch(http.url('/protocols.m3u8'))).text();
    for (const uri of HOSTILE_SEGMENT_URIS.protocols) expect(protocols).toContain(`\n${uri}\n`);
    expect(protocols).toContain('concat:');
    expect(protocols).toContain('subfile,');
  });
});
