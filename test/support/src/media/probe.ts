import { runTool } from './process.js';

/** One stream as `ffprobe -show_streams -of json` reports it (the fields tests look at). */
export interface ProbedStream {
  readonly index: number;
  readonly codec_type: 'video' | 'audio' | 'data' | 'subtitle' | string;
  readonly codec_name?: string;
  readonly width?: number;
  readonly height?: number;
  /** "25/1" */
  readonly avg_frame_rate?: string;
  readonly r_frame_rate?: string;
  /** "44100" */
  readonly sample_rate?: string;
  readonly channels?: number;
  /** Seconds, as a string ("10.000000"); absent for live inputs. */
  readonly duration?: string;
}

/** What `probeMedia` returns. */
export interface ProbeResult {
  readonly streams: readonly ProbedStream[];
  readonly format: { readonly format_name?: string; readonly duration?: string };
}

/** Options for `probeMedia`. */
export interface ProbeOptions {
  /**
   * How long ffprobe may take; live inputs (RTMP, SRT, HLS) are read in real time.
   * @default 20000
   */
  readonly timeoutMs?: number;
  /**
   * Microseconds of input ffprobe reads to find the streams' parameters. Its own default (5 s) makes a
   * real-time source take 5 s to probe; 2 s is enough for the clips made here (a keyframe every second).
   * @default 2000000
   */
  readonly analyzeDurationUs?: number;
  /** More ffprobe arguments, placed before the input (e.g. `['-rw_timeout', '5000000']`). */
  readonly extraArgs?: readonly string[];
}

/** `ffprobe -v error -show_streams -show_format -of json INPUT` (a path or a URL) and its parsed answer. */
export async function probeMedia(input: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const { timeoutMs = 20_000, analyzeDurationUs = 2_000_000, extraArgs = [] } = options;
  const out = await runTool(
    'ffprobe',
    [
      '-v',
      'error',
      '-analyzeduration',
      String(analyzeDurationUs),
      ...extraArgs,
      '-show_streams',
      '-show_format',
      '-of',
      'json',
      input,
    ],
    { timeoutMs },
  );
  const parsed = JSON.parse(out.toString('utf8')) as Partial<ProbeResult>;
  return { streams: parsed.streams ?? [], format: parsed.format ?? {} };
}

/** Mono audio as floats in [-1, 1]. */
export interface DecodedAudio {
  readonly samples: Float32Array;
  readonly sampleRate: number;
}

/** Decodes the first audio stream to mono 16-bit PCM at `sampleRate` (via ffmpeg) and returns it as floats. */
export async function decodeAudio(
  path: string,
  { sampleRate = 16_000 }: { sampleRate?: number } = {},
): Promise<DecodedAudio> {
  const pcm = await runTool('ffmpeg', [
    '-nostdin',
    '-v',
    'error',
    '-i',
    path,
    '-map',
    '0:a:0',
    '-ac',
    '1',
    '-ar',
    String(sampleRate),
    '-f',
    's16le',
    'pipe:1',
  ]);
  const samples = new Float32Array(Math.floor(pcm.length / 2));
  for (let i = 0; i < samples.length; i++) samples[i] = pcm.readInt16LE(i * 2) / 32768;
  return { samples, sampleRate };
}

/** RMS level in dBFS of `samples` between `fromS` and `toS` (-Infinity for digital silence). */
export function rmsDb({ samples, sampleRate }: DecodedAudio, fromS: number, toS: number): number {
  const start = Math.max(0, Math.floor(fromS * sampleRate));
  const end = Math.min(samples.length, Math.floor(toS * sampleRate));
  if (end <= start) return Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (let i = start; i < end; i++) {
    const s = samples[i] ?? 0;
    sum += s * s;
  }
  return 10 * Math.log10(sum / (end - start));
}

/**
 * One decoded frame at `atS`, scaled to `width`x`height` 8-bit gray: for checking what is on screen
 * (an overlay, a scene cut) without image libraries.
 */
export async function grayFrame(
  path: string,
  atS: number,
  { width = 160, height = 90 }: { width?: number; height?: number } = {},
): Promise<{ pixels: Uint8Array; width: number; height: number }> {
  const raw = await runTool('ffmpeg', [
    '-nostdin',
    '-v',
    'error',
    '-ss',
    String(atS),
    '-i',
    path,
    '-frames:v',
    '1',
    '-vf',
    `scale=${width}:${height},format=gray`,
    '-f',
    'rawvideo',
    'pipe:1',
  ]);
  if (raw.length !== width * height) {
    throw new Error(`expected ${width * height} gray bytes from ${path} at ${atS}s, got ${raw.length}`);
  }
  return { pixels: new Uint8Array(raw), width, height };
}

/**
 * Mean absolute difference (0-255) between two gray frames inside a rectangle given in fractions of the
 * frame (`{ x: 0, y: 0.75, w: 1, h: 0.25 }` is the bottom quarter).
 */
export function meanAbsDiff(
  a: { pixels: Uint8Array; width: number; height: number },
  b: { pixels: Uint8Array; width: number; height: number },
  region: { x: number; y: number; w: number; h: number } = { x: 0, y: 0, w: 1, h: 1 },
): number {
  const x0 = Math.floor(region.x * a.width);
  const y0 = Math.floor(region.y * a.height);
  const x1 = Math.min(a.width, Math.ceil((region.x + region.w) * a.width));
  const y1 = Math.min(a.height, Math.ceil((region.y + region.h) * a.height));
  let sum = 0;
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * a.width + x;
      sum += Math.abs((a.pixels[i] ?? 0) - (b.pixels[i] ?? 0));
      n++;
    }
  }
  return n === 0 ? 0 : sum / n;
}
