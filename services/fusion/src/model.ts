// The fusion service's own data model: what the rules see (observations gathered into a window) and what they
// decide (one decision per tag). The Kafka messages (FrameAnalysis, TranscriptSegment) are turned into
// observations at the edge (observations.ts), and decisions into TagEvents (episodes.ts), so the rule engine
// knows nothing of protobuf or Kafka.

/** Where an observation came from: enough to find the upstream record again. */
export interface ObservationSource {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offset, as a decimal string. */
  readonly offset: string;
  /** The upstream record's deterministic id (frame_id, segment_id). */
  readonly recordId: string;
}

/**
 * What an observation is: words spoken (a final transcript segment), a line of text read on screen (one OCR
 * text region of a frame), or an image-level label of a frame with its score (e.g. `nsfw`).
 */
export type ObservationKind = 'speech' | 'screen_text' | 'image_label';

/** One thing seen or said in a stream, placed on the stream's media clock. */
export interface Observation {
  readonly kind: ObservationKind;
  /**
   * Unique within the stream: the same upstream record always gives the same ids (replays and redeliveries
   * are recognised by it). `{recordId}` for speech, `{recordId}#t{readingOrder}` for a text line,
   * `{recordId}#l{name}` for a label.
   */
  readonly id: string;
  /** Media time, ms: [startMs, endMs). A frame's observations have startMs = endMs = pts_ms. */
  readonly startMs: number;
  readonly endMs: number;
  /** Speech text or the OCR line, as recognised (not normalised). Empty for labels. */
  readonly text: string;
  /** For image labels: the label name (`nsfw`) and its score 0..1. */
  readonly label?: { readonly name: string; readonly score: number };
  /** Recognition confidence 0..1 (OCR line confidence, mean word probability, label score). */
  readonly confidence: number;
  /** BCP-47-ish language of speech ("en", "zh"); empty when unknown. */
  readonly language: string;
  /** Wall-clock ms the underlying sample was captured (for end-to-end latency). */
  readonly captureTimeUnixMs: number;
  readonly source: ObservationSource;
}

/** Everything observed in one stream over one window of media time, in media-time order. */
export interface WindowInput {
  readonly streamId: string;
  /** [startMs, endMs) of media time. */
  readonly startMs: number;
  readonly endMs: number;
  readonly observations: readonly Observation[];
}

/** A rule the retriever proposed for a window, with its retrieval (BM25) score. */
export interface RetrievedRule {
  readonly ruleId: string;
  readonly score: number;
}

/** The outcome of one rule on one window. */
export interface RuleEvaluation {
  readonly ruleId: string;
  readonly matched: boolean;
  /** The rule's contribution 0..1 (its weight times its evidence confidence) when matched, else 0. */
  readonly score: number;
  /** Why it matched or not, in plain words: "phrase 'link in bio' in speech at 12.4 s". */
  readonly explanation: string;
}

/** One piece of evidence behind a decision: which observation, what in it, for which rule. */
export interface EvidenceItem {
  readonly observationId: string;
  readonly kind: ObservationKind;
  readonly source: ObservationSource;
  /** The matched text (or `label=score`), bounded in length. */
  readonly snippet: string;
  /** Media time of the evidence, ms. */
  readonly mediaTimeMs: number;
  readonly confidence: number;
  readonly ruleId: string;
}

/** What the rules decided about one tag on one window. */
export interface TagDecision {
  readonly tagId: string;
  /** Combined score 0..1 (monotone in every rule's contribution; see the taxonomy's formula). */
  readonly score: number;
  /** score >= the tag's accept threshold. */
  readonly fired: boolean;
  /** review threshold <= score < accept threshold: a case for human labeling. */
  readonly review: boolean;
  readonly evidence: readonly EvidenceItem[];
  /** Every rule of the tag that was evaluated, matched or not. */
  readonly evaluations: readonly RuleEvaluation[];
  /** The formula the score came from, e.g. "1 - prod(1 - w_i * c_i)". */
  readonly formula: string;
  readonly acceptThreshold: number;
  readonly reviewThreshold: number;
}

/** The rule engine's answer for one window. */
export interface WindowDecision {
  /** The rules the retriever proposed, best first (the decision trace records them). */
  readonly retrieved: readonly RetrievedRule[];
  /** One per tag with at least one evaluated rule; tags no retrieved rule belongs to are absent. */
  readonly decisions: readonly TagDecision[];
}
