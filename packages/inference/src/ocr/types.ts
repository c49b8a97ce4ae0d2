/** A point in pixel coordinates of the original (decoded) image. */
export interface Point {
  readonly x: number;
  readonly y: number;
}

/** One line of text read in an image. */
export interface OcrLine {
  /** The text's quadrilateral, clockwise from top-left, in image pixels. */
  readonly box: readonly [Point, Point, Point, Point];
  readonly text: string;
  /** Mean of the per-character probabilities of the greedy CTC path, 0..1. */
  readonly confidence: number;
  /** Position in reading order (top to bottom, then left to right within a row), from 0. */
  readonly readingOrder: number;
}

/** Tunables of the PP-OCR pipeline; the defaults follow PaddleOCR's and RapidOCR's. */
export interface OcrOptions {
  /** The detector's input is scaled so its longer side is at most this (then to multiples of 32). @default 960 */
  detMaxSide: number;
  /** Probability-map binarization threshold. @default 0.3 */
  detThreshold: number;
  /** A candidate box whose mean probability is below this is dropped. @default 0.5 */
  boxThreshold: number;
  /** How far a shrunk text kernel is grown back (DB "unclip"). @default 1.6 */
  unclipRatio: number;
  /** Dilate the binary map by a 2x2 kernel before tracing contours (RapidOCR's default). @default true */
  dilate: boolean;
  /** Candidates considered per image, largest first. @default 1000 */
  maxCandidates: number;
  /** Lines whose recognition confidence is below this are dropped. @default 0.5 */
  minConfidence: number;
  /** Text lines of one image recognised per inference (sorted by aspect ratio so a batch pads little). @default 6 */
  recBatchSize: number;
  /**
   * Images of the same size per detector inference. On CPU 1 is as fast per frame as larger batches and holds
   * less memory; raise it on a GPU. @default 1
   */
  detBatchSize: number;
}

export const defaultOcrOptions: OcrOptions = {
  detMaxSide: 960,
  detThreshold: 0.3,
  boxThreshold: 0.5,
  unclipRatio: 1.6,
  dilate: true,
  maxCandidates: 1000,
  minConfidence: 0.5,
  recBatchSize: 6,
  detBatchSize: 1,
};
