import type { DecodedImage } from '../image.js';
import type { Quad } from './geometry.js';
import { distance } from './geometry.js';
import type { Point } from './types.js';

/**
 * Bilinear resize of packed RGB with pixel-centre alignment (`src = (dst + 0.5) * scale - 0.5`, edges
 * clamped): the sampling of OpenCV's INTER_LINEAR, which the PaddleOCR reference uses for both models.
 */
export function resizeBilinear(image: DecodedImage, width: number, height: number): DecodedImage {
  const { data: src, width: sw, height: sh } = image;
  const out = Buffer.allocUnsafe(width * height * 3);
  const sx = sw / width;
  const sy = sh / height;
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float32Array(width);
  for (let x = 0; x < width; x += 1) {
    let fx = (x + 0.5) * sx - 0.5;
    if (fx < 0) fx = 0;
    const x0 = Math.min(Math.floor(fx), sw - 1);
    x0s[x] = x0 * 3;
    x1s[x] = Math.min(x0 + 1, sw - 1) * 3;
    fxs[x] = fx - x0;
  }
  for (let y = 0; y < height; y += 1) {
    let fy = (y + 0.5) * sy - 0.5;
    if (fy < 0) fy = 0;
    const y0 = Math.min(Math.floor(fy), sh - 1);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = fy - y0;
    const row0 = y0 * sw * 3;
    const row1 = y1 * sw * 3;
    let o = y * width * 3;
    for (let x = 0; x < width; x += 1) {
      const a = x0s[x] as number;
      const b = x1s[x] as number;
      const wx = fxs[x] as number;
      for (let c = 0; c < 3; c += 1) {
        const top = (src[row0 + a + c] as number) * (1 - wx) + (src[row0 + b + c] as number) * wx;
        const bottom = (src[row1 + a + c] as number) * (1 - wx) + (src[row1 + b + c] as number) * wx;
        out[o] = Math.round(top * (1 - wy) + bottom * wy);
        o += 1;
      }
    }
  }
  return { data: out, width, height };
}

/** The 3x3 homography (row-major, h33 = 1) taking the unit-square-like rectangle corners `from` to `to`. */
function homography(from: readonly Point[], to: readonly Point[]): number[] {
  // Solve the 8x8 system A h = b by Gaussian elimination with partial pivoting.
  const a: number[][] = [];
  for (let i = 0; i < 4; i += 1) {
    const { x, y } = from[i] as Point;
    const { x: u, y: v } = to[i] as Point;
    a.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    a.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  for (let col = 0; col < 8; col += 1) {
    let pivot = col;
    for (let r = col + 1; r < 8; r += 1)
      if (Math.abs(a[r]?.[col] as number) > Math.abs(a[pivot]?.[col] as number)) pivot = r;
    [a[col], a[pivot]] = [a[pivot] as number[], a[col] as number[]];
    const p = a[col] as number[];
    if (Math.abs(p[col] as number) < 1e-12) throw new Error('degenerate text box');
    for (let r = 0; r < 8; r += 1) {
      if (r === col) continue;
      const row = a[r] as number[];
      const f = (row[col] as number) / (p[col] as number);
      if (f === 0) continue;
      for (let k = col; k < 9; k += 1) row[k] = (row[k] as number) - f * (p[k] as number);
    }
  }
  const h = a.map((row, i) => (row[8] as number) / (row[i] as number));
  return [...h, 1];
}

/**
 * Cuts a text box out of the image and straightens it, like the reference's get_rotate_crop_image: the crop
 * is as wide as the box's longer horizontal side and as tall as its longer vertical side, sampled through the
 * perspective transform with bicubic interpolation (OpenCV's, a = -0.75) and edges replicated; a crop at least
 * 1.5 times taller than wide is vertical text and is turned a quarter.
 */
export function cropQuad(image: DecodedImage, box: Quad): DecodedImage {
  const w = Math.max(1, Math.trunc(Math.max(distance(box[0], box[1]), distance(box[2], box[3]))));
  const h = Math.max(1, Math.trunc(Math.max(distance(box[0], box[3]), distance(box[1], box[2]))));
  // Destination pixel → source point.
  const m = homography(
    [
      { x: 0, y: 0 },
      { x: w, y: 0 },
      { x: w, y: h },
      { x: 0, y: h },
    ],
    box,
  );
  const { data: src, width: sw, height: sh } = image;
  const out = Buffer.allocUnsafe(w * h * 3);
  const wx = new Float64Array(4);
  const wy = new Float64Array(4);
  const xs = new Int32Array(4);
  const ys = new Int32Array(4);
  let o = 0;
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const d = (m[6] as number) * x + (m[7] as number) * y + 1;
      const fx = ((m[0] as number) * x + (m[1] as number) * y + (m[2] as number)) / d;
      const fy = ((m[3] as number) * x + (m[4] as number) * y + (m[5] as number)) / d;
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      cubicWeights(fx - x0, wx);
      cubicWeights(fy - y0, wy);
      // BORDER_REPLICATE: taps outside the image read the nearest edge pixel.
      for (let k = 0; k < 4; k += 1) {
        xs[k] = Math.min(Math.max(x0 - 1 + k, 0), sw - 1) * 3;
        ys[k] = Math.min(Math.max(y0 - 1 + k, 0), sh - 1) * sw * 3;
      }
      for (let c = 0; c < 3; c += 1) {
        let sum = 0;
        for (let j = 0; j < 4; j += 1) {
          const row = (ys[j] as number) + c;
          sum +=
            (wy[j] as number) *
            ((wx[0] as number) * (src[row + (xs[0] as number)] as number) +
              (wx[1] as number) * (src[row + (xs[1] as number)] as number) +
              (wx[2] as number) * (src[row + (xs[2] as number)] as number) +
              (wx[3] as number) * (src[row + (xs[3] as number)] as number));
        }
        out[o] = Math.min(255, Math.max(0, Math.round(sum)));
        o += 1;
      }
    }
  }
  const crop = { data: out, width: w, height: h };
  return h / w >= 1.5 ? rotateCounterClockwise(crop) : crop;
}

/** OpenCV's bicubic kernel (a = -0.75) at the four taps around a sample `t` (0..1) past the second. */
function cubicWeights(t: number, out: Float64Array): void {
  const a = -0.75;
  out[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  out[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  out[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  out[3] = 1 - (out[0] as number) - (out[1] as number) - (out[2] as number);
}

/** A quarter turn counter-clockwise (numpy's rot90). */
function rotateCounterClockwise(image: DecodedImage): DecodedImage {
  const { data, width, height } = image;
  const out = Buffer.allocUnsafe(data.length);
  // Output is height wide and width tall; out(x', y') = in(width - 1 - y', x').
  for (let y = 0; y < width; y += 1) {
    for (let x = 0; x < height; x += 1) {
      const s = (x * width + (width - 1 - y)) * 3;
      const d = (y * height + x) * 3;
      out[d] = data[s] as number;
      out[d + 1] = data[s + 1] as number;
      out[d + 2] = data[s + 2] as number;
    }
  }
  return { data: out, width: height, height: width };
}

/**
 * Writes an RGB image into a planar float tensor (CHW) in BGR channel order, as the PaddleOCR models were
 * trained on OpenCV's BGR images: `value = (pixel / 255 - mean[c]) / std[c]`, c in B, G, R order.
 * `stride` is the tensor's row width (≥ the image width; the rest of the row is left as it is: padding).
 */
export function writeNormalizedBgr(
  image: DecodedImage,
  out: Float32Array,
  offset: number,
  stride: number,
  planeSize: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): void {
  const { data, width, height } = image;
  for (let c = 0; c < 3; c += 1) {
    // Plane c is BGR channel c, which is RGB channel 2 - c.
    const source = 2 - c;
    const scale = 1 / (255 * (std[c] as number));
    const shift = (mean[c] as number) / (std[c] as number);
    const plane = offset + c * planeSize;
    for (let y = 0; y < height; y += 1) {
      const row = plane + y * stride;
      let s = y * width * 3 + source;
      for (let x = 0; x < width; x += 1) {
        out[row + x] = (data[s] as number) * scale - shift;
        s += 3;
      }
    }
  }
}
