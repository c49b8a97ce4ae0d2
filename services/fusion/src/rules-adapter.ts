// The taxonomy and its rule engine as the state machine's FusionRules.
import type { TagDecision } from './model.js';
import { RuleEngine, rationale } from './rules/index.js';
import { loadTaxonomy, type Tag, type Taxonomy } from './taxonomy/index.js';
import type { FusionRules, TagInfo } from './windows/stream-fusion.js';
import type { WindowRange } from './windows/windows.js';

/** FusionRules over a loaded taxonomy (its BM25 retriever and rule engine). */
export class TaxonomyRules implements FusionRules {
  readonly taxonomy: Taxonomy;
  readonly engine: RuleEngine;
  readonly #tags: ReadonlyMap<string, Tag>;

  constructor(taxonomy: Taxonomy) {
    this.taxonomy = taxonomy;
    this.engine = new RuleEngine(taxonomy);
    this.#tags = new Map(taxonomy.tags.map((t) => [t.id, t]));
  }

  get taxonomyVersion(): string {
    return this.taxonomy.version;
  }

  get tagCount(): number {
    return this.#tags.size;
  }

  tag(id: string): TagInfo | undefined {
    return this.#tags.get(id);
  }

  evaluate: FusionRules['evaluate'] = (window) => this.engine.evaluate(window);

  rationale(decision: TagDecision, window: WindowRange): string {
    const tag = this.#tags.get(decision.tagId);
    return tag ? rationale(tag, decision, window) : '';
  }
}

/** Loads the taxonomy (the shipped one by default); an invalid file is an `invalid_config` error naming the problem. */
export async function loadFusionRules(path?: string): Promise<TaxonomyRules> {
  return new TaxonomyRules(await loadTaxonomy(path));
}
