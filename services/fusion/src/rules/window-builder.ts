// Builds observations and windows by hand: for the rule engine's tests, examples and offline replays of a
// taxonomy. Ids follow the conventions of model.ts (`{recordId}`, `{recordId}#t{n}`, `{recordId}#l{name}`).

import type { Observation, WindowInput } from '../model.js';

export interface ObservationOptions {
  /** @default 0.9 for text, the label's score for labels */
  readonly confidence?: number;
  /** Speech only: how long the segment lasts. @default 2000 */
  readonly durationMs?: number;
  /** @default "" (unknown) */
  readonly language?: string;
  /** The upstream record id. @default a fresh `<prefix>-<n>` */
  readonly recordId?: string;
}

/** Makes observations with unique, deterministic ids (`<prefix>-1`, `<prefix>-2`, …). */
export interface ObservationFactory {
  /** A final transcript segment said at `atMs`. */
  speech(text: string, atMs: number, options?: ObservationOptions): Observation;
  /** A line of on-screen text read from the frame at `atMs`. */
  screen(text: string, atMs: number, options?: ObservationOptions): Observation;
  /** An image label of the frame at `atMs`. */
  label(name: string, score: number, atMs: number, options?: ObservationOptions): Observation;
}

export function createObservationFactory(prefix = 'rec'): ObservationFactory {
  let n = 0;
  const base = (options: ObservationOptions | undefined, topic: string) => {
    const recordId = options?.recordId ?? `${prefix}-${++n}`;
    return {
      recordId,
      language: options?.language ?? '',
      captureTimeUnixMs: 0,
      source: { topic, partition: 0, offset: String(n), recordId },
    };
  };
  return {
    speech(text, atMs, options) {
      const { recordId, ...rest } = base(options, 'transcripts');
      return {
        kind: 'speech',
        id: recordId,
        startMs: atMs,
        endMs: atMs + (options?.durationMs ?? 2000),
        text,
        confidence: options?.confidence ?? 0.9,
        ...rest,
      };
    },
    screen(text, atMs, options) {
      const { recordId, ...rest } = base(options, 'frames');
      return {
        kind: 'screen_text',
        id: `${recordId}#t0`,
        startMs: atMs,
        endMs: atMs,
        text,
        confidence: options?.confidence ?? 0.9,
        ...rest,
      };
    },
    label(name, score, atMs, options) {
      const { recordId, ...rest } = base(options, 'frames');
      return {
        kind: 'image_label',
        id: `${recordId}#l${name}`,
        startMs: atMs,
        endMs: atMs,
        text: '',
        label: { name, score },
        confidence: options?.confidence ?? score,
        ...rest,
      };
    },
  };
}

/** A window over the observations: [startMs, endMs) defaults to [0, 30 s), observations sorted by media time. */
export function buildWindow(
  observations: readonly Observation[],
  options: { streamId?: string; startMs?: number; endMs?: number } = {},
): WindowInput {
  return {
    streamId: options.streamId ?? 'stream-test',
    startMs: options.startMs ?? 0,
    endMs: options.endMs ?? 30_000,
    observations: [...observations].sort(
      (a, b) => a.startMs - b.startMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    ),
  };
}

/** A small deterministic PRNG (mulberry32) in [0, 1): property tests that replay the same cases every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
