import { describe, expect, it } from 'vitest';
import { boxesFromProbabilityMap, detInputSize, regions, roundHalfEven } from './detect.js';
import {
  boxScore,
  minAreaRect,
  miniBox,
  orderClockwise,
  type Quad,
  readingOrder,
  unclip,
} from './geometry.js';
import { cropQuad, resizeBilinear } from './raster.js';
import { ctcGreedyDecode, recBatch } from './recognize.js';

const options = { detThreshold: 0.3, boxThreshold: 0.5, unclipRatio: 1.6, dilate: true, maxCandidates: 1000 };

/** A probability map with the given axis-aligned rectangles filled at probability `p`. */
function mapWith(width: number, height: number, rects: Array<[number, number, number, number]>, p = 0.9) {
  const map = new Float32Array(width * height);
  for (const [x0, y0, x1, y1] of rects)
    for (let y = y0; y < y1; y += 1) for (let x = x0; x < x1; x += 1) map[y * width + x] = p;
  return map;
}

describe('detector input size', () => {
  it('scales the longer side to the maximum, then rounds each side to a multiple of 32', () => {
    expect(detInputSize(1280, 720, 960)).toEqual({ width: 960, height: 544 });
    expect(detInputSize(1920, 1080, 960)).toEqual({ width: 960, height: 544 });
    expect(detInputSize(720, 1280, 960)).toEqual({ width: 544, height: 960 });
  });
  it('rounds halves to even, as the reference (Python round) does', () => {
    // 960x720 at 960: 720/32 = 22.5 → 22 → 704 (not 736).
    expect(detInputSize(960, 720, 960)).toEqual({ width: 960, height: 704 });
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(3.5)).toBe(4);
  });
  it('never scales up, and never goes below 32', () => {
    expect(detInputSize(640, 360, 960)).toEqual({ width: 640, height: 352 });
    expect(detInputSize(20, 10, 960)).toEqual({ width: 32, height: 32 });
  });
});

describe('geometry', () => {
  it('fits the minimum-area rectangle of a rotated rectangle, corners ordered from the top-left', () => {
    // A 40x10 rectangle rotated by 30 degrees around (100, 100).
    const angle = Math.PI / 6;
    const points = [];
    for (let u = -20; u <= 20; u += 1)
      for (let v = -5; v <= 5; v += 1)
        points.push({
          x: 100 + u * Math.cos(angle) - v * Math.sin(angle),
          y: 100 + u * Math.sin(angle) + v * Math.cos(angle),
        });
    const rect = minAreaRect(points);
    expect(Math.max(rect.width, rect.height)).toBeCloseTo(40, 5);
    expect(Math.min(rect.width, rect.height)).toBeCloseTo(10, 5);
    const { box, shortSide } = miniBox(rect);
    expect(shortSide).toBeCloseTo(10, 5);
    // The top-left corner is the upper of the two leftmost corners.
    const leftmost = [...rect.corners].sort((a, b) => a.x - b.x).slice(0, 2);
    expect(box[0].y).toBe(Math.min(...leftmost.map((p) => p.y)));
  });

  it('unclips a rectangle by area * ratio / perimeter on every side (to the pixel, as Clipper rounds)', () => {
    const box: Quad = [
      { x: 0, y: 0 },
      { x: 100, y: 0 },
      { x: 100, y: 20 },
      { x: 0, y: 20 },
    ];
    const d = (100 * 20 * 1.5) / 240;
    const grown = minAreaRect(unclip(box, 1.5));
    expect(Math.abs(Math.max(grown.width, grown.height) - (100 + 2 * d))).toBeLessThanOrEqual(1);
    expect(Math.abs(Math.min(grown.width, grown.height) - (20 + 2 * d))).toBeLessThanOrEqual(1);
    for (const p of unclip(box, 1.5)) {
      expect(Number.isInteger(p.x) && Number.isInteger(p.y)).toBe(true);
      // Round joins: no point is farther than d (+ rounding) from the rectangle.
      const dx = Math.max(0 - p.x, 0, p.x - 100);
      const dy = Math.max(0 - p.y, 0, p.y - 20);
      expect(Math.hypot(dx, dy)).toBeLessThanOrEqual(d + 1);
    }
  });

  it('scores a box by the mean probability inside it', () => {
    const map = mapWith(50, 50, [[10, 10, 20, 20]], 0.8);
    const box: Quad = [
      { x: 10, y: 10 },
      { x: 19, y: 10 },
      { x: 19, y: 19 },
      { x: 10, y: 19 },
    ];
    expect(boxScore(map, 50, 50, box)).toBeCloseTo(0.8, 5);
  });

  it('orders corners clockwise from the top-left whatever order they come in', () => {
    const q = orderClockwise([
      { x: 10, y: 5 },
      { x: 0, y: 5 },
      { x: 0, y: 0 },
      { x: 10, y: 0 },
    ]);
    expect(q).toEqual([
      { x: 0, y: 0 },
      { x: 10, y: 0 },
      { x: 10, y: 5 },
      { x: 0, y: 5 },
    ]);
  });

  it('reads rows top to bottom and, within 10 px of height, left to right', () => {
    const at = (x: number, y: number) => ({
      id: `${x},${y}`,
      box: [
        { x, y },
        { x: x + 10, y },
        { x: x + 10, y: y + 5 },
        { x, y: y + 5 },
      ] as Quad,
    });
    const order = readingOrder([at(300, 104), at(10, 100), at(150, 50), at(5, 200)]).map((b) => b.id);
    expect(order).toEqual(['150,50', '10,100', '300,104', '5,200']);
  });
});

describe('DB post-processing', () => {
  it('finds each 8-connected region once', () => {
    const bitmap = new Uint8Array(10 * 10);
    bitmap[11] = 1;
    bitmap[22] = 1; // diagonal neighbour: same region
    bitmap[88] = 1;
    expect(regions(bitmap, 10, 10, 100)).toHaveLength(2);
  });

  it('turns text kernels into boxes in image pixels, grown by the unclip, and drops specks', () => {
    // Map 320x160 for an image of 640x320: every map pixel is 2 image pixels.
    const map = mapWith(320, 160, [
      [20, 20, 120, 30], // a text line
      [200, 100, 202, 102], // a 2x2 speck
    ]);
    const boxes = boxesFromProbabilityMap(map, 320, 160, 640, 320, options);
    expect(boxes).toHaveLength(1);
    const [tl, tr, br, bl] = (boxes[0] as { box: Quad }).box;
    // The kernel spans x 20..119, y 20..29 (+1 by the dilation up-left); grown by d = 110*10*1.6/240 ≈ 7.
    expect(tl.x).toBeLessThan(2 * 20);
    expect(tr.x).toBeGreaterThan(2 * 119);
    expect(bl.y).toBeGreaterThan(2 * 29);
    expect(tl.y).toBeLessThan(2 * 20);
    expect(tl.y).toBe(tr.y);
    expect(bl.y).toBe(br.y);
  });

  it('drops a region whose mean probability is under the box threshold', () => {
    const map = mapWith(100, 100, [[10, 10, 60, 20]], 0.4);
    expect(boxesFromProbabilityMap(map, 100, 100, 100, 100, options)).toHaveLength(0);
  });
});

describe('recognition', () => {
  it('greedy-decodes CTC: repeats merge, blanks separate, confidence is the mean kept probability', () => {
    const characters = ['', 'a', 'b'];
    // steps: a a blank a b  → "aab"
    const rows = [
      [0.1, 0.8, 0.1],
      [0.1, 0.6, 0.3],
      [0.9, 0.05, 0.05],
      [0.2, 0.7, 0.1],
      [0.1, 0.1, 0.8],
    ];
    const { text, confidence } = ctcGreedyDecode(new Float32Array(rows.flat()), 0, 5, 3, characters);
    expect(text).toBe('aab');
    expect(confidence).toBeCloseTo((0.8 + 0.7 + 0.8) / 3, 6);
    expect(ctcGreedyDecode(new Float32Array([0.9, 0.1, 0]), 0, 1, 3, characters)).toEqual({
      text: '',
      confidence: 0,
    });
  });

  it('packs crops at height 48, at least 320 wide, normalised to -1..1, zero-padded on the right', () => {
    const white = { data: Buffer.alloc(96 * 24 * 3, 255), width: 96, height: 24 };
    const { data, dims } = recBatch([white]);
    expect(dims).toEqual([1, 3, 48, 320]);
    // 96x24 → 192x48: white (1.0) up to x=191, then padding (0).
    expect(data[0]).toBeCloseTo(1, 5);
    expect(data[191]).toBeCloseTo(1, 5);
    expect(data[192]).toBe(0);
  });

  it('widens the batch to its widest crop', () => {
    const wide = { data: Buffer.alloc(1000 * 20 * 3, 0), width: 1000, height: 20 };
    expect(recBatch([wide]).dims).toEqual([1, 3, 48, 2400]);
  });

  it('crops a box through the perspective transform and turns tall crops a quarter', () => {
    // A 100x100 image whose left half is red and right half blue.
    const data = Buffer.alloc(100 * 100 * 3);
    for (let i = 0; i < 100 * 100; i += 1) data[i * 3 + (i % 100 < 50 ? 0 : 2)] = 255;
    const image = { data, width: 100, height: 100 };
    const box: Quad = [
      { x: 40, y: 10 },
      { x: 60, y: 10 },
      { x: 60, y: 80 },
      { x: 40, y: 80 },
    ];
    const crop = cropQuad(image, box);
    // 20 wide, 70 tall → turned: 70 wide, 20 tall; the left (red) half of the box is now at the bottom.
    expect(crop.width).toBe(70);
    expect(crop.height).toBe(20);
    expect(crop.data[(19 * 70 + 35) * 3]).toBe(255);
    expect(crop.data[(0 * 70 + 35) * 3 + 2]).toBe(255);
  });

  it('resizes with pixel-centre alignment (a 2x downscale averages pixel pairs)', () => {
    const data = Buffer.from([0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
    const out = resizeBilinear({ data, width: 4, height: 1 }, 2, 1);
    expect(Array.from(out.data)).toEqual([50, 50, 50, 228, 228, 228]);
  });
});
