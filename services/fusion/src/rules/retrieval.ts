// Rule retrieval: which rules are worth evaluating on a window, found from the window's words with BM25 over one
// small document per rule, plus the rules that words cannot find (labels, extractors, regexes, fuzzy phrases),
// which are always candidates.
//
// # Swapping in another retriever
//
// The engine only needs a `RuleRetriever`. An embedding retriever would embed `ruleDocument(tag, rule)` for every
// rule once, embed the window's text (`windowText(window)`), rank by cosine similarity, and — so that retrieval
// never hides a rule that cannot be found from words — append every rule for which `isAlwaysCandidate(rule)` is
// true with score 0, as RuleIndex does. Anything else it returns is evaluated as usual; rules it leaves out are
// not evaluated (and their tags are absent from the decision when none of their rules is retrieved).

import type { RetrievedRule, WindowInput } from '../model.js';
import type { Condition, Rule, Tag, Taxonomy } from '../taxonomy/index.js';
import { normalizeText, tokenize } from '../text/index.js';
import { isTextObservation, type ObservationTexts } from './observation-texts.js';

/** BM25 term-frequency saturation: the usual value; rule documents are short, so saturation matters little. */
export const BM25_K1 = 1.2;
/** BM25 length normalisation: the usual value; long rule documents (many cues) are damped somewhat. */
export const BM25_B = 0.75;
/** The retrieval score of an always-candidate rule that words did not find. */
export const ALWAYS_CANDIDATE_SCORE = 0;

/** Proposes the rules to evaluate on a window, best first. */
export interface RuleRetriever {
  /**
   * @param texts the engine's per-window cache of prepared observation texts; a retriever that reads
   *   observation text should use it so that nothing is normalised twice per window (optional).
   */
  retrieve(window: WindowInput, texts?: ObservationTexts): readonly RetrievedRule[];
}

/** A retrieved rule with what the trace needs beyond its score. */
export interface RuleHit extends RetrievedRule {
  readonly tagId: string;
  /**
   * True for rules that can match without any of their words in the window (label, extract, regex, fuzzy,
   * price_ratio conditions): they are always returned, whatever `limit` and `minScore` say.
   */
  readonly alwaysCandidate: boolean;
}

export interface SearchOptions {
  /** At most this many word-found rules (always-candidate rules come on top of them). @default Infinity */
  readonly limit?: number;
  /** Word-found rules need a BM25 score strictly above this. @default 0 */
  readonly minScore?: number;
}

// Words too common to say anything about a rule: left out of documents and queries so "the" and "in" do not
// retrieve half the taxonomy. A phrase made only of these is not retrievable from words, so its rule becomes an
// always-candidate (`isAlwaysCandidate`), which keeps retrieval lossless.
const STOPWORDS: ReadonlySet<string> = new Set([
  ...['a', 'an', 'the', 'to', 'of', 'in', 'on', 'at', 'for', 'and', 'or', 'is', 'are', 'was', 'it', 'its'],
  ...['this', 'that', 'i', 'you', 'me', 'my', 'your', 'we', 'be', 'with', 'so', 'just', 'do', 'if'],
  ...['的', '了', '是', '在', '这', '那', '就', '也', '都', '和', '吗', '呢', '啊', '吧'],
]);

const CJK = /^\p{Script=Han}$/u;

/**
 * The retrieval terms of a text: its tokens (the text layer's: Latin/digit runs, one token per CJK ideograph)
 * less stopwords, plus the bigram of every two adjacent CJK ideographs. Single ideographs alone are weak
 * evidence ("微" and "信" appear in many words); the bigram "微信" is what identifies WeChat, and it scores
 * higher because fewer rule documents contain it. Bigrams are built before stopwords are dropped.
 */
export function retrievalTerms(text: string): string[] {
  return termsOfTokens(tokenize(normalizeText(text)));
}

function termsOfTokens(tokens: readonly string[]): string[] {
  const terms: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!STOPWORDS.has(token)) terms.push(token);
    const next = tokens[i + 1];
    if (next !== undefined && CJK.test(token) && CJK.test(next)) terms.push(token + next);
  }
  return terms;
}

/** Speech and on-screen text of a window, one observation per line, in window order. */
export function windowText(window: WindowInput): string {
  return window.observations
    .filter(isTextObservation)
    .map((o) => o.text)
    .join('\n');
}

/** The phrases written in a condition (text.any), in order. */
export function conditionPhrases(condition: Condition): string[] {
  switch (condition.op) {
    case 'text':
      return [...condition.phrases];
    case 'all':
    case 'any':
      return condition.of.flatMap(conditionPhrases);
    case 'count':
    case 'not':
      return conditionPhrases(condition.of);
    default:
      return [];
  }
}

/** All cue phrases of a tag, every language, in file order. */
export function allCues(tag: Tag): string[] {
  return Object.values(tag.cues).flat();
}

/**
 * The text a rule is retrieved by: its tag's name, description and cues, the rule's description, and the phrases
 * written in its condition. `not` members' phrases are left out: words that argue against a rule must not
 * retrieve it.
 */
export function ruleDocument(tag: Tag, rule: Rule): string {
  return [tag.name, tag.description, rule.description, ...allCues(tag), ...positivePhrases(rule.when)].join(
    '\n',
  );
}

function positivePhrases(condition: Condition): string[] {
  if (condition.op === 'not') return [];
  if (condition.op === 'all' || condition.op === 'any') return condition.of.flatMap(positivePhrases);
  return conditionPhrases(condition);
}

/** True when a phrase has a term retrieval can find (not only stopwords). */
function hasRetrievableTerm(phrase: string): boolean {
  return termsOfTokens(tokenize(normalizeText(phrase))).length > 0;
}

/**
 * Whether a condition can only match when some of its phrases' words are in the window. Exact phrases need all
 * their tokens present; fuzzy phrases, regexes, extractors and labels do not.
 */
function needsWords(condition: Condition, tag: Tag): boolean {
  switch (condition.op) {
    case 'text':
      return condition.match === 'phrase' && condition.phrases.every(hasRetrievableTerm);
    case 'cues':
      return condition.match === 'phrase' && allCues(tag).every(hasRetrievableTerm);
    case 'all':
      // A conjunction needs the words of any one of its positive members.
      return condition.of.some((c) => c.op !== 'not' && needsWords(c, tag));
    case 'any':
      return condition.of.every((c) => needsWords(c, tag));
    case 'count':
      return needsWords(condition.of, tag);
    default:
      return false;
  }
}

/**
 * True for a rule that words cannot be relied on to find: it must always be evaluated. With this, retrieval with
 * the default options is lossless: a rule it leaves out could not have matched (retrieval.test.ts: "lossless").
 */
export function isAlwaysCandidate(rule: Rule, tag: Tag): boolean {
  return !needsWords(rule.when, tag);
}

/**
 * Proposes every rule of the taxonomy, score 0, in file order: no retrieval at all. The baseline a retriever is
 * compared against (RuleIndex with default options gives the same decisions), and a way to test conditions
 * without retrieval in the way.
 */
export class EveryRuleRetriever implements RuleRetriever {
  private readonly hits: readonly RuleHit[];

  constructor(taxonomy: Taxonomy) {
    this.hits = taxonomy.tags.flatMap((tag) =>
      tag.rules.map((rule) => ({
        ruleId: rule.id,
        score: ALWAYS_CANDIDATE_SCORE,
        tagId: tag.id,
        alwaysCandidate: isAlwaysCandidate(rule, tag),
      })),
    );
  }

  retrieve(): readonly RuleHit[] {
    return this.hits;
  }
}

interface Posting {
  readonly doc: number;
  readonly tf: number;
}

/**
 * BM25 over one document per rule (k1 = 1.2, b = 0.75), with
 * idf(t) = ln(1 + (N − n_t + 0.5) / (n_t + 0.5)) (always > 0, so any shared term gives a positive score) and
 * each distinct query term counted once:
 *
 *   score(rule, window) = Σ_{t in window} idf(t) · tf(t, rule) · (k1 + 1) / (tf(t, rule) + k1 · (1 − b + b · |rule| / avg|rule|))
 */
export class RuleIndex implements RuleRetriever {
  private readonly rules: readonly Rule[];
  private readonly alwaysCandidate: readonly boolean[];
  private readonly postings = new Map<string, Posting[]>();
  private readonly idf = new Map<string, number>();
  private readonly lengthNorm: readonly number[];
  private readonly defaults: SearchOptions;

  constructor(taxonomy: Taxonomy, defaults: SearchOptions = {}) {
    this.defaults = defaults;
    const rules: Rule[] = [];
    const always: boolean[] = [];
    const lengths: number[] = [];
    for (const tag of taxonomy.tags) {
      for (const rule of tag.rules) {
        const doc = rules.length;
        rules.push(rule);
        always.push(isAlwaysCandidate(rule, tag));
        const terms = retrievalTerms(ruleDocument(tag, rule));
        lengths.push(terms.length);
        const tf = new Map<string, number>();
        for (const term of terms) tf.set(term, (tf.get(term) ?? 0) + 1);
        for (const [term, count] of tf) {
          let list = this.postings.get(term);
          if (list === undefined) {
            list = [];
            this.postings.set(term, list);
          }
          list.push({ doc, tf: count });
        }
      }
    }
    this.rules = rules;
    this.alwaysCandidate = always;
    const n = rules.length;
    for (const [term, list] of this.postings) {
      this.idf.set(term, Math.log(1 + (n - list.length + 0.5) / (list.length + 0.5)));
    }
    const avg = lengths.reduce((sum, l) => sum + l, 0) / Math.max(1, n);
    this.lengthNorm = lengths.map((l) => BM25_K1 * (1 - BM25_B + (BM25_B * l) / Math.max(avg, 1)));
  }

  /** Rules for a text, best first (ties by rule id), always-candidate rules last unless words found them. */
  search(windowText: string, options: SearchOptions = {}): RuleHit[] {
    return this.rank(retrievalTerms(windowText), options);
  }

  /** The window's speech and screen text as the query (each observation prepared once, through `texts`). */
  retrieve(window: WindowInput, texts?: ObservationTexts): RuleHit[] {
    const terms: string[] = [];
    // In (startMs, id) order, so the float sums, and the ranking, do not depend on how the window lists them.
    const ordered = window.observations
      .filter(isTextObservation)
      .sort((a, b) => a.startMs - b.startMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const observation of ordered) {
      const tokens = texts ? texts.get(observation).tokens : tokenize(normalizeText(observation.text));
      terms.push(...termsOfTokens(tokens));
    }
    return this.rank(terms, this.defaults);
  }

  private rank(queryTerms: readonly string[], options: SearchOptions): RuleHit[] {
    const limit = options.limit ?? this.defaults.limit ?? Number.POSITIVE_INFINITY;
    const minScore = options.minScore ?? this.defaults.minScore ?? 0;
    const scores = new Map<number, number>();
    // Distinct terms in first-seen order: the float sums are then the same for the same text.
    for (const term of new Set(queryTerms)) {
      const list = this.postings.get(term);
      if (list === undefined) continue;
      const idf = this.idf.get(term)!;
      for (const { doc, tf } of list) {
        const add = (idf * tf * (BM25_K1 + 1)) / (tf + this.lengthNorm[doc]!);
        scores.set(doc, (scores.get(doc) ?? 0) + add);
      }
    }
    const byScore = (a: RuleHit, b: RuleHit) =>
      b.score - a.score || (a.ruleId < b.ruleId ? -1 : a.ruleId > b.ruleId ? 1 : 0);

    const found: RuleHit[] = [];
    for (const [doc, score] of scores) {
      if (score > minScore) found.push(this.hit(doc, round(score)));
    }
    found.sort(byScore);
    const kept = found.slice(0, limit);
    const keptIds = new Set(kept.map((h) => h.ruleId));
    const always: RuleHit[] = [];
    this.rules.forEach((rule, doc) => {
      if (this.alwaysCandidate[doc] && !keptIds.has(rule.id))
        always.push(this.hit(doc, ALWAYS_CANDIDATE_SCORE));
    });
    always.sort(byScore);
    return [...kept, ...always];
  }

  private hit(doc: number, score: number): RuleHit {
    const rule = this.rules[doc]!;
    return { ruleId: rule.id, score, tagId: rule.tagId, alwaysCandidate: this.alwaysCandidate[doc]! };
  }
}

/** Scores are rounded to 1e-6 so traces read well; ordering ties are then broken by rule id. */
function round(score: number): number {
  return Math.round(score * 1e6) / 1e6;
}
