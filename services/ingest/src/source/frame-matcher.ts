/**
 * Pairs the JPEGs read from stdout with the per-frame records ffmpeg printed on stderr.
 *
 * Assumption (pinned by the argv, see ffmpeg-args.ts): every frame that leaves the filter graph becomes exactly
 * one JPEG, in order: `-fps_mode passthrough` never drops or duplicates, the mjpeg encoder never skips a frame,
 * and image2pipe writes every packet. So the print filter's `frame:N` counter is the JPEG's index on stdout,
 * and a JPEG the splitter dropped (too large, corrupt) still uses up its index.
 *
 * stdout and stderr are two pipes: Node may read a JPEG before or after its line. A JPEG waits for its record;
 * it is sent with an estimated pts (previous pts + 1/fps) instead, with a warning, when
 * - the record for a later index has arrived (the line for this one was lost or garbled),
 * - it has waited longer than `maxWaitMs` (stderr stalled: never hang), or
 * - the process ended.
 * Records for indices already settled are discarded; records running far ahead of the JPEGs (more than
 * `maxAheadRecords`) mean the two queues disagree, so matching is abandoned for the rest of the process and
 * every later frame gets an estimate: a wrong pts is never attached silently.
 */
import type { SplitJpeg } from './jpeg-splitter.js';
import type { FrameMeta } from './stderr.js';
import type { SampledFrame, SampleReason } from './types.js';

export interface FrameMatcherOptions {
  frameRateFps: number;
  sceneChangeThreshold: number;
  emit(frame: SampledFrame): void;
  warn(message: string, fields: Record<string, unknown>): void;
  /** @default 2000 */
  maxWaitMs?: number;
  /** @default 256 */
  maxAheadRecords?: number;
  /** The clock `receivedAtMs` is on. @default Date.now */
  now?: () => number;
}

type Pending =
  | { index: number; dropped: true }
  | { index: number; dropped: false; split: SplitJpeg; receivedAtMs: number };

export class FrameMatcher {
  private readonly pending: Pending[] = [];
  private readonly records = new Map<number, FrameMeta>();
  private nextJpegIndex = 0;
  /** Every index below this is settled (sent or dropped). */
  private settledBelow = 0;
  private highestRecordIndex = -1;
  private lastPtsMs: number | undefined;
  private lastPtsSeconds: number | undefined;
  private matching = true;
  private readonly maxWaitMs: number;
  private readonly maxAheadRecords: number;
  private readonly now: () => number;
  /** Frames sent with an estimated pts. */
  estimated = 0;

  constructor(private readonly options: FrameMatcherOptions) {
    this.maxWaitMs = options.maxWaitMs ?? 2000;
    this.maxAheadRecords = options.maxAheadRecords ?? 256;
    this.now = options.now ?? Date.now;
  }

  addRecord(record: FrameMeta): void {
    if (!this.matching || record.index < this.settledBelow) return;
    this.records.set(record.index, record);
    this.highestRecordIndex = Math.max(this.highestRecordIndex, record.index);
    if (this.records.size > this.maxAheadRecords) {
      this.options.warn('ffmpeg frame records disagree with the JPEGs; estimating pts from now on', {
        records: this.records.size,
        jpegs: this.nextJpegIndex,
      });
      this.matching = false;
      this.records.clear();
    }
    this.drain(this.now(), false);
  }

  addJpeg(split: SplitJpeg, receivedAtMs: number): void {
    this.pending.push({ index: this.nextJpegIndex, dropped: false, split, receivedAtMs });
    this.nextJpegIndex += 1;
    this.drain(receivedAtMs, false);
  }

  /** A frame the splitter dropped: it used up an index. */
  addDropped(): void {
    this.pending.push({ index: this.nextJpegIndex, dropped: true });
    this.nextJpegIndex += 1;
    this.drain(this.now(), false);
  }

  /** Sends JPEGs that waited too long. Call periodically. */
  tick(nowMs: number): void {
    this.drain(nowMs, false);
  }

  /** The process ended: sends everything still waiting. */
  flush(nowMs: number): void {
    this.drain(nowMs, true);
  }

  private drain(nowMs: number, force: boolean): void {
    for (;;) {
      const head = this.pending[0];
      if (!head) return;
      if (head.dropped) {
        this.records.delete(head.index);
      } else {
        const record = this.records.get(head.index);
        if (record) {
          this.records.delete(head.index);
          this.send(head.split, head.receivedAtMs, record);
        } else if (
          !this.matching ||
          force ||
          this.highestRecordIndex > head.index ||
          nowMs - head.receivedAtMs >= this.maxWaitMs
        ) {
          if (this.matching) {
            this.options.warn('no ffmpeg frame record for a JPEG; estimating its pts', {
              index: head.index,
              waitedMs: nowMs - head.receivedAtMs,
            });
          }
          this.send(head.split, head.receivedAtMs, undefined);
        } else {
          return;
        }
      }
      this.pending.shift();
      this.settledBelow = head.index + 1;
    }
  }

  private send(split: SplitJpeg, receivedAtMs: number, record: FrameMeta | undefined): void {
    const step = 1000 / this.options.frameRateFps;
    let ptsMs: number;
    let ptsSeconds: number | undefined;
    if (record && record.ptsSeconds !== null) {
      ptsSeconds = record.ptsSeconds;
      ptsMs = Math.round(record.ptsSeconds * 1000);
      if (this.lastPtsMs !== undefined && ptsMs <= this.lastPtsMs) {
        // A timestamp reset ffmpeg did not smooth out: keep the promise of a strictly increasing pts.
        this.options.warn('ffmpeg frame pts went backwards; clamping', { ptsMs, lastPtsMs: this.lastPtsMs });
        ptsMs = this.lastPtsMs + 1;
      }
    } else {
      this.estimated += 1;
      ptsMs = this.lastPtsMs === undefined ? 0 : Math.round(this.lastPtsMs + step);
      ptsSeconds = undefined;
    }
    const sceneScore = record?.sceneScore ?? 0;
    const reason = this.reasonFor(ptsSeconds, sceneScore);
    this.lastPtsMs = ptsMs;
    if (ptsSeconds !== undefined) this.lastPtsSeconds = ptsSeconds;
    this.options.emit({
      jpeg: split.jpeg,
      ptsMs,
      width: split.width,
      height: split.height,
      sceneScore,
      reason,
      receivedAtMs,
    });
  }

  /**
   * 'scene_change' when the scene term selected the frame and the interval term would not have: same slot
   * of the 1/fps grid as the previous frame (the select expression in ffmpeg-args.ts, evaluated again here).
   */
  private reasonFor(ptsSeconds: number | undefined, sceneScore: number): SampleReason {
    const threshold = this.options.sceneChangeThreshold;
    if (threshold <= 0 || sceneScore <= threshold) return 'interval';
    const previous = this.lastPtsSeconds;
    if (ptsSeconds === undefined || previous === undefined) return 'interval';
    const fps = this.options.frameRateFps;
    const newSlot = Math.floor(ptsSeconds * fps) > Math.floor(previous * fps) || ptsSeconds < previous;
    return newSlot ? 'interval' : 'scene_change';
  }
}
