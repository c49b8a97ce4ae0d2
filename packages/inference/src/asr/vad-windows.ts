// The model side of the VAD, free of the rest of the package so that the worker loads little: Silero v5's
// constants, and the loop that runs many streams' windows through the model batched across streams.

/** The only sample rate the VAD takes (Silero v5 also knows 8 kHz; live.audio.v1 is 16 kHz). */
export const VAD_SAMPLE_RATE = 16_000;
/** Samples per model step at 16 kHz: one probability per 32 ms. */
export const VAD_WINDOW_SAMPLES = 512;
/**
 * Samples of the previous window that Silero v5 sees before each window (its OnnxWrapper prepends them): the
 * model input is 64 + 512 = 576 samples. Without them the probabilities drift from the reference's.
 */
export const VAD_CONTEXT_SAMPLES = 64;
/** The recurrent state per stream: [2, 128] (the model's `state` is [2, B, 128]). */
export const VAD_STATE_SIZE = 2 * 128;
const STATE_HALF = 128;
const ROW = VAD_CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES;

/** One stream's audio for a model call: 64 samples of context, then whole and partial windows (s16). */
export interface VadWindowJob {
  readonly audio: Int16Array;
  /** [2, 128] recurrent state before the first window. */
  readonly state: Float32Array;
}

/** Silero on `batch` rows: input [batch, 576] in [-1, 1], state [2, batch, 128] → probability [batch], state. */
export type VadModelStep = (
  input: Float32Array,
  state: Float32Array,
  batch: number,
) => Promise<{ probabilities: Float32Array; state: Float32Array }>;

/** Whole windows in a job's audio (after its context). */
export function vadWindowCount(audioLength: number): number {
  return Math.max(0, Math.floor((audioLength - VAD_CONTEXT_SAMPLES) / VAD_WINDOW_SAMPLES));
}

/**
 * Runs every whole window of every job: step k batches the k-th window of each job that has one, so one
 * model run serves all streams (the recurrent state makes a stream's own windows sequential). Jobs are
 * ordered by window count, so the rows still running are always a prefix of the batch.
 */
export async function runVadWindows(
  jobs: readonly VadWindowJob[],
  step: VadModelStep,
): Promise<{ probabilities: Float32Array[]; states: Float32Array[]; runs: number }> {
  const windows = jobs.map((job) => vadWindowCount(job.audio.length));
  const order = jobs.map((_, i) => i).sort((a, b) => (windows[b] as number) - (windows[a] as number));
  const probabilities = windows.map((n) => new Float32Array(n));
  const states = jobs.map((job) => Float32Array.from(job.state));
  const steps = order.length > 0 ? (windows[order[0] as number] as number) : 0;
  let batch = order.length;
  let input = new Float32Array(0);
  let state = new Float32Array(0);
  for (let k = 0; k < steps; k++) {
    while (batch > 0 && (windows[order[batch - 1] as number] as number) <= k) batch--;
    if (input.length !== batch * ROW) {
      input = new Float32Array(batch * ROW);
      state = new Float32Array(batch * VAD_STATE_SIZE);
    }
    const from = k * VAD_WINDOW_SAMPLES;
    for (let b = 0; b < batch; b++) {
      const job = order[b] as number;
      const audio = (jobs[job] as VadWindowJob).audio;
      const row = b * ROW;
      for (let j = 0; j < ROW; j++) input[row + j] = (audio[from + j] as number) / 32768;
      const s = states[job] as Float32Array;
      state.set(s.subarray(0, STATE_HALF), b * STATE_HALF);
      state.set(s.subarray(STATE_HALF), (batch + b) * STATE_HALF);
    }
    const out = await step(input, state, batch);
    for (let b = 0; b < batch; b++) {
      const job = order[b] as number;
      (probabilities[job] as Float32Array)[k] = out.probabilities[b] as number;
      const s = states[job] as Float32Array;
      s.set(out.state.subarray(b * STATE_HALF, (b + 1) * STATE_HALF), 0);
      s.set(out.state.subarray((batch + b) * STATE_HALF, (batch + b + 1) * STATE_HALF), STATE_HALF);
    }
  }
  return { probabilities, states, runs: steps };
}
