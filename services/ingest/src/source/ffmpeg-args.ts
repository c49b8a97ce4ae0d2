/**
 * The ffmpeg argv of a source, as pure functions: reviewed like data, unit-tested (ffmpeg-args.test.ts), and
 * independent of fluent-ffmpeg so the adapter can move to `spawn(ffmpeg, argv, { shell: false })` unchanged.
 *
 * Safety choices (research/reliability.md §3):
 * - `-protocol_whitelist` per kind. Nested opens (HLS segments, keys, redirects) inherit it, so an HLS
 *   playlist cannot reach `file:`, `concat:`, `subfile:`, `data:` or `pipe:`.
 * - `-format_whitelist` per kind, inherited by nested demuxers (HLS segments, AVI GAB2 subtitles): a file or an
 *   HTTP URL can never be opened as a playlist (`hls`) or a concat list (`concat`), only as a media container.
 * - Never `-safe 0`, `-allowed_extensions ALL` or `-extension_picky 0` (`findUnsafeArgs` enforces it at run
 *   time too). The HLS demuxer keeps its default extension checks, which in Debian's 5.1.9 include the
 *   backported `allowed_segment_extensions`.
 * - `-max_pixels` on the decoder (decompression bombs), `-rw_timeout` on network reads (stalled sources).
 * - A local file is passed as `file:<path>`, so ffmpeg never reads a protocol out of a file name.
 */
import { isAbsolute } from 'node:path';
import { LiveLensError } from '@livelens/runtime';
import type { SourceKind, SourceSpec } from './types.js';

/** Container demuxers a media file (or a plain HTTP media URL) may be; names from `ffmpeg -demuxers` (5.1). */
export const CONTAINER_FORMATS: readonly string[] = [
  'mov',
  'mp4',
  'm4a',
  '3gp',
  '3g2',
  'mj2',
  'matroska',
  'webm',
  'flv',
  'mpegts',
  'wav',
  'mp3',
  'aac',
  'ogg',
  'avi',
];

/**
 * Protocols ffmpeg may use per kind, nested opens included. Never file/concat/subfile/data/pipe for a network
 * kind; `crypto` is for AES-128 HLS segments (it wraps an http(s) open, which the whitelist still checks).
 */
export const PROTOCOL_WHITELIST: Readonly<Record<SourceKind, readonly string[]>> = {
  rtmp: ['rtmp', 'rtmps', 'tcp', 'tls'],
  hls: ['http', 'https', 'tcp', 'tls', 'crypto'],
  http: ['http', 'https', 'tcp', 'tls', 'crypto'],
  srt: ['srt', 'udp'],
  file: ['file'],
};

/**
 * Demuxers ffmpeg may use per kind (the input and every nested demuxer). ffmpeg matches a whitelist entry
 * against any of a demuxer's comma-separated names (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`).
 */
export const FORMAT_WHITELIST: Readonly<Record<SourceKind, readonly string[]>> = {
  rtmp: ['flv', 'live_flv'],
  // Only what HLS carries: a wider list would let a segment smuggle a container with its own nested
  // playlist (the CVE-2017-9993 shape: an AVI whose GAB2 track is a playlist).
  hls: ['hls', 'mpegts', 'mov', 'mp4', 'm4a', 'aac', 'mp3', 'webvtt'],
  http: CONTAINER_FORMATS,
  srt: ['mpegts'],
  file: CONTAINER_FORMATS,
};

/** Protocols that read local data or splice other URLs: never in a network kind's whitelist. */
export const LOCAL_PROTOCOLS: readonly string[] = [
  'file',
  'concat',
  'concatf',
  'subfile',
  'data',
  'pipe',
  'fd',
];

/** Demuxers that open other URLs from their content: never in a file or plain-http whitelist. */
export const INDIRECT_FORMATS: readonly string[] = ['hls', 'concat', 'dash', 'image2', 'ffmetadata', 'tee'];

/**
 * The ffmpeg filter index of the `metadata=mode=print` filter in the video chain: ffmpeg names parsed filters
 * `Parsed_<name>_<index>`, and the per-frame lines are matched on that exact name (stderr.ts).
 */
export const PRINT_FILTER_NAME = 'Parsed_metadata_4';

/** The metadata key the chain adds to every sampled frame; printed last, it ends each frame's record. */
export const SAMPLE_MARKER_KEY = 'livelens.sample';

/** The argv split the way fluent-ffmpeg takes it, plus the flat argv ffmpeg receives. */
export interface FfmpegArgs {
  /** Global options and the input's options: everything before `-i`. */
  inputOptions: string[];
  /** The `-i` argument. */
  input: string;
  /** Options of output #0 (JPEGs on stdout), without its target. */
  videoOutputOptions: string[];
  /** Options of output #1 (PCM), without its target; absent when audio is off. */
  audioOutputOptions: string[] | undefined;
  /** Output #1's target (`unix:<path>`), absent when audio is off. */
  audioTarget: string | undefined;
  /** The full argv after the program name, in ffmpeg's order. */
  argv: string[];
}

/**
 * The ffmpeg filter expression that picks frames: the first frame, then the first frame of each 1/fps slot
 * of stream time, plus (threshold > 0) any frame whose scene score exceeds the threshold.
 *
 * A slot grid (`floor(t*fps)`) instead of `gte(t-prev_selected_t,1/fps)`: the latter drifts late by up to a
 * frame per sample (at 25 fps and 2 fps it takes 0, 0.52, 1.04, ... = 1.92 fps), the grid does not. A frame
 * earlier than the previous pick (a timestamp reset ffmpeg did not smooth out) is taken too, so sampling
 * never stalls until the clock catches up.
 */
export function selectExpression(frameRateFps: number, sceneChangeThreshold: number): string {
  const fps = formatNumber(frameRateFps);
  const terms = [
    'isnan(prev_selected_t)',
    `gt(floor(t*${fps}),floor(prev_selected_t*${fps}))`,
    'lt(t,prev_selected_t)',
  ];
  if (sceneChangeThreshold > 0) terms.push(`gt(scene,${formatNumber(sceneChangeThreshold)})`);
  return terms.join('+');
}

/**
 * The video filter chain. The filter order is load-bearing: `PRINT_FILTER_NAME` is the fifth filter.
 * 1. `metadata=mode=delete` drops all frame metadata the decoder attached (EXIF and the like, chosen by the
 *    stream), so nothing the stream controls reaches the printed lines.
 * 2. `select` samples (and sets `lavfi.scene_score` when the scene term is on).
 * 3. `scale` to at most maxHeight, even height, never up; width `-2` keeps the aspect and makes it even.
 * 4. `metadata=mode=add` marks the frame, so (5) prints a record for every frame, scene term or not, and the
 *    marker line ends it.
 * 5. `metadata=mode=print` logs `frame:N pts:P pts_time:T` and `key=value` lines at info level on stderr.
 */
export function buildVideoFilter(spec: SourceSpec): string {
  const maxHeight = Math.floor(spec.maxHeight / 2) * 2;
  return [
    'metadata=mode=delete',
    `select='${selectExpression(spec.frameRateFps, spec.sceneChangeThreshold)}'`,
    `scale=w=-2:h='min(trunc(ih/2)*2,${maxHeight})'`,
    `metadata=mode=add:key=${SAMPLE_MARKER_KEY}:value=1`,
    'metadata=mode=print',
  ].join(',');
}

/**
 * The full argv. `audioSocketPath` is the unix socket ffmpeg writes PCM to (see audio-socket.ts); undefined
 * turns audio off (inputs without an audio stream, see ffmpeg-source.ts).
 */
export function buildFfmpegArgs(spec: SourceSpec, audioSocketPath: string | undefined): FfmpegArgs {
  validateSourceSpec(spec);
  const network = spec.kind !== 'file';
  const inputOptions = [
    '-nostdin',
    '-hide_banner',
    '-nostats',
    // info is the level the metadata filter prints its per-frame lines at.
    '-loglevel',
    'info',
    '-protocol_whitelist',
    PROTOCOL_WHITELIST[spec.kind].join(','),
    '-format_whitelist',
    FORMAT_WHITELIST[spec.kind].join(','),
    ...(network ? ['-rw_timeout', String(Math.round(spec.rwTimeoutMs * 1000))] : []),
    ...(spec.realtime ? ['-re'] : []),
    '-max_pixels',
    String(spec.maxPixels),
  ];
  const input = spec.kind === 'file' ? `file:${spec.input}` : spec.input;
  const videoOutputOptions = [
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
    '-filter:v',
    buildVideoFilter(spec),
    // passthrough, not vfr: vfr may still drop a frame whose timestamp rounds onto the previous one, and every
    // filtered frame must become exactly one JPEG for the stderr matcher (frame-matcher.ts). image2pipe
    // writes no timestamps, so duplicate or unordered ones cannot fail the muxer.
    '-fps_mode',
    'passthrough',
    '-c:v',
    'mjpeg',
    '-q:v',
    String(spec.jpegQuality),
    // mjpeg can frame-thread; a frame-threaded encoder holds finished frames back. Measured on ffmpeg 5.1
    // with -re at 2 fps: -threads 4 or 8 delivered every JPEG one sampled frame late (+500 ms; +1 s at
    // 1 fps), -threads 1 on time. One thread encodes a sampled frame in milliseconds.
    '-threads',
    '1',
    '-f',
    'image2pipe',
    '-flush_packets',
    '1',
  ];
  const audioOutputOptions =
    audioSocketPath === undefined
      ? undefined
      : [
          '-map',
          '0:a:0?',
          '-vn',
          '-sn',
          '-dn',
          // async=1 fills gaps with silence and trims overlaps (a gapless track); first_pts=0 pads the start
          // with silence when audio starts after video, so sample n is at n/16 ms on the video's clock
          // (ffmpeg-source.int.test.ts "late audio is padded").
          '-filter:a',
          'aresample=16000:async=1:first_pts=0',
          '-ac',
          '1',
          '-c:a',
          'pcm_s16le',
          '-f',
          's16le',
          '-flush_packets',
          '1',
        ];
  const audioTarget = audioSocketPath === undefined ? undefined : `unix:${audioSocketPath}`;
  const argv = [
    ...inputOptions,
    '-i',
    input,
    ...videoOutputOptions,
    'pipe:1',
    ...(audioOutputOptions && audioTarget ? [...audioOutputOptions, audioTarget] : []),
  ];
  const unsafe = findUnsafeArgs(argv);
  if (unsafe.length > 0) {
    throw new LiveLensError(`unsafe ffmpeg arguments: ${unsafe.join('; ')}`, { code: 'internal' });
  }
  return { inputOptions, input, videoOutputOptions, audioOutputOptions, audioTarget, argv };
}

/**
 * Problems that must never be in a source argv: options that disable ffmpeg's file and extension checks,
 * local protocols in a network whitelist, playlist or concat demuxers where a single container is expected.
 * Empty when the argv is safe.
 */
export function findUnsafeArgs(argv: readonly string[]): string[] {
  const problems: string[] = [];
  const optionValue = (option: string): string | undefined => {
    const at = argv.indexOf(option);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  argv.forEach((arg, at) => {
    const next = argv[at + 1];
    if (arg === '-safe' && next === '0') problems.push('-safe 0');
    if (arg === '-allowed_extensions' && next?.toUpperCase() === 'ALL')
      problems.push('-allowed_extensions ALL');
    if (arg === '-allowed_segment_extensions' && next?.toUpperCase() === 'ALL') {
      problems.push('-allowed_segment_extensions ALL');
    }
    if (arg === '-extension_picky' && next === '0') problems.push('-extension_picky 0');
  });
  const protocols = optionValue('-protocol_whitelist')?.split(',');
  const formats = optionValue('-format_whitelist')?.split(',');
  if (!protocols) problems.push('no -protocol_whitelist');
  if (!formats) problems.push('no -format_whitelist');
  if (protocols && formats) {
    const local = protocols.includes('file');
    if (local && protocols.length > 1)
      problems.push(`file mixed with other protocols: ${protocols.join(',')}`);
    for (const p of protocols) {
      if (p !== 'file' && LOCAL_PROTOCOLS.includes(p)) problems.push(`local protocol ${p} in the whitelist`);
    }
    for (const f of formats) {
      if (f === 'hls' && local) problems.push('hls demuxer allowed for a local file');
      if (f !== 'hls' && INDIRECT_FORMATS.includes(f))
        problems.push(`indirect demuxer ${f} in the whitelist`);
    }
  }
  return problems;
}

const SCHEMES: Readonly<Record<Exclude<SourceKind, 'file'>, RegExp>> = {
  rtmp: /^rtmps?:\/\//i,
  hls: /^https?:\/\//i,
  http: /^https?:\/\//i,
  srt: /^srt:\/\//i,
};

/**
 * Checks a spec before anything is spawned. url-policy has already validated the input; this re-checks the
 * kind/scheme pairing (a whitelist only protects the kind it was chosen for) and every number's range.
 * @throws LiveLensError 'invalid_argument' naming the field, the expected and the actual value.
 */
export function validateSourceSpec(spec: SourceSpec): void {
  const fail = (field: string, expected: string, actual: unknown): never => {
    throw new LiveLensError(
      `invalid source spec: ${field} must be ${expected}, got ${field === 'input' ? '(redacted)' : String(actual)}`,
      { code: 'invalid_argument', context: { field } },
    );
  };
  if (!(spec.kind in PROTOCOL_WHITELIST)) fail('kind', 'one of rtmp, hls, http, srt, file', spec.kind);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (typeof spec.input !== 'string' || spec.input.length === 0 || /[\u0000-\u001f\u007f]/.test(spec.input)) {
    fail('input', 'a non-empty string without control characters', spec.input);
  }
  if (spec.kind === 'file') {
    if (!isAbsolute(spec.input)) fail('input', 'an absolute path for kind file', spec.input);
  } else if (!SCHEMES[spec.kind].test(spec.input)) {
    fail('input', `a URL whose scheme matches kind ${spec.kind}`, spec.input);
  }
  const range = (
    field: keyof SourceSpec,
    min: number,
    max: number,
    integer: boolean,
    exclusiveMin = false,
  ) => {
    const value = spec[field];
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (exclusiveMin ? value > min : value >= min) &&
      value <= max &&
      (!integer || Number.isInteger(value));
    if (!ok)
      fail(
        field,
        `${integer ? 'an integer' : 'a number'} in ${exclusiveMin ? '(' : '['}${min}, ${max}]`,
        value,
      );
  };
  range('frameRateFps', 0, 60, false, true);
  if (spec.frameRateFps < 0.001) fail('frameRateFps', 'at least 0.001', spec.frameRateFps);
  range('sceneChangeThreshold', 0, 1, false);
  range('maxHeight', 2, 8192, true);
  range('audioChunkMs', 10, 60_000, true);
  range('rwTimeoutMs', 1, 3_600_000, true);
  range('maxFrameBytes', 1024, 256 * 1024 * 1024, true);
  range('maxPixels', 1, 2 ** 31 - 1, true);
  range('jpegQuality', 2, 31, true);
  if (typeof spec.realtime !== 'boolean') fail('realtime', 'a boolean', spec.realtime);
}

/** Plain decimal, never exponent notation (ffmpeg's expression parser reads `1e-7` but not every form). */
function formatNumber(value: number): string {
  return Number.parseFloat(value.toFixed(6)).toString();
}
