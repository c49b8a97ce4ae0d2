import type { Point } from './types.js';

/** A quadrilateral as [top-left, top-right, bottom-right, bottom-left]. */
export type Quad = [Point, Point, Point, Point];

const cross = (o: Point, a: Point, b: Point) => (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
export const distance = (a: Point, b: Point) => Math.hypot(a.x - b.x, a.y - b.y);

/** Convex hull (Andrew's monotone chain), counter-clockwise in a y-down frame, no collinear points. */
export function convexHull(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a.x - b.x || a.y - b.y);
  if (sorted.length <= 2) return sorted;
  const lower: Point[] = [];
  for (const p of sorted) {
    while (lower.length >= 2 && cross(lower.at(-2) as Point, lower.at(-1) as Point, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = sorted.length - 1; i >= 0; i -= 1) {
    const p = sorted[i] as Point;
    while (upper.length >= 2 && cross(upper.at(-2) as Point, upper.at(-1) as Point, p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/** A rotated rectangle: its four corners (in hull order) and its side lengths. */
export interface RotatedRect {
  corners: [Point, Point, Point, Point];
  width: number;
  height: number;
}

/**
 * The minimum-area enclosing rectangle of a point set (rotating calipers over the hull edges), like OpenCV's
 * minAreaRect. Degenerate sets (one point, collinear points) give a rectangle with a zero side.
 */
export function minAreaRect(points: readonly Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0) throw new Error('minAreaRect of no points');
  if (hull.length === 1) {
    const p = hull[0] as Point;
    return { corners: [p, p, p, p], width: 0, height: 0 };
  }
  let best: RotatedRect | undefined;
  let bestArea = Number.POSITIVE_INFINITY;
  for (let i = 0; i < hull.length; i += 1) {
    const a = hull[i] as Point;
    const b = hull[(i + 1) % hull.length] as Point;
    const len = distance(a, b);
    if (len === 0) continue;
    const ux = (b.x - a.x) / len;
    const uy = (b.y - a.y) / len;
    let minU = Number.POSITIVE_INFINITY;
    let maxU = Number.NEGATIVE_INFINITY;
    let minV = Number.POSITIVE_INFINITY;
    let maxV = Number.NEGATIVE_INFINITY;
    for (const p of hull) {
      const u = (p.x - a.x) * ux + (p.y - a.y) * uy;
      const v = -(p.x - a.x) * uy + (p.y - a.y) * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea - 1e-9) {
      bestArea = area;
      const at = (u: number, v: number): Point => ({ x: a.x + u * ux - v * uy, y: a.y + u * uy + v * ux });
      best = {
        corners: [at(minU, minV), at(maxU, minV), at(maxU, maxV), at(minU, maxV)],
        width: maxU - minU,
        height: maxV - minV,
      };
    }
  }
  return best as RotatedRect;
}

/**
 * A rectangle's corners as [top-left, top-right, bottom-right, bottom-left] plus its shorter side, the way
 * PaddleOCR's DB post-processing orders them (get_mini_boxes): the two leftmost corners by x, the upper one
 * first; the two rightmost likewise.
 */
export function miniBox(rect: RotatedRect): { box: Quad; shortSide: number } {
  const p = [...rect.corners].sort((a, b) => a.x - b.x) as [Point, Point, Point, Point];
  const [tl, bl] = p[1].y > p[0].y ? [p[0], p[1]] : [p[1], p[0]];
  const [tr, br] = p[3].y > p[2].y ? [p[2], p[3]] : [p[3], p[2]];
  return { box: [tl, tr, br, bl], shortSide: Math.min(rect.width, rect.height) };
}

/** Shoelace area and perimeter of a polygon. */
export function areaAndPerimeter(polygon: readonly Point[]): { area: number; perimeter: number } {
  let twice = 0;
  let perimeter = 0;
  for (let i = 0; i < polygon.length; i += 1) {
    const a = polygon[i] as Point;
    const b = polygon[(i + 1) % polygon.length] as Point;
    twice += a.x * b.y - b.x * a.y;
    perimeter += distance(a, b);
  }
  return { area: Math.abs(twice) / 2, perimeter };
}

/**
 * DB's "unclip": grows the shrunk text kernel back by `area * ratio / perimeter` on every side. The reference
 * offsets the polygon with rounded joins (pyclipper) and takes the minimum-area rectangle of the result; for a
 * rectangle that is exactly the rectangle grown by the offset on each side, which is computed here directly.
 */
export function unclip(rect: RotatedRect, ratio: number): RotatedRect {
  const { area, perimeter } = areaAndPerimeter(rect.corners);
  if (perimeter === 0) return rect;
  const d = (area * ratio) / perimeter;
  const [a, b, , e] = rect.corners;
  // Unit vectors along the two sides (from corner 0 to 1, and from corner 0 to 3).
  const lenU = distance(a, b);
  const lenV = distance(a, e);
  const u = lenU > 0 ? { x: (b.x - a.x) / lenU, y: (b.y - a.y) / lenU } : { x: 1, y: 0 };
  const v = lenV > 0 ? { x: (e.x - a.x) / lenV, y: (e.y - a.y) / lenV } : { x: -u.y, y: u.x };
  const at = (s: number, t: number): Point => ({
    x: a.x + s * u.x + t * v.x,
    y: a.y + s * u.y + t * v.y,
  });
  return {
    corners: [at(-d, -d), at(lenU + d, -d), at(lenU + d, lenV + d), at(-d, lenV + d)],
    width: lenU + 2 * d,
    height: lenV + 2 * d,
  };
}

/** True when (x, y) is inside the convex quad or on its border. */
function insideQuad(quad: Quad, x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < 4; i += 1) {
    const c = cross(quad[i] as Point, quad[(i + 1) % 4] as Point, { x, y });
    if (Math.abs(c) < 1e-9) continue;
    const s = c > 0 ? 1 : -1;
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}

/**
 * Mean of the probability map inside the box (DB's "fast" score): the reference fills the box, with its
 * corners truncated to integers, over the box's bounding rectangle and averages the map under the mask.
 */
export function boxScore(map: Float32Array, width: number, height: number, box: Quad): number {
  const xs = box.map((p) => p.x);
  const ys = box.map((p) => p.y);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const xmin = clamp(Math.floor(Math.min(...xs)), width - 1);
  const xmax = clamp(Math.ceil(Math.max(...xs)), width - 1);
  const ymin = clamp(Math.floor(Math.min(...ys)), height - 1);
  const ymax = clamp(Math.ceil(Math.max(...ys)), height - 1);
  const quad = box.map((p) => ({ x: Math.trunc(p.x), y: Math.trunc(p.y) })) as Quad;
  let sum = 0;
  let count = 0;
  for (let y = ymin; y <= ymax; y += 1) {
    for (let x = xmin; x <= xmax; x += 1) {
      if (!insideQuad(quad, x, y)) continue;
      sum += map[y * width + x] ?? 0;
      count += 1;
    }
  }
  return count === 0 ? 0 : sum / count;
}

/** Orders four points as [top-left, top-right, bottom-right, bottom-left] (RapidOCR's order_points_clockwise). */
export function orderClockwise(points: readonly Point[]): Quad {
  const byX = [...points].sort((a, b) => a.x - b.x);
  const [tl, bl] = [byX[0] as Point, byX[1] as Point].sort((a, b) => a.y - b.y) as [Point, Point];
  const [tr, br] = [byX[2] as Point, byX[3] as Point].sort((a, b) => a.y - b.y) as [Point, Point];
  return [tl, tr, br, bl];
}

/**
 * Reading order: by the top-left corner, top to bottom; boxes whose tops are within 10 px of each other are
 * one row, read left to right (PaddleOCR's sorted_boxes).
 */
export function readingOrder<T extends { box: Quad }>(items: readonly T[]): T[] {
  const sorted = [...items].sort((a, b) => a.box[0].y - b.box[0].y || a.box[0].x - b.box[0].x);
  for (let i = 0; i < sorted.length - 1; i += 1) {
    for (let j = i; j >= 0; j -= 1) {
      const a = sorted[j] as T;
      const b = sorted[j + 1] as T;
      if (Math.abs(b.box[0].y - a.box[0].y) < 10 && b.box[0].x < a.box[0].x) {
        sorted[j] = b;
        sorted[j + 1] = a;
      } else break;
    }
  }
  return sorted;
}
