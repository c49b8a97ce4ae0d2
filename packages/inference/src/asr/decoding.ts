import { deflateSync } from 'node:zlib';

/**
 * Whisper's decoding, after openai/whisper `decoding.py` and `transcribe.py` (faster-whisper follows the same
 * rules): the prompt, the logit filters, greedy and beam search, sampling with temperature fallback, no-speech
 * detection. The network is behind `DecoderStep`, so this file has no ONNX in it and is tested with fakes.
 *
 * Decoding runs without timestamp tokens (`<|notimestamps|>`): LiveLens feeds utterances the VAD has cut
 * (at most ~20 s), so a window is one segment, and words get their times from cross-attention alignment
 * (alignment.ts), not from timestamp tokens.
 */

/** The special tokens of one model (ids differ between `.en` and multilingual models: look them up). */
export interface WhisperSpecials {
  eot: number;
  sot: number;
  transcribe: number;
  translate: number;
  sotPrev: number;
  sotLm: number;
  noSpeech: number;
  noTimestamps: number;
  /** Language code → token id; empty for an English-only model. */
  languages: ReadonlyMap<string, number>;
  /** Token ids of a blank (`" "`), suppressed at the first position with eot. */
  blank: readonly number[];
  /** Tokens never sampled: openai's non-speech symbols plus the task/control tokens. */
  suppress: readonly number[];
}

/**
 * One decoder pass over several hypotheses. `tokens[i]` are the tokens fed to hypothesis i (the whole prompt
 * on the first call, then one token each); `parents[i]` is the hypothesis of the previous call that i
 * continues (its cache is i's), or null on the first call (every hypothesis starts from the prompt). Returns
 * the logits (vocabulary-sized) at every fed position of every hypothesis.
 */
export type DecoderStep = (tokens: number[][], parents: number[] | null) => Promise<Float32Array[][]>;

export interface DecodeOptions {
  /** ISO code of the language, or undefined to detect it (multilingual models). English-only models ignore it. */
  language?: string;
  task?: 'transcribe' | 'translate';
  /** 1 = greedy. @default 1 */
  beamSize?: number;
  /** Finished beams collected before stopping: round(beamSize * patience). @default 1 */
  patience?: number;
  /** Candidates sampled at each temperature above 0. @default 5 */
  bestOf?: number;
  /** Tried in order until a result passes the thresholds. @default [0, 0.2, 0.4, 0.6, 0.8, 1] */
  temperatures?: readonly number[];
  /** Above it, the text is too repetitive: try the next temperature. @default 2.4 */
  compressionRatioThreshold?: number;
  /** Below it, the result is unlikely: try the next temperature. @default -1 */
  logProbThreshold?: number;
  /** With avg log-prob under the threshold and no-speech probability above this, the window is silence. @default 0.6 */
  noSpeechThreshold?: number;
  /** New tokens at most per window (Whisper's 448-position table halved). @default 224 */
  maxTokens?: number;
  /** Seed of the sampler at temperatures above 0, for reproducible decoding. @default 0 */
  seed?: number;
}

export interface DecodeResult {
  /** The text tokens (no special tokens, no eot). */
  tokens: number[];
  /** The prompt the tokens followed (sot sequence), for alignment. */
  prompt: number[];
  language: string | undefined;
  /**
   * Probability of `language` among the language tokens when it was detected; 1 when it was given (as
   * faster-whisper reports); undefined for an English-only model.
   */
  languageProbability: number | undefined;
  /** Sum of log-probs of the tokens and eot, over (tokens + 1). */
  avgLogProb: number;
  /** Probability of `<|nospeech|>` at the sot position. */
  noSpeechProb: number;
  compressionRatio: number;
  temperature: number;
  /** True when no-speech was detected: the tokens are empty. */
  noSpeech: boolean;
}

const DEFAULTS = {
  task: 'transcribe' as const,
  beamSize: 1,
  patience: 1,
  bestOf: 5,
  temperatures: [0, 0.2, 0.4, 0.6, 0.8, 1] as readonly number[],
  compressionRatioThreshold: 2.4,
  logProbThreshold: -1,
  noSpeechThreshold: 0.6,
  maxTokens: 224,
  seed: 0,
};

/** log-softmax of `logits` (in place into a new array), numerically stable. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i += 1) out[i] = (logits[i] as number) - lse;
  return out;
}

/** `len(utf8) / len(zlib(utf8))`, as openai computes it (zlib format, default level). */
export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length === 0) return 0;
  return bytes.length / deflateSync(bytes).length;
}

/** The language whose token is likeliest at the sot position, and each language's probability. */
export function detectLanguage(
  logitsAtSot: Float32Array,
  specials: WhisperSpecials,
): { language: string; probabilities: Map<string, number> } {
  let max = Number.NEGATIVE_INFINITY;
  for (const id of specials.languages.values()) max = Math.max(max, logitsAtSot[id] as number);
  let sum = 0;
  const exp = new Map<string, number>();
  for (const [code, id] of specials.languages) {
    const e = Math.exp((logitsAtSot[id] as number) - max);
    exp.set(code, e);
    sum += e;
  }
  let best = '';
  let bestP = -1;
  const probabilities = new Map<string, number>();
  for (const [code, e] of exp) {
    const p = e / sum;
    probabilities.set(code, p);
    if (p > bestP) {
      bestP = p;
      best = code;
    }
  }
  return { language: best, probabilities };
}

/** The sot sequence: `[sot]` for English-only models, `[sot, language, task]` otherwise, then notimestamps. */
export function sotSequence(
  specials: WhisperSpecials,
  language: string | undefined,
  task: 'transcribe' | 'translate',
): number[] {
  const sequence = [specials.sot];
  if (specials.languages.size > 0) {
    const id = specials.languages.get(language ?? 'en');
    if (id === undefined) throw new Error(`unknown language ${language}`);
    sequence.push(id, task === 'translate' ? specials.translate : specials.transcribe);
  }
  sequence.push(specials.noTimestamps);
  return sequence;
}

/** Applies SuppressBlank (first position only) and SuppressTokens to a copy of the logits. */
function filtered(logits: Float32Array, specials: WhisperSpecials, first: boolean): Float32Array {
  const out = new Float32Array(logits);
  for (const id of specials.suppress) out[id] = Number.NEGATIVE_INFINITY;
  if (first) {
    for (const id of specials.blank) out[id] = Number.NEGATIVE_INFINITY;
    out[specials.eot] = Number.NEGATIVE_INFINITY;
  }
  // Timestamp tokens (ids past notimestamps) are never sampled in this mode.
  for (let id = specials.noTimestamps; id < out.length; id += 1) out[id] = Number.NEGATIVE_INFINITY;
  return out;
}

/** A seeded PRNG (mulberry32), so sampling at temperature > 0 is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Hypothesis {
  tokens: number[];
  sumLogProb: number;
}

/**
 * One decoding attempt at one temperature: greedy (beam 1, T = 0), beam search (T = 0), or `bestOf`
 * samples (T > 0). Returns the best finished hypothesis by sum log-prob / length (openai's ranking without a
 * length penalty) and the logits at the sot position.
 */
async function decodeOnce(
  step: DecoderStep,
  prompt: number[],
  specials: WhisperSpecials,
  temperature: number,
  options: typeof DEFAULTS,
  random: () => number,
): Promise<{ best: Hypothesis; logitsAtSot: Float32Array }> {
  const sampling = temperature > 0;
  const width = sampling ? options.bestOf : options.beamSize;
  // First pass: the prompt, once per hypothesis (the cache of each starts from the same prompt).
  const firstLogits = await step(
    Array.from({ length: width }, () => prompt),
    null,
  );
  const logitsAtSot = firstLogits[0]?.[prompt.indexOf(specials.sot)] as Float32Array;
  let last = firstLogits.map((positions) => positions[positions.length - 1] as Float32Array);
  let live: Hypothesis[] = Array.from({ length: width }, () => ({ tokens: [], sumLogProb: 0 }));
  const finished: Hypothesis[] = [];
  const maxFinished = sampling ? width : Math.max(1, Math.round(options.beamSize * options.patience));

  for (let position = 0; position < options.maxTokens; position += 1) {
    const first = position === 0;
    if (sampling || options.beamSize === 1) {
      // Greedy or sampling: each hypothesis extends itself.
      const next: number[] = [];
      const parents: number[] = [];
      const continuing: Hypothesis[] = [];
      for (const [i, hyp] of live.entries()) {
        const logits = filtered(last[i] as Float32Array, specials, first);
        const logProbs = logSoftmax(logits);
        let token: number;
        if (sampling) {
          const scaled = logSoftmax(logits.map((v) => v / temperature));
          let r = random();
          token = specials.eot;
          for (let id = 0; id < scaled.length; id += 1) {
            r -= Math.exp(scaled[id] as number);
            if (r <= 0) {
              token = id;
              break;
            }
          }
        } else {
          token = 0;
          for (let id = 1; id < logits.length; id += 1)
            if ((logits[id] as number) > (logits[token] as number)) token = id;
        }
        const extended = {
          tokens: [...hyp.tokens, token],
          sumLogProb: hyp.sumLogProb + (logProbs[token] as number),
        };
        if (token === specials.eot) finished.push(extended);
        else {
          continuing.push(extended);
          next.push(token);
          parents.push(i);
        }
      }
      live = continuing;
      if (live.length === 0) break;
      const logits = await step(
        next.map((t) => [t]),
        parents,
      );
      last = logits.map((positions) => positions[0] as Float32Array);
      continue;
    }
    // Beam search: the best `beamSize` continuations over all live beams.
    const candidates: Array<{ parent: number; token: number; sumLogProb: number }> = [];
    for (const [i, hyp] of live.entries()) {
      const logProbs = logSoftmax(filtered(last[i] as Float32Array, specials, first));
      // The top beamSize + 1 tokens of this beam are enough (openai takes the same).
      const top: number[] = [];
      for (let id = 0; id < logProbs.length; id += 1) {
        if (top.length <= options.beamSize) {
          top.push(id);
          top.sort((a, b) => (logProbs[b] as number) - (logProbs[a] as number));
        } else if ((logProbs[id] as number) > (logProbs[top[top.length - 1] as number] as number)) {
          top[top.length - 1] = id;
          top.sort((a, b) => (logProbs[b] as number) - (logProbs[a] as number));
        }
      }
      for (const token of top)
        candidates.push({ parent: i, token, sumLogProb: hyp.sumLogProb + (logProbs[token] as number) });
      // At the first position every beam is the same prompt: one beam's candidates are all there are.
      if (first) break;
    }
    candidates.sort((a, b) => b.sumLogProb - a.sumLogProb);
    const next: Hypothesis[] = [];
    const parents: number[] = [];
    // As openai's BeamSearchDecoder: walk the candidates best first; an eot candidate met on the way is a
    // finished sequence; stop once beamSize live ones are kept (lower-ranked eot candidates are not taken,
    // or short endings would fill the finished set early).
    for (const c of candidates) {
      const hyp = { tokens: [...(live[c.parent] as Hypothesis).tokens, c.token], sumLogProb: c.sumLogProb };
      if (c.token === specials.eot) finished.push(hyp);
      else {
        next.push(hyp);
        parents.push(c.parent);
        if (next.length === options.beamSize) break;
      }
    }
    live = next;
    if (finished.length >= maxFinished || live.length === 0) break;
    const logits = await step(
      live.map((h) => [h.tokens[h.tokens.length - 1] as number]),
      parents,
    );
    last = logits.map((positions) => positions[0] as Float32Array);
  }
  // Out of tokens: the unfinished hypotheses count as they are.
  const pool = finished.length > 0 ? finished : live;
  const score = (h: Hypothesis) => h.sumLogProb / Math.max(1, h.tokens.length);
  const best = pool.reduce((a, b) => (score(b) > score(a) ? b : a));
  return { best, logitsAtSot };
}

/**
 * Decodes one window: detects the language if needed, then decodes at each temperature until the result is
 * neither too repetitive (compression ratio) nor too unlikely (avg log-prob), or is silence (no-speech).
 * `decodeText` turns text tokens into the string the compression ratio is measured on.
 */
export async function decodeWindow(
  step: DecoderStep,
  specials: WhisperSpecials,
  decodeText: (tokens: readonly number[]) => string,
  options: DecodeOptions = {},
): Promise<DecodeResult> {
  const o = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
  let language = specials.languages.size > 0 ? options.language : undefined;
  let languageProbability = language === undefined ? undefined : 1;
  if (specials.languages.size > 0 && language === undefined) {
    const [positions] = await step([[specials.sot]], null);
    const detected = detectLanguage(positions?.[0] as Float32Array, specials);
    language = detected.language;
    languageProbability = detected.probabilities.get(detected.language);
  }
  const prompt = sotSequence(specials, language, o.task);
  const random = rng(o.seed);
  let chosen: DecodeResult | undefined;
  const attempts: DecodeResult[] = [];
  for (const temperature of o.temperatures) {
    const { best, logitsAtSot } = await decodeOnce(step, prompt, specials, temperature, o, random);
    const text = best.tokens.filter((t) => t < specials.eot);
    const noSpeechProb = Math.exp(logSoftmax(logitsAtSot)[specials.noSpeech] as number);
    const avgLogProb = best.sumLogProb / (text.length + 1);
    const ratio = compressionRatio(decodeText(text));
    const result: DecodeResult = {
      tokens: text,
      prompt,
      language,
      languageProbability,
      avgLogProb,
      noSpeechProb,
      compressionRatio: ratio,
      temperature,
      noSpeech: false,
    };
    attempts.push(result);
    // Silence: likely no speech and an unlikely transcript; nothing to retry.
    if (noSpeechProb > o.noSpeechThreshold && avgLogProb < o.logProbThreshold) {
      chosen = { ...result, tokens: [], noSpeech: true };
      break;
    }
    if (ratio <= o.compressionRatioThreshold && avgLogProb >= o.logProbThreshold) {
      chosen = result;
      break;
    }
  }
  // Every temperature failed: the best avg log-prob among the non-repetitive attempts, else among all
  // (faster-whisper's choice).
  if (!chosen) {
    const fine = attempts.filter((a) => a.compressionRatio <= o.compressionRatioThreshold);
    const pool = fine.length > 0 ? fine : attempts;
    chosen = pool.reduce((a, b) => (b.avgLogProb > a.avgLogProb ? b : a));
  }
  return chosen;
}
