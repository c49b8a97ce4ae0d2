import { describe, expect, it } from 'vitest';
import type { EvidenceItem, Observation, TagDecision, WindowDecision, WindowInput } from '../model.js';
import {
  applyRecord,
  applyStreamEnd,
  emptyStreamState,
  type FusionOutput,
  type FusionRecord,
  type FusionRules,
  type FusionSettings,
  flushDue,
  flushStream,
  type StreamState,
  type TagEventOutput,
} from './stream-fusion.js';

// The state machine alone, with stand-in rules: "code" in any text fires `promo` (0.9, or 0.95 when said and
// shown), "maybe" gives a review case (0.4). The real rule engine has its own tests (src/rules).

const rules: FusionRules = {
  taxonomyVersion: '1.0.0',
  tag: (id) =>
    id === 'promo'
      ? { id, kind: 'intent', name: 'Promo code', severity: 'low', quietPeriodMs: 10_000 }
      : undefined,
  evaluate(window: WindowInput): WindowDecision {
    const hits = window.observations.filter((o) => o.text.includes('code'));
    const maybes = window.observations.filter((o) => o.text.includes('maybe'));
    const decisions: TagDecision[] = [];
    const evidence = (list: Observation[]): EvidenceItem[] =>
      list.map((o) => ({
        observationId: o.id,
        kind: o.kind,
        source: o.source,
        snippet: o.text,
        mediaTimeMs: o.startMs,
        confidence: o.confidence,
        ruleId: 'promo.code',
      }));
    if (hits.length > 0 || maybes.length > 0) {
      const kinds = new Set(hits.map((o) => o.kind));
      const score = hits.length === 0 ? 0.4 : kinds.size > 1 ? 0.95 : 0.9;
      decisions.push({
        tagId: 'promo',
        score,
        fired: score >= 0.6,
        review: score >= 0.3 && score < 0.6,
        evidence: evidence(hits.length > 0 ? hits : maybes),
        evaluations: [{ ruleId: 'promo.code', matched: hits.length > 0, score, explanation: 'stand-in' }],
        formula: '1 - prod(1 - w_i * c_i)',
        acceptThreshold: 0.6,
        reviewThreshold: 0.3,
      });
    }
    return { retrieved: [{ ruleId: 'promo.code', score: 1 }], decisions };
  },
  rationale: (d, w) => `promo ${d.score} in [${w.startMs}, ${w.endMs})`,
};

const settings: FusionSettings = {
  window: { sizeMs: 10_000, hopMs: 5_000 },
  allowedLatenessMs: 30_000,
  maxInputSkewMs: 8_000,
  maxObservations: 1_000,
  maxEvidencePerEpisode: 20,
  minScoreIncrease: 0.01,
  maxMediaJumpMs: 3_600_000,
};

let offsets = { frames: 0, transcripts: 0 };
/** A frame at `ptsMs` with OCR lines. */
function frame(ptsMs: number, lines: string[] = [], epoch = 'e1'): FusionRecord {
  const offset = String(offsets.frames++);
  return {
    input: 'frames',
    topic: 'live.frame-analysis.v1',
    partition: 0,
    offset,
    sessionEpoch: epoch,
    captureTimeUnixMs: 1_000_000 + ptsMs,
    mediaTimeMs: ptsMs,
    observations: lines.map((text, i) => ({
      kind: 'screen_text',
      id: `s1/${epoch}/f/${ptsMs}#t${i}`,
      startMs: ptsMs,
      endMs: ptsMs,
      text,
      confidence: 0.9,
      language: '',
      captureTimeUnixMs: 1_000_000 + ptsMs,
      source: { topic: 'live.frame-analysis.v1', partition: 0, offset, recordId: `s1/${epoch}/f/${ptsMs}` },
    })),
  };
}
/** A final transcript segment [startMs, endMs). */
function speech(startMs: number, endMs: number, text: string, epoch = 'e1'): FusionRecord {
  const offset = String(offsets.transcripts++);
  const id = `s1/${epoch}/s/${startMs}`;
  return {
    input: 'transcripts',
    topic: 'live.transcripts.v1',
    partition: 0,
    offset,
    sessionEpoch: epoch,
    captureTimeUnixMs: 1_000_000 + startMs,
    mediaTimeMs: endMs,
    observations: [
      {
        kind: 'speech',
        id,
        startMs,
        endMs,
        text,
        confidence: 0.8,
        language: 'en',
        captureTimeUnixMs: 1_000_000 + startMs,
        source: { topic: 'live.transcripts.v1', partition: 0, offset, recordId: id },
      },
    ],
  };
}

function run(records: FusionRecord[], state = emptyStreamState('s1')) {
  const outputs: FusionOutput[] = [];
  for (const r of records) {
    const result = applyRecord(state, r, rules, settings);
    if (result.outcome === 'applied') outputs.push(...result.outputs);
  }
  return { state, outputs };
}
const tags = (outputs: readonly FusionOutput[]) =>
  outputs.filter((o): o is TagEventOutput => o.kind === 'tag');
const brief = (outputs: readonly FusionOutput[]) => tags(outputs).map((e) => `${e.state} ${e.eventId}`);
/** Frames every second from `fromMs` to `toMs` (exclusive), no text. */
const quietFrames = (fromMs: number, toMs: number) =>
  Array.from({ length: (toMs - fromMs) / 1_000 }, (_, i) => frame(fromMs + i * 1_000));

describe('stream fusion state machine', () => {
  it('opens one episode across overlapping windows, updates it as evidence grows, closes it after the quiet period', () => {
    offsets = { frames: 0, transcripts: 0 };
    const { outputs, state } = run([
      ...quietFrames(0, 12_000),
      frame(12_000, ['use code SAVE20']),
      ...quietFrames(13_000, 16_000),
      frame(16_000, ['code SAVE20 again']),
      ...quietFrames(17_000, 60_000),
    ]);
    // Windows [5,15) and [10,20) both see 12 s; [10,20) and [15,25) see 16 s: one episode, opened at the
    // first window that fired, one update for the new evidence, closed 10 s after the last firing window.
    expect(brief(outputs)).toEqual([
      'open s1/e1/promo/5000/0',
      'update s1/e1/promo/5000/1',
      'close s1/e1/promo/5000/2',
    ]);
    const closed = tags(outputs)[2];
    expect(closed?.window).toEqual({ startMs: 5_000, endMs: 25_000 });
    expect(closed?.evidence.map((e) => e.snippet)).toEqual(['use code SAVE20', 'code SAVE20 again']);
    expect(closed?.rationale).toBe('promo 0.9 in [10000, 20000)');
    expect(state.episodes).toEqual([]);
    expect(state.outbox).toHaveLength(3);
  });

  it('with early firing, opens a tag at the record that makes it, before the window completes; the complete window only updates it', () => {
    offsets = { frames: 0, transcripts: 0 };
    const early = { ...settings, earlyFiring: true };
    const state = emptyStreamState('s1');
    const outputs: FusionOutput[] = [];
    const apply = (r: FusionRecord) => {
      const result = applyRecord(state, r, rules, early);
      if (result.outcome === 'applied') outputs.push(...result.outputs);
      return result;
    };
    for (const r of quietFrames(0, 3_000)) apply(r);
    // The code is on screen at 3 s: the watermark is far behind (frames only, skew bound: -5 s), yet the
    // episode opens now, from window [0,10), the one the record falls in that starts first.
    const at = apply(frame(3_000, ['use code SAVE20']));
    expect(at.outcome === 'applied' && brief(at.outputs)).toEqual(['open s1/e1/promo/0/0']);
    expect(state.watermarkMs).toBeLessThan(0);
    // A "maybe" in an incomplete window gives no review item; the complete window decides it later.
    const maybe = apply(frame(4_000, ['maybe']));
    expect(maybe.outcome === 'applied' && maybe.outputs).toEqual([]);
    // More evidence in the incomplete window updates nothing yet (no tag event per record).
    const more = apply(frame(4_500, ['code SAVE20 again']));
    expect(more.outcome === 'applied' && more.outputs).toEqual([]);
    for (const r of quietFrames(5_000, 40_000)) apply(r);
    // The complete window [0,10) updates it once with the evidence that came since; then it closes.
    expect(brief(outputs)).toEqual([
      'open s1/e1/promo/0/0',
      'update s1/e1/promo/0/1',
      'close s1/e1/promo/0/2',
    ]);
    expect(tags(outputs)[1]?.evidence.map((e) => e.snippet)).toEqual([
      'use code SAVE20',
      'code SAVE20 again',
    ]);
    // Without early firing the same records open the same episode, only later (window [0,10) at watermark 10 s).
    offsets = { frames: 0, transcripts: 0 };
    const late = run([
      ...quietFrames(0, 3_000),
      frame(3_000, ['use code SAVE20']),
      frame(4_000, ['maybe']),
      frame(4_500, ['code SAVE20 again']),
      ...quietFrames(5_000, 40_000),
    ]);
    expect(brief(late.outputs)).toEqual(['open s1/e1/promo/0/0', 'close s1/e1/promo/0/1']);
    const openedAt = (list: FusionOutput[]) => tags(list)[0]?.window;
    expect(openedAt(outputs)).toEqual(openedAt(late.outputs));
    expect(outputs.some((o) => o.kind === 'review')).toBe(false);
  });

  it('decides windows without transcripts when speech is quiet (skew bound), and takes a late segment in', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    // 20 s of frames only: the watermark is 20 - 8 = 12 s (skew bound), so window [0,10) is decided.
    const first = run(quietFrames(0, 21_000), state);
    expect(state.watermarkMs).toBe(12_000);
    expect(first.outputs).toEqual([]);
    // A segment said at [3 s, 6 s) arrives now (ASR finals come after the utterance): late but allowed.
    const late = applyRecord(state, speech(3_000, 6_000, 'use code SAVE20'), rules, settings);
    expect(late.outcome).toBe('applied');
    if (late.outcome !== 'applied') return;
    // Window [0,10) is decided again and fires: the episode opens at 0 (it would have, had the segment been
    // on time). The transcripts watermark (6 s) is behind the frames: the stream watermark stays 12 s.
    expect(late.windowsRedecided).toBe(1);
    expect(brief(late.outputs)).toEqual(['open s1/e1/promo/0/0']);
    expect(state.watermarkMs).toBe(12_000);
  });

  it('dead-letters data older than the allowed lateness, and skips a redelivered record', () => {
    offsets = { frames: 0, transcripts: 0 };
    const { state } = run(quietFrames(0, 60_000));
    expect(state.watermarkMs).toBe(51_000);
    const tooLate = applyRecord(state, speech(5_000, 8_000, 'use code SAVE20'), rules, settings);
    expect(tooLate).toMatchObject({ outcome: 'late' });
    expect(tooLate.outcome === 'late' && tooLate.reason).toMatch(/43000 ms behind the stream watermark/);
    const again = frame(60_000);
    expect(applyRecord(state, again, rules, settings).outcome).toBe('applied');
    expect(applyRecord(state, again, rules, settings)).toEqual({ outcome: 'duplicate' });
  });

  it('gives the same outputs when the state is saved and reloaded (JSON) at any record, as after a restart', () => {
    offsets = { frames: 0, transcripts: 0 };
    const records = [
      ...quietFrames(0, 8_000),
      speech(2_000, 4_000, 'hello'),
      frame(8_000, ['maybe later']),
      ...quietFrames(9_000, 14_000),
      speech(11_000, 13_000, 'use code SAVE20'),
      frame(14_000, ['code SAVE20']),
      ...quietFrames(15_000, 50_000),
    ];
    const reference = run(records).outputs;
    expect(brief(reference).length).toBeGreaterThanOrEqual(2);
    expect(reference.some((o) => o.kind === 'review')).toBe(true);
    for (const cut of [1, 9, 10, 15, 30]) {
      let state = emptyStreamState('s1');
      const outputs: FusionOutput[] = [];
      for (const [i, r] of records.entries()) {
        if (i === cut) state = JSON.parse(JSON.stringify(state)) as StreamState;
        const result = applyRecord(state, r, rules, settings);
        if (result.outcome === 'applied') outputs.push(...result.outputs);
      }
      expect(JSON.stringify(outputs)).toBe(JSON.stringify(reference));
    }
  });

  it('puts both modalities in one episode and raises its score when speech confirms the screen', () => {
    offsets = { frames: 0, transcripts: 0 };
    const { outputs } = run([
      ...quietFrames(0, 3_000),
      frame(3_000, ['code SAVE20']),
      speech(2_500, 4_500, 'use code SAVE20 at checkout'),
      ...quietFrames(4_000, 40_000),
    ]);
    const events = tags(outputs);
    expect(events.map((e) => e.state)).toEqual(['open', 'close']);
    // Both arrived before window [0,10) was decided, so it opened with both (0.95).
    expect(events[0]?.score).toBe(0.95);
    expect(new Set(events[0]?.evidence.map((e) => e.kind))).toEqual(new Set(['screen_text', 'speech']));
    expect(events[0]?.latestCaptureTimeUnixMs).toBe(1_003_000);
  });

  it('emits a review item for a decision between the review and accept thresholds', () => {
    offsets = { frames: 0, transcripts: 0 };
    const { outputs } = run([frame(1_000, ['maybe later']), ...quietFrames(2_000, 25_000)]);
    const reviews = outputs.filter((o) => o.kind === 'review');
    expect(reviews.map((r) => r.kind === 'review' && r.reviewId)).toEqual(['s1/e1/promo/0']);
    expect(reviews[0]).toMatchObject({ score: 0.4, threshold: 0.6, episodeId: '' });
    expect(tags(outputs)).toEqual([]);
  });

  it("closes the old session's episodes when a new session starts, and refuses records of the old one after", () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    run([frame(1_000, ['code A']), ...quietFrames(2_000, 20_000)], state);
    expect(state.episodes).toHaveLength(1);
    const next = frame(0, [], 'e2');
    const result = applyRecord(state, { ...next, captureTimeUnixMs: 2_000_000 }, rules, settings);
    expect(result.outcome === 'applied' && brief(result.outputs)).toEqual(['close s1/e1/promo/0/1']);
    expect(state.sessionEpoch).toBe('e2');
    expect(state.watermarkMs).toBe(-8_000);
    const stale = applyRecord(state, frame(21_000, [], 'e1'), rules, settings);
    expect(stale).toMatchObject({ outcome: 'late' });
  });

  it('marks an episode incomplete when a frame of its span was shed upstream', () => {
    offsets = { frames: 0, transcripts: 0 };
    const records = [frame(1_000, ['code A']), ...quietFrames(2_000, 4_000)];
    records.push({ ...frame(4_000), lost: { startMs: 4_000, endMs: 4_001 } }, ...quietFrames(5_000, 30_000));
    const { outputs } = run(records);
    expect(tags(outputs).map((e) => e.incomplete)).toEqual([true, true]);
  });

  it('flushes a stream that stopped: pending windows decided, open episodes closed', () => {
    offsets = { frames: 0, transcripts: 0 };
    const { state, outputs } = run([
      ...quietFrames(0, 27_000),
      frame(27_000, ['code A']),
      frame(28_000),
      frame(29_000),
    ]);
    // The watermark (29 - 8 = 21 s) has not reached the window with 27 s: nothing yet.
    expect(tags(outputs)).toEqual([]);
    const flushed = flushStream(state, rules, settings);
    expect(brief(flushed)).toEqual(['open s1/e1/promo/20000/0', 'close s1/e1/promo/20000/1']);
    expect(state.episodes).toEqual([]);
    expect(state.outbox.slice(-2)).toEqual(flushed);
    // Nothing pending any more: a second flush gives nothing.
    expect(flushStream(state, rules, settings)).toEqual([]);
  });

  it("decides the old session's pending windows before closing its episodes when a new session starts", () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    run([...quietFrames(0, 27_000), frame(27_000, ['code A']), frame(28_000)], state);
    const result = applyRecord(
      state,
      { ...frame(0, [], 'e2'), captureTimeUnixMs: 3_000_000 },
      rules,
      settings,
    );
    expect(result.outcome === 'applied' && brief(result.outputs)).toEqual([
      'open s1/e1/promo/20000/0',
      'close s1/e1/promo/20000/1',
    ]);
  });

  it('does not re-decide windows older than the retention horizon (no phantom episode from a long late segment)', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    const first = run(
      [...quietFrames(0, 52_000), frame(52_000, ['code X']), ...quietFrames(53_000, 110_000)],
      state,
    );
    expect(brief(first.outputs)).toEqual(['open s1/e1/promo/45000/0', 'close s1/e1/promo/45000/1']);
    // Watermark 101 s, horizon 101 - 30 - 10 = 61 s: a segment [52 s, 72 s) is within the lateness by its end,
    // but the windows before 61 s are not decided again (their frames are trimmed).
    const late = applyRecord(state, speech(52_000, 72_000, 'use code X now'), rules, settings);
    expect(late.outcome).toBe('applied');
    if (late.outcome !== 'applied') return;
    expect(tags(late.outputs).map((e) => e.eventId)).not.toContain('s1/e1/promo/45000/0');
  });

  it('counts late evidence within the quiet period of a closed episode instead of opening a second one', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    const first = run(
      [...quietFrames(0, 12_000), frame(12_000, ['code A']), ...quietFrames(13_000, 58_000)],
      state,
    );
    expect(brief(first.outputs)).toEqual(['open s1/e1/promo/5000/0', 'close s1/e1/promo/5000/1']);
    // Said at 31–33 s, consumed late: window [30,40) fires, 10 s after the closed span [5,20) + 10 s quiet.
    const late = applyRecord(state, speech(31_000, 33_000, 'code again'), rules, settings);
    expect(late).toMatchObject({ outcome: 'applied', firedAfterClose: 2, outputs: [] });
  });

  it('emits a review item again only when the re-decided window says something new', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    // Speech runs ahead, so every frame is behind the watermark and re-decides its windows.
    run([speech(0, 30_000, 'hello there')], state);
    const reviews: FusionOutput[] = [];
    for (const t of [1_000, 2_000, 3_000]) {
      const r = applyRecord(state, frame(t, t === 1_000 ? ['maybe'] : ['nothing']), rules, settings);
      if (r.outcome === 'applied') reviews.push(...r.outputs.filter((o) => o.kind === 'review'));
    }
    // Window [0,10) is re-decided three times; its review item (score, evidence) changed only once.
    expect(reviews.map((r) => r.kind === 'review' && r.reviewId)).toEqual(['s1/e1/promo/0']);
  });

  it('updates on a score rise of exactly minScoreIncrease (no floating-point miss), and keeps the highest score', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    // One evidence item per episode: no room for more, so only the score can make an UPDATE.
    const strict = { ...settings, minScoreIncrease: 0.05, maxEvidencePerEpisode: 1 };
    const outputs: FusionOutput[] = [];
    for (const r of [...quietFrames(0, 3_000), frame(3_000, ['code A'])]) {
      const x = applyRecord(state, r, rules, strict);
      if (x.outcome === 'applied') outputs.push(...x.outputs);
    }
    for (const r of [
      ...quietFrames(4_000, 19_000),
      speech(12_000, 14_000, 'code A said'),
      frame(19_000, ['code A']),
      speech(20_000, 29_000, 'and now something else'),
      ...quietFrames(20_000, 30_000),
    ]) {
      const x = applyRecord(state, r, rules, strict);
      if (x.outcome === 'applied') outputs.push(...x.outputs);
    }
    // 0.9 when shown, then 0.95 once said and shown in one window: a rise of exactly 0.05.
    expect(tags(outputs).map((e) => [e.state, e.score])).toEqual([
      ['open', 0.9],
      ['update', 0.95],
    ]);
  });

  it('dead-letters records without a session and records whose media time jumps ahead', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    run(quietFrames(0, 5_000), state);
    expect(applyRecord(state, { ...frame(5_000), sessionEpoch: '' }, rules, settings)).toMatchObject({
      outcome: 'invalid',
      reason: 'the record has no session_epoch',
    });
    const jump = applyRecord(state, frame(2 ** 40), rules, settings);
    expect(jump.outcome).toBe('invalid');
    expect(jump.outcome === 'invalid' && jump.reason).toMatch(/jumps .* ahead of the stream/);
    // Nothing of it was taken in: the stream's watermark did not move.
    expect(state.watermarkMs).toBe(-4_000);
  });

  it('bounds the observations a stream holds', () => {
    offsets = { frames: 0, transcripts: 0 };
    const state = emptyStreamState('s1');
    let evicted = 0;
    for (let t = 0; t < 20; t += 1) {
      const r = applyRecord(state, frame(t * 100, ['a', 'b', 'c']), rules, {
        ...settings,
        maxObservations: 10,
      });
      if (r.outcome === 'applied') evicted += r.observationsEvicted;
    }
    expect(state.observations).toHaveLength(10);
    expect(evicted).toBe(50);
  });

  describe('announced end of a session', () => {
    const timing = { idleMs: 60_000, endGraceMs: 5_000 };
    /** Capture times of frame(pts) are 1_000_000 + pts (ingest's clock); the processor's clock is apart. */
    const end = (sessionEpoch: string, eventTimeUnixMs: number, state: 'ended' | 'failed' = 'ended') => ({
      sessionEpoch,
      state,
      eventTimeUnixMs,
    });

    it('records the end of the current session; the stream is due after the grace period, not the idle one', () => {
      offsets = { frames: 0, transcripts: 0 };
      const { state } = run([frame(1_000, ['code A']), ...quietFrames(2_000, 20_000)]);
      state.updatedAtUnixMs = 5_000_000;
      expect(flushDue(state, timing)).toEqual({ atUnixMs: 5_060_000, reason: 'idle' });
      const outbox = state.outbox.length;
      expect(applyStreamEnd(state, end('e1', 1_020_000), 5_001_000)).toBe('accepted');
      expect(state.ended).toEqual({
        sessionEpoch: 'e1',
        state: 'ended',
        eventTimeUnixMs: 1_020_000,
        receivedAtUnixMs: 5_001_000,
      });
      // Nothing decided by the end itself (the session's last records may still come).
      expect(state.episodes).toHaveLength(1);
      expect(state.outbox).toHaveLength(outbox);
      // The grace runs from the later of the last record and the end's arrival, and never past the idle period.
      expect(flushDue(state, timing)).toEqual({ atUnixMs: 5_006_000, reason: 'end' });
      state.updatedAtUnixMs = 5_003_000;
      expect(flushDue(state, timing)).toEqual({ atUnixMs: 5_008_000, reason: 'end' });
      expect(flushDue(state, { idleMs: 2_000, endGraceMs: 5_000 })).toEqual({
        atUnixMs: 5_005_000,
        reason: 'end',
      });
      // A redelivery, or FAILED after ENDED: the first end stays.
      expect(applyStreamEnd(state, end('e1', 1_021_000, 'failed'), 5_009_000)).toBe('duplicate');
      expect(state.ended?.receivedAtUnixMs).toBe(5_001_000);
      // The ended session's last records still count (its episode takes the new evidence); then the flush
      // (processor.flushIdle, once due) closes the episode.
      expect(applyRecord(state, frame(20_000, ['code B']), rules, settings)).toMatchObject({
        outcome: 'applied',
      });
      expect(brief(flushStream(state, rules, settings))).toEqual([
        'update s1/e1/promo/0/1',
        'close s1/e1/promo/0/2',
      ]);
    });

    it('ignores the end of an older session and of a stream never seen; refuses one without a session', () => {
      offsets = { frames: 0, transcripts: 0 };
      const fresh = emptyStreamState('s1');
      expect(applyStreamEnd(fresh, end('e1', 1_000_000), 1)).toBe('unknown_stream');
      expect(fresh).toEqual(emptyStreamState('s1'));
      const state = emptyStreamState('s1');
      run([frame(1_000, ['code A']), ...quietFrames(2_000, 10_000)], state);
      applyRecord(state, { ...frame(0, [], 'e2'), captureTimeUnixMs: 2_000_000 }, rules, settings);
      expect(state.sessionEpoch).toBe('e2');
      // e1 ended before e2's newest record was captured.
      expect(applyStreamEnd(state, end('e1', 1_010_000), 1)).toBe('stale_session');
      expect(state.ended).toBeNull();
      expect(flushDue(state, timing).reason).toBe('idle');
      expect(applyStreamEnd(state, end('', 2_000_500), 1)).toBe('invalid');
      expect(state.ended).toBeNull();
    });

    it('keeps the end of a later session that came before its records: the current session is over, and the later one ends after its records', () => {
      offsets = { frames: 0, transcripts: 0 };
      const state = emptyStreamState('s1');
      run([frame(1_000, ['code A']), ...quietFrames(2_000, 10_000)], state);
      // e2 started (and ended) after e1's newest capture; none of e2's records came yet.
      expect(applyStreamEnd(state, end('e2', 2_005_000), 7_000_000)).toBe('next_session');
      expect(flushDue(state, timing)).toMatchObject({ reason: 'end' });
      // An end older than the one recorded does not replace it.
      expect(applyStreamEnd(state, end('e0', 2_004_000), 7_000_001)).toBe('stale_session');
      expect(state.ended?.sessionEpoch).toBe('e2');
      // e2's first record: e1's pending window is decided and its episode closes; e2 keeps its end.
      const first = applyRecord(
        state,
        { ...frame(0, [], 'e2'), captureTimeUnixMs: 2_000_000 },
        rules,
        settings,
      );
      expect(first.outcome === 'applied' && brief(first.outputs)).toEqual([
        'open s1/e1/promo/0/0',
        'close s1/e1/promo/0/1',
      ]);
      expect(state.ended?.sessionEpoch).toBe('e2');
      expect(flushDue(state, timing)).toMatchObject({ reason: 'end' });
      expect(applyStreamEnd(state, end('e2', 2_005_000), 7_000_002)).toBe('duplicate');
      // e3 starts: e2's end goes with e2's timeline.
      applyRecord(state, { ...frame(0, [], 'e3'), captureTimeUnixMs: 3_000_000 }, rules, settings);
      expect(state.ended).toBeNull();
      expect(flushDue(state, timing).reason).toBe('idle');
    });

    it('survives a JSON round trip of the state (as the store keeps it)', () => {
      offsets = { frames: 0, transcripts: 0 };
      const { state } = run([frame(1_000, ['code A'])]);
      applyStreamEnd(state, end('e1', 1_001_000, 'failed'), 9_000);
      const reloaded = JSON.parse(JSON.stringify(state)) as StreamState;
      expect(reloaded.ended).toEqual(state.ended);
      expect(flushDue(reloaded, timing)).toEqual(flushDue(state, timing));
    });
  });
});
