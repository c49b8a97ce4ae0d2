import type { DecodedImage } from '../image.js';
import {
  areaAndPerimeter,
  boxScore,
  minAreaRect,
  miniBox,
  orderClockwise,
  type Quad,
  unclip,
} from './geometry.js';
import { resizeBilinear } from './raster.js';
import type { OcrOptions, Point } from './types.js';

/** PP-OCR's detector normalisation (ImageNet statistics, applied to BGR planes in this order). */
const DET_MEAN = [0.485, 0.456, 0.406] as const;
const DET_STD = [0.229, 0.224, 0.225] as const;
/** Boxes with a shorter side below this (in probability-map pixels) are noise. */
const MIN_SIZE = 3;

/** Rounds to the nearest integer, halves to even: Python's `round` and NumPy's `np.round`, as the reference. */
export function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  const diff = v - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * The detector's input size: scaled so the longer side is at most `maxSide` (never up), then each side
 * rounded to the nearest multiple of 32 (the network downsamples by 32), at least 32.
 */
export function detInputSize(
  width: number,
  height: number,
  maxSide: number,
): { width: number; height: number } {
  const ratio = Math.max(width, height) > maxSide ? maxSide / Math.max(width, height) : 1;
  const round32 = (v: number) => Math.max(32, roundHalfEven(Math.trunc(v * ratio) / 32) * 32);
  return { width: round32(width), height: round32(height) };
}

export { DET_MEAN, DET_STD };

/** Resizes an image to the detector's input size. */
export function detResize(image: DecodedImage, maxSide: number): DecodedImage {
  const size = detInputSize(image.width, image.height, maxSide);
  return resizeBilinear(image, size.width, size.height);
}

/**
 * The outer boundary points of each 8-connected region of the binary map: for every row a region touches,
 * its leftmost and rightmost pixel (enough for the convex hull, which is all the rectangle fit needs).
 * Regions come in raster order of their first pixel, as OpenCV's border following finds them.
 */
export function regions(bitmap: Uint8Array, width: number, height: number, max: number): Point[][] {
  const seen = new Uint8Array(bitmap.length);
  const stack = new Int32Array(bitmap.length);
  // Per-row extent of the region being traced; rows are reset after each region.
  const rowMin = new Int32Array(height).fill(width);
  const rowMax = new Int32Array(height).fill(-1);
  const out: Point[][] = [];
  for (let start = 0; start < bitmap.length && out.length < max; start += 1) {
    if (bitmap[start] === 0 || seen[start] === 1) continue;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    let yMin = height;
    let yMax = -1;
    while (top > 0) {
      const i = stack[--top] as number;
      const x = i % width;
      const y = (i - x) / width;
      if (y < yMin) yMin = y;
      if (y > yMax) yMax = y;
      if (x < (rowMin[y] as number)) rowMin[y] = x;
      if (x > (rowMax[y] as number)) rowMax[y] = x;
      for (let dy = -1; dy <= 1; dy += 1) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx += 1) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const j = ny * width + nx;
          if (bitmap[j] === 0 || seen[j] === 1) continue;
          seen[j] = 1;
          stack[top++] = j;
        }
      }
    }
    const points: Point[] = [];
    for (let r = yMin; r <= yMax; r += 1) {
      const lo = rowMin[r] as number;
      const hi = rowMax[r] as number;
      rowMin[r] = width;
      rowMax[r] = -1;
      if (hi < lo) continue;
      points.push({ x: lo, y: r });
      if (hi !== lo) points.push({ x: hi, y: r });
    }
    out.push(points);
  }
  return out;
}

/**
 * DB post-processing of one probability map (`mapWidth` x `mapHeight`, the detector's input size) into text
 * boxes in the original image's pixels: binarize at `detThreshold`, optionally dilate 2x2, find the regions,
 * fit each a minimum-area rectangle, drop small or low-scoring ones, unclip, fit again, scale back, order the
 * corners clockwise and drop boxes 3 px or thinner.
 */
export function boxesFromProbabilityMap(
  map: Float32Array,
  mapWidth: number,
  mapHeight: number,
  imageWidth: number,
  imageHeight: number,
  options: Pick<OcrOptions, 'detThreshold' | 'boxThreshold' | 'unclipRatio' | 'dilate' | 'maxCandidates'>,
): Array<{ box: Quad; score: number }> {
  const size = mapWidth * mapHeight;
  let bitmap = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) bitmap[i] = (map[i] as number) > options.detThreshold ? 1 : 0;
  if (options.dilate) {
    // OpenCV's dilate with a 2x2 kernel anchored at (1, 1): a pixel is set when it or its left, upper or
    // upper-left neighbour is.
    const dilated = new Uint8Array(size);
    for (let y = 0; y < mapHeight; y += 1) {
      for (let x = 0; x < mapWidth; x += 1) {
        const i = y * mapWidth + x;
        dilated[i] =
          bitmap[i] ||
          (x > 0 && bitmap[i - 1]) ||
          (y > 0 && bitmap[i - mapWidth]) ||
          (x > 0 && y > 0 && bitmap[i - mapWidth - 1])
            ? 1
            : 0;
      }
    }
    bitmap = dilated;
  }
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const boxes: Array<{ box: Quad; score: number }> = [];
  for (const points of regions(bitmap, mapWidth, mapHeight, options.maxCandidates)) {
    const fitted = minAreaRect(points);
    const { box, shortSide } = miniBox(fitted);
    if (shortSide < MIN_SIZE) continue;
    const score = boxScore(map, mapWidth, mapHeight, box);
    if (score < options.boxThreshold) continue;
    const grown = miniBox(minAreaRect(unclip(box, options.unclipRatio)));
    if (grown.shortSide < MIN_SIZE + 2) continue;
    const scaled = grown.box.map((p) => ({
      x: clamp(roundHalfEven((p.x / mapWidth) * imageWidth), imageWidth),
      y: clamp(roundHalfEven((p.y / mapHeight) * imageHeight), imageHeight),
    }));
    // The reference then orders the corners clockwise, clips them to the image and drops thin boxes.
    const ordered = orderClockwise(scaled).map((p) => ({
      x: clamp(p.x, imageWidth - 1),
      y: clamp(p.y, imageHeight - 1),
    })) as Quad;
    const w = Math.trunc(Math.hypot(ordered[0].x - ordered[1].x, ordered[0].y - ordered[1].y));
    const h = Math.trunc(Math.hypot(ordered[0].x - ordered[3].x, ordered[0].y - ordered[3].y));
    if (w <= 3 || h <= 3) continue;
    // Clipping can fold a box hanging over a corner into a sliver with no area: nothing to read there.
    if (areaAndPerimeter(ordered).area < 1) continue;
    boxes.push({ box: ordered, score });
  }
  return boxes;
}
