// The rule engine: for one window, the retrieved rules are evaluated over the window's observations, each
// matched rule contributes c = weight × confidence to its tag, and each tag's score is the noisy-or of its
// contributions (see taxonomy/schema.ts, "Scoring"). Everything is traced: every evaluated rule with a
// plain-words explanation, every piece of evidence with its observation.
//
// A condition evaluates to its *alternatives*: the distinct ways it matched (a leaf: one per matching
// observation; an `all` with within_ms: one per admissible choice of its members' matches), each with a
// confidence, a media-time span and its evidence. A rule's confidence is the best alternative's; its evidence is
// every alternative's (bounded by scoring.maxEvidencePerRule, the most confident kept).
//
// Determinism: observations are taken in (startMs, id) order whatever order the window lists them in, ties are
// broken by position and id everywhere, and evidence is sorted by media time, observation id and rule id
// (engine.test.ts: "deterministic").

import { LiveLensError } from '@livelens/runtime';
import type {
  EvidenceItem,
  Observation,
  RetrievedRule,
  RuleEvaluation,
  TagDecision,
  WindowDecision,
  WindowInput,
} from '../model.js';
import {
  type Condition,
  type ExtractCondition,
  FORMULAS,
  type Rule,
  type Tag,
  type TagException,
  type Taxonomy,
  type TextModality,
} from '../taxonomy/index.js';
import {
  type Extraction,
  matchFuzzy,
  matchPhrase,
  matchRegex,
  normalizeText,
  snippetAround,
  tokenize,
} from '../text/index.js';
import { fixed2, place, placeOf, quotedList, seconds, truncate } from './format.js';
import { ObservationTexts } from './observation-texts.js';
import { allCues, RuleIndex, type RuleRetriever } from './retrieval.js';

/** Longest evidence snippet kept, characters. */
const MAX_SNIPPET_CHARS = 120;
/** Longest explanation kept, characters. */
const MAX_EXPLANATION_CHARS = 400;

/** One piece of evidence found by a condition. */
interface Hit {
  readonly observation: Observation;
  readonly snippet: string;
  readonly confidence: number;
  /** What matched, in words: "phrase 'link in bio'", "price '$29.99'", "label nsfw=0.95". */
  readonly what: string;
}

/** One way a condition matched. */
interface Alternative {
  readonly confidence: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly hits: readonly Hit[];
  /** The match in words, with places and times. */
  readonly summary: string;
}

interface Outcome {
  /** Best first (confidence, then earliest, then observation id). Empty: no match. */
  readonly alternatives: readonly Alternative[];
  /** Why it did not match (meaningful when `alternatives` is empty). */
  readonly whyNot: string;
}

/** What a condition sees: the observations visible to the tag (exceptions removed), in (startMs, id) order. */
interface Scope {
  readonly tag: Tag;
  readonly observations: readonly Observation[];
  readonly texts: ObservationTexts;
}

/** A rule's evaluation with what the tag decision needs. */
interface RuleResult {
  readonly evaluation: RuleEvaluation;
  readonly contribution: number;
  readonly evidence: readonly EvidenceItem[];
}

/** Evaluates a taxonomy's rules on windows. Stateless between calls; safe to share. */
export class RuleEngine {
  readonly taxonomy: Taxonomy;
  private readonly retriever: RuleRetriever;
  private readonly rules = new Map<string, { rule: Rule; tag: Tag; order: number }>();
  private readonly tagOrder = new Map<string, number>();
  /** Phrase → tokens, computed once per phrase for the engine's lifetime. */
  private readonly phraseTokens = new Map<string, readonly string[]>();
  private readonly formula: string;

  /** @param retriever proposes the rules to evaluate. @default a RuleIndex (BM25) over the taxonomy */
  constructor(taxonomy: Taxonomy, retriever: RuleRetriever = new RuleIndex(taxonomy)) {
    this.taxonomy = taxonomy;
    this.retriever = retriever;
    this.formula = FORMULAS[taxonomy.scoring.combine];
    let order = 0;
    taxonomy.tags.forEach((tag, index) => {
      this.tagOrder.set(tag.id, index);
      for (const rule of tag.rules) this.rules.set(rule.id, { rule, tag, order: order++ });
    });
  }

  /** Decides every tag with a retrieved rule on one window. Same window, same decision. */
  evaluate(window: WindowInput): WindowDecision {
    const texts = new ObservationTexts();
    const retrieved = this.retriever.retrieve(window, texts);

    // Group the retrieved rules by tag, in taxonomy order (tags) and file order (rules).
    const byTag = new Map<string, { tag: Tag; rules: { rule: Rule; order: number }[] }>();
    const seen = new Set<string>();
    for (const { ruleId } of retrieved) {
      if (seen.has(ruleId)) continue;
      seen.add(ruleId);
      const entry = this.rules.get(ruleId);
      if (entry === undefined) {
        throw new LiveLensError(
          `the retriever proposed rule "${ruleId}", which taxonomy ${this.taxonomy.name} lacks`,
          {
            code: 'internal',
            context: { streamId: window.streamId, ruleId, taxonomyVersion: this.taxonomy.version },
          },
        );
      }
      let group = byTag.get(entry.tag.id);
      if (group === undefined) {
        group = { tag: entry.tag, rules: [] };
        byTag.set(entry.tag.id, group);
      }
      group.rules.push({ rule: entry.rule, order: entry.order });
    }

    const observations = [...window.observations].sort(
      (a, b) => a.startMs - b.startMs || compareStrings(a.id, b.id),
    );
    const decisions: TagDecision[] = [];
    const groups = [...byTag.values()].sort(
      (a, b) => this.tagOrder.get(a.tag.id)! - this.tagOrder.get(b.tag.id)!,
    );
    for (const { tag, rules } of groups) {
      rules.sort((a, b) => a.order - b.order);
      decisions.push(
        this.decideTag(
          tag,
          rules.map((r) => r.rule),
          observations,
          texts,
        ),
      );
    }
    return {
      retrieved: retrieved.map((r): RetrievedRule => ({ ruleId: r.ruleId, score: r.score })),
      decisions,
    };
  }

  private decideTag(
    tag: Tag,
    rules: readonly Rule[],
    observations: readonly Observation[],
    texts: ObservationTexts,
  ): TagDecision {
    const full: Scope = { tag, observations, texts };
    const excused = this.excused(tag.exceptions, full);
    const scope: Scope =
      excused.size === 0
        ? full
        : { tag, observations: observations.filter((o) => !excused.has(o.id)), texts };

    const results = rules.map((rule) => this.evaluateRule(rule, scope, full, excused));
    const score = noisyOr(results.map((r) => r.contribution));
    const { accept, review } = tag.thresholds;
    const evidence = results
      .flatMap((r) => r.evidence)
      .sort(
        (a, b) =>
          a.mediaTimeMs - b.mediaTimeMs ||
          compareStrings(a.observationId, b.observationId) ||
          compareStrings(a.ruleId, b.ruleId),
      );
    return {
      tagId: tag.id,
      score,
      fired: score >= accept,
      review: score >= review && score < accept,
      evidence,
      evaluations: results.map((r) => r.evaluation),
      formula: this.formula,
      acceptThreshold: accept,
      reviewThreshold: review,
    };
  }

  /**
   * The observations a tag's exceptions excuse (observation id → the first exception that excuses it): every
   * observation in the evidence of any alternative of any exception, evaluated over the whole window.
   */
  private excused(exceptions: readonly TagException[], scope: Scope): Map<string, TagException> {
    const excused = new Map<string, TagException>();
    for (const exception of exceptions) {
      for (const alternative of this.condition(exception.when, scope).alternatives) {
        for (const hit of alternative.hits) {
          if (!excused.has(hit.observation.id)) excused.set(hit.observation.id, exception);
        }
      }
    }
    return excused;
  }

  private evaluateRule(
    rule: Rule,
    scope: Scope,
    full: Scope,
    excused: ReadonlyMap<string, TagException>,
  ): RuleResult {
    const outcome = this.condition(rule.when, scope);
    const best = outcome.alternatives[0];
    if (best === undefined) {
      let explanation = outcome.whyNot;
      if (excused.size > 0) {
        // Say so when the rule would have matched but for an exception: the trace should show the suppression.
        const without = this.condition(rule.when, full).alternatives[0];
        const hit = without?.hits.find((h) => excused.has(h.observation.id));
        if (hit !== undefined) {
          const exception = excused.get(hit.observation.id)!;
          const why = exception.description.replace(/\.$/, '');
          explanation = `suppressed by exception ${exception.id}: ${hitSummary(hit)} is excused (${why})`;
        }
      }
      return {
        evaluation: {
          ruleId: rule.id,
          matched: false,
          score: 0,
          explanation: truncate(explanation, MAX_EXPLANATION_CHARS),
        },
        contribution: 0,
        evidence: [],
      };
    }

    const contribution = rule.weight * best.confidence;
    const more = outcome.alternatives.length - 1;
    const explanation = `${best.summary}${more > 0 ? ` (+${more} more)` : ''}`;
    return {
      evaluation: {
        ruleId: rule.id,
        matched: true,
        score: round6(contribution),
        explanation: truncate(explanation, MAX_EXPLANATION_CHARS),
      },
      contribution,
      evidence: this.evidence(rule, outcome.alternatives),
    };
  }

  /** Every alternative's hits, one per (observation, snippet), the most confident `maxEvidencePerRule` of them. */
  private evidence(rule: Rule, alternatives: readonly Alternative[]): EvidenceItem[] {
    const unique = new Map<string, Hit>();
    for (const alternative of alternatives) {
      for (const hit of alternative.hits) {
        const key = `${hit.observation.id}\u0000${hit.snippet}`;
        const prior = unique.get(key);
        if (prior === undefined || hit.confidence > prior.confidence) unique.set(key, hit);
      }
    }
    return [...unique.values()]
      .sort(
        (a, b) =>
          b.confidence - a.confidence ||
          a.observation.startMs - b.observation.startMs ||
          compareStrings(a.observation.id, b.observation.id),
      )
      .slice(0, this.taxonomy.scoring.maxEvidencePerRule)
      .map(
        (hit): EvidenceItem => ({
          observationId: hit.observation.id,
          kind: hit.observation.kind,
          source: hit.observation.source,
          snippet: truncate(hit.snippet, MAX_SNIPPET_CHARS),
          mediaTimeMs: hit.observation.startMs,
          confidence: round6(hit.confidence),
          ruleId: rule.id,
        }),
      );
  }

  // ---- Conditions ----

  private condition(condition: Condition, scope: Scope): Outcome {
    switch (condition.op) {
      case 'text':
        return this.phrases(
          condition.phrases,
          condition.modalities,
          condition.match,
          condition.maxEdits,
          scope,
        );
      case 'cues':
        return this.phrases(
          allCues(scope.tag),
          condition.modalities,
          condition.match,
          condition.maxEdits,
          scope,
          true,
        );
      case 'regex':
        return this.leaf(
          scope,
          condition.modalities,
          `no text ${placeOf(condition.modalities)} matched the rule's pattern${condition.ratio ? ` with a ratio >= ${condition.ratio.min}` : ''}`,
          (observation) => {
            const normalized = scope.texts.get(observation).normalized;
            const found = condition.ratio
              ? ratioMatch(normalized, condition.ratio)
              : matchRegex(normalized, condition.pattern);
            // An empty match (a pattern of lookaheads only) quotes nothing and proves nothing: no match.
            if (found === undefined || found.text.trim() === '') return undefined;
            const text = found.text.trim();
            return {
              observation,
              snippet: text,
              confidence: observation.confidence,
              what: `text '${truncate(text, 60)}'`,
            };
          },
        );
      case 'extract':
        return this.leaf(
          scope,
          condition.modalities,
          `no ${describe(condition, scope.tag)}`,
          (observation) => {
            const item = scope.texts.get(observation).extractions.find((e) => passesFilters(e, condition));
            if (item === undefined) return undefined;
            return {
              observation,
              snippet: item.raw,
              confidence: observation.confidence,
              what: `${item.type.replace('_', ' ')} '${item.raw}'`,
            };
          },
        );
      case 'label': {
        const name = condition.name.toLowerCase();
        const hits: Hit[] = [];
        for (const observation of scope.observations) {
          const label = observation.label;
          if (observation.kind !== 'image_label' || label === undefined) continue;
          if (label.name.toLowerCase() !== name || label.score < condition.min) continue;
          const text = `${label.name}=${fixed2(label.score)}`;
          hits.push({
            observation,
            snippet: text,
            confidence: observation.confidence,
            what: `label ${text}`,
          });
        }
        return fromHits(hits, `no ${describe(condition, scope.tag)}`);
      }
      case 'price_ratio':
        return this.priceRatio(condition.min, condition.withinMs, condition.modalities, scope);
      case 'any': {
        const outcomes = condition.of.map((c) => this.condition(c, scope));
        const alternatives = sortAlternatives(outcomes.flatMap((o) => o.alternatives));
        return { alternatives, whyNot: `none of: ${outcomes.map((o) => o.whyNot).join('; ')}` };
      }
      case 'all':
        return this.all(condition.of, condition.withinMs, scope);
      case 'count':
        return this.count(condition.of, condition.min, scope);
      case 'not':
        // Only reachable as a member of `all`, which handles it; alone it would have no evidence to offer.
        return { alternatives: [], whyNot: `'not' outside 'all'` };
    }
  }

  /** One hit per observation of the modalities, from `find`. */
  private leaf(
    scope: Scope,
    modalities: readonly TextModality[],
    whyNot: string,
    find: (observation: Observation) => Hit | undefined,
  ): Outcome {
    const hits: Hit[] = [];
    for (const observation of scope.observations) {
      if (!(modalities as readonly string[]).includes(observation.kind)) continue;
      const hit = find(observation);
      if (hit !== undefined) hits.push(hit);
    }
    return fromHits(hits, whyNot);
  }

  /**
   * Phrase matching: per observation, the best phrase (highest confidence, then earliest, then list order).
   * A fuzzy match's confidence is the observation's times 1 − distance / length (the phrase's length in
   * characters, tokens joined without spaces), so "buy naw" for "buy now" (1 edit, 6 characters) keeps 5/6.
   */
  private phrases(
    phrases: readonly string[],
    modalities: readonly TextModality[],
    match: 'phrase' | 'fuzzy',
    maxEdits: number,
    scope: Scope,
    cues = false,
  ): Outcome {
    const list = cues ? `cue of ${scope.tag.name}` : `phrase ${quotedList(phrases)}`;
    return this.leaf(
      scope,
      modalities,
      `no ${list}${match === 'fuzzy' ? ' (fuzzy)' : ''} ${placeOf(modalities)}`,
      (observation) => {
        const tokens = scope.texts.get(observation).tokens;
        let best:
          | {
              phrase: string;
              start: number;
              distance: number;
              penalty: number;
              match: { start: number; end: number; distance: number };
            }
          | undefined;
        for (const phrase of phrases) {
          const phraseTokens = this.tokensOf(phrase);
          if (phraseTokens.length === 0) continue;
          const found =
            match === 'fuzzy'
              ? matchFuzzy(tokens, phraseTokens, { maxEdits })
              : matchPhrase(tokens, phraseTokens);
          if (found === undefined) continue;
          const length = phraseTokens.join('').length;
          const penalty = Math.max(0, 1 - found.distance / Math.max(1, length));
          if (
            best === undefined ||
            penalty > best.penalty ||
            (penalty === best.penalty && found.start < best.start)
          ) {
            best = { phrase, start: found.start, distance: found.distance, penalty, match: found };
          }
        }
        if (best === undefined) return undefined;
        const fuzzy =
          best.distance > 0 ? ` (fuzzy, ${best.distance} edit${best.distance > 1 ? 's' : ''})` : '';
        return {
          observation,
          snippet: snippetAround(tokens, best.match, this.taxonomy.scoring.snippetContextTokens),
          confidence: observation.confidence * best.penalty,
          what: `phrase '${best.phrase}'${fuzzy}`,
        };
      },
    );
  }

  private priceRatio(
    ratio: number,
    withinMs: number | undefined,
    modalities: readonly TextModality[],
    scope: Scope,
  ): Outcome {
    const prices: { observation: Observation; item: Extraction & { amount: number; currency: string } }[] =
      [];
    for (const observation of scope.observations) {
      if (!(modalities as readonly string[]).includes(observation.kind)) continue;
      for (const item of scope.texts.get(observation).extractions) {
        if (item.type === 'price' && item.amount > 0) prices.push({ observation, item });
      }
    }
    const alternatives: Alternative[] = [];
    for (let i = 0; i < prices.length; i++) {
      for (let j = i + 1; j < prices.length; j++) {
        const a = prices[i]!;
        const b = prices[j]!;
        if (a.item.currency !== b.item.currency) continue;
        const [high, low] = a.item.amount >= b.item.amount ? [a, b] : [b, a];
        if (high.item.amount < ratio * low.item.amount) continue;
        const same = a.observation.id === b.observation.id;
        if (!same && withinMs !== undefined && gap(a.observation, b.observation) > withinMs) continue;
        const times = `${(high.item.amount / low.item.amount).toFixed(1)}×`;
        const hits: Hit[] = same
          ? [
              {
                observation: a.observation,
                snippet: `${high.item.raw} … ${low.item.raw}`,
                confidence: a.observation.confidence,
                what: `prices '${high.item.raw}' and '${low.item.raw}' (${times})`,
              },
            ]
          : [high, low].map(({ observation, item }) => ({
              observation,
              snippet: item.raw,
              confidence: observation.confidence,
              what: `price '${item.raw}'`,
            }));
        alternatives.push({
          confidence: Math.min(...hits.map((h) => h.confidence)),
          startMs: Math.min(a.observation.startMs, b.observation.startMs),
          endMs: Math.max(a.observation.endMs, b.observation.endMs),
          hits,
          summary: same ? hitSummary(hits[0]!) : `${hits.map(hitSummary).join(' and ')} (${times})`,
        });
      }
    }
    const within = withinMs === undefined ? '' : ` within ${seconds(withinMs)}`;
    return {
      alternatives: sortAlternatives(alternatives),
      whyNot: `no two prices ${ratio}× apart${within} ${placeOf(modalities)} (${prices.length} price${prices.length === 1 ? '' : 's'} seen)`,
    };
  }

  /**
   * `all`: every positive member matches and no `not` member does. With within_ms, one alternative per member
   * must fit in a span where the latest start minus the earliest end is at most within_ms (every pair is then at
   * most within_ms apart), and a `not` member only blocks when one of its matches fits in that span too.
   */
  private all(members: readonly Condition[], withinMs: number | undefined, scope: Scope): Outcome {
    const positive = members.filter((c) => c.op !== 'not');
    const negative = members.flatMap((c) => (c.op === 'not' ? [c.of] : []));
    const outcomes = positive.map((c) => this.condition(c, scope));
    const failed = outcomes.find((o) => o.alternatives.length === 0);
    if (failed !== undefined) return { alternatives: [], whyNot: failed.whyNot };
    const blockers = negative.flatMap((c) => this.condition(c, scope).alternatives);

    if (withinMs === undefined) {
      const blocker = blockers[0];
      if (blocker !== undefined) return { alternatives: [], whyNot: `blocked by ${blocker.summary}` };
      const hits = outcomes.flatMap((o) => o.alternatives.flatMap((a) => a.hits));
      return {
        alternatives: [
          {
            confidence: Math.min(...outcomes.map((o) => o.alternatives[0]!.confidence)),
            startMs: Math.min(...outcomes.flatMap((o) => o.alternatives.map((a) => a.startMs))),
            endMs: Math.max(...outcomes.flatMap((o) => o.alternatives.map((a) => a.endMs))),
            hits,
            summary: outcomes.map((o) => o.alternatives[0]!.summary).join(' and '),
          },
        ],
        whyNot: '',
      };
    }

    const ends = [...new Set(outcomes.flatMap((o) => o.alternatives.map((a) => a.endMs)))].sort(
      (a, b) => a - b,
    );
    const found = new Map<string, Alternative>();
    let blockedBy: Alternative | undefined;
    for (const end of ends) {
      const chosen: Alternative[] = [];
      for (const outcome of outcomes) {
        // Alternatives are sorted best first, so the first eligible one is the best one.
        const pick = outcome.alternatives.find((a) => a.endMs >= end && a.startMs <= end + withinMs);
        if (pick === undefined) break;
        chosen.push(pick);
      }
      if (chosen.length < outcomes.length) continue;
      const latestStart = Math.max(...chosen.map((a) => a.startMs));
      const earliestEnd = Math.min(...chosen.map((a) => a.endMs));
      const blocker = blockers.find(
        (b) => Math.max(latestStart, b.startMs) - Math.min(earliestEnd, b.endMs) <= withinMs,
      );
      if (blocker !== undefined) {
        blockedBy ??= blocker;
        continue;
      }
      const hits = chosen.flatMap((a) => a.hits);
      const key = hits.map((h) => h.observation.id).join('\u0000');
      if (found.has(key)) continue;
      found.set(key, {
        confidence: Math.min(...chosen.map((a) => a.confidence)),
        startMs: Math.min(...chosen.map((a) => a.startMs)),
        endMs: Math.max(...chosen.map((a) => a.endMs)),
        hits,
        summary: `${chosen.map((a) => a.summary).join(' and ')}, within ${seconds(withinMs)}`,
      });
    }
    if (found.size > 0) return { alternatives: sortAlternatives([...found.values()]), whyNot: '' };
    if (blockedBy !== undefined) return { alternatives: [], whyNot: `blocked by ${blockedBy.summary}` };
    const [first, ...rest] = positive.map((c) => describe(c, scope.tag));
    return { alternatives: [], whyNot: `no ${first} within ${seconds(withinMs)} of ${rest.join(' and ')}` };
  }

  /** `count`: distinct observations among `of`'s matches; confidence is the min-th best of theirs. */
  private count(of: Condition, min: number, scope: Scope): Outcome {
    const outcome = this.condition(of, scope);
    const perObservation = new Map<string, Alternative>();
    for (const alternative of outcome.alternatives) {
      const id = alternative.hits[0]!.observation.id;
      const prior = perObservation.get(id);
      if (prior === undefined || alternative.confidence > prior.confidence)
        perObservation.set(id, alternative);
    }
    const what = describe(of, scope.tag);
    const n = perObservation.size;
    if (n < min) {
      return {
        alternatives: [],
        whyNot:
          n === 0 ? outcome.whyNot : `${what} in only ${n} observation${n === 1 ? '' : 's'} (${min} needed)`,
      };
    }
    const chosen = sortAlternatives([...perObservation.values()]);
    const byTime = [...chosen].sort((a, b) => a.startMs - b.startMs);
    return {
      alternatives: [
        {
          confidence: chosen[min - 1]!.confidence,
          startMs: byTime[0]!.startMs,
          endMs: Math.max(...byTime.map((a) => a.endMs)),
          hits: byTime.flatMap((a) => a.hits),
          summary: `${what} in ${n} observations (${min} needed), first ${byTime[0]!.summary}`,
        },
      ],
      whyNot: '',
    };
  }

  private tokensOf(phrase: string): readonly string[] {
    let tokens = this.phraseTokens.get(phrase);
    if (tokens === undefined) {
      tokens = tokenize(normalizeText(phrase));
      this.phraseTokens.set(phrase, tokens);
    }
    return tokens;
  }
}

/**
 * The tag score from its rules' contributions: 1 − ∏(1 − c_i), rounded to 1e-6 (so 0.6 stays 0.6 against an
 * accept threshold of 0.6). Each factor is in [0, 1], so raising any c_i or adding a contribution never lowers
 * the score (engine.test.ts: "monotone").
 */
export function noisyOr(contributions: readonly number[]): number {
  let miss = 1;
  for (const c of contributions) miss *= 1 - Math.min(1, Math.max(0, c));
  return round6(1 - miss);
}

// ---- Helpers ----

function fromHits(hits: readonly Hit[], whyNot: string): Outcome {
  return {
    alternatives: sortAlternatives(
      hits.map((hit) => ({
        confidence: hit.confidence,
        startMs: hit.observation.startMs,
        endMs: hit.observation.endMs,
        hits: [hit],
        summary: hitSummary(hit),
      })),
    ),
    whyNot,
  };
}

/** Best first: confidence, then earliest, then first observation id. */
function sortAlternatives(alternatives: Alternative[]): Alternative[] {
  return alternatives.sort(
    (a, b) =>
      b.confidence - a.confidence ||
      a.startMs - b.startMs ||
      compareStrings(a.hits[0]?.observation.id ?? '', b.hits[0]?.observation.id ?? ''),
  );
}

/** "phrase 'link in bio' in speech at 12.4 s (conf 0.91)" */
function hitSummary(hit: Hit): string {
  return `${hit.what} ${place(hit.observation.kind)} at ${seconds(hit.observation.startMs)} (conf ${fixed2(hit.confidence)})`;
}

/** A condition as a short noun phrase, for "not matched" explanations. */
function describe(condition: Condition, tag: Tag): string {
  switch (condition.op) {
    case 'text':
      return `${quotedList(condition.phrases)}${condition.match === 'fuzzy' ? ' (fuzzy)' : ''} ${placeOf(condition.modalities)}`;
    case 'cues':
      return `cue of ${tag.name} ${placeOf(condition.modalities)}`;
    case 'regex':
      return `text matching the rule's pattern ${placeOf(condition.modalities)}`;
    case 'extract': {
      const filters = [
        condition.platform?.join('/'),
        condition.currency?.join('/'),
        condition.min === undefined ? undefined : `>= ${condition.min}`,
        condition.max === undefined ? undefined : `<= ${condition.max}`,
      ].filter((f) => f !== undefined);
      return `${condition.type.replace('_', ' ')}${filters.length > 0 ? ` (${filters.join(', ')})` : ''} ${placeOf(condition.modalities)}`;
    }
    case 'label':
      return `${condition.name} label >= ${condition.min}`;
    case 'price_ratio':
      return `two prices ${condition.min}× apart ${placeOf(condition.modalities)}`;
    case 'all':
      return condition.of.map((c) => describe(c, tag)).join(' and ');
    case 'any':
      return `(${condition.of.map((c) => describe(c, tag)).join(' or ')})`;
    case 'count':
      return `${describe(condition.of, tag)}`;
    case 'not':
      return `not ${describe(condition.of, tag)}`;
  }
}

/** Whether an extraction is of the condition's type and passes its filters. */
function passesFilters(item: Extraction, condition: ExtractCondition): boolean {
  if (item.type !== condition.type) return false;
  if (item.type === 'handle' && condition.platform !== undefined) {
    if (!condition.platform.includes(item.platform.toLowerCase())) return false;
  }
  if (item.type === 'price' && condition.currency !== undefined) {
    if (!condition.currency.includes(item.currency)) return false;
  }
  if (item.type === 'percent' && condition.discount !== undefined && item.discount !== condition.discount)
    return false;
  const amount = item.type === 'price' ? item.amount : item.type === 'percent' ? item.percent : undefined;
  if (condition.min !== undefined && (amount === undefined || !(amount >= condition.min))) return false;
  if (condition.max !== undefined && (amount === undefined || !(amount <= condition.max))) return false;
  return true;
}

/** The first match whose first capture group is at least `min` times its second (both read as numbers). */
function ratioMatch(
  normalized: string,
  ratio: { min: number; allMatches: RegExp },
): { text: string } | undefined {
  for (const match of normalized.matchAll(ratio.allMatches)) {
    const high = Number.parseFloat(match[1] ?? '');
    const low = Number.parseFloat(match[2] ?? '');
    if (low > 0 && high >= ratio.min * low) return { text: match[0] };
  }
  return undefined;
}

/** Media time between two observations' spans (0 when they overlap). */
function gap(a: Observation, b: Observation): number {
  return Math.max(0, Math.max(a.startMs, b.startMs) - Math.min(a.endMs, b.endMs));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
