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

/** Clipper's rounding of offset coordinates: half away from zero. */
const clipperRound = (v: number) => (v < 0 ? Math.ceil(v - 0.5) : Math.floor(v + 0.5));

/**
 * DB's "unclip": grows a text kernel back by `area * ratio / perimeter` on every side. The reference does it
 * with pyclipper (Clipper's polygon offset with round joins, arc tolerance 0.25) on the box's corners
 * truncated to integers, and the result's points rounded to integers; this follows Clipper's offsetting
 * step by step so the rectangle fitted next lands on the same pixels. Returns the offset outline.
 */
export function unclip(box: Quad, ratio: number): Point[] {
  const { area, perimeter } = areaAndPerimeter(box);
  if (perimeter === 0) return [...box];
  let delta = (area * ratio) / perimeter;
  const pts = box.map((p) => ({ x: Math.trunc(p.x), y: Math.trunc(p.y) }));
  const n = pts.length;
  const normals = pts.map((p, j) => {
    const q = pts[(j + 1) % n] as Point;
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const len = Math.hypot(dx, dy);
    return len === 0 ? { x: 0, y: 0 } : { x: dy / len, y: -dx / len };
  });
  // Clipper offsets outward whatever the winding: flip the sign when the normals point inward.
  let twice = 0;
  for (let j = 0; j < n; j += 1) {
    const a = pts[j] as Point;
    const b = pts[(j + 1) % n] as Point;
    twice += a.x * b.y - b.x * a.y;
  }
  if (twice < 0) delta = -delta;
  const absDelta = Math.abs(delta);
  let steps = Math.PI / Math.acos(1 - 0.25 / absDelta);
  if (steps > absDelta * Math.PI) steps = absDelta * Math.PI;
  let sin = Math.sin((2 * Math.PI) / steps);
  const cos = Math.cos((2 * Math.PI) / steps);
  const stepsPerRad = steps / (2 * Math.PI);
  if (delta < 0) sin = -sin;
  const out: Point[] = [];
  const add = (x: number, y: number) => out.push({ x: clipperRound(x), y: clipperRound(y) });
  for (let j = 0; j < n; j += 1) {
    const k = (j + n - 1) % n;
    const p = pts[j] as Point;
    const nk = normals[k] as Point;
    const nj = normals[j] as Point;
    let sinA = nk.x * nj.y - nj.x * nk.y;
    const cosA = nk.x * nj.x + nk.y * nj.y;
    if (Math.abs(sinA * delta) < 1) {
      if (cosA > 0) {
        add(p.x + nk.x * delta, p.y + nk.y * delta);
        continue;
      }
    } else sinA = Math.min(1, Math.max(-1, sinA));
    if (sinA * delta < 0) {
      add(p.x + nk.x * delta, p.y + nk.y * delta);
      add(p.x, p.y);
      add(p.x + nj.x * delta, p.y + nj.y * delta);
      continue;
    }
    const angle = Math.atan2(sinA, cosA);
    const arcSteps = Math.max(Math.round(stepsPerRad * Math.abs(angle)), 1);
    let x = nk.x;
    let y = nk.y;
    for (let i = 0; i < arcSteps; i += 1) {
      add(p.x + x * delta, p.y + y * delta);
      const x2 = x;
      x = x * cos - sin * y;
      y = x2 * sin + y * cos;
    }
    add(p.x + nj.x * delta, p.y + nj.y * delta);
  }
  return out;
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
 * Mean of the probability map inside the box (DB's "fast" score), as the reference computes it: the box's
 * corners truncated to integers are filled like OpenCV's fillPoly does (the interior plus the edges drawn
 * as 8-connected lines, so pixels the border passes through count), over the box's bounding rectangle.
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
  const maskWidth = xmax - xmin + 1;
  const mask = new Uint8Array(maskWidth * (ymax - ymin + 1));
  const mark = (x: number, y: number) => {
    if (x >= xmin && x <= xmax && y >= ymin && y <= ymax) mask[(y - ymin) * maskWidth + (x - xmin)] = 1;
  };
  for (let y = ymin; y <= ymax; y += 1)
    for (let x = xmin; x <= xmax; x += 1) if (insideQuad(quad, x, y)) mark(x, y);
  for (let i = 0; i < 4; i += 1) line(quad[i] as Point, quad[(i + 1) % 4] as Point, mark);
  let sum = 0;
  let count = 0;
  for (let y = ymin; y <= ymax; y += 1) {
    for (let x = xmin; x <= xmax; x += 1) {
      if (mask[(y - ymin) * maskWidth + (x - xmin)] === 0) continue;
      sum += map[y * width + x] ?? 0;
      count += 1;
    }
  }
  return count === 0 ? 0 : sum / count;
}

/** An 8-connected (Bresenham) line between integer points, both ends included. */
function line(a: Point, b: Point, plot: (x: number, y: number) => void): void {
  let { x, y } = a;
  const dx = Math.abs(b.x - x);
  const dy = -Math.abs(b.y - y);
  const sx = x < b.x ? 1 : -1;
  const sy = y < b.y ? 1 : -1;
  let error = dx + dy;
  for (;;) {
    plot(x, y);
    if (x === b.x && y === b.y) return;
    const e2 = 2 * error;
    if (e2 >= dy) {
      error += dy;
      x += sx;
    }
    if (e2 <= dx) {
      error += dx;
      y += sy;
    }
  }
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
