import { performance } from 'node:perf_hooks';
import { LiveLensError } from '@livelens/runtime';
import type { DecodedImage } from '../image.js';
import type { Tensor } from '../session.js';
import { boxesFromProbabilityMap, DET_MEAN, DET_STD, detResize } from './detect.js';
import { type Quad, readingOrder } from './geometry.js';
import { cropQuad, writeNormalizedBgr } from './raster.js';
import { ctcGreedyDecode, recBatch } from './recognize.js';
import type { OcrLine, OcrOptions } from './types.js';

/** A loaded model as the pipeline uses it (in the worker thread that runs the pipeline). */
export interface ModelRunner {
  readonly modelId: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; ms: number }>;
}

export interface OcrBatchResult {
  /** The i-th entry holds the lines read in the i-th image, in reading order. */
  lines: OcrLine[][];
  /** Wall time of detection (pre-processing, inference, post-processing) for the whole batch. */
  detMs: number;
  /** Wall time of recognition (cropping, inference, decoding) for the whole batch. */
  recMs: number;
}

/**
 * PaddleOCR's PP-OCR pipeline with every step outside the networks in TypeScript: DB text detection, crops
 * straightened by perspective, recognition at height 48 in batches of similar aspect ratio, CTC greedy
 * decoding, reading order. It follows the reference (PaddleOCR / RapidOCR) step by step, so the same image
 * gives the same boxes and text (see test/golden and reference/). No angle classifier: live overlays are
 * upright, and vertical crops are turned a quarter like the reference does. All of it is CPU work: it runs
 * in a worker thread (ocr-worker.ts), behind PaddleOcr.
 */
export class OcrPipeline {
  constructor(
    private readonly det: ModelRunner,
    private readonly rec: ModelRunner,
    private readonly characters: readonly string[],
    readonly options: OcrOptions,
  ) {}

  /** Reads the text in a batch of images: the detector over up to detBatchSize same-size images per run, then each image's lines. */
  async recognize(images: readonly DecodedImage[]): Promise<OcrBatchResult> {
    const detStart = performance.now();
    const boxes = await this.detect(images);
    const recStart = performance.now();
    const lines = await this.read(images, boxes);
    const end = performance.now();
    return { lines, detMs: recStart - detStart, recMs: end - recStart };
  }

  /** Text boxes per image, in reading order. */
  async detect(images: readonly DecodedImage[]): Promise<Quad[][]> {
    const resized = images.map((image) => detResize(image, this.options.detMaxSide));
    // Images of the same input size share one inference, up to detBatchSize of them (on CPU one image per
    // run is as fast per frame and holds less memory: bench/ocr-throughput.ts).
    const groups: number[][] = [];
    const open = new Map<string, number[]>();
    for (const [i, r] of resized.entries()) {
      const key = `${r.width}x${r.height}`;
      let group = open.get(key);
      if (!group || group.length >= this.options.detBatchSize) {
        group = [];
        groups.push(group);
        open.set(key, group);
      }
      group.push(i);
    }
    const out: Quad[][] = images.map(() => []);
    const inputName = this.det.inputNames[0] ?? 'x';
    const outputName = this.det.outputNames[0] ?? 'sigmoid_0.tmp_0';
    for (const members of groups) {
      const first = resized[members[0] as number] as DecodedImage;
      const { width, height } = first;
      const plane = width * height;
      const data = new Float32Array(members.length * 3 * plane);
      for (const [k, i] of members.entries())
        writeNormalizedBgr(resized[i] as DecodedImage, data, k * 3 * plane, width, plane, DET_MEAN, DET_STD);
      const { outputs } = await this.det.run({
        [inputName]: { data, dims: [members.length, 3, height, width] },
      });
      const map = outputs[outputName];
      if (!map || map.data.length !== members.length * plane)
        throw new LiveLensError(`model ${this.det.modelId}: unexpected output shape ${map?.dims.join('x')}`, {
          code: 'internal',
        });
      for (const [k, i] of members.entries()) {
        const image = images[i] as DecodedImage;
        const found = boxesFromProbabilityMap(
          map.data.subarray(k * plane, (k + 1) * plane),
          width,
          height,
          image.width,
          image.height,
          this.options,
        );
        out[i] = readingOrder(found).map((b) => b.box);
      }
    }
    return out;
  }

  /**
   * Recognises every box, image by image as the reference does: an image's crops sorted by aspect ratio, in
   * batches of recBatchSize padded to the batch's widest. Grouping per image (not pooled across the batch)
   * keeps what a frame reads independent of which frames share its batch, so a replay reads the same.
   */
  private async read(images: readonly DecodedImage[], boxes: readonly Quad[][]): Promise<OcrLine[][]> {
    const crops: Array<{ image: number; box: Quad; crop: DecodedImage }> = [];
    const batches: number[][] = [];
    for (const [i, list] of boxes.entries()) {
      const first = crops.length;
      for (const box of list) {
        // A box degenerate after clipping (two corners on one point) has no perspective transform: skip it,
        // as the reference in effect does (OpenCV returns a zero matrix and reads nothing).
        let crop: DecodedImage;
        try {
          crop = cropQuad(images[i] as DecodedImage, box);
        } catch {
          continue;
        }
        crops.push({ image: i, box, crop });
      }
      const order = crops
        .slice(first)
        .map((c, k) => ({ index: first + k, ratio: c.crop.width / c.crop.height }))
        .sort((a, b) => a.ratio - b.ratio)
        .map((c) => c.index);
      for (let start = 0; start < order.length; start += this.options.recBatchSize)
        batches.push(order.slice(start, start + this.options.recBatchSize));
    }
    const decoded = new Array<{ text: string; confidence: number }>(crops.length);
    const inputName = this.rec.inputNames[0] ?? 'x';
    const outputName = this.rec.outputNames[0] ?? 'softmax_11.tmp_0';
    for (const members of batches) {
      const batch = recBatch(members.map((i) => (crops[i] as (typeof crops)[number]).crop));
      const { outputs } = await this.rec.run({ [inputName]: batch });
      const probabilities = outputs[outputName];
      const [n, steps, classes] = probabilities?.dims ?? [];
      if (!probabilities || n !== members.length || !steps || !classes)
        throw new LiveLensError(
          `model ${this.rec.modelId}: unexpected output shape ${probabilities?.dims.join('x')}`,
          { code: 'internal' },
        );
      if (classes !== this.characters.length)
        throw new LiveLensError(
          `model ${this.rec.modelId}: ${classes} classes but the dictionary gives ${this.characters.length}`,
          { code: 'failed_precondition' },
        );
      for (const [k, i] of members.entries())
        decoded[i] = ctcGreedyDecode(
          probabilities.data,
          k * steps * classes,
          steps,
          classes,
          this.characters,
        );
    }
    const lines: OcrLine[][] = images.map(() => []);
    for (const [i, c] of crops.entries()) {
      const { text, confidence } = decoded[i] as { text: string; confidence: number };
      if (confidence < this.options.minConfidence || text.trim() === '') continue;
      const list = lines[c.image] as OcrLine[];
      list.push({ box: c.box, text, confidence, readingOrder: list.length });
    }
    return lines;
  }
}
