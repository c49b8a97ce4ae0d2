import { LiveLensError, type Logger } from '@livelens/runtime';
import { modelError } from './errors.js';
import { SupervisedWorker } from './worker-rpc.js';

/** Execution providers onnxruntime-node knows; tried in the order given, falling back to the next. */
export type ExecutionProvider = 'tensorrt' | 'cuda' | 'cpu';

export interface SessionOptions {
  /** For errors and logs. */
  modelId: string;
  /** @default ['cpu'] */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads one inference may use. @default 1 (services scale by sessions and replicas, not by threads) */
  intraOpThreads?: number;
  /** A run not done by then fails (retriable) and its worker is replaced. @default 120000 */
  runTimeoutMs?: number;
}

/** A float32 tensor: flat data and its dimensions. */
export interface Tensor {
  data: Float32Array;
  dims: number[];
}

/**
 * An ONNX Runtime session in a worker thread: `run` never blocks the caller's event loop. One run at a time
 * per session (ONNX Runtime parallelises inside a run); callers batch across streams to fill it.
 */
export interface ModelSession {
  readonly modelId: string;
  /** The execution provider that actually runs (after any fallback). */
  readonly provider: ExecutionProvider;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Set once the worker died and could not be restarted: the session is unusable (fail liveness). */
  readonly failure: LiveLensError | undefined;
  /**
   * Runs the model; the input buffers are transferred to the worker (do not reuse them; a tensor must own its
   * whole buffer, not be a view into a larger one).
   */
  run(feeds: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; ms: number }>;
  close(): Promise<void>;
}

/**
 * Loads `modelPath` in a new worker, trying the execution providers in order; logs which one runs. The worker
 * is supervised: if it dies (or a run passes `runTimeoutMs`), the next run starts a new one.
 */
export async function createModelSession(
  modelPath: string,
  options: SessionOptions,
  logger: Logger,
): Promise<ModelSession> {
  const providers = [...(options.executionProviders ?? ['cpu'])];
  const runTimeoutMs = options.runTimeoutMs ?? 120_000;
  let started: { worker: SupervisedWorker<unknown>; ready: Ready };
  try {
    started = await SupervisedWorker.start<unknown, Ready>('session-worker.js', `model ${options.modelId}`, {
      modelPath,
      executionProviders: providers,
      intraOpThreads: options.intraOpThreads ?? 1,
    });
  } catch (error) {
    throw modelError(options.modelId, `cannot load ${modelPath}: ${(error as Error).message}`, {
      code: 'failed_precondition',
    });
  }
  const { worker, ready } = started;
  logger.info(
    { modelId: options.modelId, provider: ready.provider, requested: providers, fallbacks: ready.failures },
    'model session ready',
  );
  let closed = false;
  return {
    modelId: options.modelId,
    provider: ready.provider,
    inputNames: ready.inputNames,
    outputNames: ready.outputNames,
    get failure() {
      return worker.failure;
    },
    async run(feeds) {
      if (closed) throw modelError(options.modelId, 'session is closed', { code: 'failed_precondition' });
      const transfer: ArrayBuffer[] = [];
      const message: Record<string, Tensor> = {};
      for (const [name, tensor] of Object.entries(feeds)) {
        message[name] = tensor;
        transfer.push(tensor.data.buffer as ArrayBuffer);
      }
      try {
        return await worker.call('run', message, { transfer, timeoutMs: runTimeoutMs });
      } catch (error) {
        const cause = LiveLensError.from(error);
        throw new LiveLensError(`model ${options.modelId}: inference failed: ${cause.message}`, {
          code: cause.code,
          retriable: cause.retriable,
          cause,
          context: { modelId: options.modelId },
        });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await worker.close();
    },
  };
}

interface Ready {
  provider: ExecutionProvider;
  failures: string[];
  inputNames: string[];
  outputNames: string[];
}
