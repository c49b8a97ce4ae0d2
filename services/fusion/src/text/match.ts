// Matchers the rules are built on. They work on token arrays (tokenize(normalizeText(x))) and report the
// token range they matched, so that a rule's evidence can quote the snippet it fired on. Fuzzy matching
// compares characters, not tokens, because ASR and OCR errors are character errors that also move spaces
// ("whats app", "linkinbio"). match.test.ts pins the behaviours described here.
import { isCjkChar } from './normalize.js';

/** Where a phrase matched: tokens [start, end) and the character edit distance (0 for exact). */
export interface TokenMatch {
  /** First matched token. */
  readonly start: number;
  /** One past the last matched token. */
  readonly end: number;
  /** Damerau–Levenshtein (OSA) distance between the joined phrase and the joined tokens; 0 for exact. */
  readonly distance: number;
}

/** Options of matchFuzzy. */
export interface FuzzyOptions {
  /**
   * The most character edits accepted; further capped at a quarter of the phrase's length (see matchFuzzy).
   * Fractions are rounded down.
   */
  readonly maxEdits: number;
}

/** Below this many characters (joined, without spaces) a phrase only matches exactly: "vx" ≈ "vs" is noise. */
export const MIN_FUZZY_PHRASE_CHARS = 5;

/** The longest snippet snippetAround returns, in characters. */
export const MAX_SNIPPET_CHARS = 120;

/**
 * The optimal string alignment distance (Damerau–Levenshtein with adjacent transpositions, no substring
 * edited twice) between `a` and `b`, counted in Unicode code points so an astral CJK character is one edit.
 *
 * Why: ASR and OCR errors are substitutions ("whatsapp" → "whatsaap"), drops, insertions and swapped
 * neighbours ("wahtsapp"); OSA counts each as one edit.
 *
 * With `max`, gives up as soon as the distance must exceed it and returns `max + 1` (any value above `max`
 * means "too far"): the length difference alone, or a whole row of the table above `max`, is enough to know.
 *
 * @example damerauLevenshtein('whatsapp', 'wahtsapp') // 1
 * @example damerauLevenshtein('kitten', 'sitting') // 3
 * @example damerauLevenshtein('kitten', 'sitting', 1) // 2 (gave up: more than 1)
 */
export function damerauLevenshtein(a: string, b: string, max?: number): number {
  const s = Array.from(a);
  const t = Array.from(b);
  const bound = max === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor(max));
  if (Math.abs(s.length - t.length) > bound) return bound + 1;
  if (s.length === 0 || t.length === 0) return Math.max(s.length, t.length);
  // Three rows of the dynamic-programming table: two back (for transpositions), one back, current.
  let twoBack = new Array<number>(t.length + 1).fill(0);
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  let current = new Array<number>(t.length + 1).fill(0);
  for (let i = 1; i <= s.length; i++) {
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        d = Math.min(d, twoBack[j - 2]! + 1);
      current[j] = d;
      if (d < rowMin) rowMin = d;
    }
    // Every path to the last cell passes through this row, and distances never decrease along a path.
    if (rowMin > bound) return bound + 1;
    [twoBack, previous, current] = [previous, current, twoBack];
  }
  const distance = previous[t.length]!;
  return distance > bound ? bound + 1 : distance;
}

/**
 * The first place where `phrase` occurs as a contiguous token sequence in `tokens`, exactly; `undefined` when
 * it does not (or the phrase is empty). Both sides should come from tokenize(normalizeText(…)).
 *
 * @example matchPhrase(['dm', 'me', 'on', 'whatsapp'], ['on', 'whatsapp']) // { start: 2, end: 4, distance: 0 }
 */
export function matchPhrase(tokens: readonly string[], phrase: readonly string[]): TokenMatch | undefined {
  return phraseAt(tokens, phrase, 0);
}

function phraseAt(
  tokens: readonly string[],
  phrase: readonly string[],
  from: number,
): TokenMatch | undefined {
  if (phrase.length === 0) return undefined;
  for (let start = from; start + phrase.length <= tokens.length; start++) {
    if (phrase.every((p, k) => tokens[start + k] === p))
      return { start, end: start + phrase.length, distance: 0 };
  }
  return undefined;
}

/**
 * Every non-overlapping exact occurrence of `phrase` in `tokens`, left to right (after a match the search
 * resumes at its end, so ["a","a","a"] holds ["a","a"] once).
 *
 * @example matchAllPhrase(['加', '微', '信', '加', '微', '信'], ['加', '微']) // [{ start: 0, end: 2, distance: 0 }, { start: 3, end: 5, distance: 0 }]
 */
export function matchAllPhrase(tokens: readonly string[], phrase: readonly string[]): TokenMatch[] {
  const matches: TokenMatch[] = [];
  for (let m = phraseAt(tokens, phrase, 0); m !== undefined; m = phraseAt(tokens, phrase, m.end)) {
    matches.push(m);
  }
  return matches;
}

function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n += 1;
  return n;
}

/**
 * The best place where `tokens` contain `phrase` up to a few character edits, tolerating spaces moved by
 * ASR/OCR: the phrase joined without spaces is compared with every window of consecutive tokens joined
 * without spaces, so "whats app" matches "whatsapp" (distance 0), "linkinbio" matches "link in bio" and
 * "whatsaap" matches "whatsapp" (1 edit). The smallest distance wins, then the earliest window.
 *
 * Budget: at most `min(maxEdits, floor(joinedLength / 4))` edits, so an 8-character phrase allows 2 and a
 * 5-character one 1. Phrases shorter than MIN_FUZZY_PHRASE_CHARS (5) joined only match exactly, token for
 * token (as matchPhrase). Windows are bounded by character length (within the budget of the phrase's), not by
 * token count, so a phrase spoken as many short tokens still matches.
 *
 * Extra words count as edits: with maxEdits 2, "link in bio" DOES match "the link in my bio" (the window
 * "link in my bio" joins to "linkinmybio", 2 insertions from "linkinbio"); with maxEdits 1 it does not.
 * CJK phrases work the same way (one token per character): "私信我加微信" matches "私信我加薇信" with 1 edit.
 *
 * @example matchFuzzy(['add', 'me', 'on', 'whats', 'app'], ['whatsapp'], { maxEdits: 2 }) // { start: 3, end: 5, distance: 0 }
 */
export function matchFuzzy(
  tokens: readonly string[],
  phrase: readonly string[],
  options: FuzzyOptions,
): TokenMatch | undefined {
  const target = phrase.join('');
  const targetLength = codePointLength(target);
  if (phrase.length === 0 || targetLength === 0) return undefined;
  if (targetLength < MIN_FUZZY_PHRASE_CHARS) return matchPhrase(tokens, phrase);
  const budget = Math.max(0, Math.min(Math.floor(options.maxEdits), Math.floor(targetLength / 4)));
  const lengths = tokens.map(codePointLength);
  let best: TokenMatch | undefined;
  for (let start = 0; start < tokens.length; start++) {
    let window = '';
    let windowLength = 0;
    for (let end = start + 1; end <= tokens.length; end++) {
      window += tokens[end - 1];
      windowLength += lengths[end - 1]!;
      if (windowLength - targetLength > budget) break;
      if (targetLength - windowLength > budget) continue;
      const limit = best === undefined ? budget : best.distance - 1;
      if (limit < 0) return best;
      const distance = damerauLevenshtein(window, target, limit);
      if (distance <= limit) {
        best = { start, end, distance };
        if (distance === 0) return best;
      }
    }
  }
  return best;
}

/**
 * The first match of `pattern` in normalised text, with its offset; `undefined` when none. The pattern is
 * cloned without its `g` and `y` flags, so a shared global RegExp's `lastIndex` neither affects nor is
 * changed by this call.
 *
 * @example matchRegex('save 50% today', /\d+%/g) // { index: 5, text: '50%' }
 */
export function matchRegex(normalized: string, pattern: RegExp): { index: number; text: string } | undefined {
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  const m = re.exec(normalized);
  return m === null ? undefined : { index: m.index, text: m[0] };
}

type TokenKind = 'cjk' | 'currency' | 'percent' | 'word';

function kindOf(token: string): TokenKind {
  const first = String.fromCodePoint(token.codePointAt(0) ?? 32);
  if (token === '%') return 'percent';
  if (/^\p{Sc}$/u.test(token)) return 'currency';
  return isCjkChar(first) ? 'cjk' : 'word';
}

/**
 * Whether a space goes between two tokens when they are joined for display: none next to a CJK character
 * (Chinese is written without spaces: 加微信, 39元, 加微信abc123), none before "%" or after a currency sign
 * ("50%", "$29.99"), one between words.
 */
function spaceBetween(left: string, right: string): boolean {
  const a = kindOf(left);
  const b = kindOf(right);
  if (a === 'cjk' || b === 'cjk') return false;
  if (b === 'percent' || a === 'currency') return false;
  return true;
}

/** Joins tokens as text reads: see spaceBetween. */
export function joinTokens(tokens: readonly string[]): string {
  let out = '';
  tokens.forEach((token, i) => {
    const previous = tokens[i - 1];
    out += (previous !== undefined && spaceBetween(previous, token) ? ' ' : '') + token;
  });
  return out;
}

/**
 * The matched tokens with up to `contextTokens` tokens of context on each side, joined for evidence (CJK
 * without spaces, Latin words with spaces: "the link in my bio"), at most MAX_SNIPPET_CHARS (120) characters.
 * When too long, context is dropped first (evenly from both sides); a match longer than the limit on its own
 * is cut, ending with "…".
 *
 * @example snippetAround(['私','信','我','加','微','信','abc123'], { start: 3, end: 6, distance: 0 }, 1) // "我加微信abc123"
 */
export function snippetAround(tokens: readonly string[], match: TokenMatch, contextTokens = 3): string {
  const start = Math.max(0, Math.min(match.start, tokens.length));
  const end = Math.max(start, Math.min(match.end, tokens.length));
  for (let context = Math.max(0, Math.floor(contextTokens)); context >= 0; context--) {
    const text = joinTokens(tokens.slice(Math.max(0, start - context), end + context));
    if (codePointLength(text) <= MAX_SNIPPET_CHARS) return text;
  }
  const matched = Array.from(joinTokens(tokens.slice(start, end)));
  return `${matched.slice(0, MAX_SNIPPET_CHARS - 1).join('')}…`;
}
