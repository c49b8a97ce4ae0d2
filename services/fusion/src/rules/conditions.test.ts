// Each condition of the rule language on hand-built windows, through the engine with every rule evaluated
// (EveryRuleRetriever), so retrieval cannot hide what is being tested.
import { describe, expect, it } from 'vitest';
import type { Observation, RuleEvaluation, TagDecision } from '../model.js';
import { parseTaxonomy } from '../taxonomy/index.js';
import { RuleEngine } from './engine.js';
import { EveryRuleRetriever } from './retrieval.js';
import { buildWindow, createObservationFactory } from './window-builder.js';

/** A one-tag taxonomy (tag `t`) whose rules are `t.r0`, `t.r1`, … with the given `when` (YAML flow). */
function engineFor(
  whens: readonly string[],
  options: { exceptions?: readonly string[]; weight?: number } = {},
) {
  const rules = whens
    .map(
      (when, i) =>
        `      - { id: t.r${i}, description: rule ${i}, weight: ${options.weight ?? 1}, when: ${when} }`,
    )
    .join('\n');
  const exceptions = (options.exceptions ?? [])
    .map((when, i) => `      - { id: t.x${i}, description: exception ${i}, when: ${when} }`)
    .join('\n');
  const taxonomy = parseTaxonomy(`version: 1.0.0
name: conditions
scoring: {}
tags:
  - id: t
    kind: intent
    name: Test tag
    severity: info
    description: A tag for tests.
    cues: { en: [link in bio, buy now], zh: [加微信], es: [compra ya] }
    thresholds: { accept: 0.5, review: 0.3 }
    rules:
${rules}
${exceptions === '' ? '' : `    exceptions:\n${exceptions}`}
`);
  return new RuleEngine(taxonomy, new EveryRuleRetriever(taxonomy));
}

function decide(engine: RuleEngine, observations: readonly Observation[]): TagDecision {
  const decision = engine.evaluate(buildWindow(observations)).decisions[0];
  if (decision === undefined) throw new Error('no decision');
  return decision;
}

function evaluation(decision: TagDecision, index = 0): RuleEvaluation {
  return decision.evaluations[index]!;
}

describe('text: phrases', () => {
  const engine = engineFor([`{ text: { any: [link in bio, 加微信] } }`]);

  it('matches a phrase as whole tokens and explains where and when', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.speech('Link in BIO, guys!', 12_400, { confidence: 0.91 })]);
    expect(evaluation(decision)).toEqual({
      ruleId: 't.r0',
      matched: true,
      score: 0.91,
      explanation: "phrase 'link in bio' in speech at 12.4 s (conf 0.91)",
    });
    expect(decision.evidence).toEqual([
      {
        observationId: 'rec-1',
        kind: 'speech',
        source: { topic: 'transcripts', partition: 0, offset: '1', recordId: 'rec-1' },
        snippet: 'link in bio guys',
        mediaTimeMs: 12_400,
        confidence: 0.91,
        ruleId: 't.r0',
      },
    ]);
  });

  it('matches Chinese phrases character by character, on screen too', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.screen('快加微信领券', 3000)]);
    expect(evaluation(decision).explanation).toBe("phrase '加微信' on screen at 3.0 s (conf 0.90)");
    expect(decision.evidence[0]!.snippet).toBe('快加微信领券');
  });

  it('does not match inside words, nor in other modalities', () => {
    const o = createObservationFactory();
    expect(decide(engine, [o.speech('linking biology', 0)]).score).toBe(0);
    const screenOnly = engineFor([`{ text: { any: [link in bio], modalities: [screen_text] } }`]);
    const decision = decide(screenOnly, [o.speech('link in bio', 0)]);
    expect(decision.score).toBe(0);
    expect(evaluation(decision).explanation).toBe("no phrase 'link in bio' on screen");
  });

  it('keeps one hit per observation, and the most confident one decides', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [
      o.speech('link in bio', 1000, { confidence: 0.5 }),
      o.screen('LINK IN BIO', 2000, { confidence: 0.8 }),
    ]);
    expect(decision.score).toBe(0.8);
    expect(decision.evidence.map((e) => e.observationId)).toEqual(['rec-1', 'rec-2#t0']);
    expect(evaluation(decision).explanation).toBe(
      "phrase 'link in bio' on screen at 2.0 s (conf 0.80) (+1 more)",
    );
  });
});

describe('text: fuzzy phrases', () => {
  it('tolerates ASR errors up to maxEdits and discounts the confidence by 1 − distance/length', () => {
    const fuzzy = engineFor([`{ text: { any: [whatsapp], match: fuzzy, maxEdits: 1 } }`]);
    const exact = engineFor([`{ text: { any: [whatsapp] } }`]);
    const o = createObservationFactory();
    const said = [o.speech('add me on whatsaap', 0, { confidence: 0.8 })];
    const decision = decide(fuzzy, said);
    // 1 edit over 8 characters: 0.8 × 7/8.
    expect(decision.score).toBe(0.7);
    expect(evaluation(decision).explanation).toBe(
      "phrase 'whatsapp' (fuzzy, 1 edit) in speech at 0.0 s (conf 0.70)",
    );
    expect(decide(exact, said).score).toBe(0);
    expect(decide(fuzzy, [o.speech('add me on whatapps now', 0)]).score).toBe(0);
  });
});

describe('text: regex', () => {
  it('matches the normalised text and quotes the match, not the pattern', () => {
    const engine = engineFor([`{ text: { regex: '(最后|仅剩) ?\\d+ ?件' } }`]);
    const o = createObservationFactory();
    const decision = decide(engine, [o.speech('最后三件了！', 5000)]);
    expect(decision.score).toBe(0.9);
    expect(evaluation(decision).explanation).toBe("text '最后3件' in speech at 5.0 s (conf 0.90)");
    expect(decide(engine, [o.speech('最后的机会', 0)]).score).toBe(0);
  });

  it('with ratio, needs the first number to be N times the second', () => {
    const engine = engineFor([`{ text: { regex: '原价 ?(\\d+)\\D{0,6}现价 ?(\\d+)', ratio: 5 } }`]);
    const o = createObservationFactory();
    expect(decide(engine, [o.speech('原价999 现价99', 0)]).score).toBe(0.9);
    const decision = decide(engine, [o.speech('原价120 现价99', 0)]);
    expect(decision.score).toBe(0);
    expect(evaluation(decision).explanation).toBe(
      "no text in speech or on screen matched the rule's pattern with a ratio >= 5",
    );
  });
});

describe('cues', () => {
  it("uses the tag's cues in every language", () => {
    const engine = engineFor(['{ cues: {} }']);
    const o = createObservationFactory();
    expect(decide(engine, [o.speech('¡Compra ya!', 0)]).score).toBe(0.9);
    expect(decide(engine, [o.screen('加微信', 0)]).score).toBe(0.9);
    const decision = decide(engine, [o.speech('hello there', 0)]);
    expect(evaluation(decision).explanation).toBe('no cue of Test tag in speech or on screen');
  });
});

describe('extract', () => {
  it('fires on an extraction and quotes its raw text', () => {
    const engine = engineFor([`{ extract: { type: price } }`]);
    const o = createObservationFactory();
    const decision = decide(engine, [o.screen('Now only $29.99!', 1000)]);
    expect(evaluation(decision).explanation).toBe("price '$29.99' on screen at 1.0 s (conf 0.90)");
    expect(decision.evidence[0]!.snippet).toBe('$29.99');
  });

  it('applies min, max and currency filters', () => {
    const engine = engineFor([
      `{ extract: { type: price, min: 10, max: 100 } }`,
      `{ extract: { type: price, currency: [cny] } }`,
    ]);
    const o = createObservationFactory();
    const cheap = decide(engine, [o.speech('just 5 dollars', 0)]);
    expect(cheap.evaluations.map((e) => e.matched)).toEqual([false, false]);
    expect(evaluation(cheap).explanation).toBe('no price (>= 10, <= 100) in speech or on screen');
    expect(decide(engine, [o.speech('just 50 dollars', 0)]).evaluations.map((e) => e.matched)).toEqual([
      true,
      false,
    ]);
    expect(decide(engine, [o.speech('只要199元', 0)]).evaluations.map((e) => e.matched)).toEqual([
      false,
      true,
    ]);
  });

  it('filters handles by platform and percents by discount', () => {
    const engine = engineFor([
      `{ extract: { type: handle, platform: [WhatsApp, telegram] } }`,
      `{ extract: { type: percent, discount: true, min: 30 } }`,
    ]);
    const o = createObservationFactory();
    const ig = decide(engine, [o.speech('follow my IG: shop_anna', 0)]);
    expect(ig.evaluations[0]!.matched).toBe(false);
    const tg = decide(engine, [o.speech('telegram: @shop_anna', 0)]);
    expect(tg.evaluations[0]!.matched).toBe(true);
    expect(decide(engine, [o.screen('50% cotton', 0)]).evaluations[1]!.matched).toBe(false);
    expect(decide(engine, [o.screen('50% off', 0)]).evaluations[1]!.matched).toBe(true);
    expect(decide(engine, [o.screen('全场五折', 0)]).evaluations[1]!.matched).toBe(true);
    expect(decide(engine, [o.screen('全场九折', 0)]).evaluations[1]!.matched).toBe(false);
  });
});

describe('label', () => {
  const engine = engineFor([`{ label: { name: nsfw, min: 0.8 } }`]);

  it('fires on a label scoring at least min, with the label as snippet', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.label('nsfw', 0.95, 4000)]);
    expect(decision.score).toBe(0.95);
    expect(evaluation(decision).explanation).toBe('label nsfw=0.95 in the image at 4.0 s (conf 0.95)');
    expect(decision.evidence[0]).toMatchObject({
      kind: 'image_label',
      snippet: 'nsfw=0.95',
      observationId: 'rec-1#lnsfw',
    });
  });

  it('ignores lower scores and other labels', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.label('nsfw', 0.79, 0), o.label('violence', 0.99, 0)]);
    expect(decision.score).toBe(0);
    expect(evaluation(decision).explanation).toBe('no nsfw label >= 0.8');
  });
});

describe('price_ratio', () => {
  it('pairs two prices in one currency, one at least min times the other', () => {
    const engine = engineFor([`{ price_ratio: { min: 5, within_ms: 10000 } }`]);
    const o = createObservationFactory();
    const one = decide(engine, [o.speech('was $199 now $19', 0)]);
    expect(evaluation(one).explanation).toBe(
      "prices '$199' and '$19' (10.5×) in speech at 0.0 s (conf 0.90)",
    );
    const two = decide(engine, [o.screen('$199', 0), o.speech('today only $19', 5000, { confidence: 0.8 })]);
    expect(two.score).toBe(0.8);
    expect(two.evidence.map((e) => e.snippet)).toEqual(['$199', '$19']);
    expect(decide(engine, [o.screen('$199', 0), o.speech('today only $19', 20_000)]).score).toBe(0);
    expect(decide(engine, [o.speech('was $30 now $19', 0)]).score).toBe(0);
    expect(decide(engine, [o.speech('was $199 now 19元', 0)]).score).toBe(0);
  });
});

describe('all with within_ms (cross-modal)', () => {
  const engine = engineFor([
    `{ all: [ { extract: { type: price, modalities: [screen_text] } }, { text: { any: [buy, link], modalities: [speech] } } ], within_ms: 10000 }`,
  ]);

  it('matches when the members lie within the bound, across modalities', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.screen('$29.99', 10_000), o.speech('link in bio to buy', 18_000)]);
    expect(decision.score).toBe(0.9);
    expect(decision.evidence.map((e) => e.kind)).toEqual(['screen_text', 'speech']);
    expect(evaluation(decision).explanation).toBe(
      "price '$29.99' on screen at 10.0 s (conf 0.90) and phrase 'link' in speech at 18.0 s (conf 0.90), within 10.0 s",
    );
  });

  it('measures the gap between spans: a long speech segment counts from its end', () => {
    const o = createObservationFactory();
    // Speech [0, 6 s) and the price at 15 s: 9 s apart.
    expect(decide(engine, [o.speech('buy it', 0, { durationMs: 6000 }), o.screen('$5', 15_000)]).score).toBe(
      0.9,
    );
  });

  it('does not match outside the bound, and says why', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.screen('$29.99', 0), o.speech('link in bio to buy', 12_000)]);
    expect(decision.score).toBe(0);
    expect(evaluation(decision).explanation).toBe(
      "no price on screen within 10.0 s of 'buy', 'link' in speech",
    );
  });

  it('without one member, names the missing member', () => {
    const o = createObservationFactory();
    expect(evaluation(decide(engine, [o.speech('buy it', 0)])).explanation).toBe('no price on screen');
  });

  it('picks the most confident admissible combination', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [
      o.screen('$10', 0, { confidence: 0.6 }),
      o.speech('buy', 5000, { confidence: 0.95 }),
      o.screen('$12', 14_000, { confidence: 0.99 }),
    ]);
    // {$12 at 14 s, buy at 5 s}: min(0.99, 0.95).
    expect(decision.score).toBe(0.95);
    expect(decision.evaluations[0]!.explanation).toMatch(/^price '\$12' on screen at 14\.0 s/);
  });
});

describe('all without within_ms, any', () => {
  it('all: every member anywhere in the window; confidence is the weakest member', () => {
    const engine = engineFor([`{ all: [ { text: { any: [kids] } }, { text: { any: [vape] } } ] }`]);
    const o = createObservationFactory();
    const decision = decide(engine, [
      o.speech('for the kids', 0, { confidence: 0.7 }),
      o.screen('VAPE', 29_000),
    ]);
    expect(decision.score).toBe(0.7);
    expect(decide(engine, [o.speech('for the kids', 0)]).score).toBe(0);
  });

  it('any: the best member', () => {
    const engine = engineFor([`{ any: [ { text: { any: [telegram] } }, { extract: { type: phone } } ] }`]);
    const o = createObservationFactory();
    expect(decide(engine, [o.screen('call 555-123-4567', 0, { confidence: 0.6 })]).score).toBe(0.6);
    const none = decide(engine, [o.speech('hello', 0)]);
    expect(evaluation(none).explanation).toBe(
      "none of: no phrase 'telegram' in speech or on screen; no phone in speech or on screen",
    );
  });
});

describe('count', () => {
  const engine = engineFor([`{ count: { of: { text: { any: [buy now, hurry] } }, min: 3 } }`]);

  it('needs the sub-condition in at least min distinct observations', () => {
    const o = createObservationFactory();
    const three = decide(engine, [
      o.speech('buy now', 0, { confidence: 0.9 }),
      o.speech('hurry hurry', 3000, { confidence: 0.7 }),
      o.speech('buy now!', 6000, { confidence: 0.8 }),
    ]);
    // The confidence at which 3 observations are established: the 3rd best.
    expect(three.score).toBe(0.7);
    expect(three.evidence).toHaveLength(3);
    expect(evaluation(three).explanation).toBe(
      "'buy now', 'hurry' in speech or on screen in 3 observations (3 needed), first phrase 'buy now' in speech at 0.0 s (conf 0.90)",
    );
  });

  it('does not count one observation twice', () => {
    const o = createObservationFactory();
    const decision = decide(engine, [o.speech('buy now buy now buy now', 0), o.speech('hurry', 3000)]);
    expect(decision.score).toBe(0);
    expect(evaluation(decision).explanation).toBe(
      "'buy now', 'hurry' in speech or on screen in only 2 observations (3 needed)",
    );
  });
});

describe('not (inside all)', () => {
  it('without within_ms: blocks when the negated condition matches anywhere', () => {
    const engine = engineFor([
      `{ all: [ { extract: { type: price } }, { not: { text: { any: [yesterday] } } } ] }`,
    ]);
    const o = createObservationFactory();
    expect(decide(engine, [o.speech('only 20 dollars', 0)]).score).toBe(0.9);
    const blocked = decide(engine, [o.speech('I paid 20 dollars yesterday', 0)]);
    expect(blocked.score).toBe(0);
    expect(evaluation(blocked).explanation).toBe(
      "blocked by phrase 'yesterday' in speech at 0.0 s (conf 0.90)",
    );
  });

  it('with within_ms: only blocks within the bound', () => {
    const engine = engineFor([
      `{ all: [ { extract: { type: price } }, { not: { text: { any: [yesterday] } } } ], within_ms: 5000 }`,
    ]);
    const o = createObservationFactory();
    expect(decide(engine, [o.speech('20 dollars', 0), o.speech('yesterday', 20_000)]).score).toBe(0.9);
    expect(decide(engine, [o.speech('20 dollars', 0), o.speech('yesterday', 4000)]).score).toBe(0);
  });
});

describe('exceptions', () => {
  const rule = `{ text: { any: [bet, casino, 赌, game] } }`;
  const exception = `{ text: { regex: '^(?!.*(bet|casino|赌)).*\\bgame\\b' } }`;

  it('without the exception, "this game is fun" would fire (the hard negative is real)', () => {
    const o = createObservationFactory();
    expect(decide(engineFor([rule]), [o.speech('this game is fun', 0)]).fired).toBe(true);
  });

  it('an exception matching the same observation cancels that evidence', () => {
    const engine = engineFor([rule], { exceptions: [exception] });
    const o = createObservationFactory();
    const decision = decide(engine, [o.speech('this game is fun', 1000)]);
    expect(decision.score).toBe(0);
    expect(decision.fired).toBe(false);
    expect(decision.evidence).toEqual([]);
    expect(evaluation(decision).explanation).toBe(
      "suppressed by exception t.x0: phrase 'game' in speech at 1.0 s (conf 0.90) is excused (exception 0)",
    );
  });

  it('leaves other observations alone, including the same word with stakes', () => {
    const engine = engineFor([rule], { exceptions: [exception] });
    const o = createObservationFactory();
    const decision = decide(engine, [
      o.speech('this game is fun', 0),
      o.speech('place a bet on the game', 5000),
    ]);
    expect(decision.fired).toBe(true);
    expect(decision.evidence.map((e) => e.observationId)).toEqual(['rec-2']);
  });
});
