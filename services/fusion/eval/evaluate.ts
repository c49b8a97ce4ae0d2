// The labeled evaluation of fusion's rules: loads eval/scenarios.yaml (scripted windows labeled by a person),
// runs the rule engine on each window and scores what fired against the labels, per tag and overall. Shared by
// `npm run eval` (run.ts, which prints and writes bench/results/fusion-eval.json) and eval.test.ts (which checks
// the file and gates on the overall numbers), so both read the same windows and count the same way.
//
// A scenario is one window of WINDOW_MS of one stream; its observations become the engine's Observations with
// ids `{scenario}#{i}` (i = position in the file) and a dummy source, text confidence 0.9 unless given, an
// image label's confidence its score. A tag counts as predicted when its decision `fired` (score >= accept);
// the review band (review <= score < accept) is reported apart, never counted as a prediction.

import { readFile } from 'node:fs/promises';
import { LiveLensError } from '@livelens/runtime';
import { type Document, isNode, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { Observation, TagDecision, WindowDecision, WindowInput } from '../src/model.js';
import type { TaxonomyRules } from '../src/rules-adapter.js';
import type { TagKind } from '../src/taxonomy/index.js';

/** Length of every scenario's window, ms: fusion's default `FUSION_WINDOW_MS`. */
export const WINDOW_MS = 10_000;

/** Recognition confidence of speech and screen text when a scenario gives none. */
export const DEFAULT_TEXT_CONFIDENCE = 0.9;

/** The labeled set shipped beside this module. */
export const DEFAULT_SCENARIOS_PATH: URL = new URL('./scenarios.yaml', import.meta.url);

/** Problems listed in one error message; the rest are counted. */
const MAX_LISTED_PROBLEMS = 25;

// ---------------------------------------------------------------------------------------------------------
// The scenario file
// ---------------------------------------------------------------------------------------------------------

/** One observation as a labeler writes it (times are absolute media time, ms). */
export type ScenarioObservation =
  | {
      readonly kind: 'speech';
      readonly text: string;
      readonly startMs: number;
      readonly endMs: number;
      readonly language: 'en' | 'zh';
      readonly confidence: number;
    }
  | {
      readonly kind: 'screen_text';
      readonly text: string;
      readonly atMs: number;
      readonly confidence: number;
    }
  | { readonly kind: 'image_label'; readonly name: string; readonly score: number; readonly atMs: number };

/** One labeled window. */
export interface Scenario {
  readonly id: string;
  /** Why it is labeled so, in one line. */
  readonly note: string;
  /** The window is [windowStartMs, windowStartMs + WINDOW_MS). */
  readonly windowStartMs: number;
  readonly observations: readonly ScenarioObservation[];
  /** The tag ids a careful moderator expects on this window (possibly none). */
  readonly expected: readonly string[];
  /** Built to tempt a tag it must not get. */
  readonly hardNegative: boolean;
  /** The tags a hard negative tempts (none of them expected). */
  readonly tempting: readonly string[];
}

const ms = z.number().int().nonnegative();
const confidence = z.number().min(0).max(1);
const tagList = z.array(z.string().min(1));

const speechSchema = z.strictObject({
  speech: z.string().trim().min(1),
  start_ms: ms,
  end_ms: ms,
  language: z.enum(['en', 'zh']),
  confidence: confidence.optional(),
});
const screenTextSchema = z.strictObject({
  screen_text: z.string().trim().min(1),
  at_ms: ms,
  confidence: confidence.optional(),
});
const imageLabelSchema = z.strictObject({
  image_label: z.string().trim().min(1),
  score: confidence,
  at_ms: ms,
});
const OBSERVATION_KEYS = ['speech', 'screen_text', 'image_label'] as const;

const scenarioSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'expected a kebab-case id'),
  note: z.string().trim().min(1),
  window_start_ms: ms.optional(),
  hard_negative: z.boolean().optional(),
  tempting: tagList.optional(),
  // Each observation is checked by its own schema below (by which key it has), for precise messages.
  observations: z.array(z.unknown()).min(1),
  expected: tagList,
});
const fileSchema = z.strictObject({ scenarios: z.array(z.unknown()).min(1) });

interface Problem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Reads and checks a scenario file. Throws LiveLensError `invalid_config` naming every problem. */
export async function loadScenarios(
  tagIds: Iterable<string>,
  path: string | URL = DEFAULT_SCENARIOS_PATH,
): Promise<Scenario[]> {
  const source = path instanceof URL ? path.pathname : path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new LiveLensError(`cannot read scenarios ${source}: ${(error as Error).message}`, {
      code: 'invalid_config',
      cause: error,
      context: { source },
    });
  }
  return parseScenarios(text, tagIds, source);
}

/**
 * Parses scenario YAML and checks it against the taxonomy's tag ids: the shape of every scenario and
 * observation, unique ids, expected and tempting tags that exist, tempting tags only on hard negatives and
 * never expected, every observation inside its window. Problems are `path: message (line L, col C)`.
 */
export function parseScenarios(
  yamlText: string,
  tagIds: Iterable<string>,
  source = '<scenarios>',
): Scenario[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalid(
      source,
      doc.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return `YAML syntax error at line ${line}, col ${col}: ${error.message.split('\n')[0]}`;
      }),
    );
  }

  const known = new Set(tagIds);
  const problems: Problem[] = [];
  const scenarios: Scenario[] = [];
  const file = fileSchema.safeParse(doc.toJS());
  if (!file.success) {
    problems.push(...zodProblems(file.error, []));
  } else {
    const seen = new Map<string, number>();
    file.data.scenarios.forEach((raw, index) => {
      const at = ['scenarios', index];
      const parsed = scenarioSchema.safeParse(raw);
      if (!parsed.success) {
        problems.push(...zodProblems(parsed.error, at));
        return;
      }
      const s = parsed.data;
      const first = seen.get(s.id);
      if (first !== undefined) {
        problems.push({
          path: [...at, 'id'],
          message: `duplicate id "${s.id}" (first at scenarios[${first}])`,
        });
      }
      seen.set(s.id, index);
      const windowStartMs = s.window_start_ms ?? 0;
      const windowEndMs = windowStartMs + WINDOW_MS;
      const hardNegative = s.hard_negative ?? false;
      const tempting = s.tempting ?? [];

      for (const [key, list] of [
        ['expected', s.expected],
        ['tempting', tempting],
      ] as const) {
        list.forEach((tag, i) => {
          if (!known.has(tag)) problems.push({ path: [...at, key, i], message: `unknown tag "${tag}"` });
          if (list.indexOf(tag) !== i)
            problems.push({ path: [...at, key, i], message: `"${tag}" listed twice` });
        });
      }
      if (hardNegative && tempting.length === 0) {
        problems.push({ path: [...at, 'tempting'], message: 'a hard negative names the tags it tempts' });
      }
      if (!hardNegative && tempting.length > 0) {
        problems.push({ path: [...at, 'tempting'], message: 'tempting is only for hard_negative: true' });
      }
      tempting.forEach((tag, i) => {
        if (s.expected.includes(tag)) {
          problems.push({ path: [...at, 'tempting', i], message: `"${tag}" is both tempting and expected` });
        }
      });

      const observations: ScenarioObservation[] = [];
      s.observations.forEach((rawObservation, i) => {
        const here = [...at, 'observations', i];
        const observation = parseObservation(rawObservation, here, problems);
        if (!observation) return;
        const [startMs, endMs] =
          observation.kind === 'speech'
            ? [observation.startMs, observation.endMs]
            : [observation.atMs, observation.atMs];
        if (endMs < startMs) {
          problems.push({
            path: [...here, 'end_ms'],
            message: `end_ms ${endMs} is before start_ms ${startMs}`,
          });
        }
        // A point (a frame) must lie in [start, end); a span (speech) within [start, end].
        const outside =
          startMs < windowStartMs ||
          (observation.kind === 'speech' ? endMs > windowEndMs : endMs >= windowEndMs);
        if (outside) {
          problems.push({
            path: here,
            message: `media time ${startMs}..${endMs} ms is outside the window [${windowStartMs}, ${windowEndMs})`,
          });
        }
        observations.push(observation);
      });

      scenarios.push({
        id: s.id,
        note: s.note,
        windowStartMs,
        observations,
        expected: s.expected,
        hardNegative,
        tempting,
      });
    });
  }

  if (problems.length > 0) {
    throw invalid(
      source,
      problems.map((p) => `${formatPath(p.path)}: ${p.message}${where(doc, lineCounter, p.path)}`),
    );
  }
  return scenarios;
}

function parseObservation(
  raw: unknown,
  path: readonly (string | number)[],
  problems: Problem[],
): ScenarioObservation | undefined {
  const keys = typeof raw === 'object' && raw !== null ? OBSERVATION_KEYS.filter((key) => key in raw) : [];
  if (keys.length !== 1) {
    problems.push({
      path,
      message: `an observation has exactly one of ${OBSERVATION_KEYS.join(', ')}; got ${
        keys.length === 0 ? 'none' : keys.join(', ')
      }`,
    });
    return undefined;
  }
  switch (keys[0]) {
    case 'speech': {
      const r = speechSchema.safeParse(raw);
      if (!r.success) {
        problems.push(...zodProblems(r.error, path));
        return undefined;
      }
      return {
        kind: 'speech',
        text: r.data.speech,
        startMs: r.data.start_ms,
        endMs: r.data.end_ms,
        language: r.data.language,
        confidence: r.data.confidence ?? DEFAULT_TEXT_CONFIDENCE,
      };
    }
    case 'screen_text': {
      const r = screenTextSchema.safeParse(raw);
      if (!r.success) {
        problems.push(...zodProblems(r.error, path));
        return undefined;
      }
      return {
        kind: 'screen_text',
        text: r.data.screen_text,
        atMs: r.data.at_ms,
        confidence: r.data.confidence ?? DEFAULT_TEXT_CONFIDENCE,
      };
    }
    default: {
      const r = imageLabelSchema.safeParse(raw);
      if (!r.success) {
        problems.push(...zodProblems(r.error, path));
        return undefined;
      }
      return { kind: 'image_label', name: r.data.image_label, score: r.data.score, atMs: r.data.at_ms };
    }
  }
}

function zodProblems(error: z.ZodError, at: readonly (string | number)[]): Problem[] {
  return error.issues.map((issue) => ({
    path: [...at, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))],
    message: issue.message,
  }));
}

function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${part}` : part),
    '',
  );
}

/** ` (line L, col C)` of the deepest node on `path` that exists in the document, or ''. */
function where(doc: Document, lineCounter: LineCounter, path: readonly (string | number)[]): string {
  for (let length = path.length; length > 0; length--) {
    const node = doc.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) {
      const { line, col } = lineCounter.linePos(node.range[0]);
      return ` (line ${line}, col ${col})`;
    }
  }
  return '';
}

function invalid(source: string, lines: readonly string[]): LiveLensError {
  const listed = lines.slice(0, MAX_LISTED_PROBLEMS);
  const more = lines.length > listed.length ? `\n  … and ${lines.length - listed.length} more` : '';
  const message =
    lines.length === 1
      ? `invalid scenarios ${source}: ${lines[0]}`
      : `invalid scenarios ${source}: ${lines.length} problems:\n  ${listed.join('\n  ')}${more}`;
  return new LiveLensError(message, { code: 'invalid_config', context: { source, problems: lines.length } });
}

// ---------------------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------------------

/** The engine's input for a scenario: its observations with `{id}#{i}` ids and a dummy source. */
export function scenarioWindow(scenario: Scenario): WindowInput {
  const observations = scenario.observations.map((o, i): Observation => {
    const common = {
      id: `${scenario.id}#${i}`,
      captureTimeUnixMs: 0,
      source: { topic: 'eval', partition: 0, offset: String(i), recordId: scenario.id },
    };
    switch (o.kind) {
      case 'speech':
        return {
          ...common,
          kind: 'speech',
          startMs: o.startMs,
          endMs: o.endMs,
          text: o.text,
          confidence: o.confidence,
          language: o.language,
        };
      case 'screen_text':
        return {
          ...common,
          kind: 'screen_text',
          startMs: o.atMs,
          endMs: o.atMs,
          text: o.text,
          confidence: o.confidence,
          language: '',
        };
      default:
        return {
          ...common,
          kind: 'image_label',
          startMs: o.atMs,
          endMs: o.atMs,
          text: '',
          label: { name: o.name, score: o.score },
          confidence: o.score,
          language: '',
        };
    }
  });
  return {
    streamId: `eval/${scenario.id}`,
    startMs: scenario.windowStartMs,
    endMs: scenario.windowStartMs + WINDOW_MS,
    // Media-time order, as the windows of stream-fusion.ts hand them over; ties keep file order.
    observations: observations
      .map((o, i) => ({ o, i }))
      .sort((a, b) => a.o.startMs - b.o.startMs || a.i - b.i)
      .map(({ o }) => o),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------------------

/** Counts and rates of one tag (or one group of tags); a rate with nothing to divide by is null. */
export interface Rates {
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly f1: number | null;
}

export interface TagStats extends Rates {
  readonly tagId: string;
  readonly kind: TagKind;
  /** Windows expecting the tag. */
  readonly support: number;
  /** Windows where the tag was in the review band (review <= score < accept). */
  readonly review: number;
}

/** Macro averages: the mean over the tags with support (a tag with no prediction counts precision 0). */
export interface MacroRates {
  readonly tags: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
}

export interface GroupSummary {
  readonly micro: Rates;
  readonly macro: MacroRates;
}

/** One disagreement between the engine and the labels. */
export interface EvalError {
  readonly scenarioId: string;
  readonly tagId: string;
  /** FP: fired, not expected. FN: expected, not fired. */
  readonly type: 'FP' | 'FN';
  readonly hardNegative: boolean;
  /** The tag's score, or null when none of its rules was evaluated. */
  readonly score: number | null;
  readonly accept: number | null;
  readonly review: number | null;
  readonly inReviewBand: boolean;
  /** The scenario's note. */
  readonly note: string;
  /** The most telling evaluations: for FP the matched rules, best first; for FN the best partial evidence. */
  readonly explanations: readonly string[];
}

export interface ScenarioResult {
  readonly id: string;
  readonly expected: readonly string[];
  readonly fired: readonly string[];
  readonly review: readonly string[];
}

export interface EvalReport {
  readonly taxonomyVersion: string;
  readonly windowMs: number;
  readonly scenarios: number;
  readonly hardNegatives: number;
  readonly perTag: readonly TagStats[];
  readonly overall: GroupSummary;
  readonly byKind: Readonly<Record<TagKind, GroupSummary>>;
  readonly reviewBand: {
    /** Decisions with `review: true`, over all windows and tags. */
    readonly decisions: number;
    /** Of those, on a tag the window expects (a miss a reviewer would catch). */
    readonly onExpected: number;
    /** Of those, on a tag the window does not expect (review work for nothing). */
    readonly onUnexpected: number;
  };
  /** Of the hard negatives' tempting tags, how many fired. */
  readonly temptingFired: { readonly fired: number; readonly of: number };
  readonly errors: readonly EvalError[];
  readonly results: readonly ScenarioResult[];
}

/** Runs the engine on every scenario and scores the fired tags against the labels. */
export function evaluateScenarios(rules: TaxonomyRules, scenarios: readonly Scenario[]): EvalReport {
  const tags = rules.taxonomy.tags;
  const counts = new Map(tags.map((t) => [t.id, { tp: 0, fp: 0, fn: 0, support: 0, review: 0 }]));
  const errors: EvalError[] = [];
  const results: ScenarioResult[] = [];
  let reviewOnExpected = 0;
  let reviewOnUnexpected = 0;
  let temptingFired = 0;
  let temptingTotal = 0;

  for (const scenario of scenarios) {
    const decision: WindowDecision = rules.engine.evaluate(scenarioWindow(scenario));
    const byTag = new Map(decision.decisions.map((d) => [d.tagId, d]));
    const fired = decision.decisions.filter((d) => d.fired).map((d) => d.tagId);
    const review = decision.decisions.filter((d) => d.review).map((d) => d.tagId);
    const expected = new Set(scenario.expected);
    results.push({ id: scenario.id, expected: scenario.expected, fired, review });

    for (const tag of tags) {
      const c = counts.get(tag.id)!;
      const d = byTag.get(tag.id);
      const isExpected = expected.has(tag.id);
      const isFired = d?.fired ?? false;
      if (isExpected) c.support++;
      if (d?.review) {
        c.review++;
        if (isExpected) reviewOnExpected++;
        else reviewOnUnexpected++;
      }
      if (isExpected && isFired) c.tp++;
      else if (!isExpected && isFired) c.fp++;
      else if (isExpected && !isFired) c.fn++;
      if (isExpected !== isFired) errors.push(describeError(scenario, tag.id, isFired ? 'FP' : 'FN', d));
    }
    for (const tag of scenario.tempting) {
      temptingTotal++;
      if (fired.includes(tag)) temptingFired++;
    }
  }

  const perTag: TagStats[] = tags.map((tag) => {
    const c = counts.get(tag.id)!;
    return {
      tagId: tag.id,
      kind: tag.kind,
      support: c.support,
      review: c.review,
      ...rates(c.tp, c.fp, c.fn),
    };
  });
  const summary = (group: readonly TagStats[]): GroupSummary => ({
    micro: rates(
      sum(group, (t) => t.tp),
      sum(group, (t) => t.fp),
      sum(group, (t) => t.fn),
    ),
    macro: macro(group),
  });

  return {
    taxonomyVersion: rules.taxonomy.version,
    windowMs: WINDOW_MS,
    scenarios: scenarios.length,
    hardNegatives: scenarios.filter((s) => s.hardNegative).length,
    perTag,
    overall: summary(perTag),
    byKind: {
      intent: summary(perTag.filter((t) => t.kind === 'intent')),
      risk: summary(perTag.filter((t) => t.kind === 'risk')),
    },
    reviewBand: {
      decisions: reviewOnExpected + reviewOnUnexpected,
      onExpected: reviewOnExpected,
      onUnexpected: reviewOnUnexpected,
    },
    temptingFired: { fired: temptingFired, of: temptingTotal },
    errors,
    results,
  };
}

function describeError(
  scenario: Scenario,
  tagId: string,
  type: 'FP' | 'FN',
  decision: TagDecision | undefined,
): EvalError {
  const base = {
    scenarioId: scenario.id,
    tagId,
    type,
    hardNegative: scenario.hardNegative,
    note: scenario.note,
  };
  if (!decision) {
    return {
      ...base,
      score: null,
      accept: null,
      review: null,
      inReviewBand: false,
      explanations: ['no rule of this tag was retrieved for the window'],
    };
  }
  const matched = decision.evaluations.filter((e) => e.matched).sort((a, b) => b.score - a.score);
  // A miss is best explained by what partly matched; with nothing matched, by the first rules' reasons.
  const shown = matched.length > 0 ? matched : decision.evaluations;
  return {
    ...base,
    score: decision.score,
    accept: decision.acceptThreshold,
    review: decision.reviewThreshold,
    inReviewBand: decision.review,
    explanations: shown
      .slice(0, 2)
      .map((e) => `${e.ruleId}${e.matched ? ` (+${e.score.toFixed(2)})` : ''}: ${e.explanation}`),
  };
}

/** Precision, recall and F1 from counts; a rate whose denominator is 0 is null. */
export function rates(tp: number, fp: number, fn: number): Rates {
  const precision = tp + fp > 0 ? tp / (tp + fp) : null;
  const recall = tp + fn > 0 ? tp / (tp + fn) : null;
  const f1 =
    precision !== null && recall !== null
      ? precision + recall > 0
        ? (2 * precision * recall) / (precision + recall)
        : 0
      : null;
  return { tp, fp, fn, precision, recall, f1 };
}

function macro(group: readonly TagStats[]): MacroRates {
  // Only tags some window expects: a tag with no support has no recall. One that never fired there has
  // precision 0 (nothing it predicted was right), as scikit-learn's zero_division=0.
  const supported = group.filter((t) => t.support > 0);
  const mean = (f: (t: TagStats) => number) =>
    supported.length > 0 ? sum(supported, f) / supported.length : 0;
  return {
    tags: supported.length,
    precision: mean((t) => t.precision ?? 0),
    recall: mean((t) => t.recall ?? 0),
    f1: mean((t) => t.f1 ?? 0),
  };
}

function sum<T>(items: readonly T[], f: (item: T) => number): number {
  return items.reduce((total, item) => total + f(item), 0);
}

// ---------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------

/** The report as plain text: the per-tag table, the overall and per-kind numbers, the review band, every error. */
export function formatReport(report: EvalReport): string {
  const out: string[] = [];
  const rate = (r: number | null) => (r === null ? '   –' : r.toFixed(3));
  out.push(
    `fusion eval: taxonomy ${report.taxonomyVersion}, ${report.scenarios} windows of ${report.windowMs / 1000} s ` +
      `(${report.hardNegatives} hard negatives)`,
    '',
  );

  const header = ['tag', 'kind', 'support', 'TP', 'FP', 'FN', 'review', 'precision', 'recall', 'F1'];
  const rows = report.perTag.map((t) => [
    t.tagId,
    t.kind,
    String(t.support),
    String(t.tp),
    String(t.fp),
    String(t.fn),
    String(t.review),
    rate(t.precision),
    rate(t.recall),
    rate(t.f1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  out.push(line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), '');

  const group = (name: string, g: GroupSummary) =>
    `${name.padEnd(8)} micro P ${rate(g.micro.precision)}  R ${rate(g.micro.recall)}  F1 ${rate(g.micro.f1)} ` +
    `(TP ${g.micro.tp}, FP ${g.micro.fp}, FN ${g.micro.fn})   macro over ${g.macro.tags} tags ` +
    `P ${rate(g.macro.precision)}  R ${rate(g.macro.recall)}  F1 ${rate(g.macro.f1)}`;
  out.push(
    group('overall', report.overall),
    group('intent', report.byKind.intent),
    group('risk', report.byKind.risk),
    '',
    `review band: ${report.reviewBand.decisions} decisions (${report.reviewBand.onExpected} on expected tags, ` +
      `${report.reviewBand.onUnexpected} on unexpected)`,
    `hard negatives: ${report.temptingFired.fired} of ${report.temptingFired.of} tempting tags fired`,
    '',
  );

  out.push(`errors (${report.errors.length}):`);
  for (const e of report.errors) {
    const score =
      e.score === null
        ? 'not evaluated'
        : `score ${e.score.toFixed(3)} (accept ${e.accept}, review ${e.review}${e.inReviewBand ? ', IN REVIEW BAND' : ''})`;
    out.push(
      `  ${e.type} ${e.tagId} @ ${e.scenarioId}${e.hardNegative ? ' [hard negative]' : ''}: ${score}`,
      `      label: ${e.note}`,
      ...e.explanations.map((x) => `      ${x}`),
    );
  }
  return out.join('\n');
}
