import { createReadStream, existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { waitFor } from '../index.js';
import { MediaFixtureError } from './errors.js';
import { probeMedia } from './probe.js';
import {
  type ExitInfo,
  freeTcpPort,
  freeUdpPort,
  type ManagedProcess,
  processTempDir,
  type StopOptions,
  spawnManaged,
  tcpPortAccepts,
  udpPortBound,
} from './process.js';

/** Where Debian's libnginx-mod-rtmp puts the module (nginx's --modules-path is /usr/lib/nginx/modules). */
export const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

/** How far an ffmpeg source has got, from its `-progress` output. */
export interface FfmpegProgress {
  /** Media time written so far, in seconds (0 before the first report, every 0.5 s). */
  readonly outTimeS: number;
  /** Video frames written so far. */
  readonly frames: number;
  /** Bytes written so far. */
  readonly bytes: number;
}

/** Something started here that runs until stopped. */
export interface StoppableHandle {
  /** Kills what it started (SIGTERM, then SIGKILL after the grace period), waits until reaped, frees ports. */
  stop(options?: StopOptions): Promise<void>;
  /** Every process id this handle spawned: after `stop()` none of them exists any more. */
  pids(): number[];
}

/** An ffmpeg process feeding a live source. */
export interface FfmpegSource extends StoppableHandle {
  /** The ffmpeg running now. */
  readonly pid: number;
  /** Resolves when the current ffmpeg exits (the file ended without `loop`, the reader left, or `stop()`). */
  readonly exited: Promise<ExitInfo>;
  progress(): FfmpegProgress;
}

const READY_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------- ffmpeg plumbing

interface FfmpegRun {
  readonly proc: ManagedProcess;
  progress(): FfmpegProgress;
}

/** Starts ffmpeg with `-progress pipe:1` so that readiness is "it has written media", not a guess. */
async function startFfmpeg(args: readonly string[]): Promise<FfmpegRun> {
  let current = { outTimeS: 0, frames: 0, bytes: 0 };
  let pending = '';
  const proc = await spawnManaged(
    'ffmpeg',
    [
      '-nostdin',
      '-hide_banner',
      '-v',
      'error',
      '-nostats',
      '-progress',
      'pipe:1',
      '-stats_period',
      '0.5',
      ...args,
    ],
    {
      onStdout: (chunk) => {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const [key, value = ''] = line.trim().split('=', 2);
          const n = Number(value);
          if (!Number.isFinite(n)) continue; // "N/A" before the first packet
          if (key === 'out_time_us') current = { ...current, outTimeS: n / 1e6 };
          else if (key === 'frame') current = { ...current, frames: n };
          else if (key === 'total_size') current = { ...current, bytes: n };
        }
      },
    },
  );
  return { proc, progress: () => current };
}

function inputArgs(file: string, loop: boolean): string[] {
  if (!existsSync(file)) {
    throw new MediaFixtureError(`no such media file: ${file}`, { code: 'invalid_options' });
  }
  // -re: read at the file's own pace, as a camera or an encoder would deliver it.
  return ['-re', ...(loop ? ['-stream_loop', '-1'] : []), '-i', file];
}

/** `-c copy` when the file is already H.264 + AAC/MP3 (what FLV and MPEG-TS carry), else a fast re-encode. */
async function codecArgs(file: string, reencode: boolean | 'auto'): Promise<string[]> {
  let copy = reencode === false;
  if (reencode === 'auto') {
    const { streams } = await probeMedia(file);
    const video = streams.filter((s) => s.codec_type === 'video');
    const audio = streams.filter((s) => s.codec_type === 'audio');
    copy =
      video.every((s) => s.codec_name === 'h264') &&
      audio.every((s) => s.codec_name === 'aac' || s.codec_name === 'mp3');
  }
  if (copy) return ['-c', 'copy'];
  return [
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-g',
    '25',
    '-c:a',
    'aac',
    '-ar',
    '44100',
  ];
}

/** Waits until `ready()` is true, failing early (with ffmpeg's/nginx's stderr) when the process exits. */
async function waitReady(
  what: string,
  proc: ManagedProcess,
  ready: () => boolean | Promise<boolean>,
  extraLog: () => Promise<string> = async () => '',
): Promise<void> {
  try {
    await waitFor(
      what,
      async () => {
        if (!proc.running()) {
          const log = `${proc.stderrTail()}${await extraLog()}`;
          throw new MediaFixtureError(`${proc.name} exited before ${what}`, {
            code: 'not_ready',
            tool: proc.name,
            stderr: log,
          });
        }
        return (await ready()) ? true : undefined;
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 50 },
    );
  } catch (error) {
    await proc.stop({ abrupt: true });
    if (error instanceof MediaFixtureError) throw error;
    throw new MediaFixtureError(`${proc.name} not ready: ${(error as Error).message}`, {
      code: 'not_ready',
      cause: error,
      tool: proc.name,
      stderr: `${proc.stderrTail()}${await extraLog()}`,
    });
  }
}

const PORT_ATTEMPTS = 3;
const portTaken = (error: unknown) =>
  error instanceof MediaFixtureError && /address already in use/i.test(error.stderr ?? '');

// ---------------------------------------------------------------- RTMP (nginx-rtmp)

/** A real nginx with the RTMP module, on its own port, with its own config and logs in a temp dir. */
export interface RtmpServer extends StoppableHandle {
  readonly port: number;
  /** `rtmp://127.0.0.1:PORT/live/KEY`: publish to it, play from it. */
  url(streamKey: string): string;
  /** nginx's error log (info level: connects, publishes, plays). */
  readonly logPath: string;
}

/**
 * Starts nginx (`daemon off; master_process off;`: one process, our child) with an `rtmp` block whose
 * application `live` relays what is published to whoever plays the same key. No http block, so nothing
 * listens on port 80. Resolves once the port accepts connections (typically 20-50 ms).
 */
export async function startRtmpServer({
  modulePath = NGINX_RTMP_MODULE,
}: {
  modulePath?: string;
} = {}): Promise<RtmpServer> {
  if (!existsSync(modulePath)) {
    throw new MediaFixtureError(
      `nginx RTMP module not found at ${modulePath}; install nginx and libnginx-mod-rtmp: bash deploy/local/stack.sh up`,
      { code: 'missing_tool', tool: 'nginx' },
    );
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRtmpServerOnce(modulePath);
    } catch (error) {
      if (attempt >= PORT_ATTEMPTS || !portTaken(error)) throw error;
    }
  }
}

async function startRtmpServerOnce(modulePath: string): Promise<RtmpServer> {
  const dir = processTempDir('rtmp');
  const port = await freeTcpPort();
  const logPath = join(dir, 'error.log');
  const confPath = join(dir, 'nginx.conf');
  await writeFile(
    confPath,
    `# Generated by @livelens/test-support startRtmpServer().
load_module ${modulePath};
daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log ${logPath} info;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:${port};
    chunk_size 4096;
    application live {
      live on;
      record off;
    }
  }
}
`,
  );
  const readLog = async () => readFile(logPath, 'utf8').catch(() => '');
  let proc: ManagedProcess;
  try {
    // -p: prefix for relative paths; -e: the error log before the config is read (nginx >= 1.19.5).
    proc = await spawnManaged('nginx', ['-p', `${dir}/`, '-c', confPath, '-e', logPath]);
    await waitReady(`nginx-rtmp to accept on 127.0.0.1:${port}`, proc, () => tcpPortAccepts(port), readLog);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    logPath,
    url: (streamKey) => `rtmp://127.0.0.1:${port}/live/${encodeURIComponent(streamKey)}`,
    pids: () => [proc.pid],
    stop: async (options) => {
      await proc.stop(options);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Options for `publishRtmp`. */
export interface PublishOptions {
  /** Repeat the file forever (`-stream_loop -1`). @default false */
  readonly loop?: boolean;
  /** `'auto'` copies H.264/AAC and re-encodes anything else. @default 'auto' */
  readonly reencode?: boolean | 'auto';
  /** Resolve only once ffmpeg has sent media (connected and published). @default true */
  readonly waitUntilSending?: boolean;
}

/**
 * Publishes `file` to `url` in real time (`ffmpeg -re [-stream_loop -1] -i FILE -c copy -f flv URL`), like
 * OBS would. `stop()` is "the source dies mid-stream" (`{ abrupt: true }`: without closing the RTMP
 * session). nginx-rtmp refuses a second publisher on a key that is being published.
 */
export async function publishRtmp(
  file: string,
  url: string,
  options: PublishOptions = {},
): Promise<FfmpegSource> {
  const { loop = false, reencode = 'auto', waitUntilSending = true } = options;
  const run = await startFfmpeg([
    ...inputArgs(file, loop),
    ...(await codecArgs(file, reencode)),
    '-f',
    'flv',
    url,
  ]);
  if (waitUntilSending) {
    await waitReady(`ffmpeg to publish to ${url}`, run.proc, () => run.progress().outTimeS > 0);
  }
  return sourceHandle(run);
}

function sourceHandle(run: FfmpegRun, cleanup: () => Promise<void> = async () => undefined): FfmpegSource {
  return {
    pid: run.proc.pid,
    exited: run.proc.exited,
    progress: run.progress,
    pids: () => [run.proc.pid],
    stop: async (options) => {
      await run.proc.stop(options);
      await cleanup();
    },
  };
}

// ---------------------------------------------------------------- live HLS

/** Options for `startHlsLive`. */
export interface HlsLiveOptions {
  /** @default false */
  readonly loop?: boolean;
  /** Target segment length (`-hls_time`); segments are cut at keyframes. @default 1 */
  readonly segmentS?: number;
  /** Segments kept in the playlist (`-hls_list_size`); older ones are deleted. @default 6 */
  readonly listSize?: number;
  /** Resolve once the playlist lists this many segments. @default 2 */
  readonly minSegments?: number;
  /** @default 'auto' */
  readonly reencode?: boolean | 'auto';
}

/** A live HLS stream: ffmpeg writing a sliding playlist, served over real HTTP. */
export interface HlsLive extends FfmpegSource {
  /** `http://127.0.0.1:PORT/hls/live.m3u8` */
  readonly playlistUrl: string;
  /** The directory ffmpeg writes the playlist and segments into. */
  readonly dir: string;
  /** The HTTP server, e.g. for its request log. */
  readonly http: HttpServer;
}

/**
 * ffmpeg `-re` writes a LIVE playlist (`-f hls -hls_time 1 -hls_list_size 6
 * -hls_flags delete_segments+omit_endlist+temp_file`) into a temp dir, and a node `http` server on 127.0.0.1
 * serves it. There is never an `#EXT-X-ENDLIST`: when the file ends (without `loop`) or `stop()` kills
 * ffmpeg, the playlist simply stops growing, as a dead live stream does. Resolves once the playlist lists
 * `minSegments` segments (about `minSegments * segmentS` seconds after the start).
 */
export async function startHlsLive(file: string, options: HlsLiveOptions = {}): Promise<HlsLive> {
  const { loop = false, segmentS = 1, listSize = 6, minSegments = 2, reencode = 'auto' } = options;
  const dir = processTempDir('hls');
  const playlist = join(dir, 'live.m3u8');
  const http = await startHttpServer({ '/hls/': dirRoute(dir) });
  let run: FfmpegRun;
  try {
    run = await startFfmpeg([
      ...inputArgs(file, loop),
      ...(await codecArgs(file, reencode)),
      '-f',
      'hls',
      '-hls_time',
      String(segmentS),
      '-hls_list_size',
      String(listSize),
      // temp_file: segments appear under their name only when complete, so a reader never gets half of one.
      '-hls_flags',
      'delete_segments+omit_endlist+temp_file',
      '-hls_segment_filename',
      join(dir, 'seg-%05d.ts'),
      playlist,
    ]);
    const segmentsListed = async () => {
      const text = await readFile(playlist, 'utf8').catch(() => '');
      return (text.match(/^#EXTINF:/gm) ?? []).length >= minSegments;
    };
    await waitReady(`the HLS playlist to list ${minSegments} segments`, run.proc, segmentsListed);
  } catch (error) {
    await http.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const handle = sourceHandle(run, async () => {
    await http.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { ...handle, playlistUrl: http.url('/hls/live.m3u8'), dir, http };
}

// ---------------------------------------------------------------- SRT

/** Options for `startSrtSource`. */
export interface SrtSourceOptions {
  /** @default false */
  readonly loop?: boolean;
  /**
   * Listen again after a caller leaves (a fresh ffmpeg on the same port, the file from the start), so an
   * ingest that reconnects finds the source again. Without it, the source is gone after the first caller.
   * @default false
   */
  readonly reaccept?: boolean;
  /** @default 'auto' */
  readonly reencode?: boolean | 'auto';
}

/** An SRT listener that sends MPEG-TS to the one caller that connects. */
export interface SrtSource extends FfmpegSource {
  /** `srt://127.0.0.1:PORT` (the caller's side; mode=caller is SRT's default). */
  readonly url: string;
  readonly port: number;
}

/**
 * ffmpeg `-re -i FILE -c copy -f mpegts 'srt://127.0.0.1:PORT?mode=listener'`. Start it BEFORE the
 * caller: an SRT caller that finds no listener fails after its connect timeout (3 s by default in ffmpeg).
 * The listener waits for a caller forever (libsrt `listen_timeout` -1); ffmpeg opens its output before it
 * reads the input, so the caller gets the file from its first frame, however long it took to connect. A
 * listener serves ONE caller: when that caller disconnects, ffmpeg's next write fails and it exits (see
 * `reaccept`); a second caller while the first is connected fails after ~3 s. Resolves once the UDP port is
 * bound (read from /proc/net/udp).
 */
export async function startSrtSource(file: string, options: SrtSourceOptions = {}): Promise<SrtSource> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSrtSourceOnce(file, options);
    } catch (error) {
      if (attempt >= PORT_ATTEMPTS || !portTaken(error)) throw error;
    }
  }
}

async function startSrtSourceOnce(file: string, options: SrtSourceOptions): Promise<SrtSource> {
  const { loop = false, reaccept = false, reencode = 'auto' } = options;
  const port = await freeUdpPort();
  const args = [
    ...inputArgs(file, loop),
    ...(await codecArgs(file, reencode)),
    '-f',
    'mpegts',
    `srt://127.0.0.1:${port}?mode=listener&pkt_size=1316`,
  ];
  const spawned: number[] = [];
  let stopping = false;
  let current = await startFfmpeg(args);
  spawned.push(current.proc.pid);
  await waitReady(`the SRT listener to bind UDP 127.0.0.1:${port}`, current.proc, () => udpPortBound(port));

  let relaunching: Promise<void> = Promise.resolve();
  const relaunchOnExit = (run: FfmpegRun) => {
    void run.proc.exited.then(() => {
      if (stopping || !reaccept) return;
      relaunching = startFfmpeg(args).then(
        (next) => {
          current = next;
          spawned.push(next.proc.pid);
          relaunchOnExit(next);
        },
        (error: unknown) => {
          // Nothing to hand the error to: the next caller will find no listener and say so.
          console.error('[test-support] SRT source could not listen again', error);
        },
      );
    });
  };
  relaunchOnExit(current);

  return {
    url: `srt://127.0.0.1:${port}`,
    port,
    get pid() {
      return current.proc.pid;
    },
    get exited() {
      return current.proc.exited;
    },
    progress: () => current.progress(),
    pids: () => [...spawned],
    stop: async (stopOptions) => {
      stopping = true;
      await relaunching;
      await current.proc.stop(stopOptions);
    },
  };
}

// ---------------------------------------------------------------- HTTP

/** What the HTTP server answers on one path. Build them with the helpers below. */
export type HttpRoute =
  /** A file, with Range support (progressive download) and a content type from its extension. */
  | { readonly kind: 'file'; readonly path: string; readonly contentType?: string }
  /** Files under a directory; the route's path must end with '/'. No `..` escapes. */
  | { readonly kind: 'dir'; readonly path: string }
  /** A fixed body with a status and content type. */
  | {
      readonly kind: 'body';
      readonly body: string | Uint8Array;
      readonly status?: number;
      readonly contentType?: string;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** A redirect to `location` (absolute, or a path on this server). */
  | { readonly kind: 'redirect'; readonly location: string; readonly status?: 301 | 302 | 303 | 307 | 308 }
  /** Accepts the request and never answers (the socket stays open until `stop()`): for read timeouts. */
  | { readonly kind: 'hang' };

/** Routes by exact path (no query string); keys ending in '/' are directory prefixes. */
export type HttpRoutes = Readonly<Record<string, HttpRoute>>;

/** A request the server saw. */
export interface HttpRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly range: string | undefined;
}

/** A small real HTTP server on 127.0.0.1. */
export interface HttpServer extends StoppableHandle {
  readonly port: number;
  /** `http://127.0.0.1:PORT` + path */
  url(path: string): string;
  /** Adds or replaces a route while running. */
  setRoute(path: string, route: HttpRoute): void;
  /** Every request so far, in order. */
  readonly requests: readonly HttpRequestRecord[];
}

export const fileRoute = (path: string, contentType?: string): HttpRoute => ({
  kind: 'file',
  path,
  contentType,
});
export const dirRoute = (path: string): HttpRoute => ({ kind: 'dir', path });
export const bodyRoute = (
  body: string | Uint8Array,
  { status = 200, contentType = 'text/plain; charset=utf-8' }: { status?: number; contentType?: string } = {},
): HttpRoute => ({ kind: 'body', body, status, contentType });
export const redirectRoute = (location: string, status: 301 | 302 | 303 | 307 | 308 = 302): HttpRoute => ({
  kind: 'redirect',
  location,
  status,
});
export const hangingRoute = (): HttpRoute => ({ kind: 'hang' });

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.mp4': 'video/mp4',
  '.m4s': 'video/iso.segment',
  '.flv': 'video/x-flv',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.wav': 'audio/wav',
  '.aac': 'audio/aac',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Starts a node `http` server on 127.0.0.1 (an OS-picked port, so no race) serving `routes`; anything else
 * is 404. For progressive files, redirects and hostile responses (see `hostileHlsPlaylist`,
 * `nonMediaResponse`, `hangingRoute`).
 */
export async function startHttpServer(routes: HttpRoutes = {}): Promise<HttpServer> {
  const table = new Map<string, HttpRoute>(Object.entries(routes));
  const requests: HttpRequestRecord[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    res.on('finish', () =>
      requests.push({ method: req.method ?? 'GET', path, status: res.statusCode, range: req.headers.range }),
    );
    serve(table, path, req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolveListen);
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`,
    setRoute: (path, route) => table.set(path, route),
    requests,
    pids: () => [],
    stop: async () => {
      // Hanging and keep-alive connections would keep close() waiting forever.
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  };
}

async function serve(table: Map<string, HttpRoute>, path: string, req: IncomingMessage, res: ServerResponse) {
  let route = table.get(path);
  let filePath: string | undefined;
  if (!route) {
    for (const [prefix, candidate] of table) {
      if (candidate.kind === 'dir' && prefix.endsWith('/') && path.startsWith(prefix)) {
        const root = resolve(candidate.path);
        const target = normalize(join(root, decodeURIComponent(path.slice(prefix.length))));
        if (target.startsWith(root + sep)) {
          route = candidate;
          filePath = target;
        }
        break;
      }
    }
  }
  if (!route) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  switch (route.kind) {
    case 'hang':
      return; // never answered; stop() closes the socket
    case 'redirect':
      res.writeHead(route.status ?? 302, { location: route.location }).end();
      return;
    case 'body': {
      const headers = { 'content-type': route.contentType ?? 'text/plain', ...route.headers };
      res.writeHead(route.status ?? 200, headers).end(req.method === 'HEAD' ? undefined : route.body);
      return;
    }
    case 'file':
      await sendFile(route.path, route.contentType, req, res);
      return;
    case 'dir':
      await sendFile(filePath ?? route.path, undefined, req, res);
      return;
  }
}

async function sendFile(
  path: string,
  contentType: string | undefined,
  req: IncomingMessage,
  res: ServerResponse,
) {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a file');
    size = info.size;
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); // e.g. an HLS segment already deleted
    return;
  }
  const type = contentType ?? CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
  const headers: Record<string, string | number> = {
    'content-type': type,
    'accept-ranges': 'bytes',
    // Live playlists change every segment: no caching anywhere.
    'cache-control': 'no-cache',
  };
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (range && (range[1] || range[2])) {
    if (range[1]) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    } else {
      start = Math.max(0, size - Number(range[2])); // suffix range: the last N bytes
    }
    if (start > end || start >= size) {
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['content-length'] = end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  createReadStream(path, { start, end }).pipe(res);
}

// ---------------------------------------------------------------- hostile responses

/**
 * The segment URIs of `hostileHlsPlaylist`: local files through `file:`, and ffmpeg's `concat:` and
 * `subfile,` protocols (the classic ffmpeg HLS SSRF / local-file-read payloads). An ingest must never open them.
 */
export const HOSTILE_SEGMENT_URIS = {
  file: ['file:///etc/passwd', 'file:///etc/hostname'],
  protocols: ['concat:/etc/passwd|/etc/hostname', 'subfile,,start,0,end,0,,:/etc/passwd'],
} as const;

/**
 * A well-formed HLS media playlist (served as application/vnd.apple.mpegurl) whose segments point at local
 * files: `variant: 'file'` uses `file:///etc/passwd`, `'protocols'` uses `concat:` and `subfile,` entries.
 */
export function hostileHlsPlaylist({ variant = 'file' }: { variant?: 'file' | 'protocols' } = {}): HttpRoute {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0'];
  for (const uri of HOSTILE_SEGMENT_URIS[variant]) lines.push('#EXTINF:2.0,', uri);
  lines.push('#EXT-X-ENDLIST', '');
  return bodyRoute(lines.join('\n'), { contentType: 'application/vnd.apple.mpegurl' });
}

/** A 200 text/html page where a stream was expected (a login page, a CDN error page). */
export function nonMediaResponse(): HttpRoute {
  return bodyRoute(
    '<!doctype html>\n<html><head><title>Sign in</title></head><body><form>Please sign in</form></body></html>\n',
    { contentType: 'text/html; charset=utf-8' },
  );
}
