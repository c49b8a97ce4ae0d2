// The engine on realistic windows with the shipped taxonomy: what fires, with which evidence, the hard
// negatives, and the properties (monotone, deterministic, each observation prepared once).
import { LiveLensError } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import type { Observation, TagDecision, WindowDecision, WindowInput } from '../model.js';
import { loadTaxonomy } from '../taxonomy/index.js';
import { noisyOr, RuleEngine } from './engine.js';
import type { ObservationTexts } from './observation-texts.js';
import { RuleIndex } from './retrieval.js';
import { buildWindow, createObservationFactory, seededRandom } from './window-builder.js';

const taxonomy = await loadTaxonomy();
const engine = new RuleEngine(taxonomy);

function run(observations: readonly Observation[]): WindowDecision {
  return engine.evaluate(buildWindow(observations));
}

function tag(decision: WindowDecision, tagId: string): TagDecision | undefined {
  return decision.decisions.find((d) => d.tagId === tagId);
}

function fired(decision: WindowDecision): string[] {
  return decision.decisions.filter((d) => d.fired).map((d) => d.tagId);
}

describe('RuleEngine on realistic windows', () => {
  it('"use code SAVE20 at checkout" → promo_code, with the code in the evidence', () => {
    const o = createObservationFactory();
    const decision = run([o.speech('Use code SAVE20 at checkout!', 12_000, { confidence: 0.92 })]);
    const promo = tag(decision, 'promo_code')!;
    expect(promo.fired).toBe(true);
    expect(promo.score).toBeGreaterThan(0.8);
    const spoken = promo.evidence.find((e) => e.ruleId === 'promo_code.spoken_code')!;
    expect(spoken).toMatchObject({
      observationId: 'rec-1',
      kind: 'speech',
      snippet: 'Use code SAVE20',
      mediaTimeMs: 12_000,
    });
    expect(promo.evaluations.find((e) => e.ruleId === 'promo_code.spoken_code')!.explanation).toBe(
      "promo code 'Use code SAVE20' in speech at 12.0 s (conf 0.92)",
    );
    expect(promo.formula).toBe('1 - prod(1 - w_i * c_i)');
    expect([promo.acceptThreshold, promo.reviewThreshold]).toEqual([0.6, 0.35]);
  });

  it('price on screen + "link in bio to buy" within 10 s → call_to_action with both modalities', () => {
    const o = createObservationFactory();
    const decision = run([o.screen('$29.99', 10_000), o.speech('link in bio to buy', 14_000)]);
    const cta = tag(decision, 'call_to_action')!;
    expect(cta.fired).toBe(true);
    expect(cta.evidence.map((e) => [e.kind, e.snippet])).toEqual([
      ['screen_text', '$29.99'],
      ['speech', 'link in bio to buy'],
    ]);
    expect(fired(decision)).toEqual(
      expect.arrayContaining(['call_to_action', 'link_in_bio', 'price_mention']),
    );
  });

  it('the same price and words 30 s apart → no call_to_action', () => {
    const o = createObservationFactory();
    const decision = engine.evaluate(
      buildWindow([o.screen('$29.99', 0), o.speech('link in bio to buy', 30_000)], { endMs: 40_000 }),
    );
    const cta = tag(decision, 'call_to_action')!;
    expect(cta.fired).toBe(false);
    expect(
      cta.evaluations.find((e) => e.ruleId === 'call_to_action.price_on_screen_buy_spoken')!.explanation,
    ).toBe("no price on screen within 10.0 s of 'buy', 'order', 'link' (+9 more) in speech");
  });

  it('hard negative: "this game is fun" → no gambling', () => {
    const o = createObservationFactory();
    const decision = run([o.speech('this game is fun', 3000)]);
    const gambling = tag(decision, 'gambling')!;
    expect(gambling.score).toBe(0);
    expect(gambling.fired || gambling.review).toBe(false);
    expect(gambling.evaluations.find((e) => e.ruleId === 'gambling.game_for_money')!.explanation).toMatch(
      /^suppressed by exception gambling\.casual_game: phrase 'game' in speech at 3\.0 s/,
    );
    // The game with stakes in the same line is another matter.
    expect(fired(run([o.speech('join the game and win real money', 0)]))).toContain('gambling');
    expect(fired(run([o.speech('place your bets at the casino', 0)]))).toContain('gambling');
  });

  it('hard negative: "no link needed" (and "no link in bio") → no link_in_bio', () => {
    const o = createObservationFactory();
    expect(tag(run([o.speech('no link needed', 0)]), 'link_in_bio')?.fired ?? false).toBe(false);
    const denied = tag(run([o.speech("there's no link in bio today", 0)]), 'link_in_bio')!;
    expect(denied.score).toBe(0);
    expect(tag(run([o.speech('the link in bio', 0)]), 'link_in_bio')!.fired).toBe(true);
  });

  it('hard negative: "I paid 20 dollars for lunch yesterday" → no call_to_action', () => {
    const o = createObservationFactory();
    const decision = run([o.speech('I paid 20 dollars for lunch yesterday', 0)]);
    expect(fired(decision)).not.toContain('call_to_action');
    expect(tag(decision, 'call_to_action')?.score ?? 0).toBe(0);
    expect(tag(decision, 'price_mention')!.fired).toBe(true);
  });

  it('more hard negatives: massage guns, WeChat Pay, trash bags', () => {
    const o = createObservationFactory();
    expect(fired(run([o.speech('this massage gun is amazing', 0)]))).not.toContain('weapons');
    expect(fired(run([o.speech('a real gun with ammo', 0)]))).toContain('weapons');
    expect(fired(run([o.screen('支持微信支付', 0)]))).not.toContain('off_platform_diversion');
    const trash = tag(run([o.speech('垃圾袋 一卷50个', 0)]), 'hate_harassment');
    expect(trash?.score ?? 0).toBe(0);
    expect(fired(run([o.speech('shut up you idiot', 0)]))).toContain('hate_harassment');
  });

  it('nsfw label 0.95 → adult_nudity, from the image alone', () => {
    const o = createObservationFactory();
    const decision = run([o.label('nsfw', 0.95, 4000)]);
    const adult = tag(decision, 'adult_nudity')!;
    expect(adult.fired).toBe(true);
    expect(adult.score).toBe(0.9025);
    expect(adult.evidence).toEqual([
      expect.objectContaining({
        kind: 'image_label',
        snippet: 'nsfw=0.95',
        ruleId: 'adult_nudity.nsfw_label',
      }),
    ]);
    expect(fired(run([o.label('nsfw', 0.4, 0)]))).not.toContain('adult_nudity');
  });

  it('nsfw label 0.7 (below the label-only 0.8) + a spoken adult cue → adult_nudity through the cross-modal rule', () => {
    const o = createObservationFactory();
    const adult = tag(run([o.label('nsfw', 0.7, 0), o.speech('今晚有福利哦', 5000)]), 'adult_nudity')!;
    expect(adult.fired).toBe(true);
    expect(adult.evidence.map((e) => e.ruleId)).toEqual([
      'adult_nudity.label_and_speech',
      'adult_nudity.label_and_speech',
    ]);
    // 福利 alone (fan perks) is everyday live-commerce talk.
    expect(tag(run([o.speech('今晚有福利哦', 5000)]), 'adult_nudity')?.score ?? 0).toBe(0);
  });

  it('Chinese: "加我微信 abc123 私聊" → off_platform_diversion', () => {
    const o = createObservationFactory();
    const diversion = tag(
      run([o.speech('加我微信 abc123 私聊', 0, { language: 'zh' })]),
      'off_platform_diversion',
    )!;
    expect(diversion.fired).toBe(true);
    expect(diversion.evidence.map((e) => e.snippet)).toEqual(expect.arrayContaining(['微信 abc123']));
  });

  it('Chinese: "原价999 现价99" → misleading_pricing and discount_or_promo', () => {
    const o = createObservationFactory();
    const decision = run([o.speech('原价999 现价99', 0)]);
    expect(fired(decision)).toEqual(expect.arrayContaining(['misleading_pricing', 'discount_or_promo']));
    // A modest markdown is a discount, not a misleading price.
    const modest = run([o.speech('原价129 现价99', 0)]);
    expect(fired(modest)).toContain('discount_or_promo');
    expect(fired(modest)).not.toContain('misleading_pricing');
  });

  it('more Chinese and English windows', () => {
    const o = createObservationFactory();
    expect(fired(run([o.speech('最后三件了 手慢无', 0)]))).toContain('limited_time_urgency');
    expect(fired(run([o.screen('全场五折', 0)]))).toContain('discount_or_promo');
    expect(fired(run([o.speech('小朋友也可以用这个电子烟', 0)]))).toEqual(
      expect.arrayContaining(['minors_risk', 'tobacco_vaping']),
    );
    expect(fired(run([o.speech('lose 10 kg in a week guaranteed', 0)]))).toContain('health_claims');
    expect(fired(run([o.speech('crypto signals, guaranteed returns every day', 0)]))).toContain(
      'financial_scam',
    );
    expect(fired(run([o.speech('AAA copy, 1:1 replica of the original', 0)]))).toContain(
      'counterfeit_replica',
    );
    const urgency = run([o.speech('hurry', 0), o.speech('buy now', 4000), o.speech('hurry hurry', 8000)]);
    expect(
      tag(urgency, 'limited_time_urgency')!.evaluations.find(
        (e) => e.ruleId === 'limited_time_urgency.repeated_urging',
      )!.matched,
    ).toBe(true);
  });

  it('lists every evaluated rule of a decided tag, matched or not', () => {
    const o = createObservationFactory();
    const promo = tag(run([o.speech('use code SAVE20', 0)]), 'promo_code')!;
    expect(promo.evaluations.map((e) => [e.ruleId, e.matched])).toEqual([
      ['promo_code.spoken_code', true],
      ['promo_code.code_on_screen_and_spoken', false],
      ['promo_code.coupon_talk', true],
    ]);
    expect(promo.evaluations[1]!.explanation).toBe('no promo code on screen');
    for (const e of promo.evaluations) expect(e.score).toBe(e.matched ? e.score : 0);
  });

  it('records the retrieved rules, best first, as RetrievedRule objects', () => {
    const o = createObservationFactory();
    const window = buildWindow([o.speech('use code SAVE20', 0)]);
    const decision = engine.evaluate(window);
    expect(decision.retrieved).toEqual(
      new RuleIndex(taxonomy).retrieve(window).map(({ ruleId, score }) => ({ ruleId, score })),
    );
    expect(decision.retrieved[0]!.ruleId).toBe('promo_code.spoken_code');
    expect(Object.keys(decision.retrieved[0]!)).toEqual(['ruleId', 'score']);
  });

  it('fails loudly when a retriever proposes a rule the taxonomy lacks', () => {
    const broken = new RuleEngine(taxonomy, { retrieve: () => [{ ruleId: 'nope.rule', score: 1 }] });
    expect(() => broken.evaluate(buildWindow([]))).toThrow(LiveLensError);
    expect(() => broken.evaluate(buildWindow([]))).toThrow('the retriever proposed rule "nope.rule"');
  });
});

describe('properties', () => {
  const vocabulary = [
    'use code SAVE20',
    'link in bio',
    '$29.99',
    'buy now',
    'hurry',
    'this game is fun',
    'casino',
    '加我微信 abc123',
    '原价999 现价99',
    'was $199 now $19',
    'for the kids',
    'vape',
    '今晚有福利',
    'massage gun',
    'hello everyone',
    '50% off',
    'only 3 left',
  ];

  function randomObservation(
    random: () => number,
    o: ReturnType<typeof createObservationFactory>,
  ): Observation {
    const text = vocabulary[Math.floor(random() * vocabulary.length)]!;
    const at = Math.floor(random() * 30_000);
    const confidence = 0.5 + random() * 0.5;
    const pick = random();
    if (pick < 0.15) return o.label('nsfw', random(), at);
    return pick < 0.6 ? o.speech(text, at, { confidence }) : o.screen(text, at, { confidence });
  }

  const scores = (decision: WindowDecision) => new Map(decision.decisions.map((d) => [d.tagId, d.score]));

  it('noisyOr is in [0, 1] and monotone in every contribution', () => {
    const random = seededRandom(11);
    for (let i = 0; i < 500; i++) {
      const cs = Array.from({ length: Math.floor(random() * 5) }, () => random());
      const score = noisyOr(cs);
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
      expect(noisyOr([...cs, random()])).toBeGreaterThanOrEqual(score);
      if (cs.length > 0) {
        const raised = [...cs];
        const k = Math.floor(random() * raised.length);
        raised[k] = raised[k]! + (1 - raised[k]!) * random();
        expect(noisyOr(raised)).toBeGreaterThanOrEqual(score);
      }
    }
    expect(noisyOr([])).toBe(0);
    expect(noisyOr([0.6])).toBe(0.6);
    expect(noisyOr([0.5, 0.5])).toBe(0.75);
  });

  // Exceptions and `not` remove evidence by design; the shipped taxonomy's exceptions only excuse the observation
  // they match, so adding an observation never lowers any tag's score.
  it('monotone: adding observations to a window never lowers a tag score (random windows)', () => {
    const random = seededRandom(42);
    for (let run = 0; run < 60; run++) {
      const o = createObservationFactory(`m${run}`);
      const observations: Observation[] = [];
      let previous = new Map<string, number>();
      for (let step = 0; step < 6; step++) {
        observations.push(randomObservation(random, o));
        const current = scores(engine.evaluate(buildWindow(observations)));
        for (const [tagId, score] of previous) {
          expect(
            current.get(tagId) ?? 0,
            `${tagId} after ${observations.map((x) => x.text).join(' | ')}`,
          ).toBeGreaterThanOrEqual(score);
        }
        previous = current;
      }
    }
  });

  it('deterministic: the same window gives the same decision, whatever the observation order', () => {
    const random = seededRandom(3);
    for (let run = 0; run < 30; run++) {
      const o = createObservationFactory(`d${run}`);
      const observations = Array.from({ length: 6 }, () => randomObservation(random, o));
      const window = buildWindow(observations);
      const shuffled: WindowInput = { ...window, observations: [...observations].reverse() };
      const first = engine.evaluate(window);
      expect(engine.evaluate(window)).toEqual(first);
      expect(new RuleEngine(taxonomy).evaluate(shuffled)).toEqual(first);
      for (const d of first.decisions) {
        const times = d.evidence.map((e) => e.mediaTimeMs);
        expect(times).toEqual([...times].sort((a, b) => a - b));
      }
    }
  });

  it('prepares each observation once per evaluate call, however many rules read it', () => {
    let texts: ObservationTexts | undefined;
    const index = new RuleIndex(taxonomy);
    const spying = new RuleEngine(taxonomy, {
      retrieve: (window, t) => {
        texts = t;
        return index.retrieve(window, t);
      },
    });
    const o = createObservationFactory();
    spying.evaluate(
      buildWindow([
        o.speech('use code SAVE20, link in bio, buy now $29.99', 0),
        o.screen('$29.99 加微信 abc123', 1000),
        o.label('nsfw', 0.9, 2000),
      ]),
    );
    expect(texts!.prepared).toBe(2);
    expect(texts!.extracted).toBe(2);
  });
});
