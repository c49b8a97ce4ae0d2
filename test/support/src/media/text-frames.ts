import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaFixtureError } from './errors.js';
import { mediaCacheDir } from './generate.js';
import { processTempDir, runTool } from './process.js';

/**
 * Bump when a frame's pixels change for the same spec (ffmpeg arguments, filters, defaults, fonts), so that
 * cached frames from the old generator are not reused.
 */
export const TEXT_FRAME_GENERATOR_VERSION = 1;

/**
 * The fonts a text frame can use, by name. DejaVu comes from fonts-dejavu-core, WenQuanYi Micro Hei (the
 * only one with Chinese glyphs, and Latin ones too) from fonts-wqy-microhei; `deploy/local/stack.sh up`
 * installs both. Specs name fonts rather than files so that a spec stored in a golden stays portable.
 */
export const TEXT_FRAME_FONTS = {
  'dejavu-sans': '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  'dejavu-sans-bold': '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  'dejavu-serif': '/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf',
  'dejavu-sans-mono': '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf',
  /** A TrueType collection: drawtext takes its first face, WenQuanYi Micro Hei (proportional). */
  'wqy-microhei': '/usr/share/fonts/truetype/wqy/wqy-microhei.ttc',
} as const;

/** A font name from TEXT_FRAME_FONTS. */
export type TextFrameFont = keyof typeof TEXT_FRAME_FONTS;

/**
 * The picture behind the text. `testsrc`, `testsrc2` and `smptebars` are ffmpeg's test patterns at their
 * first frame; `{ color }` is flat (`'#202020'`, `'0x202020'`, `'white'`); `{ noise }` is a flat colour
 * with uniform per-channel noise from a fixed seed, so the same spec always gives the same pixels.
 */
export type TextFrameBackground =
  | 'testsrc'
  | 'testsrc2'
  | 'smptebars'
  | { readonly color: string }
  | {
      readonly noise: {
        /** @default '#505050' */
        readonly color?: string;
        /** ffmpeg noise `alls`, 0..100. @default 40 */
        readonly strength?: number;
        /** ffmpeg noise `all_seed`. @default 1 */
        readonly seed?: number;
      };
    };

/** One line of text drawn on the frame: `text` is also what OCR is expected to read. */
export interface TextFrameLine {
  /** One line, drawn verbatim (no expansion, no escaping needed): the expected OCR text. */
  readonly text: string;
  /** @default 'dejavu-sans' */
  readonly font?: TextFrameFont;
  /** Font size in pixels (drawtext `fontsize`). */
  readonly sizePx: number;
  /** A colour name or hex (`'white'`, `'#ffd700'`). @default 'white' */
  readonly color?: string;
  /** Left edge of the text, pixels. */
  readonly x: number;
  /** Top of the text line (drawtext `y`: the baseline sits one maximum glyph ascent below), pixels. */
  readonly y: number;
  /**
   * A box behind the text, like a live lower third: `true` for half-transparent black with a border of a
   * quarter of the font size. @default false
   */
  readonly box?: boolean | { readonly color: string; readonly borderPx: number };
}

/** What to draw. Every field is part of the cache key. */
export interface TextFrameSpec {
  /** A name for reports and goldens (`'en-flat-dark'`); not drawn. */
  readonly name: string;
  /** @default 1280 */
  readonly width?: number;
  /** @default 720 */
  readonly height?: number;
  readonly background: TextFrameBackground;
  readonly lines: readonly TextFrameLine[];
  /** JPEG (mjpeg at `-q:v 3`, 4:2:0 full range, like a frame sampled from video) or lossless PNG (RGB). @default 'jpeg' */
  readonly format?: 'jpeg' | 'png';
}

/** A line with every default filled in. */
export interface NormalisedTextFrameLine {
  readonly text: string;
  readonly font: TextFrameFont;
  readonly sizePx: number;
  readonly color: string;
  readonly x: number;
  readonly y: number;
  readonly box: { readonly color: string; readonly borderPx: number } | null;
}

/** A spec with every default filled in: what the cache key hashes and what goldens store. */
export interface NormalisedTextFrameSpec {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly background:
    | 'testsrc'
    | 'testsrc2'
    | 'smptebars'
    | { readonly color: string }
    | { readonly noise: { readonly color: string; readonly strength: number; readonly seed: number } };
  readonly lines: readonly NormalisedTextFrameLine[];
  readonly format: 'jpeg' | 'png';
}

/** A generated still frame. */
export interface GeneratedTextFrame {
  /** In the media cache; never write to it. */
  readonly path: string;
  /** The file's bytes. */
  readonly bytes: Buffer;
  /** sha256 of `bytes`, hex. */
  readonly sha256: string;
  readonly spec: NormalisedTextFrameSpec;
  /** True when the file came from the cache (ffmpeg did not run). */
  readonly cached: boolean;
  /** sha256 of the normalised spec and TEXT_FRAME_GENERATOR_VERSION. */
  readonly key: string;
}

/** Where and how frames are made; not part of the cache key. */
export interface TextFrameSettings {
  /** @default mediaCacheDir() */
  readonly cacheDir?: string;
}

// Colours go into a lavfi graph unescaped: names and hex only, with an optional @alpha.
const COLOR = /^(#|0x)?[0-9a-z]+(@[0-9.]+)?$/i;

/** Fills in defaults and checks a spec; throws `invalid_options` naming the bad field. */
export function normaliseTextFrameSpec(spec: TextFrameSpec): NormalisedTextFrameSpec {
  const bad = (what: string) =>
    new MediaFixtureError(`generateTextFrame(${spec.name}): ${what}`, { code: 'invalid_options' });
  const width = spec.width ?? 1280;
  const height = spec.height ?? 720;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width % 2 === 0 && height % 2 === 0)) {
    throw bad(`width and height must be even integers (4:2:0 JPEG), got ${width}x${height}`);
  }
  if (!(width >= 16 && width <= 7680 && height >= 16 && height <= 4320)) {
    throw bad(`size must be 16x16..7680x4320, got ${width}x${height}`);
  }
  const background = normaliseBackground(spec.background, bad);
  if (spec.lines.length === 0) throw bad('needs at least one line');
  const lines = spec.lines.map((line, i): NormalisedTextFrameLine => {
    const where = `line ${i} ("${line.text}")`;
    if (line.text.trim() === '' || /[\r\n]/.test(line.text)) {
      throw bad(`${where}: text must be one non-empty line`);
    }
    const font = line.font ?? 'dejavu-sans';
    if (!Object.hasOwn(TEXT_FRAME_FONTS, font)) {
      throw bad(`${where}: font must be one of TEXT_FRAME_FONTS, got "${font}"`);
    }
    if (!(Number.isInteger(line.sizePx) && line.sizePx >= 6 && line.sizePx <= 400)) {
      throw bad(`${where}: sizePx must be an integer 6..400, got ${line.sizePx}`);
    }
    const color = line.color ?? 'white';
    if (!COLOR.test(color)) throw bad(`${where}: color must match ${COLOR}, got "${color}"`);
    const box =
      line.box === true
        ? { color: 'black@0.6', borderPx: Math.round(line.sizePx / 4) }
        : line.box
          ? { color: line.box.color, borderPx: line.box.borderPx }
          : null;
    if (box && !COLOR.test(box.color))
      throw bad(`${where}: box color must match ${COLOR}, got "${box.color}"`);
    if (box && !(Number.isInteger(box.borderPx) && box.borderPx >= 0)) {
      throw bad(`${where}: box borderPx must be an integer >= 0, got ${box.borderPx}`);
    }
    // A cheap sanity check of the placement; textFrameLineBoxes measures the real extent from pixels.
    if (!(Number.isInteger(line.x) && Number.isInteger(line.y) && line.x >= 0 && line.y >= 0)) {
      throw bad(`${where}: x and y must be integers >= 0, got ${line.x},${line.y}`);
    }
    if (line.x >= width || line.y + line.sizePx > height) {
      throw bad(`${where}: starts outside the ${width}x${height} frame at ${line.x},${line.y}`);
    }
    return { text: line.text, font, sizePx: line.sizePx, color, x: line.x, y: line.y, box };
  });
  const format = spec.format ?? 'jpeg';
  if (format !== 'jpeg' && format !== 'png') throw bad(`format must be 'jpeg' or 'png', got "${format}"`);
  return { name: spec.name, width, height, background, lines, format };
}

function normaliseBackground(
  background: TextFrameBackground,
  bad: (what: string) => Error,
): NormalisedTextFrameSpec['background'] {
  if (typeof background === 'string') {
    if (!['testsrc', 'testsrc2', 'smptebars'].includes(background)) {
      throw bad(
        `background must be testsrc, testsrc2, smptebars, { color } or { noise }, got "${background}"`,
      );
    }
    return background;
  }
  if ('color' in background) {
    if (!COLOR.test(background.color))
      throw bad(`background color must match ${COLOR}, got "${background.color}"`);
    return { color: background.color };
  }
  const noise = {
    color: background.noise.color ?? '#505050',
    strength: background.noise.strength ?? 40,
    seed: background.noise.seed ?? 1,
  };
  if (!COLOR.test(noise.color)) throw bad(`noise color must match ${COLOR}, got "${noise.color}"`);
  if (!(Number.isInteger(noise.strength) && noise.strength >= 0 && noise.strength <= 100)) {
    throw bad(`noise strength must be an integer 0..100, got ${noise.strength}`);
  }
  if (!(Number.isInteger(noise.seed) && noise.seed >= 0)) {
    throw bad(`noise seed must be an integer >= 0, got ${noise.seed}`);
  }
  return { noise };
}

/** The cache key of a normalised spec. */
function textFrameKey(spec: NormalisedTextFrameSpec): string {
  return createHash('sha256')
    .update(JSON.stringify({ version: TEXT_FRAME_GENERATOR_VERSION, spec }))
    .digest('hex');
}

// Two calls for the same frame in one process share one generation.
const inFlight = new Map<string, Promise<GeneratedTextFrame>>();

/**
 * Renders (or finds in the media cache) one still frame: a background and lines of text drawn by ffmpeg's
 * drawtext with real fonts, for OCR tests that know exactly what the picture says. The same spec gives the
 * same bytes on the same ffmpeg and FreeType (fonts are rasterised by FreeType, so another distribution
 * may differ by a few pixels; goldens store the sha256 to tell). Safe under concurrency: each generation
 * writes into its own temp directory and renames the finished file into place.
 */
export async function generateTextFrame(
  spec: TextFrameSpec,
  settings: TextFrameSettings = {},
): Promise<GeneratedTextFrame> {
  const normalised = normaliseTextFrameSpec(spec);
  const key = textFrameKey(normalised);
  const cacheDir = settings.cacheDir ?? mediaCacheDir();
  const memoKey = `${cacheDir}\0${key}`;
  const pending = inFlight.get(memoKey);
  if (pending) return pending;
  const made = findOrMake(normalised, key, cacheDir).finally(() => inFlight.delete(memoKey));
  inFlight.set(memoKey, made);
  return made;
}

async function findOrMake(
  spec: NormalisedTextFrameSpec,
  key: string,
  cacheDir: string,
): Promise<GeneratedTextFrame> {
  const path = join(cacheDir, `text-${key.slice(0, 24)}.${spec.format === 'png' ? 'png' : 'jpg'}`);
  const done = (bytes: Buffer, cached: boolean): GeneratedTextFrame => ({
    path,
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    spec,
    cached,
    key,
  });
  try {
    return done(await readFile(path), true);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw MediaFixtureError.from(error);
  }

  await mkdir(cacheDir, { recursive: true });
  await removeStaleWorkDirs(cacheDir);
  const work = await mkdtemp(join(cacheDir, `.tmp-text-${key.slice(0, 12)}-`));
  try {
    const tmp = join(work, `frame.${spec.format === 'png' ? 'png' : 'jpg'}`);
    await runTool('ffmpeg', await frameArgs(spec, work, tmp));
    const bytes = await readFile(tmp);
    // Readers only ever see a finished file: it appears under its final name in one rename.
    await rename(tmp, path);
    return done(bytes, false);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// A generation killed half-way leaves its work dir; one older than this is dead.
const STALE_WORK_DIR_MS = 30 * 60_000;

async function removeStaleWorkDirs(cacheDir: string): Promise<void> {
  for (const entry of await readdir(cacheDir)) {
    if (!entry.startsWith('.tmp-text-')) continue;
    const dir = join(cacheDir, entry);
    const info = await stat(dir).catch(() => undefined); // another process may be removing it right now
    if (info && Date.now() - info.mtimeMs > STALE_WORK_DIR_MS) {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Escapes a value for a filter option inside a filtergraph: first for the option parser (`\ ' :`), then
 * for the graph parser (`\ ' [ ] , ;`). Only paths we make go through here (the text goes in a file).
 */
function filterValue(value: string): string {
  const option = value.replace(/[\\':]/g, (c) => `\\${c}`);
  return option.replace(/[\\'[\],;]/g, (c) => `\\${c}`);
}

function backgroundSource(spec: NormalisedTextFrameSpec): string {
  const common = `size=${spec.width}x${spec.height}:rate=1:duration=1`;
  const bg = spec.background;
  if (typeof bg === 'string') return `${bg}=${common}`;
  if ('color' in bg) return `color=c=${bg.color}:${common}`;
  // noise works plane by plane: planar RGB gives independent noise in R, G and B (colour grain, like a
  // noisy sensor). Its generator is seeded by all_seed alone, so the pixels are the same on every run.
  return (
    `color=c=${bg.noise.color}:${common},format=gbrp,` +
    `noise=alls=${bg.noise.strength}:allf=u:all_seed=${bg.noise.seed}`
  );
}

/** One drawtext per line, text from a file written into `work`. */
async function drawtextFilters(lines: readonly NormalisedTextFrameLine[], work: string): Promise<string[]> {
  const filters: string[] = [];
  for (const [i, line] of lines.entries()) {
    // textfile + expansion=none: the text reaches the picture verbatim ('%', ':', '\', quotes, URLs and
    // all) with no escaping; no trailing newline, which drawtext would draw as a second line.
    const textFile = join(work, `line-${i}.txt`);
    await writeFile(textFile, line.text);
    const box = line.box ? `:box=1:boxcolor=${line.box.color}:boxborderw=${line.box.borderPx}` : '';
    filters.push(
      `drawtext=fontfile=${filterValue(TEXT_FRAME_FONTS[line.font])}:textfile=${filterValue(textFile)}` +
        `:expansion=none:fontsize=${line.sizePx}:fontcolor=${line.color}${box}:x=${line.x}:y=${line.y}`,
    );
  }
  return filters;
}

async function frameArgs(spec: NormalisedTextFrameSpec, work: string, output: string): Promise<string[]> {
  // drawtext blends in RGB, so colours land as named; the one conversion to YUV (JPEG) or nothing (PNG)
  // happens at the end.
  const chain = [backgroundSource(spec), 'format=rgb24', ...(await drawtextFilters(spec.lines, work))];
  const encode =
    spec.format === 'png'
      ? ['-c:v', 'png', '-pix_fmt', 'rgb24']
      : // Full-range 4:2:0 (what mjpeg writes, and what a frame grabbed from H.264 looks like after JPEG).
        ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj420p'];
  return [
    '-nostdin',
    '-hide_banner',
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    chain.join(','),
    '-frames:v',
    '1',
    ...encode,
    // No encoder version string or metadata in the file: the bytes depend on the pixels only.
    '-fflags',
    '+bitexact',
    '-flags',
    '+bitexact',
    '-map_metadata',
    '-1',
    '-f',
    'image2',
    '-update',
    '1',
    output,
  ];
}

/** Where a line's ink (and its box, when it has one) landed, in pixels, edges inclusive. */
export interface TextLineBox {
  readonly text: string;
  /** The drawn glyphs: the smallest rectangle holding every pixel the text touched. */
  readonly ink: { readonly x1: number; readonly y1: number; readonly x2: number; readonly y2: number };
  /** The box drawtext fills behind the line (its layout box plus the border), or `ink` when it has none. */
  readonly outer: { readonly x1: number; readonly y1: number; readonly x2: number; readonly y2: number };
}

/**
 * Measures where each line of a spec lands: renders the line alone, white on black, and takes the bounding
 * box of the lit pixels. For checking a suite (lines inside the frame, not overlapping) and for matching
 * OCR boxes to expected lines. One ffmpeg run per line, nothing cached. A line that draws nothing (a font
 * without those glyphs would still draw boxes) throws.
 */
export async function textFrameLineBoxes(spec: TextFrameSpec): Promise<TextLineBox[]> {
  const normalised = normaliseTextFrameSpec(spec);
  const { width, height } = normalised;
  const work = processTempDir('text-measure');
  try {
    const boxes: TextLineBox[] = [];
    const render = async (drawtext: string) => {
      const gray = await runTool('ffmpeg', [
        '-nostdin',
        '-hide_banner',
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        `color=c=black:size=${width}x${height}:rate=1:duration=1,format=rgb24,${drawtext}`,
        '-frames:v',
        '1',
        '-pix_fmt',
        'gray',
        '-f',
        'rawvideo',
        'pipe:1',
      ]);
      return litBounds(gray, width, height);
    };
    for (const line of normalised.lines) {
      const plain = { ...line, color: 'white', box: null };
      const [inkFilter] = await drawtextFilters([plain], work);
      const ink = await render(inkFilter as string);
      if (!ink) {
        throw new MediaFixtureError(`textFrameLineBoxes(${normalised.name}): "${line.text}" drew nothing`, {
          code: 'invalid_options',
        });
      }
      let outer = ink;
      if (line.box) {
        // drawtext's box covers the text's layout box (font ascent to descent, not the ink) plus the border.
        const [boxFilter] = await drawtextFilters([{ ...plain, box: { ...line.box, color: 'white' } }], work);
        outer = (await render(boxFilter as string)) ?? ink;
      }
      boxes.push({ text: line.text, ink, outer });
    }
    return boxes;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Bounding box of the pixels brighter than a faint anti-aliasing edge. */
function litBounds(
  gray: Buffer,
  width: number,
  height: number,
): { x1: number; y1: number; x2: number; y2: number } | undefined {
  let x1 = width;
  let y1 = height;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if ((gray[row + x] ?? 0) > 32) {
        if (x < x1) x1 = x;
        if (x > x2) x2 = x;
        if (y < y1) y1 = y;
        if (y > y2) y2 = y;
      }
    }
  }
  return x2 < 0 ? undefined : { x1, y1, x2, y2 };
}

// ---------------------------------------------------------------- suites

const DARK = { color: '#1e1e1e' } as const;
const LIGHT = { color: '#ececec' } as const;
const NOISY = { noise: { color: '#505050', strength: 40, seed: 7 } } as const;
const YELLOW = '#ffd700';

/**
 * A fixed set of frames for a character-error-rate test of OCR on live-commerce overlays: 2 to 4 lines a
 * frame; every font; sizes 16 to 64 px; white, yellow, red, black on light; flat, noisy, smptebars and
 * testsrc backgrounds; English, Chinese and both; prices, promo codes, URLs, handles, phone numbers.
 * Text on the busy test patterns sits in a dark box, as live overlays do (16 px text straight on colour
 * bars is not a fair test); on flat and noisy backgrounds it has no box. Lines stay inside the frame and
 * apart (pinned by 'keeps every suite line inside the frame and apart' in text-frames.int.test.ts).
 * Changing a frame changes the test's expectations: add frames rather than edit them.
 */
export function ocrAccuracySuite(): TextFrameSpec[] {
  return [
    {
      name: 'en-flat-dark-sans',
      background: DARK,
      lines: [
        { text: 'Flash sale today only', font: 'dejavu-sans', sizePx: 48, x: 80, y: 90 },
        { text: 'Now $29.99', font: 'dejavu-sans-bold', sizePx: 64, color: YELLOW, x: 80, y: 220 },
        { text: 'Use code SAVE20 at checkout', font: 'dejavu-sans', sizePx: 32, x: 80, y: 380 },
      ],
    },
    {
      name: 'en-flat-light-serif',
      background: LIGHT,
      lines: [
        { text: 'Limited stock left', font: 'dejavu-serif', sizePx: 40, color: 'black', x: 120, y: 110 },
        { text: 'shop.example.com/deal', font: 'dejavu-serif', sizePx: 32, color: 'black', x: 120, y: 260 },
        { text: 'Call 400-123-4567', font: 'dejavu-serif', sizePx: 24, color: 'red', x: 120, y: 420 },
      ],
    },
    {
      name: 'en-flat-dark-mono-small',
      background: DARK,
      lines: [
        { text: 'Only 12 left in stock', font: 'dejavu-sans-mono', sizePx: 16, x: 60, y: 500 },
        { text: 'Promo SAVE20 ends 23:59', font: 'dejavu-sans-mono', sizePx: 20, x: 60, y: 560 },
        { text: '@livedeals', font: 'dejavu-sans-mono', sizePx: 24, color: YELLOW, x: 60, y: 620 },
      ],
    },
    {
      name: 'zh-flat-dark',
      background: DARK,
      lines: [
        { text: '限时秒杀', font: 'wqy-microhei', sizePx: 64, x: 100, y: 100 },
        { text: '全场包邮', font: 'wqy-microhei', sizePx: 40, color: YELLOW, x: 100, y: 260 },
        { text: '点击下方链接购买', font: 'wqy-microhei', sizePx: 24, x: 100, y: 400 },
      ],
    },
    {
      name: 'zh-flat-light',
      background: LIGHT,
      lines: [
        { text: '到手价¥199', font: 'wqy-microhei', sizePx: 48, color: 'red', x: 700, y: 120 },
        { text: '49.90元', font: 'wqy-microhei', sizePx: 32, color: 'black', x: 700, y: 260 },
        { text: '点击下方链接购买', font: 'wqy-microhei', sizePx: 20, color: 'black', x: 700, y: 380 },
      ],
    },
    {
      name: 'en-smptebars-box',
      background: 'smptebars',
      lines: [
        { text: '$29.99 today only', font: 'dejavu-sans-bold', sizePx: 48, x: 80, y: 80, box: true },
        { text: 'shop.example.com/deal', font: 'dejavu-sans', sizePx: 24, x: 80, y: 300, box: true },
        {
          text: 'Follow @livedeals',
          font: 'dejavu-sans',
          sizePx: 16,
          color: YELLOW,
          x: 80,
          y: 520,
          box: true,
        },
      ],
    },
    {
      name: 'zh-smptebars-box',
      background: 'smptebars',
      lines: [
        { text: '限时秒杀¥199', font: 'wqy-microhei', sizePx: 40, x: 400, y: 120, box: true },
        { text: '全场包邮', font: 'wqy-microhei', sizePx: 24, color: YELLOW, x: 400, y: 300, box: true },
        { text: '点击下方链接购买', font: 'wqy-microhei', sizePx: 20, x: 400, y: 560, box: true },
      ],
    },
    {
      name: 'mixed-testsrc-box',
      background: 'testsrc',
      lines: [
        { text: 'SAVE20', font: 'dejavu-sans-bold', sizePx: 64, color: YELLOW, x: 100, y: 60, box: true },
        { text: '点击下方链接购买', font: 'wqy-microhei', sizePx: 32, x: 100, y: 260, box: true },
        { text: 'Call 400-123-4567', font: 'dejavu-sans-mono', sizePx: 20, x: 100, y: 420, box: true },
        { text: '$29.99', font: 'dejavu-serif', sizePx: 40, x: 800, y: 560, box: true },
      ],
    },
    {
      name: 'en-noisy',
      background: NOISY,
      lines: [
        { text: 'Free shipping over $49', font: 'dejavu-sans', sizePx: 40, x: 90, y: 120 },
        { text: 'shop.example.com/deal', font: 'dejavu-sans-bold', sizePx: 32, color: YELLOW, x: 90, y: 280 },
        { text: 'Follow @livedeals', font: 'dejavu-serif', sizePx: 24, x: 90, y: 430 },
      ],
    },
    {
      name: 'zh-noisy',
      background: NOISY,
      lines: [
        { text: '全场包邮', font: 'wqy-microhei', sizePx: 48, x: 500, y: 150 },
        { text: '49.90元', font: 'wqy-microhei', sizePx: 32, color: YELLOW, x: 500, y: 320 },
      ],
    },
    {
      name: 'mixed-flat-light-small',
      background: LIGHT,
      lines: [
        { text: 'Code SAVE20', font: 'dejavu-sans', sizePx: 16, color: 'black', x: 900, y: 560 },
        {
          text: 'shop.example.com/deal',
          font: 'dejavu-sans-mono',
          sizePx: 16,
          color: 'black',
          x: 900,
          y: 600,
        },
        { text: 'Only ¥199', font: 'dejavu-sans-bold', sizePx: 20, color: 'red', x: 900, y: 640 },
        { text: '400-123-4567', font: 'dejavu-serif', sizePx: 20, color: 'black', x: 60, y: 60 },
      ],
    },
    {
      name: 'mixed-testsrc-box-small',
      background: 'testsrc',
      lines: [
        { text: 'Only 3 left at $29.99', font: 'dejavu-sans', sizePx: 16, x: 60, y: 600, box: true },
        { text: '全场包邮', font: 'wqy-microhei', sizePx: 20, x: 60, y: 650, box: true },
        {
          text: '@livedeals',
          font: 'dejavu-sans-bold',
          sizePx: 24,
          color: YELLOW,
          x: 1000,
          y: 60,
          box: true,
        },
      ],
    },
  ];
}

/**
 * A few fixed frames for comparing our OCR with the Python reference (packages/inference/reference):
 * one per kind of background, English and Chinese, and one frame both as JPEG and as PNG, which tells a
 * JPEG-decoder difference from a pipeline difference.
 */
export function ocrParitySuite(): TextFrameSpec[] {
  const byName = new Map(ocrAccuracySuite().map((spec) => [spec.name, spec]));
  const pick = (name: string): TextFrameSpec => {
    const spec = byName.get(name);
    if (!spec) throw new Error(`ocrParitySuite: no frame ${name} in ocrAccuracySuite`);
    return spec;
  };
  const zh = pick('zh-flat-dark');
  return [
    pick('en-flat-dark-sans'),
    zh,
    { ...zh, name: 'zh-flat-dark-png', format: 'png' },
    pick('en-smptebars-box'),
    pick('mixed-testsrc-box'),
    pick('en-noisy'),
    pick('mixed-flat-light-small'),
  ];
}
