import { describe, expect, it } from 'vitest';
import type { EvidenceItem, TagDecision } from '../model.js';
import { loadTaxonomy, type Tag } from '../taxonomy/index.js';
import { RuleEngine } from './engine.js';
import { MAX_RATIONALE_CHARS, rationale } from './rationale.js';
import { buildWindow, createObservationFactory } from './window-builder.js';

const taxonomy = await loadTaxonomy();
const engine = new RuleEngine(taxonomy);
const tagById = (id: string): Tag => taxonomy.tags.find((t) => t.id === id)!;

function explain(tagId: string, observations: Parameters<typeof buildWindow>[0], endMs = 30_000): string {
  const window = buildWindow(observations, { endMs });
  const decision = engine.evaluate(window).decisions.find((d) => d.tagId === tagId)!;
  return rationale(tagById(tagId), decision, window);
}

describe('rationale', () => {
  it('quotes what was said, with m:ss media times', () => {
    const o = createObservationFactory();
    expect(
      explain('promo_code', [
        o.speech('use code SAVE20', 12_000),
        o.speech('promo code SAVE20 again', 20_000),
      ]),
    ).toBe(
      "Promo code (intent, score 0.86): the streamer said 'use code SAVE20' at 0:12 and 'promo code SAVE20' at 0:20.",
    );
  });

  it('names both modalities of a cross-modal decision, in time order', () => {
    const o = createObservationFactory();
    expect(
      explain('call_to_action', [o.screen('$29.99', 10_000), o.speech('link in bio to buy', 14_000)]),
    ).toBe(
      "Call to action (intent, score 0.77): '$29.99' appeared on screen at 0:10 and the streamer said 'link in bio to buy' at 0:14.",
    );
  });

  it('names the spoken part of a cross-modal decision even when more confident screen text outnumbers it', () => {
    const o = createObservationFactory();
    const text = explain('call_to_action', [
      o.screen('$29.99', 10_000, { confidence: 0.99 }),
      o.screen('$29.99', 11_000, { confidence: 0.99 }),
      o.screen('$29.99', 12_000, { confidence: 0.99 }),
      o.speech('link in bio to buy', 14_000, { confidence: 0.8 }),
    ]);
    expect(text).toContain("the streamer said 'link in bio to buy' at 0:14");
    expect(text).toContain('1 more observation supports it.');
  });

  it('describes image labels, and hours past the first', () => {
    const o = createObservationFactory();
    expect(explain('adult_nudity', [o.label('nsfw', 0.95, 3_725_000)], 4_000_000)).toBe(
      'Adult content or nudity (risk, score 0.90): the frame at 1:02:05 was labelled nsfw 0.95.',
    );
  });

  it('says when a decision is for review, below threshold, or explained away', () => {
    const o = createObservationFactory();
    expect(explain('promo_code', [o.speech('coupon', 3000)])).toBe(
      "Promo code (intent, score 0.41, for review): the streamer said 'coupon' at 0:03.",
    );
    expect(explain('gambling', [o.speech('this game is fun', 3000)])).toBe(
      'Gambling (risk, score 0.00, below threshold): what matched was explained away by an exception between 0:00 and 0:30.',
    );
    expect(explain('adult_nudity', [o.label('nsfw', 0.2, 0)])).toBe(
      'Adult content or nudity (risk, score 0.00, below threshold): nothing matched between 0:00 and 0:30.',
    );
  });

  it('names at most three observations, the most confident, and counts the rest', () => {
    const o = createObservationFactory();
    const text = explain('limited_time_urgency', [
      o.speech('hurry', 1000, { confidence: 0.7 }),
      o.speech('hurry up, buy now', 5000),
      o.speech('hurry hurry', 9000),
      o.speech('last chance', 12_000),
    ]);
    expect(text).toBe(
      "Limited-time urgency (intent, score 0.81): the streamer said 'hurry up buy now' at 0:05, 'hurry hurry' at 0:09 and 'last chance' at 0:12. 1 more observation supports it.",
    );
  });

  it('stays within 300 characters and never shows a regex', () => {
    const o = createObservationFactory();
    const long = 'only 3 left, hurry, last chance, limited time, today only, ending soon '.repeat(8);
    const text = explain('limited_time_urgency', [
      o.speech(long, 0),
      o.screen(long, 1000),
      o.speech(long, 2000),
      o.screen(long, 3000),
    ]);
    expect(text.length).toBeLessThanOrEqual(MAX_RATIONALE_CHARS);
    expect(text).toMatch(/^Limited-time urgency \(intent, score 0\.\d\d\): /);
    expect(text).not.toMatch(/\\[bd]|\(\?/);
  });

  it('is deterministic and cuts very long snippets', () => {
    const evidence: EvidenceItem[] = Array.from({ length: 5 }, (_, i) => ({
      observationId: `o${i}`,
      kind: 'screen_text',
      source: { topic: 'frames', partition: 0, offset: String(i), recordId: `o${i}` },
      snippet: `${'x'.repeat(200)} ${i}`,
      mediaTimeMs: i * 1000,
      confidence: 0.9,
      ruleId: 'promo_code.spoken_code',
    }));
    const decision: TagDecision = {
      tagId: 'promo_code',
      score: 0.9,
      fired: true,
      review: false,
      evidence,
      evaluations: [{ ruleId: 'promo_code.spoken_code', matched: true, score: 0.9, explanation: 'x' }],
      formula: '1 - prod(1 - w_i * c_i)',
      acceptThreshold: 0.6,
      reviewThreshold: 0.35,
    };
    const text = rationale(tagById('promo_code'), decision, { startMs: 0, endMs: 30_000 });
    expect(text.length).toBeLessThanOrEqual(MAX_RATIONALE_CHARS);
    expect(rationale(tagById('promo_code'), decision, { startMs: 0, endMs: 30_000 })).toBe(text);
    expect(text).toContain("appeared on screen at 0:00 and '");
    expect(text).toContain('…');
  });
});
