// Request/reply between a main thread and a worker thread that runs ONNX Runtime. onnxruntime-node's run()
// holds its thread for the whole inference, and a pipeline's pre- and post-processing is CPU work too: both
// run in workers, never on a service's main thread (which must keep Kafka heartbeats, gRPC and metrics going).
import { parentPort, Worker } from 'node:worker_threads';
import { type ErrorCode, LiveLensError } from '@livelens/runtime';

interface Request {
  id: number;
  method: string;
  params: unknown;
}

type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; code?: string };

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'invalid_argument',
  'permission_denied',
  'not_found',
  'already_exists',
  'resource_exhausted',
  'failed_precondition',
  'unavailable',
  'deadline_exceeded',
  'cancelled',
  'invalid_config',
  'invalid_message',
  'internal',
]);

/**
 * An error thrown inside a worker, as the caller sees it: the message, and the LiveLensError code it had
 * there. An error without one (an ONNX Runtime failure, a bug) is `internal`: never blamed on the input, so a
 * consumer retries it rather than dead-letter the record.
 */
export class WorkerCallError extends LiveLensError {
  constructor(message: string, code: ErrorCode) {
    super(message, { code });
  }
}

/**
 * The worker's compiled JavaScript: `dist/<file>` beside this module once built, or, when this module runs
 * from source (the tests), the package's built copy (`npm test` builds before testing). A worker does not
 * inherit the parent's TypeScript loader, and tsx refuses to be registered from inside one.
 */
function workerUrl(file: string | URL): URL {
  if (file instanceof URL) return file;
  const fromSource = import.meta.url.endsWith('.ts');
  return new URL(fromSource ? `../dist/${file}` : `./${file}`, import.meta.url);
}

export interface CallOptions {
  /** Buffers to move instead of copy (the caller loses them). */
  transfer?: ArrayBuffer[];
  /**
   * A call not answered by then fails with a retriable `deadline_exceeded`, and the worker is stopped (a hung
   * inference cannot be cancelled any other way); the supervisor starts a new one. @default no deadline
   */
  timeoutMs?: number;
}

/** The caller's side: one worker, calls matched to replies by id. */
export class WorkerRpc {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #failure: LiveLensError | undefined;

  /** Starts `file` (a module of this package's dist/, e.g. 'session-worker.js', or a URL) in a worker thread. */
  constructor(
    file: string | URL,
    private readonly name: string,
  ) {
    this.#worker = new Worker(workerUrl(file));
    this.#worker.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else {
        const code = reply.code && ERROR_CODES.has(reply.code) ? (reply.code as ErrorCode) : 'internal';
        waiter.reject(new WorkerCallError(reply.message, code));
      }
    });
    this.#worker.on('error', (error) => this.#fail(`${name}: worker crashed: ${error.message}`, error));
    this.#worker.on('exit', (code) => this.#fail(`${name}: worker exited (code ${code})`));
  }

  #fail(message: string, cause?: unknown): void {
    // A dead worker is an outage, not a bad input: retriable, so the work is retried on a new worker.
    this.#failure ??= new LiveLensError(message, { code: 'unavailable', cause });
    for (const waiter of this.#pending.values()) waiter.reject(this.#failure);
    this.#pending.clear();
  }

  /** Set once the worker crashed, exited or was stopped: every later call fails with it. */
  get failure(): LiveLensError | undefined {
    return this.#failure;
  }

  /** Calls `method` in the worker. */
  call<T>(method: string, params: unknown, options: CallOptions = {}): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle =
        <A>(fn: (arg: A) => void) =>
        (arg: A) => {
          clearTimeout(timer);
          fn(arg);
        };
      this.#pending.set(id, { resolve: settle(resolve as (value: unknown) => void), reject: settle(reject) });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const waiter = this.#pending.get(id);
          if (!waiter) return;
          this.#pending.delete(id);
          waiter.reject(
            new LiveLensError(`${this.name}: ${method} took more than ${options.timeoutMs} ms`, {
              code: 'deadline_exceeded',
            }),
          );
          this.#fail(`${this.name}: stopped after a ${method} passed its deadline`);
          void this.#worker.terminate();
        }, options.timeoutMs);
      }
      try {
        this.#worker.postMessage({ id, method, params } satisfies Request, options.transfer ?? []);
      } catch (error) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(
          new LiveLensError(`${this.name}: cannot send ${method}: ${(error as Error).message}`, {
            code: 'internal',
            cause: error,
          }),
        );
      }
    });
  }

  /** Asks the worker to release what it holds (`close`, within 2 s), then stops it. */
  async terminate(): Promise<void> {
    if (!this.#failure) {
      await this.call('close', undefined, { timeoutMs: 2_000 }).catch(() => undefined);
      this.#fail(`${this.name}: closed`);
    }
    await this.#worker.terminate();
  }
}

/**
 * A worker that is started again when it dies (a native crash, an out-of-memory, a call past its deadline):
 * the next call starts a new worker and replays `init`. At most `maxRestarts` restarts in `restartWindowMs`;
 * past that it gives up and `failure` says why (a service turns that into a failed liveness check, so the
 * process is replaced rather than limping on).
 */
export class SupervisedWorker<Init> {
  #rpc: WorkerRpc | undefined;
  #starting: Promise<WorkerRpc> | undefined;
  #restarts: number[] = [];
  #failure: LiveLensError | undefined;
  #closed = false;

  private constructor(
    private readonly file: string | URL,
    private readonly name: string,
    private readonly init: Init,
    private readonly limits: { maxRestarts: number; restartWindowMs: number },
  ) {}

  /** Starts the worker and runs `init`; rejects (with the worker's error) when init fails. */
  static async start<Init, Ready>(
    file: string | URL,
    name: string,
    init: Init,
    limits: { maxRestarts?: number; restartWindowMs?: number } = {},
  ): Promise<{ worker: SupervisedWorker<Init>; ready: Ready }> {
    const worker = new SupervisedWorker<Init>(file, name, init, {
      maxRestarts: limits.maxRestarts ?? 3,
      restartWindowMs: limits.restartWindowMs ?? 10 * 60_000,
    });
    const rpc = new WorkerRpc(file, name);
    try {
      const ready = await rpc.call<Ready>('init', init);
      worker.#rpc = rpc;
      return { worker, ready };
    } catch (error) {
      await rpc.terminate();
      throw error;
    }
  }

  /** Set once restarts are exhausted (or a restart's init failed): the worker is gone for good. */
  get failure(): LiveLensError | undefined {
    return this.#failure;
  }

  /** Restarts so far (in the current window). */
  get restarts(): number {
    return this.#restarts.length;
  }

  async call<T>(method: string, params: unknown, options: CallOptions = {}): Promise<T> {
    const rpc = await this.#live();
    return rpc.call<T>(method, params, options);
  }

  async #live(): Promise<WorkerRpc> {
    if (this.#closed) throw new LiveLensError(`${this.name}: closed`, { code: 'failed_precondition' });
    if (this.#failure) throw this.#failure;
    if (this.#rpc && !this.#rpc.failure) return this.#rpc;
    this.#starting ??= this.#restart().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #restart(): Promise<WorkerRpc> {
    const previous = this.#rpc?.failure;
    const now = Date.now();
    this.#restarts = this.#restarts.filter((t) => now - t < this.limits.restartWindowMs);
    if (this.#restarts.length >= this.limits.maxRestarts) {
      this.#failure = new LiveLensError(
        `${this.name}: gave up after ${this.#restarts.length} restarts in ${this.limits.restartWindowMs} ms (last: ${previous?.message})`,
        { code: 'unavailable', retriable: false, cause: previous },
      );
      throw this.#failure;
    }
    this.#restarts.push(now);
    const rpc = new WorkerRpc(this.file, this.name);
    try {
      await rpc.call('init', this.init);
    } catch (error) {
      await rpc.terminate();
      this.#failure = new LiveLensError(`${this.name}: restart failed: ${(error as Error).message}`, {
        code: 'unavailable',
        retriable: false,
        cause: error,
      });
      throw this.#failure;
    }
    this.#rpc = rpc;
    return rpc;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#starting?.catch(() => undefined);
    await this.#rpc?.terminate();
  }
}

/** What a worker method returns: a value, and the buffers inside it to transfer rather than copy. */
export interface Served {
  value: unknown;
  transfer?: ArrayBuffer[];
}

/**
 * The worker's side: answers each call with its handler's value, or with the error it threw (its `code`
 * kept when it is a LiveLensError code). Calls run one at a time, in order: a `close` never releases a model
 * under a running inference.
 */
export function serveWorker(handlers: Record<string, (params: never) => Promise<Served>>): void {
  if (!parentPort) throw new Error('this module must run as a worker thread');
  const port = parentPort;
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: Request) => {
    queue = queue.then(async () => {
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
  });
}
