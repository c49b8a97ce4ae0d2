// Event-time arithmetic of the fusion windows: sliding windows of media time, and the stream watermark built
// from the two inputs' watermarks. Pure functions: the state machine (stream-fusion.ts) calls them, the unit
// tests pin them (windows.test.ts).

/** Sliding windows over media time: window k covers [k·hopMs, k·hopMs + sizeMs). */
export interface WindowSpec {
  readonly sizeMs: number;
  readonly hopMs: number;
}

/** A window's [startMs, endMs). */
export interface WindowRange {
  readonly startMs: number;
  readonly endMs: number;
}

/** Checks a window spec: positive integers, the hop no longer than the size (windows overlap or touch). */
export function checkWindowSpec(spec: WindowSpec): void {
  if (!(Number.isInteger(spec.sizeMs) && spec.sizeMs > 0))
    throw new RangeError(`window size must be a positive integer of ms, got ${spec.sizeMs}`);
  if (!(Number.isInteger(spec.hopMs) && spec.hopMs > 0 && spec.hopMs <= spec.sizeMs))
    throw new RangeError(`window hop must be a positive integer of ms at most the size, got ${spec.hopMs}`);
}

/** The window whose index is `k`. */
export function windowAt(spec: WindowSpec, k: number): WindowRange {
  return { startMs: k * spec.hopMs, endMs: k * spec.hopMs + spec.sizeMs };
}

/**
 * Indexes of the windows (k ≥ 0) that media time [startMs, endMs] touches: a window contains a point t when
 * start ≤ t < end, and a span when they overlap (a frame is a point: startMs = endMs).
 */
export function windowsTouching(spec: WindowSpec, startMs: number, endMs: number): number[] {
  const last = Math.floor(Math.max(startMs, endMs - 1) / spec.hopMs);
  // The first k whose window ends after startMs: k·hop + size > startMs.
  const first = Math.max(0, Math.floor((startMs - spec.sizeMs) / spec.hopMs) + 1);
  const out: number[] = [];
  for (let k = first; k <= last; k += 1) out.push(k);
  return out;
}

/** Indexes of the windows whose end lies in (fromMs, toMs]: the ones a watermark moving there completes. */
export function windowsEndingIn(spec: WindowSpec, fromMs: number, toMs: number): number[] {
  if (toMs <= fromMs) return [];
  // end = k·hop + size, so k ranges over (from - size)/hop < k ≤ (to - size)/hop, k ≥ 0.
  const first = Math.max(0, Math.floor((fromMs - spec.sizeMs) / spec.hopMs) + 1);
  const last = Math.floor((toMs - spec.sizeMs) / spec.hopMs);
  const out: number[] = [];
  for (let k = first; k <= last; k += 1) out.push(k);
  return out;
}

/** No media time yet: a watermark below every real time. */
export const NO_WATERMARK = Number.NEGATIVE_INFINITY;

/**
 * The stream's watermark from its inputs' watermarks (the latest media time each has fully delivered): the
 * slower input's, so that a window is decided once both inputs are past it — but never more than
 * `maxInputSkewMs` behind the faster one. A quiet input (no speech, so no transcripts) would otherwise stall
 * the stream for as long as it is quiet; bounding the skew in media time, not wall time, keeps the decision
 * the same on every replay. What a quiet input delivers later is late data (re-evaluated within the allowed
 * lateness).
 */
export function streamWatermark(inputWatermarks: readonly number[], maxInputSkewMs: number): number {
  if (inputWatermarks.length === 0) return NO_WATERMARK;
  const slowest = Math.min(...inputWatermarks);
  const fastest = Math.max(...inputWatermarks);
  if (fastest === NO_WATERMARK) return NO_WATERMARK;
  return Math.max(slowest, fastest - maxInputSkewMs);
}
