import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveLensError } from '@livelens/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_TAXONOMY_PATH, loadTaxonomy, parseTaxonomy } from './load.js';
import type { Condition } from './schema.js';

/** A minimal valid taxonomy; `tag` and `extra` are spliced in as YAML text. */
function doc(tag: string, extra = ''): string {
  return `version: 1.0.0
name: test
scoring: {}
tags:
${tag}${extra}`;
}

const GOOD_TAG = `  - id: promo_code
    kind: intent
    name: Promo code
    severity: info
    description: A promo code.
    cues: { en: [promo code], zh: [优惠码] }
    thresholds: { accept: 0.6, review: 0.3 }
    rules:
      - id: promo_code.cue
        description: cue
        weight: 0.8
        when: { cues: {} }
`;

/** The message of the error `parseTaxonomy(text)` throws (and that it is an invalid_config LiveLensError). */
function errorOf(text: string): string {
  try {
    parseTaxonomy(text, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('invalid_config');
    return (error as LiveLensError).message;
  }
  throw new Error('expected parseTaxonomy to throw');
}

describe('the shipped taxonomy', async () => {
  const taxonomy = await loadTaxonomy();

  it('loads from DEFAULT_TAXONOMY_PATH, version 1.0.0', () => {
    expect(existsSync(fileURLToPath(DEFAULT_TAXONOMY_PATH))).toBe(true);
    expect(taxonomy.version).toBe('1.0.0');
    expect(taxonomy.name).toBe('livecommerce');
    expect(taxonomy.scoring).toEqual({
      combine: 'noisy_or',
      defaultQuietPeriodMs: 20_000,
      defaultMaxEdits: 1,
      maxEvidencePerRule: 8,
      snippetContextTokens: 4,
    });
  });

  it('has at least 12 intent and 12 risk tags, the required ones included', () => {
    const intents = taxonomy.tags.filter((t) => t.kind === 'intent').map((t) => t.id);
    const risks = taxonomy.tags.filter((t) => t.kind === 'risk').map((t) => t.id);
    expect(intents.length).toBeGreaterThanOrEqual(12);
    expect(risks.length).toBeGreaterThanOrEqual(12);
    expect(intents).toEqual(
      expect.arrayContaining([
        'call_to_action',
        'price_mention',
        'discount_or_promo',
        'promo_code',
        'limited_time_urgency',
        'giveaway',
        'off_platform_diversion',
        'link_in_bio',
        'product_demo',
        'brand_mention',
        'flash_sale_auction',
        'follow_subscribe_bait',
        'affiliate_disclosure',
      ]),
    );
    expect(risks).toEqual(
      expect.arrayContaining([
        'gambling',
        'tobacco_vaping',
        'alcohol',
        'weapons',
        'drugs_pharma',
        'health_claims',
        'counterfeit_replica',
        'financial_scam',
        'adult_nudity',
        'minors_risk',
        'misleading_pricing',
        'hate_harassment',
      ]),
    );
  });

  it('gives every tag en and zh cues, 1–4 rules and sane thresholds', () => {
    for (const tag of taxonomy.tags) {
      expect(tag.cues.en.length, tag.id).toBeGreaterThan(0);
      expect(tag.cues.zh.length, tag.id).toBeGreaterThan(0);
      expect(tag.rules.length, tag.id).toBeGreaterThanOrEqual(1);
      expect(tag.rules.length, tag.id).toBeLessThanOrEqual(4);
      expect(tag.thresholds.accept, tag.id).toBeGreaterThanOrEqual(0.5);
      expect(tag.thresholds.accept, tag.id).toBeLessThanOrEqual(0.7);
      expect(tag.thresholds.review, tag.id).toBeGreaterThanOrEqual(0.3);
      expect(tag.thresholds.review, tag.id).toBeLessThanOrEqual(0.45);
      for (const rule of tag.rules) expect(rule.tagId).toBe(tag.id);
    }
  });

  it('has unique rule ids, cross-modal rules and the gambling "game" exception', () => {
    const ids = taxonomy.tags.flatMap((t) => t.rules.map((r) => r.id));
    expect(new Set(ids).size).toBe(ids.length);
    const crossModal = (c: Condition): boolean =>
      c.op === 'all' && c.withinMs !== undefined && c.of.length >= 2;
    const rule = (id: string) => taxonomy.tags.flatMap((t) => t.rules).find((r) => r.id === id)!;
    expect(crossModal(rule('call_to_action.price_on_screen_buy_spoken').when)).toBe(true);
    expect(crossModal(rule('promo_code.code_on_screen_and_spoken').when)).toBe(true);
    expect(crossModal(rule('adult_nudity.label_and_speech').when)).toBe(true);
    expect(crossModal(rule('minors_risk.minors_and_restricted').when)).toBe(true);
    const gambling = taxonomy.tags.find((t) => t.id === 'gambling')!;
    expect(gambling.exceptions.map((e) => e.id)).toEqual(['gambling.casual_game']);
  });

  it('applies defaults and compiles regexes once', () => {
    const demo = taxonomy.tags.find((t) => t.id === 'product_demo')!;
    expect(demo.quietPeriodMs).toBe(20_000);
    expect(taxonomy.tags.find((t) => t.id === 'call_to_action')!.quietPeriodMs).toBe(15_000);
    const when = demo.rules[1]!.when;
    expect(when.op).toBe('regex');
    if (when.op === 'regex') {
      expect(when.pattern).toBeInstanceOf(RegExp);
      expect(when.modalities).toEqual(['speech', 'screen_text']);
    }
  });
});

describe('parseTaxonomy', () => {
  it('accepts a minimal document and fills in defaults', () => {
    const taxonomy = parseTaxonomy(doc(GOOD_TAG));
    expect(taxonomy.tags[0]!.exceptions).toEqual([]);
    expect(taxonomy.tags[0]!.quietPeriodMs).toBe(20_000);
    expect(taxonomy.tags[0]!.rules[0]!.when).toEqual({
      op: 'cues',
      modalities: ['speech', 'screen_text'],
      match: 'phrase',
      maxEdits: 1,
    });
  });

  it('reports a wrong enum value with its path into the document and its line', () => {
    const bad = GOOD_TAG.replace(
      'when: { cues: {} }',
      'when: { all: [ { extract: { type: prize } }, { cues: {} } ], within_ms: 5000 }',
    );
    expect(errorOf(doc(bad))).toBe(
      'invalid taxonomy test.yaml: tags[0].rules[0].when.all[0].extract.type: expected one of price, percent, ' +
        'promo_code, url, phone, handle; got "prize" (line 16, col 43)',
    );
  });

  it('reports duplicate tag ids', () => {
    expect(errorOf(doc(GOOD_TAG + GOOD_TAG.replace('promo_code.cue', 'promo_code.other')))).toContain(
      'tags[1].id: duplicate tag id "promo_code" (first at tags[0])',
    );
  });

  it('reports duplicate rule ids', () => {
    const twice = GOOD_TAG.replace(
      '        when: { cues: {} }\n',
      '        when: { cues: {} }\n      - id: promo_code.cue\n        description: again\n        weight: 0.5\n        when: { cues: {} }\n',
    );
    expect(errorOf(doc(twice))).toContain(
      'tags[0].rules[1].id: duplicate rule id "promo_code.cue" (first at tags[0].rules[0])',
    );
  });

  it('reports review >= accept', () => {
    expect(errorOf(doc(GOOD_TAG.replace('review: 0.3', 'review: 0.7')))).toContain(
      'tags[0].thresholds.review: must be less than accept (review 0.7, accept 0.6)',
    );
    expect(errorOf(doc(GOOD_TAG.replace('accept: 0.6', 'accept: 1.2')))).toContain(
      'tags[0].thresholds.accept: expected a number <= 1, got 1.2',
    );
  });

  it('reports a regex that does not compile, with the regex error', () => {
    const bad = GOOD_TAG.replace('when: { cues: {} }', `when: { text: { regex: 'use (code' } }`);
    expect(errorOf(doc(bad))).toMatch(
      /tags\[0\]\.rules\[0\]\.when\.text\.regex: invalid regex: Invalid regular expression: \/use \(code\/: Unterminated group/,
    );
  });

  it('reports unknown keys, one per key, at every level', () => {
    const bad = GOOD_TAG.replace('weight: 0.8', 'weight: 0.8\n        colour: red').replace(
      'when: { cues: {} }',
      'when: { cues: { modality: [speech] } }',
    );
    const message = errorOf(doc(bad, '    extra: 1\n'));
    expect(message).toContain('tags[0].rules[0].colour: unknown key');
    expect(message).toContain('tags[0].rules[0].when.cues.modality: unknown key');
    expect(message).toContain('tags[0].extra: unknown key');
    expect(errorOf(`${doc(GOOD_TAG)}owner: me\n`)).toContain('owner: unknown key');
  });

  it('reports missing zh cues, and empty cue lists', () => {
    expect(
      errorOf(
        doc(GOOD_TAG.replace('cues: { en: [promo code], zh: [优惠码] }', 'cues: { en: [promo code] }')),
      ),
    ).toContain('tags[0].cues.zh: required (expected array)');
    expect(errorOf(doc(GOOD_TAG.replace('zh: [优惠码]', 'zh: []')))).toContain(
      'tags[0].cues.zh: expected at least 1 item(s)',
    );
    expect(errorOf(doc(GOOD_TAG.replace('zh: [优惠码]', 'zh: [优惠码], ES: [código]')))).toContain(
      'tags[0].cues.ES: unknown key (expected a language code like "es")',
    );
  });

  it('accepts other languages in cues', () => {
    const taxonomy = parseTaxonomy(
      doc(GOOD_TAG.replace('zh: [优惠码]', 'zh: [优惠码], es: [código promocional]')),
    );
    expect(taxonomy.tags[0]!.cues.es).toEqual(['código promocional']);
  });

  it('reports a YAML syntax error with line and column', () => {
    expect(errorOf('version: 1.0.0\nname: [unclosed\n')).toMatch(
      /^invalid taxonomy test\.yaml: YAML syntax error at line \d+, col \d+: /,
    );
    expect(errorOf('version: 1.0.0\nversion: 1.0.1\n')).toContain(
      'YAML syntax error at line 2, col 1: Map keys must be unique',
    );
  });

  it('only accepts not inside all, and all needs a positive member', () => {
    const notAlone = GOOD_TAG.replace('when: { cues: {} }', 'when: { not: { cues: {} } }');
    expect(errorOf(doc(notAlone))).toContain(
      "tags[0].rules[0].when: 'not' is only allowed as a member of 'all'",
    );
    const notInAny = GOOD_TAG.replace('when: { cues: {} }', 'when: { any: [ { not: { cues: {} } } ] }');
    expect(errorOf(doc(notInAny))).toContain(
      "tags[0].rules[0].when.any[0]: 'not' is only allowed as a member of 'all'",
    );
    const onlyNot = GOOD_TAG.replace('when: { cues: {} }', 'when: { all: [ { not: { cues: {} } } ] }');
    expect(errorOf(doc(onlyNot))).toContain(
      "tags[0].rules[0].when.all: needs at least one member that is not a 'not'",
    );
    const ok = GOOD_TAG.replace(
      'when: { cues: {} }',
      'when: { all: [ { cues: {} }, { not: { text: { any: [no] } } } ] }',
    );
    expect(parseTaxonomy(doc(ok)).tags[0]!.rules[0]!.when.op).toBe('all');
  });

  it('reports conditions with no or two condition keys, and misplaced options', () => {
    const none = GOOD_TAG.replace('when: { cues: {} }', 'when: { txt: { any: [a] } }');
    expect(errorOf(doc(none))).toContain(
      'tags[0].rules[0].when: expected a condition with exactly one of text, cues, extract, label, price_ratio, all, any, count, not; got key(s) txt',
    );
    const two = GOOD_TAG.replace('when: { cues: {} }', 'when: { cues: {}, label: { name: nsfw, min: 0.5 } }');
    expect(errorOf(doc(two))).toContain(
      'tags[0].rules[0].when: expected exactly one condition key, got cues, label',
    );
    const both = GOOD_TAG.replace('when: { cues: {} }', `when: { text: { any: [a], regex: 'a' } }`);
    expect(errorOf(doc(both))).toContain(
      "tags[0].rules[0].when.text: expected exactly one of 'any' or 'regex'",
    );
    const platform = GOOD_TAG.replace(
      'when: { cues: {} }',
      'when: { extract: { type: price, platform: [line] } }',
    );
    expect(errorOf(doc(platform))).toContain(
      'tags[0].rules[0].when.extract.platform: only allowed with type: handle',
    );
    const count = GOOD_TAG.replace(
      'when: { cues: {} }',
      'when: { count: { of: { all: [ { cues: {} } ] }, min: 2 } }',
    );
    expect(errorOf(doc(count))).toContain(
      'tags[0].rules[0].when.count.of: expected a text, cues, extract or label condition, or an any of them',
    );
    const ratio = GOOD_TAG.replace('when: { cues: {} }', `when: { text: { regex: '(\\d+)', ratio: 5 } }`);
    expect(errorOf(doc(ratio))).toContain(
      'tags[0].rules[0].when.text.ratio: needs a regex with two capture groups (the larger and the smaller number), got 1',
    );
  });

  it('reports ids that are not snake_case or not prefixed by their tag, and a bad version', () => {
    expect(errorOf(doc(GOOD_TAG.replace('id: promo_code\n', 'id: PromoCode\n')))).toContain(
      'tags[0].id: expected snake_case (a-z, 0-9, _), e.g. "promo_code"',
    );
    expect(errorOf(doc(GOOD_TAG.replace('id: promo_code.cue', 'id: gambling.cue')))).toContain(
      'tags[0].rules[0].id: must start with the tag id ("promo_code.")',
    );
    expect(errorOf(doc(GOOD_TAG).replace('version: 1.0.0', 'version: 1.0'))).toContain(
      'version: expected string, got 1',
    );
  });

  it('reports phrases that normalise to nothing', () => {
    expect(errorOf(doc(GOOD_TAG.replace('en: [promo code]', `en: [promo code, '!!!']`)))).toContain(
      'tags[0].cues.en[1]: phrase "!!!" has no words once normalised',
    );
  });

  it('reports missing required fields and lists several problems at once', () => {
    const message = errorOf(
      doc(GOOD_TAG.replace('    severity: info\n', '').replace('weight: 0.8', 'weight: 0')),
    );
    expect(message).toContain('invalid taxonomy test.yaml: 2 problems:');
    expect(message).toContain(
      'tags[0].severity: required (expected one of info, low, medium, high, critical) (line 5, col 5)',
    );
    expect(message).toContain('tags[0].rules[0].weight: expected a number > 0, got 0');
  });
});

describe('loadTaxonomy', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-taxonomy-'));
    dirs.push(dir);
    const path = join(dir, 'bad.yaml');
    await writeFile(path, doc(GOOD_TAG.replace('review: 0.3', 'review: 0.9')));
    await expect(loadTaxonomy(path)).rejects.toThrow(`invalid taxonomy ${path}: tags[0].thresholds.review`);
  });

  it('fails with invalid_config when the file is missing', async () => {
    const error = await loadTaxonomy('/nonexistent/livelens/taxonomy.yaml').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('invalid_config');
    expect((error as LiveLensError).message).toMatch(
      /^cannot read taxonomy \/nonexistent\/livelens\/taxonomy\.yaml: ENOENT/,
    );
  });
});
