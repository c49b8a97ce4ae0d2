import type { Observation } from '../model.js';
import { type Extraction, extractAll, normalizeText, tokenize } from '../text/index.js';

/** An observation's text, prepared once: normalised, tokenised and (on first use) run through the extractors. */
export interface PreparedText {
  readonly normalized: string;
  readonly tokens: readonly string[];
  /** Every extraction of the raw text (prices, percents, promo codes, URLs, phones, handles), by position. */
  readonly extractions: readonly Extraction[];
}

/**
 * The per-window cache of prepared texts, keyed by observation id. The engine makes one per `evaluate` call and
 * hands it to the retriever too, so every observation is normalised, tokenised and extracted at most once per
 * call however many rules look at it (engine.test.ts: "prepares each observation once").
 */
export class ObservationTexts {
  private readonly cache = new Map<
    string,
    { normalized: string; tokens: string[]; extractions?: Extraction[] }
  >();
  /** How many observations were normalised (for tests and metrics). */
  prepared = 0;
  /** How many observations were run through the extractors. */
  extracted = 0;

  get(observation: Observation): PreparedText {
    let entry = this.cache.get(observation.id);
    if (entry === undefined) {
      const normalized = normalizeText(observation.text);
      entry = { normalized, tokens: tokenize(normalized) };
      this.cache.set(observation.id, entry);
      this.prepared++;
    }
    const cached = entry;
    const texts = this;
    return {
      normalized: cached.normalized,
      tokens: cached.tokens,
      get extractions() {
        if (cached.extractions === undefined) {
          cached.extractions = [...extractAll(observation.text)].sort((a, b) => a.index - b.index);
          texts.extracted++;
        }
        return cached.extractions;
      },
    };
  }
}

/** Speech and on-screen text carry words; image labels do not. */
export function isTextObservation(observation: Observation): boolean {
  return observation.kind === 'speech' || observation.kind === 'screen_text';
}
