// The rationale: one or two plain sentences saying why a tag was (or was not) decided, generated from the
// decision's evidence alone — what was said or seen, where and when — so a reviewer can check it against the
// stream. Deterministic and at most MAX_RATIONALE_CHARS characters; it never shows rule internals (regexes).

import type { EvidenceItem, TagDecision } from '../model.js';
import type { Tag } from '../taxonomy/index.js';
import { clock, fixed2, truncate } from './format.js';

/** The longest rationale, characters. */
export const MAX_RATIONALE_CHARS = 300;

/** How many pieces of evidence a rationale names at most. */
const MAX_ITEMS = 3;

/**
 * E.g. "Promo code (intent, score 0.82): the streamer said 'use code save20' at 0:12 and 'SAVE20' appeared on
 * screen at 0:14." Media times are m:ss (h:mm:ss past an hour).
 */
export function rationale(
  tag: Tag,
  decision: TagDecision,
  window: { startMs: number; endMs: number },
): string {
  const status = decision.fired ? '' : decision.review ? ', for review' : ', below threshold';
  const head = `${tag.name} (${tag.kind}, score ${fixed2(decision.score)}${status})`;
  const items = strongest(decision);
  if (items.length === 0) {
    const suppressed = decision.evaluations.some((e) => e.explanation.startsWith('suppressed by exception'));
    const why = suppressed ? 'what matched was explained away by an exception' : 'nothing matched';
    return truncate(
      `${head}: ${why} between ${clock(window.startMs)} and ${clock(window.endMs)}.`,
      MAX_RATIONALE_CHARS,
    );
  }
  // Fewer and shorter quotes until it fits; the hard cut is the last resort.
  for (const [count, snippetChars] of [
    [MAX_ITEMS, 60],
    [2, 48],
    [2, 32],
    [1, 40],
  ] as const) {
    const shown = items.slice(0, count).sort(byTime);
    const left = items.length - shown.length;
    const more = left > 0 ? ` ${left} more observation${left === 1 ? ' supports' : 's support'} it.` : '';
    const text = `${head}: ${joinAnd(clauses(shown, snippetChars))}.${more}`;
    if (text.length <= MAX_RATIONALE_CHARS) return text;
  }
  return truncate(`${head}: ${clauses(items.slice(0, 1), 24)[0]}.`, MAX_RATIONALE_CHARS);
}

/**
 * One item per observation (its most confident; among equals, the one of the rule that contributed most, then
 * the rule id): the strongest of each kind first, then the rest, most confident first, then earliest.
 */
function strongest(decision: TagDecision): EvidenceItem[] {
  const ruleScore = new Map(decision.evaluations.map((e) => [e.ruleId, e.score]));
  const better = (a: EvidenceItem, b: EvidenceItem) =>
    a.confidence - b.confidence ||
    (ruleScore.get(a.ruleId) ?? 0) - (ruleScore.get(b.ruleId) ?? 0) ||
    (a.ruleId < b.ruleId ? 1 : a.ruleId > b.ruleId ? -1 : 0);
  const best = new Map<string, EvidenceItem>();
  for (const item of decision.evidence) {
    const prior = best.get(item.observationId);
    if (prior === undefined || better(item, prior) > 0) best.set(item.observationId, item);
  }
  const sorted = [...best.values()].sort((a, b) => b.confidence - a.confidence || byTime(a, b));
  // The strongest item of each kind first, so a cross-modal decision names both what was said and what was
  // seen (three prices on screen must not hide the spoken "link in bio" behind "1 more observation").
  const kinds = new Set<string>();
  const leaders = sorted.filter((item) => !kinds.has(item.kind) && kinds.add(item.kind));
  return [...leaders, ...sorted.filter((item) => !leaders.includes(item))];
}

function byTime(a: EvidenceItem, b: EvidenceItem): number {
  return (
    a.mediaTimeMs - b.mediaTimeMs ||
    (a.observationId < b.observationId ? -1 : a.observationId > b.observationId ? 1 : 0)
  );
}

/**
 * The items as clauses, in time order; a run of the same kind shares its verb: "the streamer said 'a' at 0:12
 * and 'b' at 0:20".
 */
function clauses(items: readonly EvidenceItem[], snippetChars: number): string[] {
  const out: string[] = [];
  let previous: EvidenceItem['kind'] | undefined;
  for (const item of items) {
    const at = clock(item.mediaTimeMs);
    const quote = `'${truncate(item.snippet.replaceAll("'", '’'), snippetChars)}'`;
    const again = item.kind === previous;
    previous = item.kind;
    switch (item.kind) {
      case 'speech':
        out.push(again ? `${quote} at ${at}` : `the streamer said ${quote} at ${at}`);
        break;
      case 'screen_text':
        out.push(again ? `${quote} at ${at}` : `${quote} appeared on screen at ${at}`);
        break;
      case 'image_label':
        // The snippet of a label is "name=score".
        out.push(`the frame at ${at} was labelled ${item.snippet.replace('=', ' ')}`);
        break;
    }
  }
  return out;
}

function joinAnd(parts: readonly string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}
