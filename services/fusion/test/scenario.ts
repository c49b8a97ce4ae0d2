import type { FrameAnalysis, TranscriptSegment } from '@livelens/contracts';
import type { Publisher } from '@livelens/runtime';
import { waitFor } from '@livelens/test-support';
import { analysis, type KafkaClient, segment, type testNamespace } from './harness.js';

/** What is published at one step of a scripted stream. */
export interface Step {
  readonly frames: FrameAnalysis[];
  readonly transcripts: TranscriptSegment[];
}

export const STREAM = 'shop-1';
/** The last frame's media time, s: long enough after the last tag for every episode's quiet period to pass. */
const LAST_S = 75;

/**
 * A 76 s live-commerce stream, one frame analysis a second, and what the ASR says, each published when it
 * would be (a final segment after its utterance ended, so after the frames of its media time):
 * - 12–14 s: "CODE: SAVE20" and "$29.99" on screen; "Use code SAVE20 at checkout, link in my bio" said at 10.5–13.5 s,
 *   published with the 15 s frame (out of order with the frames);
 * - 20–23 s: "This game is so fun" (a hard negative for gambling);
 * - 25–28 s: "DM me on WhatsApp to order", a partial of it first (skipped), the final with the 30 s frame;
 * - with the last frame, a final segment at 2–4 s "bet on the casino tonight": later than the allowed
 *   lateness (10 s in these tests) behind the watermark, so dead-lettered, not applied.
 */
export function scenario(captureStartMs: number): Step[] {
  const c = { captureStartMs };
  const steps: Step[] = [];
  for (let t = 0; t <= LAST_S; t += 1) {
    const lines = t >= 12 && t <= 14 ? ['CODE: SAVE20', '$29.99'] : [];
    const step: Step = { frames: [analysis(STREAM, t * 1_000, lines, c)], transcripts: [] };
    if (t === 15)
      step.transcripts.push(
        segment(STREAM, 10_500, 13_500, 'Use code SAVE20 at checkout, link in my bio.', c),
      );
    if (t === 24) step.transcripts.push(segment(STREAM, 20_000, 23_000, 'This game is so fun.', c));
    if (t === 27) step.transcripts.push(segment(STREAM, 25_000, 27_000, 'DM me on', { ...c, final: false }));
    if (t === 30) step.transcripts.push(segment(STREAM, 25_000, 28_000, 'DM me on WhatsApp to order.', c));
    if (t === LAST_S) step.transcripts.push(segment(STREAM, 2_000, 4_000, 'Bet on the casino tonight.', c));
    steps.push(step);
  }
  return steps;
}

/**
 * Publishes steps one at a time and waits, after each, until fusion has committed everything published so far
 * on both inputs: the two inputs then reach fusion in the scripted interleaving, whatever the consumers'
 * timing, so two runs see the same input order.
 */
export async function publishSteps(
  publisher: Publisher,
  admin: ReturnType<KafkaClient['admin']>,
  ns: ReturnType<typeof testNamespace>,
  steps: readonly Step[],
  options: { onStep?: (index: number) => Promise<void>; stepTimeoutMs?: number } = {},
): Promise<void> {
  const published = { frames: new Map<number, bigint>(), transcripts: new Map<number, bigint>() };
  for (const [i, step] of steps.entries()) {
    for (const [input, spec, messages] of [
      ['frames', ns.topics.frameAnalysis, step.frames],
      ['transcripts', ns.topics.transcripts, step.transcripts],
    ] as const)
      for (const message of messages) {
        const [sent] = await publisher.publish(spec as typeof ns.topics.frameAnalysis, {
          message: message as FrameAnalysis,
        });
        if (sent) published[input].set(sent.partition, BigInt(sent.baseOffset) + 1n);
      }
    await waitFor(
      `step ${i} committed`,
      async () => {
        for (const [input, topic] of [
          ['frames', ns.topics.frameAnalysis.name],
          ['transcripts', ns.topics.transcripts.name],
        ] as const) {
          const committed = await admin.committedOffsets(`${ns.groupId}-${input}`, topic);
          for (const [partition, end] of published[input])
            if (BigInt(committed.get(partition) ?? '-1') < end) return undefined;
        }
        return true;
      },
      { timeoutMs: options.stepTimeoutMs ?? 30_000, intervalMs: 50 },
    );
    await options.onStep?.(i);
  }
}
