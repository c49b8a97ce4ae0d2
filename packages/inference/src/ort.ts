// ONNX Runtime itself: only worker threads import this module (see worker-rpc.ts).
import ort from 'onnxruntime-node';
import type { ExecutionProvider, Tensor } from './session.js';

/** A loaded model, used in the thread that loaded it. */
export interface OrtModel {
  readonly provider: ExecutionProvider;
  /** Why each provider tried before `provider` failed. */
  readonly failures: readonly string[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model on float32 inputs; the outputs are float32 too. */
  run(feeds: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; ms: number }>;
  release(): Promise<void>;
}

/**
 * Opens an ONNX Runtime session, trying the execution providers in order (e.g. no CUDA libraries here → the
 * next one); says which one runs and why the ones before it failed. Every worker that runs a model opens
 * it through here.
 */
export async function openOrtSession(
  modelPath: string,
  executionProviders: readonly ExecutionProvider[],
  intraOpThreads: number,
): Promise<{ session: ort.InferenceSession; provider: ExecutionProvider; failures: string[] }> {
  const failures: string[] = [];
  for (const provider of executionProviders) {
    try {
      const session = await ort.InferenceSession.create(modelPath, {
        executionProviders: [provider],
        intraOpNumThreads: intraOpThreads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      return { session, provider, failures };
    } catch (error) {
      failures.push(`${provider}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(failures.join('; '));
}

/** Loads a float32 model (see openOrtSession for the provider fallback). */
export async function loadOrtModel(
  modelPath: string,
  executionProviders: readonly ExecutionProvider[],
  intraOpThreads: number,
): Promise<OrtModel> {
  const { session, provider, failures } = await openOrtSession(modelPath, executionProviders, intraOpThreads);
  return {
    provider,
    failures,
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    async run(feeds) {
      const tensors: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds))
        tensors[name] = new ort.Tensor('float32', t.data, t.dims);
      const started = performance.now();
      const results = await session.run(tensors);
      const ms = performance.now() - started;
      const outputs: Record<string, Tensor> = {};
      for (const [name, tensor] of Object.entries(results))
        outputs[name] = { data: tensor.data as Float32Array, dims: [...tensor.dims] };
      return { outputs, ms };
    },
    release: () => session.release(),
  };
}
