import { describe, expect, it } from 'vitest';
import {
  compressionRatio,
  type DecoderStep,
  decodeWindow,
  detectLanguage,
  sotSequence,
  type WhisperSpecials,
} from './decoding.js';

// A toy vocabulary: 0 is " " (blank), 1..9 are words, then the special tokens and two timestamps.
const V = 24;
const specials: WhisperSpecials = {
  eot: 10,
  sot: 11,
  languages: new Map([
    ['en', 12],
    ['zh', 13],
  ]),
  translate: 14,
  transcribe: 15,
  sotLm: 16,
  sotPrev: 17,
  noSpeech: 18,
  noTimestamps: 19,
  blank: [0],
  suppress: [9, 11, 14, 15, 16, 17, 18],
};
const text = (tokens: readonly number[]) => tokens.map((t) => `w${t}`).join(' ');

/** A fake decoder whose next-token logits are a function of each hypothesis's whole history. */
function fakeDecoder(policy: (history: readonly number[]) => number[]): {
  step: DecoderStep;
  calls: number[][][];
} {
  let histories: number[][] = [];
  const calls: number[][][] = [];
  const logits = (history: readonly number[]) => Float32Array.from(policy(history));
  const step: DecoderStep = async (tokens, parents) => {
    calls.push(tokens);
    histories = parents === null ? tokens.map(() => []) : parents.map((p) => [...(histories[p] as number[])]);
    return tokens.map((fed, i) => {
      const history = histories[i] as number[];
      return fed.map((t) => {
        history.push(t);
        return logits(history);
      });
    });
  };
  return { step, calls };
}

/** Logits that strongly prefer `token` (log-prob ≈ 0), with `others` for everything else. */
function prefer(token: number, others = -10): number[] {
  const out = new Array<number>(V).fill(others);
  out[token] = 10;
  return out;
}

describe('prompt and language', () => {
  it('builds [sot, language, task, notimestamps] for multilingual models and [sot, notimestamps] for English-only', () => {
    expect(sotSequence(specials, 'zh', 'transcribe')).toEqual([11, 13, 15, 19]);
    expect(sotSequence({ ...specials, languages: new Map() }, undefined, 'transcribe')).toEqual([11, 19]);
  });

  it('detects the language among the language tokens only', () => {
    const logits = new Float32Array(V).fill(0);
    logits[3] = 50; // a text token is likelier, but is not a language
    logits[13] = 5;
    logits[12] = 1;
    const { language, probabilities } = detectLanguage(logits, specials);
    expect(language).toBe('zh');
    expect((probabilities.get('zh') ?? 0) + (probabilities.get('en') ?? 0)).toBeCloseTo(1, 9);
  });
});

describe('greedy decoding', () => {
  it('follows the argmax to eot, with the prompt fed once and one token per step after', async () => {
    const script = [3, 4, 5];
    const { step, calls } = fakeDecoder((h) => {
      const generated = h.slice(4);
      return prefer(script[generated.length] ?? specials.eot);
    });
    const result = await decodeWindow(step, specials, text, { language: 'en' });
    expect(result.tokens).toEqual([3, 4, 5]);
    expect(result.prompt).toEqual([11, 12, 15, 19]);
    expect(result.languageProbability).toBe(1); // given, not detected
    expect(result.temperature).toBe(0);
    expect(result.avgLogProb).toBeGreaterThan(-0.01);
    expect(calls[0]).toEqual([[11, 12, 15, 19]]);
    expect(calls.slice(1)).toEqual([[[3]], [[4]], [[5]]]);
  });

  it('never starts with a blank or eot, and never samples suppressed tokens', async () => {
    const { step } = fakeDecoder((h) => {
      const generated = h.slice(4);
      const logits = new Array<number>(V).fill(-10);
      if (generated.length === 0) {
        logits[0] = 10; // blank: suppressed at the first position
        logits[specials.eot] = 9; // eot: suppressed at the first position
        logits[9] = 8; // a non-speech symbol: always suppressed
        logits[2] = 5;
      } else logits[specials.eot] = 10;
      return logits;
    });
    expect((await decodeWindow(step, specials, text, { language: 'en' })).tokens).toEqual([2]);
  });

  it('detects the language with one pass over [sot] when none is given', async () => {
    const { step, calls } = fakeDecoder((h) => {
      if (h.length === 1) return prefer(13); // after sot: zh
      return prefer(h.length === 4 ? 6 : specials.eot);
    });
    const result = await decodeWindow(step, specials, text);
    expect(result.language).toBe('zh');
    expect(result.languageProbability).toBeGreaterThan(0.99);
    expect(calls[0]).toEqual([[11]]);
    expect(result.prompt).toEqual([11, 13, 15, 19]);
  });
});

describe('beam search', () => {
  it('finds a likelier sequence than greedy when the first step misleads', async () => {
    // Greedy takes 1 (p≈0.55) then a flat, unlikely tail; 2 (p≈0.45) leads to a sure eot.
    const policy = (h: readonly number[]) => {
      const generated = h.slice(4);
      const logits = new Array<number>(V).fill(-20);
      if (generated.length === 0) {
        logits[1] = Math.log(0.55);
        logits[2] = Math.log(0.45);
      } else if (generated[0] === 1 && generated.length === 1) {
        for (let t = 1; t <= 8; t += 1) logits[t] = 0; // eight equally likely words
        logits[specials.eot] = 0;
      } else logits[specials.eot] = 10;
      return logits;
    };
    const greedy = await decodeWindow(fakeDecoder(policy).step, specials, text, {
      language: 'en',
      temperatures: [0],
    });
    const beam = await decodeWindow(fakeDecoder(policy).step, specials, text, {
      language: 'en',
      beamSize: 3,
      temperatures: [0],
    });
    expect(greedy.tokens[0]).toBe(1);
    expect(beam.tokens).toEqual([2]);
    expect(beam.avgLogProb).toBeGreaterThan(greedy.avgLogProb);
  });
});

describe('temperature fallback', () => {
  it('retries at higher temperature when the text repeats, and keeps a non-repetitive result', async () => {
    // At T = 0 the model loops on token 3; sampling reaches eot early.
    const { step } = fakeDecoder((h) => {
      const generated = h.slice(4);
      const logits = new Array<number>(V).fill(-30);
      logits[3] = 2;
      logits[specials.eot] = generated.length > 0 ? 1.5 : -30;
      return logits;
    });
    const result = await decodeWindow(step, specials, text, { language: 'en', maxTokens: 60, seed: 7 });
    expect(result.temperature).toBeGreaterThan(0);
    expect(result.compressionRatio).toBeLessThanOrEqual(2.4);
  });

  it('calls a window silence when no-speech is likely and the transcript unlikely', async () => {
    const { step } = fakeDecoder((h) => {
      if (h.length <= 1) {
        const logits = new Array<number>(V).fill(0);
        logits[specials.noSpeech] = 10; // at the sot position
        return logits;
      }
      return new Array<number>(V).fill(0); // everything equally (un)likely
    });
    const result = await decodeWindow(step, specials, text, { language: 'en', maxTokens: 5 });
    expect(result.noSpeech).toBe(true);
    expect(result.tokens).toEqual([]);
    expect(result.noSpeechProb).toBeGreaterThan(0.6);
  });

  it('measures repetition as openai does (zlib compression ratio)', () => {
    expect(compressionRatio('')).toBe(0);
    expect(
      compressionRatio('buy now buy now buy now buy now buy now buy now buy now buy now'),
    ).toBeGreaterThan(2.4);
    expect(compressionRatio('use code SAVE20 at checkout')).toBeLessThan(1.5);
  });
});
