import { describe, expect, it } from 'vitest';
import { loadTaxonomy, parseTaxonomy } from '../taxonomy/index.js';
import { RuleEngine } from './engine.js';
import {
  ALWAYS_CANDIDATE_SCORE,
  BM25_B,
  BM25_K1,
  EveryRuleRetriever,
  isAlwaysCandidate,
  RuleIndex,
  retrievalTerms,
  ruleDocument,
  windowText,
} from './retrieval.js';
import { buildWindow, createObservationFactory, seededRandom } from './window-builder.js';

const taxonomy = await loadTaxonomy();
const index = new RuleIndex(taxonomy);
const tagOf = (ruleId: string) => ruleId.slice(0, ruleId.indexOf('.'));

describe('retrievalTerms', () => {
  it('uses the text layer tokens, drops stopwords and adds CJK bigrams', () => {
    expect(retrievalTerms('加我微信, the Link in BIO')).toEqual([
      '加',
      '加我',
      '我',
      '我微',
      '微',
      '微信',
      '信',
      'link',
      'bio',
    ]);
  });
});

describe('RuleIndex.search', () => {
  it('uses BM25 with k1 = 1.2 and b = 0.75', () => {
    expect([BM25_K1, BM25_B]).toEqual([1.2, 0.75]);
  });

  it.each([
    ['use code SAVE20 at checkout', 'promo_code'],
    ['link in bio', 'link_in_bio'],
    ['casino bonus tonight', 'gambling'],
    ['whisky 40% vol', 'alcohol'],
    ['lucky draw giveaway after the show', 'giveaway'],
    ['加我微信私聊', 'off_platform_diversion'],
    ['电子烟批发 一次性', 'tobacco_vaping'],
    ['全网最低价', 'misleading_pricing'],
    ['试穿上身效果', 'product_demo'],
    ['高仿包包', 'counterfeit_replica'],
  ])('ranks the right tag first for %j', (text, tagId) => {
    const hits = index.search(text);
    expect(hits[0]!.score).toBeGreaterThan(0);
    expect(tagOf(hits[0]!.ruleId)).toBe(tagId);
    expect(hits[0]!.tagId).toBe(tagId);
  });

  it('always returns the rules words cannot find (labels, extractors, regexes), whatever limit and minScore say', () => {
    const always = new Set(
      taxonomy.tags.flatMap((tag) => tag.rules.filter((r) => isAlwaysCandidate(r, tag)).map((r) => r.id)),
    );
    expect(always.has('adult_nudity.nsfw_label')).toBe(true);
    expect(always.has('price_mention.extracted_price')).toBe(true);
    expect(always.has('misleading_pricing.inflated_original')).toBe(true);
    for (const hits of [index.search(''), index.search('link in bio', { limit: 1, minScore: 1000 })]) {
      const ids = new Set(hits.map((h) => h.ruleId));
      for (const id of always) expect(ids.has(id), id).toBe(true);
    }
    const nsfw = index.search('')[0]!;
    expect(index.search('').every((h) => h.score === ALWAYS_CANDIDATE_SCORE && h.alwaysCandidate)).toBe(true);
    expect(nsfw.alwaysCandidate).toBe(true);
  });

  it('applies limit and minScore to word-found rules, best first, ties by rule id', () => {
    const hits = index.search('link in bio', { limit: 2 });
    const found = hits.filter((h) => !h.alwaysCandidate || h.score > 0);
    expect(found.map((h) => h.ruleId)).toEqual(['link_in_bio.link_phrase', 'link_in_bio.link_and_pointer']);
    const scores = index.search('buy now link in bio 下单').map((h) => h.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const zeros = index.search('').map((h) => h.ruleId);
    expect(zeros).toEqual([...zeros].sort());
    expect(index.search('link in bio', { minScore: 9.8 }).filter((h) => h.score > 0)).toHaveLength(1);
  });

  it('is deterministic across calls and instances', () => {
    const text = 'use code SAVE20, link in bio, 加微信 下单';
    expect(index.search(text)).toEqual(index.search(text));
    expect(new RuleIndex(taxonomy).search(text)).toEqual(index.search(text));
  });

  it('classifies always-candidates from their conditions', () => {
    const small = parseTaxonomy(`version: 1.0.0
name: small
scoring: {}
tags:
  - id: t
    kind: intent
    name: T
    severity: info
    description: d
    cues: { en: [a cue], zh: [线索] }
    thresholds: { accept: 0.5, review: 0.3 }
    rules:
      - { id: t.phrase, description: d, weight: 1, when: { text: { any: [buy now] } } }
      - { id: t.stopwords, description: d, weight: 1, when: { text: { any: [the, buy now] } } }
      - { id: t.fuzzy, description: d, weight: 1, when: { text: { any: [whatsapp], match: fuzzy } } }
      - { id: t.regex, description: d, weight: 1, when: { text: { regex: 'x' } } }
      - { id: t.both, description: d, weight: 1, when: { all: [ { extract: { type: url } }, { cues: {} } ] } }
      - { id: t.either, description: d, weight: 1, when: { any: [ { extract: { type: url } }, { cues: {} } ] } }
`);
    const tag = small.tags[0]!;
    expect(Object.fromEntries(tag.rules.map((r) => [r.id, isAlwaysCandidate(r, tag)]))).toEqual({
      't.phrase': false,
      't.stopwords': true,
      't.fuzzy': true,
      't.regex': true,
      't.both': false,
      't.either': true,
    });
    expect(ruleDocument(tag, tag.rules[0]!)).toBe('T\nd\nd\na cue\n线索\nbuy now');
  });
});

describe('RuleIndex as the engine retriever', () => {
  it('retrieves from the speech and screen text of the window', () => {
    const o = createObservationFactory();
    const window = buildWindow([
      o.speech('link in bio', 0),
      o.screen('加微信', 1000),
      o.label('nsfw', 0.3, 2000),
    ]);
    expect(windowText(window)).toBe('link in bio\n加微信');
    expect(index.retrieve(window)).toEqual(index.search('link in bio\n加微信'));
  });

  // With the default options retrieval only leaves out rules that could not have matched, so the decisions are
  // the ones evaluating every rule would give.
  it('is lossless: the same scores as evaluating every rule, on random windows', () => {
    const withIndex = new RuleEngine(taxonomy);
    const withAll = new RuleEngine(taxonomy, new EveryRuleRetriever(taxonomy));
    const random = seededRandom(7);
    const phrases = [
      'use code SAVE20',
      'link in bio',
      'this game is fun',
      '加我微信 abc123',
      '$29.99',
      'buy now',
      '原价999 现价99',
      'casino night',
      '电子烟',
      'for the kids',
      'hello everyone',
      'whatsaap me',
    ];
    for (let run = 0; run < 40; run++) {
      const o = createObservationFactory(`r${run}`);
      const observations = Array.from({ length: 1 + Math.floor(random() * 5) }, () => {
        const text = phrases[Math.floor(random() * phrases.length)]!;
        const at = Math.floor(random() * 30_000);
        return random() < 0.15
          ? o.label('nsfw', random(), at)
          : random() < 0.5
            ? o.speech(text, at)
            : o.screen(text, at);
      });
      const window = buildWindow(observations);
      const all = new Map(withAll.evaluate(window).decisions.map((d) => [d.tagId, d.score]));
      const retrieved = new Map(withIndex.evaluate(window).decisions.map((d) => [d.tagId, d.score]));
      for (const [tagId, score] of all) expect(retrieved.get(tagId) ?? 0, tagId).toBe(score);
    }
  });
});
