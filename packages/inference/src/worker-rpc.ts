// Request/reply between a main thread and a worker thread that runs ONNX Runtime. onnxruntime-node's run()
// holds its thread for the whole inference, and a pipeline's pre- and post-processing is CPU work too: both
// run in workers, never on a service's main thread (which must keep Kafka heartbeats, gRPC and metrics going).
import { parentPort, Worker } from 'node:worker_threads';

interface Request {
  id: number;
  method: string;
  params: unknown;
}

type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code?: string };

/** An error thrown inside a worker, as seen by the caller: the message and the LiveLensError code, if any. */
export class WorkerCallError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'WorkerCallError';
  }
}

/**
 * The worker's compiled JavaScript: `dist/<file>` beside this module once built, or, when this module runs
 * from source (the tests), the package's built copy (`npm test` builds before testing). A worker does not
 * inherit the parent's TypeScript loader, and tsx refuses to be registered from inside one.
 */
function workerUrl(file: string): URL {
  const fromSource = import.meta.url.endsWith('.ts');
  return new URL(fromSource ? `../dist/${file}` : `./${file}`, import.meta.url);
}

/** The caller's side: one worker, calls matched to replies by id. */
export class WorkerRpc {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #failure: Error | undefined;

  /** Starts `file` (a module of this package's dist/, e.g. 'session-worker.js') in a worker thread. */
  constructor(file: string) {
    this.#worker = new Worker(workerUrl(file));
    this.#worker.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new WorkerCallError(reply.message, reply.code));
    });
    const fail = (error: Error) => {
      this.#failure ??= error;
      for (const waiter of this.#pending.values()) waiter.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`worker exited (code ${code})`)));
  }

  /** Set once the worker crashed or exited: every later call fails with it. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Calls `method` in the worker. `transfer` moves those buffers instead of copying them (the caller loses them). */
  call<T>(method: string, params: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#worker.postMessage({ id, method, params } satisfies Request, transfer);
    });
  }

  /** Asks the worker to release what it holds (`close`, within 2 s), then stops it. */
  async terminate(): Promise<void> {
    if (!this.#failure) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.call('close', undefined).catch(() => undefined),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 2_000);
        }),
      ]);
      clearTimeout(timer);
    }
    await this.#worker.terminate();
  }
}

/** What a worker method returns: a value, and the buffers inside it to transfer rather than copy. */
export interface Served {
  value: unknown;
  transfer?: ArrayBuffer[];
}

/** The worker's side: answers each call with its handler's value, or with the error it threw. */
export function serveWorker(handlers: Record<string, (params: never) => Promise<Served>>): void {
  if (!parentPort) throw new Error('this module must run as a worker thread');
  const port = parentPort;
  port.on('message', async (request: Request) => {
    const handler = handlers[request.method];
    try {
      if (!handler) throw new Error(`unknown method ${request.method}`);
      const { value, transfer } = await handler(request.params as never);
      port.postMessage({ id: request.id, ok: true, value } satisfies Reply, transfer ?? []);
    } catch (error) {
      const { message, code } = error as { message?: string; code?: unknown };
      port.postMessage({
        id: request.id,
        ok: false,
        message: message ?? String(error),
        code: typeof code === 'string' ? code : undefined,
      } satisfies Reply);
    }
  });
}
