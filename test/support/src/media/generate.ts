import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { repoRoot } from '../infrastructure.js';
import { MediaFixtureError } from './errors.js';
import { processTempDir, runTool } from './process.js';

/**
 * Bump when the generator's output changes for the same options (ffmpeg arguments, filters, defaults), so
 * that cached clips from the old generator are not reused.
 */
export const CLIP_GENERATOR_VERSION = 2;

/** The DejaVu font from fonts-dejavu-core that drawtext uses. */
export const OVERLAY_FONT_FILE = '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf';

/**
 * A generated picture: an ffmpeg test pattern, or a flat colour (`'red'`, `'#2050a0'`, `'0x2050a0'`).
 * testsrc2 moves every frame (a counter, a scrolling gradient), so it suits motion; a flat colour suits
 * tests that compare pixels.
 */
export type Background = 'testsrc2' | 'testsrc' | 'smptebars' | { readonly color: string };

/** Where an overlay sits. Named places keep a margin of 4% of the height; `{x, y}` is in pixels. */
export type TextPosition =
  | 'top'
  | 'center'
  | 'bottom'
  | 'top-left'
  | 'top-right'
  | 'bottom-left'
  | 'bottom-right'
  | { readonly x: number; readonly y: number };

/** Text burnt into the picture between `fromS` and `toS` (a price, a discount code, a call to action). */
export interface TextOverlay {
  readonly text: string;
  readonly fromS: number;
  readonly toS: number;
  /** @default 'bottom' */
  readonly position?: TextPosition;
  /** Pixels. @default height / 15 */
  readonly fontSize?: number;
  /** @default 'white' */
  readonly color?: string;
  /** A half-transparent black box behind the text, like a lower third. @default true */
  readonly box?: boolean;
}

/** A line spoken by espeak-ng, starting at `atS`. */
export interface SpeechLine {
  readonly text: string;
  readonly atS: number;
  /** An espeak-ng voice. @default 'en-us' */
  readonly voice?: string;
  /** espeak-ng `-s`. @default 165 */
  readonly wordsPerMinute?: number;
}

/** What to generate. Every field is part of the cache key. */
export interface ClipOptions {
  readonly durationS: number;
  /** @default 1280 */
  readonly width?: number;
  /** @default 720 */
  readonly height?: number;
  /** @default 25 */
  readonly fps?: number;
  /** @default 'testsrc2' */
  readonly background?: Background;
  /** A hard cut to another picture at `atS`. The default picture after the cut is `{ color: '#2050a0' }`. */
  readonly sceneCut?: { readonly atS: number; readonly background?: Background };
  /** @default [] */
  readonly overlays?: readonly TextOverlay[];
  /** Spoken lines over silence. @default [] */
  readonly speech?: readonly SpeechLine[];
  /** An AAC track (silence plus speech). `false` makes a video-only file. @default true */
  readonly audio?: boolean;
  /** @default 44100 */
  readonly sampleRate?: 16000 | 44100 | 48000;
  /**
   * One keyframe every this many seconds, and none elsewhere: 1 s lets HLS cut 1 s segments with `-c copy`
   * and lets a reader joining a live stream start within a second.
   * @default 1
   */
  readonly keyframeIntervalS?: number;
}

/** Where and how clips are made; not part of the cache key. */
export interface GenerateSettings {
  /** @default `$LIVELENS_HOME/media`, i.e. `<repo>/.livelens/media` (gitignored) */
  readonly cacheDir?: string;
}

/** A speech line as it ended up in the clip. */
export interface PlacedSpeech {
  readonly text: string;
  readonly atS: number;
  /** Length of the synthesized audio (espeak-ng adds a little silence at both ends). */
  readonly durationS: number;
}

/** A generated clip: an H.264/AAC MP4 (faststart), cached by content of its options. */
export interface GeneratedClip {
  readonly path: string;
  readonly durationS: number;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly hasAudio: boolean;
  /** Hz; undefined without audio. */
  readonly sampleRate: number | undefined;
  readonly overlays: readonly TextOverlay[];
  readonly speech: readonly PlacedSpeech[];
  /** True when the file came from the cache (nothing was run). */
  readonly cached: boolean;
  /** sha256 of the normalised options and CLIP_GENERATOR_VERSION. */
  readonly key: string;
}

interface NormalisedOptions {
  durationS: number;
  width: number;
  height: number;
  fps: number;
  background: Background;
  sceneCut: { atS: number; background: Background } | null;
  overlays: Required<TextOverlay>[];
  speech: Required<SpeechLine>[];
  audio: boolean;
  sampleRate: number;
  keyframeIntervalS: number;
}

/** The media cache: `$LIVELENS_HOME/media` (default `<repo>/.livelens/media`, gitignored). */
export function mediaCacheDir(): string {
  const home = process.env.LIVELENS_HOME ? resolve(process.env.LIVELENS_HOME) : join(repoRoot, '.livelens');
  return join(home, 'media');
}

// Two calls for the same clip in one process share one generation.
const inFlight = new Map<string, Promise<GeneratedClip>>();

/**
 * Makes (or finds in the cache) a deterministic H.264/AAC MP4 with a test pattern, text overlays, an
 * optional scene cut and spoken lines. Safe under concurrency: each generation writes into its own temp
 * directory and renames the finished file into place, so readers never see a partial clip; two processes
 * making the same clip both succeed and the last rename wins (the files are equivalent).
 */
export async function generateClip(
  options: ClipOptions,
  settings: GenerateSettings = {},
): Promise<GeneratedClip> {
  const normalised = normalise(options);
  const key = createHash('sha256')
    .update(JSON.stringify({ version: CLIP_GENERATOR_VERSION, options: normalised }))
    .digest('hex');
  const cacheDir = settings.cacheDir ?? mediaCacheDir();
  const memoKey = `${cacheDir}\0${key}`;
  const pending = inFlight.get(memoKey);
  if (pending) return pending;
  const made = findOrMake(normalised, key, cacheDir).finally(() => inFlight.delete(memoKey));
  inFlight.set(memoKey, made);
  return made;
}

async function findOrMake(o: NormalisedOptions, key: string, cacheDir: string): Promise<GeneratedClip> {
  const base = join(cacheDir, `clip-${key.slice(0, 24)}`);
  const path = `${base}.mp4`;
  const metaPath = `${base}.json`;
  const cachedClip = await readCached(path, metaPath);
  if (cachedClip) return cachedClip;

  await mkdir(cacheDir, { recursive: true });
  await removeStaleWorkDirs(cacheDir);
  const work = await mkdtemp(join(cacheDir, `.tmp-${key.slice(0, 12)}-`));
  try {
    const speech = await synthesize(o, work);
    const tmpClip = join(work, 'clip.mp4');
    await runTool('ffmpeg', await ffmpegArgs(o, speech, work, tmpClip));
    const clip: GeneratedClip = {
      path,
      durationS: o.durationS,
      width: o.width,
      height: o.height,
      fps: o.fps,
      hasAudio: o.audio,
      sampleRate: o.audio ? o.sampleRate : undefined,
      overlays: o.overlays,
      speech: speech.map(({ text, atS, durationS }) => ({ text, atS, durationS })),
      cached: false,
      key,
    };
    // The metadata first, the clip last: a clip in place always has its metadata beside it.
    await writeFile(join(work, 'meta.json'), JSON.stringify(clip, null, 2));
    await rename(join(work, 'meta.json'), metaPath);
    await rename(tmpClip, path);
    return clip;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// A generation killed half-way (a test run interrupted) leaves its work dir; one older than this is dead.
const STALE_WORK_DIR_MS = 30 * 60_000;

async function removeStaleWorkDirs(cacheDir: string): Promise<void> {
  for (const entry of await readdir(cacheDir)) {
    if (!entry.startsWith('.tmp-')) continue;
    const dir = join(cacheDir, entry);
    const info = await stat(dir).catch(() => undefined); // another process may be removing it right now
    if (info && Date.now() - info.mtimeMs > STALE_WORK_DIR_MS) {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

async function readCached(path: string, metaPath: string): Promise<GeneratedClip | undefined> {
  try {
    const [meta] = await Promise.all([readFile(metaPath, 'utf8'), stat(path)]);
    return { ...(JSON.parse(meta) as GeneratedClip), path, cached: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw MediaFixtureError.from(error);
  }
}

function normalise(options: ClipOptions): NormalisedOptions {
  const o: NormalisedOptions = {
    durationS: options.durationS,
    width: options.width ?? 1280,
    height: options.height ?? 720,
    fps: options.fps ?? 25,
    background: canonicalBackground(options.background ?? 'testsrc2'),
    sceneCut: options.sceneCut
      ? {
          atS: options.sceneCut.atS,
          background: canonicalBackground(options.sceneCut.background ?? { color: '#2050a0' }),
        }
      : null,
    overlays: [],
    speech: [],
    audio: options.audio ?? true,
    sampleRate: options.sampleRate ?? 44_100,
    keyframeIntervalS: options.keyframeIntervalS ?? 1,
  };
  const bad = (what: string) => new MediaFixtureError(`generateClip: ${what}`, { code: 'invalid_options' });
  if (!(o.durationS > 0 && o.durationS <= 600)) {
    throw bad(`durationS must be in (0, 600], got ${o.durationS}`);
  }
  if (!(Number.isInteger(o.width) && Number.isInteger(o.height) && o.width % 2 === 0 && o.height % 2 === 0)) {
    throw bad(`width and height must be even integers (yuv420p), got ${o.width}x${o.height}`);
  }
  if (!(Number.isInteger(o.fps) && o.fps > 0 && o.fps <= 120)) throw bad(`fps must be 1..120, got ${o.fps}`);
  if (!(o.keyframeIntervalS > 0)) throw bad(`keyframeIntervalS must be > 0, got ${o.keyframeIntervalS}`);
  checkBackground(o.background, bad);
  if (o.sceneCut) {
    if (!(o.sceneCut.atS > 0 && o.sceneCut.atS < o.durationS)) {
      throw bad(`sceneCut.atS must be inside (0, ${o.durationS}), got ${o.sceneCut.atS}`);
    }
    checkBackground(o.sceneCut.background, bad);
  }
  for (const overlay of options.overlays ?? []) {
    if (!(overlay.fromS >= 0 && overlay.toS > overlay.fromS)) {
      throw bad(`overlay "${overlay.text}" needs 0 <= fromS < toS, got ${overlay.fromS}..${overlay.toS}`);
    }
    const color = overlay.color ?? 'white';
    if (!COLOR.test(color)) throw bad(`overlay color must match ${COLOR}, got "${color}"`);
    o.overlays.push({
      text: overlay.text,
      fromS: overlay.fromS,
      toS: overlay.toS,
      position: overlay.position ?? 'bottom',
      fontSize: overlay.fontSize ?? Math.round(o.height / 15),
      color,
      box: overlay.box ?? true,
    });
  }
  for (const line of options.speech ?? []) {
    if (!o.audio) throw bad('speech needs audio: true');
    if (!(line.atS >= 0 && line.atS < o.durationS)) {
      throw bad(`speech "${line.text}" must start inside [0, ${o.durationS}), got ${line.atS}`);
    }
    if (line.text.trim() === '') throw bad('speech text is empty');
    const voice = line.voice ?? 'en-us';
    if (!/^[a-z0-9+_-]+$/i.test(voice)) throw bad(`voice must be an espeak-ng voice name, got "${voice}"`);
    o.speech.push({ text: line.text, atS: line.atS, voice, wordsPerMinute: line.wordsPerMinute ?? 165 });
  }
  return o;
}

// Colours go into a lavfi graph unescaped: names and hex only.
const COLOR = /^(#|0x)?[0-9a-z]+(@[0-9.]+)?$/i;

// Only the fields that make the picture, in a fixed order: the cache key hashes this.
function canonicalBackground(background: Background): Background {
  return typeof background === 'object' ? { color: background.color } : background;
}

function checkBackground(background: Background, bad: (what: string) => Error): void {
  if (typeof background === 'object' && !COLOR.test(background.color)) {
    throw bad(`background color must match ${COLOR}, got "${background.color}"`);
  }
}

interface SynthesizedLine extends Required<SpeechLine> {
  wavPath: string;
  durationS: number;
}

async function synthesize(o: NormalisedOptions, work: string): Promise<SynthesizedLine[]> {
  const lines: SynthesizedLine[] = [];
  // One at a time: espeak-ng is quick (tens of ms a line) and the machine is shared.
  for (const [i, line] of o.speech.entries()) {
    const wavPath = join(work, `speech-${i}.wav`);
    // The text goes in on stdin, never on the command line: it may start with '-' or hold anything.
    await runTool(
      'espeak-ng',
      ['-v', line.voice, '-s', String(line.wordsPerMinute), '-w', wavPath, '--stdin'],
      { input: line.text },
    );
    lines.push({ ...line, wavPath, durationS: wavDurationS(await readFile(wavPath)) });
  }
  return lines;
}

/** Duration of a PCM WAV from its fmt and data chunks. */
function wavDurationS(wav: Buffer): number {
  if (wav.toString('ascii', 0, 4) !== 'RIFF' || wav.toString('ascii', 8, 12) !== 'WAVE') {
    throw new MediaFixtureError('espeak-ng did not write a WAV file', {
      code: 'tool_failed',
      tool: 'espeak-ng',
    });
  }
  let byteRate = 0;
  for (let at = 12; at + 8 <= wav.length; ) {
    const id = wav.toString('ascii', at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === 'fmt ') byteRate = wav.readUInt32LE(at + 16);
    if (id === 'data' && byteRate > 0) {
      // A streaming writer may leave the size at 0 or 0xffffffff: then the data runs to the end of the file.
      const dataBytes = size === 0 || at + 8 + size > wav.length ? wav.length - at - 8 : size;
      return Math.round((dataBytes / byteRate) * 1000) / 1000;
    }
    at += 8 + size + (size % 2);
  }
  throw new MediaFixtureError('WAV from espeak-ng has no fmt/data chunk', {
    code: 'tool_failed',
    tool: 'espeak-ng',
  });
}

function lavfiSource(background: Background, o: NormalisedOptions, durationS: number): string {
  const common = `size=${o.width}x${o.height}:rate=${o.fps}:duration=${durationS}`;
  return typeof background === 'object' ? `color=c=${background.color}:${common}` : `${background}=${common}`;
}

/**
 * Escapes a value for a filter option inside a filtergraph: first for the option parser (`\ ' :`), then
 * for the graph parser (`\ ' [ ] , ;`). Only paths we make go through here (overlay text goes in a file).
 */
function filterValue(value: string): string {
  const option = value.replace(/[\\':]/g, (c) => `\\${c}`);
  return option.replace(/[\\'[\],;]/g, (c) => `\\${c}`);
}

function overlayXY(position: TextPosition): { x: string; y: string } {
  if (typeof position === 'object') return { x: String(position.x), y: String(position.y) };
  const margin = '(h*0.04)';
  const x = position.endsWith('left')
    ? margin
    : position.endsWith('right')
      ? `(w-text_w-${margin})`
      : '(w-text_w)/2';
  const y = position.startsWith('top')
    ? margin
    : position.startsWith('bottom')
      ? `(h-text_h-${margin})`
      : '(h-text_h)/2';
  return { x, y };
}

async function ffmpegArgs(
  o: NormalisedOptions,
  speech: readonly SynthesizedLine[],
  work: string,
  output: string,
): Promise<string[]> {
  const inputs: string[] = [];
  const graph: string[] = [];
  let nextInput = 0;
  const addLavfi = (source: string) => {
    inputs.push('-f', 'lavfi', '-i', source);
    return nextInput++;
  };

  // Video: one background, or two joined by concat (a hard cut at sceneCut.atS).
  let video: string;
  if (o.sceneCut) {
    const before = addLavfi(lavfiSource(o.background, o, o.sceneCut.atS));
    const after = addLavfi(lavfiSource(o.sceneCut.background, o, o.durationS - o.sceneCut.atS));
    graph.push(`[${before}:v][${after}:v]concat=n=2:v=1:a=0[bg]`);
    video = '[bg]';
  } else {
    video = `[${addLavfi(lavfiSource(o.background, o, o.durationS))}:v]`;
  }
  const drawtexts: string[] = [];
  for (const [i, overlay] of o.overlays.entries()) {
    // textfile + expansion=none: the text reaches the picture verbatim ('%', ':', quotes and all).
    const textFile = join(work, `overlay-${i}.txt`);
    await writeFile(textFile, overlay.text);
    const { x, y } = overlayXY(overlay.position);
    const box = overlay.box ? `:box=1:boxcolor=black@0.6:boxborderw=${Math.round(overlay.fontSize / 4)}` : '';
    drawtexts.push(
      `drawtext=fontfile=${filterValue(OVERLAY_FONT_FILE)}:textfile=${filterValue(textFile)}:expansion=none` +
        `:fontsize=${overlay.fontSize}:fontcolor=${overlay.color}${box}:x=${x}:y=${y}` +
        `:enable='between(t,${overlay.fromS},${overlay.toS})'`,
    );
  }
  graph.push(`${video}${[...drawtexts, 'format=yuv420p'].join(',')}[v]`);

  // Audio: silence for the whole clip, each speech line delayed to its time and mixed in (normalize=0:
  // amix would otherwise scale every input down by the number of inputs).
  if (o.audio) {
    const silence = addLavfi(`anullsrc=r=${o.sampleRate}:cl=mono:d=${o.durationS}`);
    const mixed = [`[${silence}:a]`];
    for (const [i, line] of speech.entries()) {
      inputs.push('-i', line.wavPath);
      const index = nextInput++;
      graph.push(
        `[${index}:a]aresample=${o.sampleRate},aformat=channel_layouts=mono,` +
          `adelay=${Math.round(line.atS * 1000)}:all=1[s${i}]`,
      );
      mixed.push(`[s${i}]`);
    }
    // The audio ends on the last whole AAC frame (1024 samples) inside the clip, up to 23 ms (64 ms at
    // 16 kHz) before the video. Otherwise the encoder pads the last frame past the end, and a source that
    // loops the file with -c copy (-stream_loop -1) sends audio that goes back in time at every loop
    // (pinned by 'loops with -c copy without audio going back in time' in generate.int.test.ts).
    const endSample = Math.floor((o.durationS * o.sampleRate) / 1024) * 1024;
    graph.push(
      mixed.length === 1
        ? `${mixed[0]}atrim=end_sample=${endSample}[a]`
        : `${mixed.join('')}amix=inputs=${mixed.length}:duration=first:normalize=0,atrim=end_sample=${endSample}[a]`,
    );
  }

  const keyint = String(Math.max(1, Math.round(o.keyframeIntervalS * o.fps)));
  return [
    '-nostdin',
    '-hide_banner',
    '-v',
    'error',
    '-y',
    ...inputs,
    '-filter_complex',
    graph.join(';'),
    '-map',
    '[v]',
    ...(o.audio ? ['-map', '[a]'] : []),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '28',
    '-profile:v',
    'main',
    '-pix_fmt',
    'yuv420p',
    '-r',
    String(o.fps),
    // Fixed GOP, no scene-cut keyframes: segmenters and live readers see a keyframe every interval.
    '-g',
    keyint,
    '-keyint_min',
    keyint,
    '-sc_threshold',
    '0',
    ...(o.audio ? ['-c:a', 'aac', '-b:a', '64k', '-ar', String(o.sampleRate), '-ac', '1'] : []),
    '-t',
    String(o.durationS),
    '-map_metadata',
    '-1',
    '-fflags',
    '+bitexact',
    '-movflags',
    '+faststart',
    output,
  ];
}

// ---------------------------------------------------------------- hostile local files

// One temp directory per process for the hostile files: removed at a normal exit, or swept by a later
// process when vitest ended this one with a signal (see processTempDir).
let hostileDir: string | undefined;
function hostileFilesDir(): string {
  if (hostileDir) return hostileDir;
  const dir = processTempDir('hostile');
  hostileDir = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function hostilePath(src: string, suffix: string): string {
  const name = src.split('/').pop() ?? 'file';
  return join(hostileFilesDir(), `${randomBytes(4).toString('hex')}-${suffix}-${name}`);
}

/**
 * A copy of `src` whose middle is overwritten with random bytes (`fraction` of the file, at most 256 KiB):
 * the container still opens, then the decoder meets garbage. In a temp dir removed at process exit.
 */
export async function corruptFile(
  src: string,
  { fraction = 0.2 }: { fraction?: number } = {},
): Promise<string> {
  const dest = hostilePath(src, 'corrupt');
  await copyFile(src, dest);
  const { size } = await stat(dest);
  const length = Math.max(1, Math.min(256 * 1024, Math.floor(size * fraction)));
  const file = await open(dest, 'r+');
  try {
    await file.write(randomBytes(length), 0, length, Math.max(0, Math.floor((size - length) / 2)));
  } finally {
    await file.close();
  }
  return dest;
}

/**
 * The first `keepFraction` of `src`: an interrupted download. With the faststart clips made here the index
 * (moov) survives and the media data stops early.
 */
export async function truncatedFile(
  src: string,
  { keepFraction = 0.5 }: { keepFraction?: number } = {},
): Promise<string> {
  const dest = hostilePath(src, 'truncated');
  const data = await readFile(src);
  await writeFile(dest, data.subarray(0, Math.floor(data.length * keepFraction)));
  return dest;
}

/** An HTML page saved as `not-a-video.mp4`: the extension lies. */
export async function textFileNamedMp4(): Promise<string> {
  const dest = join(hostileFilesDir(), `${randomBytes(4).toString('hex')}-not-a-video.mp4`);
  await writeFile(
    dest,
    '<!doctype html>\n<html><body><h1>404 Not Found</h1><p>This is not a video.</p></body></html>\n',
  );
  return dest;
}
