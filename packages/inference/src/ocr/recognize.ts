import { readFile } from 'node:fs/promises';
import type { DecodedImage } from '../image.js';
import { resizeBilinear, writeNormalizedBgr } from './raster.js';

/** The recognizer's input height and its minimum width (PP-OCRv4 rec: 3x48x320). */
export const REC_HEIGHT = 48;
export const REC_MIN_WIDTH = 320;
const REC_MEAN = [0.5, 0.5, 0.5] as const;
const REC_STD = [0.5, 0.5, 0.5] as const;

/**
 * The recognizer's classes: index 0 is the CTC blank, then one per dictionary line, then a space (PP-OCR
 * models are trained with `use_space_char`).
 */
export async function loadCharacters(dictPath: string): Promise<string[]> {
  const text = await readFile(dictPath, 'utf8');
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  return ['', ...lines, ' '];
}

/**
 * Packs text-line crops into one recognizer batch [N, 3, 48, W]: W fits the widest aspect ratio of the batch
 * (at least 320); each crop is resized to height 48 keeping its aspect (capped at W), normalised to -1..1 in
 * BGR order, and right-padded with zeros.
 */
export function recBatch(crops: readonly DecodedImage[]): { data: Float32Array; dims: number[] } {
  let maxRatio = REC_MIN_WIDTH / REC_HEIGHT;
  for (const crop of crops) maxRatio = Math.max(maxRatio, crop.width / crop.height);
  const width = Math.trunc(REC_HEIGHT * maxRatio);
  const plane = REC_HEIGHT * width;
  const data = new Float32Array(crops.length * 3 * plane);
  for (const [i, crop] of crops.entries()) {
    const resizedWidth = Math.min(width, Math.ceil(REC_HEIGHT * (crop.width / crop.height)));
    const resized = resizeBilinear(crop, Math.max(1, resizedWidth), REC_HEIGHT);
    writeNormalizedBgr(resized, data, i * 3 * plane, width, plane, REC_MEAN, REC_STD);
  }
  return { data, dims: [crops.length, 3, REC_HEIGHT, width] };
}

/**
 * Greedy CTC decoding of one line's output ([T, C] probabilities): the best class per step, repeats merged,
 * blanks dropped. Confidence is the mean probability of the kept characters (0 when nothing is read).
 */
export function ctcGreedyDecode(
  probabilities: Float32Array,
  offset: number,
  steps: number,
  classes: number,
  characters: readonly string[],
): { text: string; confidence: number } {
  let text = '';
  let sum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t += 1) {
    const row = offset + t * classes;
    let best = 0;
    let bestP = probabilities[row] as number;
    for (let c = 1; c < classes; c += 1) {
      const p = probabilities[row + c] as number;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== previous) {
      text += characters[best] ?? '';
      sum += bestP;
      kept += 1;
    }
    previous = best;
  }
  return { text, confidence: kept === 0 ? 0 : sum / kept };
}
