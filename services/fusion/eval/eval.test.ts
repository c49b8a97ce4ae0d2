// The labeled evaluation set (eval/scenarios.yaml) and its scoring (evaluate.ts): the file's coverage and
// consistency, the windows built from it, the loader's errors on malformed files, and a regression gate on
// the engine's overall numbers. `npm run eval` prints the full report.
import { LiveLensError } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import { loadFusionRules } from '../src/rules-adapter.js';
import {
  DEFAULT_TEXT_CONFIDENCE,
  evaluateScenarios,
  loadScenarios,
  parseScenarios,
  rates,
  scenarioWindow,
  WINDOW_MS,
} from './evaluate.js';

const rules = await loadFusionRules();
const tagIds = rules.taxonomy.tags.map((t) => t.id);
const scenarios = await loadScenarios(tagIds);

/**
 * REGRESSION GATE, not a target. Measured on taxonomy 1.0.0 when the set was labeled: micro precision 0.924,
 * recall 0.643 (140 windows). Precision keeps the intended bar of 0.8; recall is below the intended 0.7, so
 * its gate is the measured value rounded down to 0.05. Raise both as the rules improve; never lower them to
 * make a taxonomy change pass, and never edit a label to move them (labels change only when they were wrong).
 */
const MIN_MICRO_PRECISION = 0.8;
const MIN_MICRO_RECALL = 0.6;

describe('the scenario file', () => {
  it('has at least 80 windows with unique ids and a note each', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(80);
    expect(new Set(scenarios.map((s) => s.id)).size).toBe(scenarios.length);
    for (const s of scenarios) expect(s.note.trim().length, s.id).toBeGreaterThan(0);
  });

  it('expects every taxonomy tag in at least 2 windows, and only taxonomy tags', () => {
    expect(tagIds).toHaveLength(25);
    const support = new Map(tagIds.map((id) => [id, 0]));
    for (const s of scenarios) {
      for (const tag of s.expected) {
        expect(tagIds, `${s.id} expects ${tag}`).toContain(tag);
        support.set(tag, (support.get(tag) ?? 0) + 1);
      }
    }
    const thin = [...support].filter(([, n]) => n < 2);
    expect(thin).toEqual([]);
  });

  it('has at least 25 hard negatives, each naming the tags it tempts, none of them expected', () => {
    const hard = scenarios.filter((s) => s.hardNegative);
    expect(hard.length).toBeGreaterThanOrEqual(25);
    for (const s of hard) {
      expect(s.tempting.length, s.id).toBeGreaterThan(0);
      for (const tag of s.tempting) {
        expect(tagIds, `${s.id} tempts ${tag}`).toContain(tag);
        expect(s.expected, `${s.id} both tempts and expects ${tag}`).not.toContain(tag);
      }
    }
    // Some hard negatives expect nothing at all; others lack only the tempting tag.
    expect(hard.filter((s) => s.expected.length === 0).length).toBeGreaterThan(10);
  });

  it('places every observation inside its window', () => {
    for (const s of scenarios) {
      const window = scenarioWindow(s);
      expect(window.endMs - window.startMs).toBe(WINDOW_MS);
      for (const o of window.observations) {
        expect(o.startMs, `${o.id} start`).toBeGreaterThanOrEqual(window.startMs);
        expect(o.endMs, `${o.id} end`).toBeGreaterThanOrEqual(o.startMs);
        if (o.kind === 'speech') expect(o.endMs, `${o.id} end`).toBeLessThanOrEqual(window.endMs);
        else expect(o.startMs, `${o.id} at`).toBeLessThan(window.endMs);
      }
    }
  });

  it('covers speech in English and Chinese, screen text and image labels', () => {
    const all = scenarios.flatMap((s) => s.observations);
    const speech = all.filter((o) => o.kind === 'speech');
    expect(speech.filter((o) => o.language === 'en').length).toBeGreaterThan(30);
    expect(speech.filter((o) => o.language === 'zh').length).toBeGreaterThan(20);
    expect(all.filter((o) => o.kind === 'screen_text').length).toBeGreaterThan(20);
    expect(all.filter((o) => o.kind === 'image_label').length).toBeGreaterThanOrEqual(3);
  });
});

describe('scenarioWindow', () => {
  it('builds observations with file-order ids, default confidences and the dummy source, in media-time order', () => {
    const [s] = parseScenarios(
      `scenarios:
  - id: w
    note: n
    window_start_ms: 5000
    observations:
      - speech: "buy now"
        start_ms: 9000
        end_ms: 11000
        language: en
      - screen_text: "$5"
        at_ms: 6000
        confidence: 0.7
      - image_label: nsfw
        score: 0.4
        at_ms: 6000
    expected: [call_to_action]
`,
      tagIds,
    );
    const window = scenarioWindow(s!);
    expect([window.streamId, window.startMs, window.endMs]).toEqual(['eval/w', 5000, 15_000]);
    expect(
      window.observations.map((o) => [o.id, o.kind, o.startMs, o.endMs, o.confidence, o.language]),
    ).toEqual([
      ['w#1', 'screen_text', 6000, 6000, 0.7, ''],
      ['w#2', 'image_label', 6000, 6000, 0.4, ''],
      ['w#0', 'speech', 9000, 11_000, DEFAULT_TEXT_CONFIDENCE, 'en'],
    ]);
    expect(window.observations[1]!.label).toEqual({ name: 'nsfw', score: 0.4 });
    expect(window.observations[2]!.source).toEqual({
      topic: 'eval',
      partition: 0,
      offset: '0',
      recordId: 'w',
    });
  });
});

describe('parseScenarios on malformed files', () => {
  const scenario = (body: string) => `scenarios:\n  - id: a\n    note: n\n${body}`;
  const speech =
    '    observations:\n      - speech: "hi"\n        start_ms: 0\n        end_ms: 1000\n        language: en\n';
  const cases: [string, string, RegExp][] = [
    [
      'unknown tag',
      scenario(`${speech}    expected: [not_a_tag]\n`),
      /scenarios\[0\]\.expected\[0\]: unknown tag "not_a_tag" \(line 9, col 16\)/,
    ],
    [
      'duplicate id',
      `${scenario(`${speech}    expected: []\n`)}  - id: a\n    note: m\n${speech}    expected: []\n`,
      /scenarios\[1\]\.id: duplicate id "a" \(first at scenarios\[0\]\)/,
    ],
    [
      'speech past the window',
      scenario(
        '    observations:\n      - speech: "hi"\n        start_ms: 9000\n        end_ms: 10500\n        language: en\n    expected: []\n',
      ),
      /scenarios\[0\]\.observations\[0\]: media time 9000\.\.10500 ms is outside the window \[0, 10000\)/,
    ],
    [
      'frame before the window',
      scenario(
        '    window_start_ms: 20000\n    observations:\n      - screen_text: "x"\n        at_ms: 19000\n    expected: []\n',
      ),
      /outside the window \[20000, 30000\)/,
    ],
    [
      'two kinds in one observation',
      scenario(
        '    observations:\n      - speech: "x"\n        screen_text: "y"\n        at_ms: 0\n    expected: []\n',
      ),
      /observations\[0\]: an observation has exactly one of speech, screen_text, image_label; got speech, screen_text/,
    ],
    [
      'bad language',
      scenario(
        '    observations:\n      - speech: "x"\n        start_ms: 0\n        end_ms: 10\n        language: fr\n    expected: []\n',
      ),
      /observations\[0\]\.language: /,
    ],
    [
      'tempting on a positive',
      scenario(`${speech}    tempting: [alcohol]\n    expected: []\n`),
      /scenarios\[0\]\.tempting: tempting is only for hard_negative: true/,
    ],
    [
      'tempting and expected',
      scenario(`    hard_negative: true\n    tempting: [alcohol]\n${speech}    expected: [alcohol]\n`),
      /"alcohol" is both tempting and expected/,
    ],
    ['unknown key', scenario(`${speech}    expected: []\n    labels: []\n`), /scenarios\[0\]: .*labels/],
    ['YAML syntax', 'scenarios:\n  - id: [\n', /YAML syntax error at line/],
  ];
  it.each(cases)('%s', (_name, text, message) => {
    expect(() => parseScenarios(text, tagIds, 'bad.yaml')).toThrow(message);
    try {
      parseScenarios(text, tagIds, 'bad.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(LiveLensError);
      expect((error as LiveLensError).code).toBe('invalid_config');
    }
  });
});

describe('scoring', () => {
  it('rates: precision, recall and F1 from counts, null where undefined', () => {
    const r = rates(3, 1, 2);
    expect([r.tp, r.fp, r.fn, r.precision, r.recall]).toEqual([3, 1, 2, 0.75, 0.6]);
    expect(r.f1).toBeCloseTo(2 / 3, 12);
    expect(rates(0, 0, 2)).toEqual({ tp: 0, fp: 0, fn: 2, precision: null, recall: 0, f1: null });
    expect(rates(0, 1, 0).f1).toBeNull();
    expect(rates(0, 1, 1).f1).toBe(0);
  });

  it('counts every label once and lists every disagreement as an error', () => {
    const report = evaluateScenarios(rules, scenarios);
    const labels = scenarios.reduce((n, s) => n + s.expected.length, 0);
    expect(report.perTag.reduce((n, t) => n + t.support, 0)).toBe(labels);
    for (const t of report.perTag) expect(t.tp + t.fn, t.tagId).toBe(t.support);
    const fp = report.perTag.reduce((n, t) => n + t.fp, 0);
    const fn = report.perTag.reduce((n, t) => n + t.fn, 0);
    expect(report.errors.filter((e) => e.type === 'FP')).toHaveLength(fp);
    expect(report.errors.filter((e) => e.type === 'FN')).toHaveLength(fn);
    expect(report.overall.micro.tp + report.overall.micro.fn).toBe(labels);
    expect(report.byKind.intent.micro.tp + report.byKind.risk.micro.tp).toBe(report.overall.micro.tp);
    for (const e of report.errors)
      expect(e.explanations.length, `${e.scenarioId} ${e.tagId}`).toBeGreaterThan(0);
  });

  it('is deterministic', () => {
    const a = evaluateScenarios(rules, scenarios);
    const b = evaluateScenarios(rules, scenarios);
    expect(b).toEqual(a);
  });

  it(`regression gate: overall micro precision >= ${MIN_MICRO_PRECISION}, recall >= ${MIN_MICRO_RECALL}`, () => {
    const { micro } = evaluateScenarios(rules, scenarios).overall;
    expect(micro.precision).not.toBeNull();
    expect(micro.precision!).toBeGreaterThanOrEqual(MIN_MICRO_PRECISION);
    expect(micro.recall!).toBeGreaterThanOrEqual(MIN_MICRO_RECALL);
  });
});
