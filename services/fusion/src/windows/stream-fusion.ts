// The per-stream state machine of fusion: observations from both inputs placed on the stream's media clock,
// per-input watermarks, sliding windows decided once the stream watermark passes them (and decided again when
// data arrives late but within the allowed lateness), and tag episodes (open → update → close) with
// deterministic ids. Pure and synchronous: the state is plain JSON (the store keeps it in Redis), the rules are
// behind an interface, and every output goes to the state's outbox, which the service publishes. Replaying the
// same records in the same order gives the same state and the same outputs (stream-fusion.test.ts).

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
  NO_WATERMARK,
  streamWatermark,
  type WindowRange,
  type WindowSpec,
  windowAt,
  windowsEndingIn,
  windowsTouching,
} from './windows.js';

/** What fusion needs to know about a tag. */
export interface TagInfo {
  readonly id: string;
  readonly kind: 'intent' | 'risk';
  readonly name: string;
  readonly severity: 'info' | 'low' | 'medium' | 'high' | 'critical';
  /** An episode closes once this much media time passed after the last window that fired it. */
  readonly quietPeriodMs: number;
}

/** The taxonomy and its rule engine, as the state machine sees them. */
export interface FusionRules {
  readonly taxonomyVersion: string;
  tag(id: string): TagInfo | undefined;
  evaluate(window: WindowInput): WindowDecision;
  /** One or two plain sentences on why the decision fired, from its trace. */
  rationale(decision: TagDecision, window: WindowRange): string;
}

export interface FusionSettings {
  readonly window: WindowSpec;
  /** Data up to this much media time behind the stream watermark is still taken in (and windows re-decided). */
  readonly allowedLatenessMs: number;
  /** The stream watermark is never more than this behind the faster input (a quiet input does not stall). */
  readonly maxInputSkewMs: number;
  /** Observations kept per stream at most (the oldest go first, counted). */
  readonly maxObservations: number;
  /** Evidence items kept per episode at most (the earliest are kept: they explain why it opened). */
  readonly maxEvidencePerEpisode: number;
  /** Score increase that makes a new UPDATE by itself (more evidence always does). */
  readonly minScoreIncrease: number;
  /**
   * A record more than this much media time ahead of the stream's inputs is refused (dead-lettered): a garbage
   * or wrapped timestamp must not decide an unbounded number of windows or push the stream's watermark past
   * everything that follows.
   */
  readonly maxMediaJumpMs: number;
  /**
   * Early firing: the windows a record falls in that the watermark has not completed yet are evaluated at once,
   * and a tag they already accept opens its episode then, instead of after the whole window and the slower
   * input. The window is decided again, complete, when the watermark passes it (updates come from there).
   * @default false
   */
  readonly earlyFiring?: boolean;
}

/** The inputs a stream's watermark is made of. */
export const INPUTS = ['frames', 'transcripts'] as const;
export type InputName = (typeof INPUTS)[number];

/** The decision trace of a tag event or review item. */
export interface TraceRecord {
  readonly retrieved: readonly RetrievedRule[];
  readonly evaluations: readonly RuleEvaluation[];
  readonly formula: string;
  readonly threshold: number;
  readonly window: WindowRange;
}

export type EpisodeStateName = 'open' | 'update' | 'close';

/** A tag event, ready to become a TagEvent on live.tags.v1. */
export interface TagEventOutput {
  readonly kind: 'tag';
  readonly eventId: string;
  readonly episodeId: string;
  readonly state: EpisodeStateName;
  readonly revision: number;
  readonly streamId: string;
  readonly sessionEpoch: string;
  readonly tagId: string;
  readonly score: number;
  /** The episode's media-time span so far. */
  readonly window: WindowRange;
  readonly evidence: readonly EvidenceItem[];
  readonly trace: TraceRecord;
  readonly rationale: string;
  readonly taxonomyVersion: string;
  readonly incomplete: boolean;
  /** Capture time of the newest evidence (end-to-end latency = emission − this). */
  readonly latestCaptureTimeUnixMs: number;
}

/** A decision between a tag's review and accept thresholds, for live.review.v1. */
export interface ReviewOutput {
  readonly kind: 'review';
  readonly reviewId: string;
  readonly streamId: string;
  readonly sessionEpoch: string;
  readonly tagId: string;
  /** The tag's open episode, if one covers the window. */
  readonly episodeId: string;
  readonly score: number;
  readonly threshold: number;
  readonly window: WindowRange;
  readonly evidence: readonly EvidenceItem[];
  readonly trace: TraceRecord;
  readonly taxonomyVersion: string;
}

export type FusionOutput = TagEventOutput | ReviewOutput;

/** An open episode (JSON). */
export interface EpisodeRecord {
  episodeId: string;
  tagId: string;
  revision: number;
  spanStartMs: number;
  spanEndMs: number;
  lastFiredEndMs: number;
  /** The highest score of any window that fired it. */
  score: number;
  /** The score of its last event (a rise of minScoreIncrease over it makes an UPDATE). */
  emittedScore: number;
  evidence: EvidenceItem[];
  trace: TraceRecord;
  rationale: string;
  latestCaptureTimeUnixMs: number;
}

/** The whole state of one stream (JSON: the store keeps it in Redis). */
export interface StreamState {
  streamId: string;
  /** The ingest session the media clock belongs to ('' before the first record). */
  sessionEpoch: string;
  /** Newest capture time seen (tells a new session from a stale one). */
  latestCaptureTimeUnixMs: number;
  /** Last applied offset per `topic/partition` (a redelivered record is recognised and skipped). */
  offsets: Record<string, string>;
  /** Watermark per input (absent: nothing seen yet). */
  inputs: Partial<Record<InputName, number>>;
  /** The stream watermark windows were decided up to (null: none yet). */
  watermarkMs: number | null;
  /** Observations still needed (inside the allowed lateness), in media-time order. */
  observations: Observation[];
  episodes: EpisodeRecord[];
  /** Recently closed episodes: late data inside them does not open a new one. */
  closed: { tagId: string; episodeId: string; spanStartMs: number; spanEndMs: number }[];
  /** Media ranges lost upstream (shed frames): episodes overlapping them are marked incomplete. */
  lost: WindowRange[];
  /** Outputs decided but not yet acknowledged by the broker (published by the service, then cleared). */
  outbox: FusionOutput[];
  /** Per tag, over the current session: episodes opened and the highest score (GetStreamSummary). */
  summary: Record<string, { episodes: number; maxScore: number }>;
  /**
   * The review items already emitted, by review id, with what they said (score and evidence): a window decided
   * again emits its review item again only when that changed.
   */
  reviewed: Record<string, { signature: string; windowEndMs: number }>;
  /** Wall-clock ms of the last record applied (set by the processor; the idle flush reads it). */
  updatedAtUnixMs: number;
  /**
   * The newest end of an ingest session that ingest announced (live.stream-events.v1: ENDED or FAILED) and
   * that is not older than the current session, or null. Set, it means the current session is over: it is the
   * current session's end, or the end of a later session whose records have not arrived yet (a later session
   * exists, so this one is over too; kept for that session when its records come). The processor then ends
   * the stream once no record came for the end grace period (flushDue), instead of the idle period.
   */
  ended: StreamEndRecord | null;
}

/** An announced end of a session, as the state keeps it. */
export interface StreamEndRecord {
  sessionEpoch: string;
  state: StreamEnd['state'];
  /** When ingest published the end (ingest's clock, like the records' capture times). */
  eventTimeUnixMs: number;
  /** When fusion took it in (wall time, the processor's clock): the grace period runs from here at least. */
  receivedAtUnixMs: number;
}

export function emptyStreamState(streamId: string): StreamState {
  return {
    streamId,
    sessionEpoch: '',
    latestCaptureTimeUnixMs: 0,
    offsets: {},
    inputs: {},
    watermarkMs: null,
    observations: [],
    episodes: [],
    closed: [],
    lost: [],
    outbox: [],
    summary: {},
    reviewed: {},
    updatedAtUnixMs: 0,
    ended: null,
  };
}

/** One consumed record, turned into observations (observations.ts). */
export interface FusionRecord {
  readonly input: InputName;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly sessionEpoch: string;
  readonly captureTimeUnixMs: number;
  /** How far in media time this record shows its input has delivered (a frame's pts, a segment's end). */
  readonly mediaTimeMs: number;
  readonly observations: readonly Observation[];
  /** A media range this record says was lost (a frame shed before analysis). */
  readonly lost?: WindowRange;
}

/** What applying a record did. */
export type ApplyResult =
  | { readonly outcome: 'duplicate' }
  /** Older than the allowed lateness (or of an earlier session): not taken in; the caller dead-letters it. */
  | { readonly outcome: 'late'; readonly reason: string }
  /** Unusable (no session, a media time far ahead of the stream): not taken in; the caller dead-letters it. */
  | { readonly outcome: 'invalid'; readonly reason: string }
  | {
      readonly outcome: 'applied';
      readonly outputs: readonly FusionOutput[];
      readonly windowsDecided: number;
      readonly windowsRedecided: number;
      /** Observations dropped because the stream held maxObservations. */
      readonly observationsEvicted: number;
      /** Windows that fired a tag inside an episode already closed (late data, nothing new emitted). */
      readonly firedAfterClose: number;
    };

const offsetKey = (topic: string, partition: number) => `${topic}/${partition}`;
const byTimeThenId = (a: Observation, b: Observation) =>
  a.startMs - b.startMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const evidenceKey = (e: EvidenceItem) => `${e.observationId}|${e.ruleId}`;

/**
 * Applies one record to a stream's state (mutating it) and returns what it produced; the outputs are also
 * appended to `state.outbox`. Deterministic in (state, record, rules, settings).
 */
export function applyRecord(
  state: StreamState,
  record: FusionRecord,
  rules: FusionRules,
  settings: FusionSettings,
): ApplyResult {
  const key = offsetKey(record.topic, record.partition);
  const last = state.offsets[key];
  if (last !== undefined && BigInt(record.offset) <= BigInt(last)) return { outcome: 'duplicate' };

  if (record.sessionEpoch === '') return { outcome: 'invalid', reason: 'the record has no session_epoch' };
  const outputs: FusionOutput[] = [];
  if (state.sessionEpoch !== record.sessionEpoch) {
    if (state.sessionEpoch !== '' && record.captureTimeUnixMs < state.latestCaptureTimeUnixMs) {
      return {
        outcome: 'late',
        reason: `session ${record.sessionEpoch} is older than the stream's current session ${state.sessionEpoch}`,
      };
    }
    // A new ingest session: a new media clock. The old session's open windows are decided and its episodes
    // end here.
    if (state.sessionEpoch !== '') outputs.push(...flushPending(state, rules, settings));
    resetTimeline(state, record.sessionEpoch);
  }

  const { startMs, endMs } = mediaRange(record);
  if (state.watermarkMs !== null && endMs < state.watermarkMs - settings.allowedLatenessMs) {
    return {
      outcome: 'late',
      reason: `media time ${endMs} ms is ${state.watermarkMs - endMs} ms behind the stream watermark (${state.watermarkMs} ms), past the allowed lateness of ${settings.allowedLatenessMs} ms`,
    };
  }

  const fastest = Math.max(...INPUTS.map((i) => state.inputs[i] ?? NO_WATERMARK));
  if (fastest !== NO_WATERMARK && endMs - fastest > settings.maxMediaJumpMs) {
    return {
      outcome: 'invalid',
      reason: `media time ${endMs} ms jumps ${endMs - fastest} ms ahead of the stream (more than ${settings.maxMediaJumpMs} ms): a broken clock`,
    };
  }

  state.offsets[key] = record.offset;
  state.latestCaptureTimeUnixMs = Math.max(state.latestCaptureTimeUnixMs, record.captureTimeUnixMs);
  if (record.lost) state.lost.push({ ...record.lost });
  const known = new Set(state.observations.map((o) => o.id));
  // New ids only, each once (a record may repeat one, and a redelivered final segment repeats its own).
  const added = record.observations.filter((o) => !known.has(o.id) && known.add(o.id));
  if (added.length > 0) {
    state.observations.push(...added);
    state.observations.sort(byTimeThenId);
  }
  state.inputs[record.input] = Math.max(state.inputs[record.input] ?? NO_WATERMARK, record.mediaTimeMs);

  const before = state.watermarkMs ?? NO_WATERMARK;
  const computed = streamWatermark(
    INPUTS.map((input) => state.inputs[input] ?? NO_WATERMARK),
    settings.maxInputSkewMs,
  );
  const after = Math.max(before, computed);
  if (after !== NO_WATERMARK) state.watermarkMs = after;

  // Windows already decided that this record's data falls in are decided again (late data, within the
  // allowed lateness), then the windows the watermark completes now, all in media-time order.
  const spec = settings.window;
  // Only windows that start inside the retention horizon are decided again: an older window's other
  // observations (and the episodes it closed) may be trimmed already, so deciding it again would invent an
  // episode. The late record's part before the horizon is kept out of decisions.
  const horizon = before - settings.allowedLatenessMs - spec.sizeMs;
  const redecide =
    added.length > 0 && before !== NO_WATERMARK
      ? windowsTouching(spec, startMs, endMs).filter((k) => {
          const w = windowAt(spec, k);
          return w.endMs <= before && w.startMs >= horizon;
        })
      : [];
  const decide = windowsEndingIn(spec, before, after);
  let firedAfterClose = 0;
  for (const k of [...new Set([...redecide, ...decide])].sort((a, b) => a - b)) {
    const result = decideWindow(state, windowAt(spec, k), rules, settings);
    outputs.push(...result.outputs);
    firedAfterClose += result.firedAfterClose;
  }
  // Early firing (settings.earlyFiring): the windows this record falls in that the watermark has not completed
  // are evaluated now. They only open episodes: no update (that waits for the complete window), no review item,
  // and an occurrence already closed is counted when the window is decided for good. The price: evidence that would have
  // suppressed a tag later in the same window (an exception, a `not`) comes too late to stop an early open.
  if (settings.earlyFiring && added.length > 0) {
    const watermark = state.watermarkMs ?? NO_WATERMARK;
    for (const k of windowsTouching(spec, startMs, endMs)) {
      const window = windowAt(spec, k);
      if (window.endMs <= watermark) continue;
      outputs.push(...decideWindow(state, window, rules, settings, true).outputs);
    }
  }
  if (state.watermarkMs !== null) outputs.push(...closeQuiet(state, rules, state.watermarkMs));
  const observationsEvicted = trim(state, settings);
  state.outbox.push(...outputs);
  return {
    outcome: 'applied',
    outputs,
    windowsDecided: decide.length,
    windowsRedecided: redecide.filter((k) => !decide.includes(k)).length,
    observationsEvicted,
    firedAfterClose,
  };
}

/** The media range a record covers: its observations', or its own media time when it has none. */
function mediaRange(record: FusionRecord): { startMs: number; endMs: number } {
  if (record.observations.length === 0) return { startMs: record.mediaTimeMs, endMs: record.mediaTimeMs };
  let startMs = Number.POSITIVE_INFINITY;
  let endMs = Number.NEGATIVE_INFINITY;
  for (const o of record.observations) {
    startMs = Math.min(startMs, o.startMs);
    endMs = Math.max(endMs, o.endMs);
  }
  return { startMs, endMs };
}

function resetTimeline(state: StreamState, sessionEpoch: string): void {
  state.sessionEpoch = sessionEpoch;
  // An end announced for this new session (before its first record) stays; an older session's end goes.
  if (state.ended?.sessionEpoch !== sessionEpoch) state.ended = null;
  state.inputs = {};
  state.watermarkMs = null;
  state.observations = [];
  state.episodes = [];
  state.closed = [];
  state.lost = [];
  state.summary = {};
  state.reviewed = {};
}

/** Decides one window: episodes for the tags that fire, review items for the tags near their threshold. */
function decideWindow(
  state: StreamState,
  window: WindowRange,
  rules: FusionRules,
  settings: FusionSettings,
  early = false,
): { outputs: FusionOutput[]; firedAfterClose: number } {
  const observations = state.observations.filter((o) =>
    o.startMs === o.endMs
      ? o.startMs >= window.startMs && o.startMs < window.endMs
      : o.startMs < window.endMs && o.endMs > window.startMs,
  );
  if (observations.length === 0) return { outputs: [], firedAfterClose: 0 };
  const decision = rules.evaluate({ streamId: state.streamId, ...window, observations });
  const outputs: FusionOutput[] = [];
  let firedAfterClose = 0;
  for (const d of decision.decisions) {
    const tag = rules.tag(d.tagId);
    if (!tag) continue;
    const trace: TraceRecord = {
      retrieved: decision.retrieved,
      evaluations: d.evaluations,
      formula: d.formula,
      threshold: d.acceptThreshold,
      window,
    };
    if (d.fired) {
      const event = fire(state, tag, d, trace, window, observations, rules, settings, early);
      if (event === 'after_close') firedAfterClose += early ? 0 : 1;
      else if (event) outputs.push(event);
    } else if (d.review && !early) {
      const episode = state.episodes.find(
        (e) => e.tagId === d.tagId && e.spanStartMs < window.endMs && e.spanEndMs > window.startMs,
      );
      const reviewId = `${state.streamId}/${state.sessionEpoch}/${d.tagId}/${window.startMs}`;
      const signature = `${d.score}|${d.evidence.map(evidenceKey).join(',')}`;
      if (state.reviewed[reviewId]?.signature === signature) continue;
      state.reviewed[reviewId] = { signature, windowEndMs: window.endMs };
      outputs.push({
        kind: 'review',
        reviewId,
        streamId: state.streamId,
        sessionEpoch: state.sessionEpoch,
        tagId: d.tagId,
        episodeId: episode?.episodeId ?? '',
        score: d.score,
        threshold: d.acceptThreshold,
        window,
        evidence: d.evidence,
        trace: { ...trace, threshold: d.reviewThreshold },
        taxonomyVersion: rules.taxonomyVersion,
      });
    }
  }
  return { outputs, firedAfterClose };
}

/** A window fired a tag: opens an episode, or updates the one it continues. */
function fire(
  state: StreamState,
  tag: TagInfo,
  decision: TagDecision,
  trace: TraceRecord,
  window: WindowRange,
  observations: readonly Observation[],
  rules: FusionRules,
  settings: FusionSettings,
  early = false,
): TagEventOutput | 'after_close' | undefined {
  const capture = latestCapture(decision.evidence, observations);
  // The open episode this window continues: overlapping it, or within the quiet period of either end.
  const episode = state.episodes.find(
    (e) =>
      e.tagId === tag.id &&
      window.startMs <= e.lastFiredEndMs + tag.quietPeriodMs &&
      window.endMs + tag.quietPeriodMs >= e.spanStartMs,
  );
  // An incomplete window only opens: updating on every record would repeat a tag once a second while its
  // evidence grows. Updates come when complete windows are decided.
  if (episode && early) return undefined;
  if (!episode) {
    // Late evidence for an occurrence already closed (within its quiet period): not a new occurrence. It is
    // counted (firedAfterClose → livelens_fusion_after_close_total), and the closed episode stays as it was.
    if (
      state.closed.some(
        (c) =>
          c.tagId === tag.id &&
          window.startMs <= c.spanEndMs + tag.quietPeriodMs &&
          window.endMs + tag.quietPeriodMs >= c.spanStartMs,
      )
    )
      return 'after_close';
    const opened: EpisodeRecord = {
      episodeId: `${state.streamId}/${state.sessionEpoch}/${tag.id}/${window.startMs}`,
      tagId: tag.id,
      revision: 0,
      spanStartMs: window.startMs,
      spanEndMs: window.endMs,
      lastFiredEndMs: window.endMs,
      score: decision.score,
      emittedScore: decision.score,
      evidence: sortedEvidence(decision.evidence).slice(0, settings.maxEvidencePerEpisode),
      trace,
      rationale: rules.rationale(decision, window),
      latestCaptureTimeUnixMs: capture,
    };
    state.episodes.push(opened);
    const summary = state.summary[tag.id] ?? { episodes: 0, maxScore: 0 };
    state.summary[tag.id] = {
      episodes: summary.episodes + 1,
      maxScore: Math.max(summary.maxScore, opened.score),
    };
    return eventOf(state, opened, 'open', rules);
  }
  const have = new Set(episode.evidence.map(evidenceKey));
  const fresh = decision.evidence.filter((e) => !have.has(evidenceKey(e)));
  const room = Math.max(0, settings.maxEvidencePerEpisode - episode.evidence.length);
  const grew = fresh.length > 0 && room > 0;
  // Against the score last emitted, with a little slack for floating point (0.9 + 0.05 ≠ 0.95).
  const higher = decision.score - episode.emittedScore >= settings.minScoreIncrease - 1e-9;
  episode.spanStartMs = Math.min(episode.spanStartMs, window.startMs);
  episode.spanEndMs = Math.max(episode.spanEndMs, window.endMs);
  episode.lastFiredEndMs = Math.max(episode.lastFiredEndMs, window.endMs);
  episode.score = Math.max(episode.score, decision.score);
  const summary = state.summary[tag.id];
  if (summary) summary.maxScore = Math.max(summary.maxScore, episode.score);
  if (!grew && !higher) return undefined;
  episode.evidence = sortedEvidence([...episode.evidence, ...fresh.slice(0, room)]);
  episode.emittedScore = episode.score;
  episode.trace = trace;
  episode.rationale = rules.rationale(decision, window);
  episode.latestCaptureTimeUnixMs = Math.max(episode.latestCaptureTimeUnixMs, capture);
  episode.revision += 1;
  return eventOf(state, episode, 'update', rules);
}

/** Closes the episodes whose tag has been quiet for its quiet period of media time. */
function closeQuiet(state: StreamState, rules: FusionRules, watermarkMs: number): TagEventOutput[] {
  const out: TagEventOutput[] = [];
  for (const episode of [...state.episodes]) {
    const quiet = rules.tag(episode.tagId)?.quietPeriodMs ?? 0;
    if (watermarkMs < episode.lastFiredEndMs + quiet) continue;
    out.push(close(state, episode, rules));
  }
  return out;
}

/**
 * Ends the stream's current session as if both inputs were complete: the windows still waiting for the
 * watermark are decided and every open episode closes. For a session whose end ingest announced (once the
 * end grace period passed without a record), a stream that went quiet (processor.ts flushes both, flushDue)
 * and a session replaced by a new one. The outputs go to the outbox too. A stream with nothing pending gives
 * nothing.
 */
export function flushStream(
  state: StreamState,
  rules: FusionRules,
  settings: FusionSettings,
): FusionOutput[] {
  const outputs = flushPending(state, rules, settings);
  trim(state, settings);
  state.outbox.push(...outputs);
  return outputs;
}

/** The end of an ingest session, as ingest announces it on live.stream-events.v1 (observations.ts). */
export interface StreamEnd {
  readonly sessionEpoch: string;
  /** `ended`: stopped on request or the source ended; `failed`: ingest gave up. Both end the session. */
  readonly state: 'ended' | 'failed';
  /** When ingest published it (ingest's clock): tells an older session's end from a later one's. */
  readonly eventTimeUnixMs: number;
}

/**
 * What an announced end did to the state:
 * - `accepted`: the end of the current session, recorded (the stream is ended after the grace period);
 * - `next_session`: the end of a later session whose records have not come yet (the inputs lag the stream
 *   events), recorded: the current session is over too, and the later one is ended after its records;
 * - `duplicate`: that session's end is recorded already (a redelivery, or FAILED after ENDED);
 * - `stale_session`: the end of an older session (published before the current session's newest record was
 *   captured, or before an end already recorded), ignored;
 * - `unknown_stream`: no record of the stream was ever taken in, ignored (nothing to close);
 * - `invalid`: no session_epoch, not taken in (the caller dead-letters it).
 */
export type StreamEndOutcome =
  | 'accepted'
  | 'next_session'
  | 'duplicate'
  | 'stale_session'
  | 'unknown_stream'
  | 'invalid';

/**
 * Takes in an announced end of a session (mutating `state.ended` only, so a shallow copy of the state is
 * enough). It decides nothing by itself: the end races the session's last frame analyses and transcripts,
 * which other services publish later, so the processor ends the stream (flushStream) only once no record came
 * for the end grace period (flushDue). `nowUnixMs` is the processor's wall clock.
 */
export function applyStreamEnd(state: StreamState, end: StreamEnd, nowUnixMs: number): StreamEndOutcome {
  if (end.sessionEpoch === '') return 'invalid';
  if (state.sessionEpoch === '') return 'unknown_stream';
  if (state.ended?.sessionEpoch === end.sessionEpoch) return 'duplicate';
  const record: StreamEndRecord = {
    sessionEpoch: end.sessionEpoch,
    state: end.state,
    eventTimeUnixMs: end.eventTimeUnixMs,
    receivedAtUnixMs: nowUnixMs,
  };
  if (end.sessionEpoch === state.sessionEpoch) {
    state.ended = record;
    return 'accepted';
  }
  // Another session's end: older if published before the current session's newest capture (ingest stamps
  // both with its clock; applyRecord tells sessions apart the same way) or before an end already recorded.
  if (
    end.eventTimeUnixMs < state.latestCaptureTimeUnixMs ||
    (state.ended !== null && end.eventTimeUnixMs < state.ended.eventTimeUnixMs)
  )
    return 'stale_session';
  state.ended = record;
  return 'next_session';
}

/** How long a stream may go without a record before the processor ends it (wall time). */
export interface FlushTiming {
  /** A stream with no end announced. */
  readonly idleMs: number;
  /** A stream whose session ended (used when shorter than idleMs), counted from the end's arrival too. */
  readonly endGraceMs: number;
}

/**
 * When the processor should end the stream (flushStream) if no record comes before, and why: `end` once the
 * grace period passed after both the last record and the announced end, else `idle` once the idle period
 * passed after the last record.
 */
export function flushDue(
  state: StreamState,
  timing: FlushTiming,
): { atUnixMs: number; reason: 'idle' | 'end' } {
  if (state.ended === null) return { atUnixMs: state.updatedAtUnixMs + timing.idleMs, reason: 'idle' };
  const since = Math.max(state.updatedAtUnixMs, state.ended.receivedAtUnixMs);
  return { atUnixMs: since + Math.min(timing.endGraceMs, timing.idleMs), reason: 'end' };
}

function flushPending(state: StreamState, rules: FusionRules, settings: FusionSettings): FusionOutput[] {
  const fastest = Math.max(...INPUTS.map((i) => state.inputs[i] ?? NO_WATERMARK));
  if (fastest === NO_WATERMARK) return [];
  const before = state.watermarkMs ?? NO_WATERMARK;
  // Every window that holds the last media time ends by fastest + size.
  const after = Math.max(before, fastest + settings.window.sizeMs);
  const outputs: FusionOutput[] = [];
  for (const k of windowsEndingIn(settings.window, before, after))
    outputs.push(...decideWindow(state, windowAt(settings.window, k), rules, settings).outputs);
  state.watermarkMs = after;
  outputs.push(...closeAll(state, rules));
  return outputs;
}

/** Closes every open episode (the session ended). */
function closeAll(state: StreamState, rules: FusionRules): TagEventOutput[] {
  return [...state.episodes].map((episode) => close(state, episode, rules));
}

function close(state: StreamState, episode: EpisodeRecord, rules: FusionRules): TagEventOutput {
  state.episodes = state.episodes.filter((e) => e !== episode);
  state.closed.push({
    tagId: episode.tagId,
    episodeId: episode.episodeId,
    spanStartMs: episode.spanStartMs,
    spanEndMs: episode.spanEndMs,
  });
  episode.revision += 1;
  return eventOf(state, episode, 'close', rules);
}

/** The latest event of every open episode of a stream (GetStreamSummary). */
export function openEpisodeEvents(state: StreamState, rules: FusionRules): TagEventOutput[] {
  return state.episodes.map((episode) =>
    eventOf(state, episode, episode.revision === 0 ? 'open' : 'update', rules),
  );
}

function eventOf(
  state: StreamState,
  episode: EpisodeRecord,
  name: EpisodeStateName,
  rules: FusionRules,
): TagEventOutput {
  const span = { startMs: episode.spanStartMs, endMs: episode.spanEndMs };
  return {
    kind: 'tag',
    eventId: `${episode.episodeId}/${episode.revision}`,
    episodeId: episode.episodeId,
    state: name,
    revision: episode.revision,
    streamId: state.streamId,
    sessionEpoch: state.sessionEpoch,
    tagId: episode.tagId,
    score: episode.score,
    window: span,
    evidence: episode.evidence,
    trace: episode.trace,
    rationale: episode.rationale,
    taxonomyVersion: rules.taxonomyVersion,
    incomplete: state.lost.some((l) => l.startMs < span.endMs && l.endMs > span.startMs),
    latestCaptureTimeUnixMs: episode.latestCaptureTimeUnixMs,
  };
}

function sortedEvidence(evidence: readonly EvidenceItem[]): EvidenceItem[] {
  return [...evidence].sort(
    (a, b) =>
      a.mediaTimeMs - b.mediaTimeMs ||
      (evidenceKey(a) < evidenceKey(b) ? -1 : evidenceKey(a) > evidenceKey(b) ? 1 : 0),
  );
}

function latestCapture(evidence: readonly EvidenceItem[], observations: readonly Observation[]): number {
  const ids = new Set(evidence.map((e) => e.observationId));
  let latest = 0;
  for (const o of observations) if (ids.has(o.id)) latest = Math.max(latest, o.captureTimeUnixMs);
  return latest;
}

/**
 * Forgets what no future window or late record can need: observations, closed episodes and lost ranges older
 * than the allowed lateness before the oldest window still open to re-decision; then caps the observations.
 * Returns how many observations the cap evicted.
 */
function trim(state: StreamState, settings: FusionSettings): number {
  if (state.watermarkMs === null) return 0;
  const horizon = state.watermarkMs - settings.allowedLatenessMs - settings.window.sizeMs;
  state.observations = state.observations.filter((o) => o.endMs >= horizon);
  state.closed = state.closed.filter((c) => c.spanEndMs >= horizon);
  state.lost = state.lost.filter((l) => l.endMs >= horizon);
  for (const [id, r] of Object.entries(state.reviewed))
    if (r.windowEndMs < horizon) delete state.reviewed[id];
  const excess = state.observations.length - settings.maxObservations;
  if (excess > 0) state.observations = state.observations.slice(excess);
  return Math.max(0, excess);
}
