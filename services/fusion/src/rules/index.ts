export { noisyOr, RuleEngine } from './engine.js';
export { ObservationTexts, type PreparedText } from './observation-texts.js';
export { MAX_RATIONALE_CHARS, rationale } from './rationale.js';
export {
  ALWAYS_CANDIDATE_SCORE,
  allCues,
  BM25_B,
  BM25_K1,
  conditionPhrases,
  EveryRuleRetriever,
  isAlwaysCandidate,
  type RuleHit,
  RuleIndex,
  type RuleRetriever,
  retrievalTerms,
  ruleDocument,
  type SearchOptions,
  windowText,
} from './retrieval.js';
export {
  buildWindow,
  createObservationFactory,
  type ObservationFactory,
  type ObservationOptions,
  seededRandom,
} from './window-builder.js';
