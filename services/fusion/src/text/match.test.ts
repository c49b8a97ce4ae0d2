import { describe, expect, it } from 'vitest';
import {
  damerauLevenshtein,
  joinTokens,
  MAX_SNIPPET_CHARS,
  matchAllPhrase,
  matchFuzzy,
  matchPhrase,
  matchRegex,
  snippetAround,
} from './match.js';
import { normalizeText, tokenize } from './normalize.js';

/** Tokens as the rules see them. */
const t = (text: string) => tokenize(normalizeText(text));

describe('damerauLevenshtein', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['', 'abc', 3],
    ['whatsapp', 'whatsapp', 0],
    ['whatsapp', 'whatsaap', 1],
    ['whatsapp', 'wahtsapp', 1],
    ['whatsapp', 'whatsap', 1],
    ['kitten', 'sitting', 3],
    ['ca', 'abc', 3],
    ['私信我加微信', '私信我加薇信', 1],
  ])('distance(%j, %j) = %d', (a, b, d) => {
    expect(damerauLevenshtein(a, b)).toBe(d);
    expect(damerauLevenshtein(b, a)).toBe(d);
  });

  it('counts an astral CJK character as one edit', () => {
    expect(damerauLevenshtein('𠀋a', 'ba')).toBe(1);
  });

  it('with a bound, returns the distance when within it and bound + 1 when beyond', () => {
    expect(damerauLevenshtein('kitten', 'sitting', 3)).toBe(3);
    expect(damerauLevenshtein('kitten', 'sitting', 1)).toBe(2);
    expect(damerauLevenshtein('abcdefgh', 'zzzzzzzz', 2)).toBe(3);
    // The length difference alone exceeds the bound.
    expect(damerauLevenshtein('a', 'abcdef', 2)).toBe(3);
    expect(damerauLevenshtein('same', 'same', 0)).toBe(0);
    expect(damerauLevenshtein('same', 'sane', 0)).toBe(1);
  });

  it('agrees with the unbounded distance whenever that is within the bound', () => {
    const words = [
      'whatsapp',
      'whatsap',
      'wahtsapp',
      'telegram',
      'telgram',
      'linkinbio',
      'linkinmybio',
      'bio',
    ];
    for (const a of words) {
      for (const b of words) {
        const full = damerauLevenshtein(a, b);
        for (const bound of [0, 1, 2, 3]) {
          expect(damerauLevenshtein(a, b, bound)).toBe(full <= bound ? full : bound + 1);
        }
      }
    }
  });
});

describe('matchPhrase', () => {
  it('finds the first exact contiguous occurrence', () => {
    expect(matchPhrase(t('link in bio, link in bio'), t('link in bio'))).toEqual({
      start: 0,
      end: 3,
      distance: 0,
    });
    expect(matchPhrase(t('dm me on WhatsApp'), ['whatsapp'])).toEqual({ start: 3, end: 4, distance: 0 });
  });

  it('matches CJK phrases character by character', () => {
    expect(matchPhrase(t('私信我加微信'), t('加微信'))).toEqual({ start: 3, end: 6, distance: 0 });
  });

  it('does not match across an extra token', () => {
    expect(matchPhrase(t('the link in my bio'), t('link in bio'))).toBeUndefined();
  });

  it('does not match part of a token', () => {
    expect(matchPhrase(t('whatsapp'), ['whats'])).toBeUndefined();
  });

  it('is undefined for an empty phrase or a phrase longer than the text', () => {
    expect(matchPhrase(t('anything'), [])).toBeUndefined();
    expect(matchPhrase(['a'], ['a', 'b'])).toBeUndefined();
    expect(matchPhrase([], ['a'])).toBeUndefined();
  });
});

describe('matchAllPhrase', () => {
  it('finds every non-overlapping occurrence, left to right', () => {
    expect(matchAllPhrase(t('加微信 加微信 加'), t('加微'))).toEqual([
      { start: 0, end: 2, distance: 0 },
      { start: 3, end: 5, distance: 0 },
    ]);
    expect(matchAllPhrase(['a', 'a', 'a'], ['a', 'a'])).toEqual([{ start: 0, end: 2, distance: 0 }]);
  });

  it('is empty when there is none', () => {
    expect(matchAllPhrase(t('nothing here'), ['whatsapp'])).toEqual([]);
    expect(matchAllPhrase(t('nothing here'), [])).toEqual([]);
  });
});

describe('matchFuzzy', () => {
  it('tolerates a space inserted by ASR: "whats app" matches "whatsapp" with distance 0', () => {
    expect(matchFuzzy(t('add me on whats app'), ['whatsapp'], { maxEdits: 2 })).toEqual({
      start: 3,
      end: 5,
      distance: 0,
    });
  });

  it('tolerates spaces removed by OCR: "linkinbio" matches "link in bio"', () => {
    expect(matchFuzzy(t('check linkinbio'), t('link in bio'), { maxEdits: 1 })).toEqual({
      start: 1,
      end: 2,
      distance: 0,
    });
  });

  it('tolerates character errors within the budget', () => {
    expect(matchFuzzy(t('dm on whatsaap'), ['whatsapp'], { maxEdits: 2 })).toEqual({
      start: 2,
      end: 3,
      distance: 1,
    });
    expect(matchFuzzy(t('join my telgram'), ['telegram'], { maxEdits: 1 })).toEqual({
      start: 2,
      end: 3,
      distance: 1,
    });
    expect(matchFuzzy(t('join my telgram'), ['telegram'], { maxEdits: 0 })).toBeUndefined();
  });

  it('counts extra words as edits: "link in bio" matches "the link in my bio" with maxEdits 2, not 1', () => {
    // The window "link in my bio" joins to "linkinmybio": two insertions from "linkinbio".
    expect(matchFuzzy(t('the link in my bio'), t('link in bio'), { maxEdits: 2 })).toEqual({
      start: 1,
      end: 5,
      distance: 2,
    });
    expect(matchFuzzy(t('the link in my bio'), t('link in bio'), { maxEdits: 1 })).toBeUndefined();
  });

  it('caps the budget at a quarter of the phrase length', () => {
    // "whatsapp" (8 characters) allows 2 edits whatever maxEdits says; "whtsp" is 3 away.
    expect(matchFuzzy(t('whtsp'), ['whatsapp'], { maxEdits: 5 })).toBeUndefined();
    expect(matchFuzzy(t('whtsapp'), ['whatsapp'], { maxEdits: 5 })).toEqual({
      start: 0,
      end: 1,
      distance: 1,
    });
    // "promo" (5 characters) allows 1 edit.
    expect(matchFuzzy(t('prono'), ['promo'], { maxEdits: 3 })).toEqual({ start: 0, end: 1, distance: 1 });
    expect(matchFuzzy(t('pxono'), ['promo'], { maxEdits: 3 })).toBeUndefined();
  });

  it('matches phrases shorter than 5 characters exactly only', () => {
    expect(matchFuzzy(t('add vs now'), ['vx'], { maxEdits: 2 })).toBeUndefined();
    expect(matchFuzzy(t('add vx now'), ['vx'], { maxEdits: 2 })).toEqual({ start: 1, end: 2, distance: 0 });
    // Not even a merge: "dmme" is not "dm me" for a 4-character phrase.
    expect(matchFuzzy(t('dmme'), t('dm me'), { maxEdits: 2 })).toBeUndefined();
    expect(matchFuzzy(t('加薇信'), t('加微信'), { maxEdits: 2 })).toBeUndefined();
  });

  it('prefers the smallest distance, then the earliest window', () => {
    expect(matchFuzzy(t('whatsaap or whatsapp'), ['whatsapp'], { maxEdits: 2 })).toEqual({
      start: 2,
      end: 3,
      distance: 0,
    });
    expect(matchFuzzy(t('whatsaap or whatsapq'), ['whatsapp'], { maxEdits: 2 })).toEqual({
      start: 0,
      end: 1,
      distance: 1,
    });
  });

  it('works on CJK phrases, one token per character', () => {
    expect(matchFuzzy(t('大家私信我加薇信哦'), t('私信我加微信'), { maxEdits: 2 })).toEqual({
      start: 2,
      end: 8,
      distance: 1,
    });
  });

  it('is undefined for an empty phrase or no tokens', () => {
    expect(matchFuzzy(t('whatsapp'), [], { maxEdits: 2 })).toBeUndefined();
    expect(matchFuzzy([], ['whatsapp'], { maxEdits: 2 })).toBeUndefined();
  });
});

describe('matchRegex', () => {
  it('returns the first match and its offset', () => {
    expect(matchRegex('save 50% today or 70% tomorrow', /\d+%/)).toEqual({ index: 5, text: '50%' });
    expect(matchRegex('nothing', /\d+/)).toBeUndefined();
  });

  it('neither depends on nor changes the lastIndex of a global or sticky pattern', () => {
    const global = /\d+%/g;
    global.lastIndex = 10;
    expect(matchRegex('save 50% today', global)).toEqual({ index: 5, text: '50%' });
    expect(matchRegex('save 50% today', global)).toEqual({ index: 5, text: '50%' });
    expect(global.lastIndex).toBe(10);
    const sticky = /\d+%/y;
    expect(matchRegex('save 50% today', sticky)).toEqual({ index: 5, text: '50%' });
  });

  it('keeps the other flags', () => {
    expect(matchRegex('Link In Bio', /link in bio/gi)).toEqual({ index: 0, text: 'Link In Bio' });
    expect(matchRegex('加微信', /\p{Script=Han}+/u)).toEqual({ index: 0, text: '加微信' });
  });
});

describe('joinTokens', () => {
  it('joins CJK without spaces, words with spaces, and keeps currency and % attached', () => {
    expect(joinTokens(t('私信我加微信abc123 link in bio'))).toBe('私信我加微信abc123 link in bio');
    expect(joinTokens(t('only $29.99 50% off 九块九'))).toBe('only $29.99 50% off 9块9');
    expect(joinTokens([])).toBe('');
  });
});

describe('snippetAround', () => {
  it('quotes the match with up to three tokens of context by default', () => {
    const tokens = t('hi all please check the link in my bio for the deal today');
    const match = matchPhrase(tokens, t('link in my bio'))!;
    expect(snippetAround(tokens, match)).toBe('please check the link in my bio for the deal');
    expect(snippetAround(tokens, match, 0)).toBe('link in my bio');
    expect(snippetAround(tokens, match, 1)).toBe('the link in my bio for');
  });

  it('joins CJK context without spaces', () => {
    const tokens = t('大家私信我加微信abc123哦');
    expect(snippetAround(tokens, { start: 5, end: 8, distance: 0 }, 2)).toBe('信我加微信abc123哦');
  });

  it('stops at the ends of the text', () => {
    expect(snippetAround(t('whatsapp me'), { start: 0, end: 1, distance: 0 })).toBe('whatsapp me');
  });

  it('drops context before going over 120 characters', () => {
    const long = 'x'.repeat(50);
    const tokens = [long, long, 'whatsapp', long, long];
    expect(snippetAround(tokens, { start: 2, end: 3, distance: 0 }, 3)).toBe(`${long} whatsapp ${long}`);
  });

  it('cuts a match longer than 120 characters, ending with an ellipsis', () => {
    const tokens = Array.from({ length: 60 }, () => 'abc');
    const snippet = snippetAround(tokens, { start: 0, end: 60, distance: 0 });
    expect(Array.from(snippet)).toHaveLength(MAX_SNIPPET_CHARS);
    expect(snippet.endsWith('…')).toBe(true);
    expect(snippet.startsWith('abc abc')).toBe(true);
  });
});
