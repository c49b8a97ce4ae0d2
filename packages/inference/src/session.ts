import { Worker } from 'node:worker_threads';
import { LiveLensError, type Logger } from '@livelens/runtime';
import { modelError } from './errors.js';
import type { TensorMessage, WorkerReply, WorkerRequest } from './session-protocol.js';

/** Execution providers onnxruntime-node knows; tried in the order given, falling back to the next. */
export type ExecutionProvider = 'tensorrt' | 'cuda' | 'cpu';

export interface SessionOptions {
  /** For errors and logs. */
  modelId: string;
  /** @default ['cpu'] */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads one inference may use. @default 1 (services scale by sessions and replicas, not by threads) */
  intraOpThreads?: number;
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
  /** Runs the model; the input buffers are transferred to the worker (do not reuse them). */
  run(feeds: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; ms: number }>;
  close(): Promise<void>;
}

/**
 * The worker runs compiled JavaScript: dist/session-worker.js beside this file once built, or, when this
 * module runs from source (the tests), the package's built copy (`npm test` builds before testing). A worker
 * does not inherit the parent's TypeScript loader, and tsx refuses to be registered from inside one.
 */
function startWorker(): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  return new Worker(
    new URL(fromSource ? '../dist/session-worker.js' : './session-worker.js', import.meta.url),
  );
}

/** Loads `modelPath` in a new worker, trying the execution providers in order; logs which one runs. */
export async function createModelSession(
  modelPath: string,
  options: SessionOptions,
  logger: Logger,
): Promise<ModelSession> {
  const providers = [...(options.executionProviders ?? ['cpu'])];
  const worker = startWorker();
  const pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let closed = false;
  let failure: Error | undefined;

  const init = new Promise<Extract<WorkerReply, { type: 'ready' }>>((resolve, reject) => {
    const onMessage = (message: WorkerReply) => {
      if (message.type === 'ready') resolve(message);
      else if (message.type === 'init-failed') {
        reject(
          modelError(options.modelId, `cannot load ${modelPath}: ${message.message}`, {
            code: 'failed_precondition',
          }),
        );
      } else return;
      worker.off('message', onMessage);
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  worker.on('message', (message: WorkerReply) => {
    if (message.type !== 'result' && message.type !== 'error') return;
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    waiter.resolve(message);
  });
  worker.on('error', (error) => {
    failure = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  worker.postMessage({
    type: 'init',
    modelPath,
    executionProviders: providers,
    intraOpThreads: options.intraOpThreads ?? 1,
  } satisfies WorkerRequest);

  let ready: Extract<WorkerReply, { type: 'ready' }>;
  try {
    ready = await init;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  const provider = ready.provider as ExecutionProvider;
  logger.info(
    { modelId: options.modelId, provider, requested: providers, fallbacks: ready.failures },
    'model session ready',
  );

  return {
    modelId: options.modelId,
    provider,
    inputNames: ready.inputNames,
    outputNames: ready.outputNames,
    async run(feeds) {
      if (closed) throw modelError(options.modelId, 'session is closed', { code: 'failed_precondition' });
      if (failure)
        throw modelError(options.modelId, `worker failed: ${failure.message}`, { code: 'unavailable' });
      const id = nextId++;
      const message: Record<string, TensorMessage> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, tensor] of Object.entries(feeds)) {
        const data = tensor.data.buffer.slice(
          tensor.data.byteOffset,
          tensor.data.byteOffset + tensor.data.byteLength,
        );
        message[name] = { dims: tensor.dims, data: data as ArrayBuffer };
        transfer.push(data as ArrayBuffer);
      }
      const reply = await new Promise<WorkerReply>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ type: 'run', id, feeds: message } satisfies WorkerRequest, transfer);
      });
      if (reply.type === 'error') {
        throw new LiveLensError(`model ${options.modelId}: inference failed: ${reply.message}`, {
          code: 'invalid_argument',
          context: { modelId: options.modelId },
        });
      }
      if (reply.type !== 'result') throw new Error('unexpected worker reply');
      const outputs: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(reply.outputs))
        outputs[name] = { dims: t.dims, data: new Float32Array(t.data) };
      return { outputs, ms: reply.ms };
    },
    async close() {
      if (closed) return;
      closed = true;
      worker.postMessage({ type: 'close' } satisfies WorkerRequest);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        worker.on('message', (m: WorkerReply) => {
          if (m.type === 'closed') {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await worker.terminate();
    },
  };
}
