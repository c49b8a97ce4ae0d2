// The worker side of a model session: onnxruntime-node's run() is synchronous under its promise and holds
// the thread for the whole inference, so it runs here, never on a service's main thread (which must keep
// Kafka heartbeats, gRPC and metrics going).
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { WorkerReply, WorkerRequest } from './session-protocol.js';

if (!parentPort) throw new Error('session-worker must run as a worker thread');
const port = parentPort;
let session: ort.InferenceSession | undefined;

const reply = (message: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

port.on('message', async (request: WorkerRequest) => {
  try {
    if (request.type === 'init') {
      const failures: string[] = [];
      for (const provider of request.executionProviders) {
        try {
          session = await ort.InferenceSession.create(request.modelPath, {
            executionProviders: [provider],
            intraOpNumThreads: request.intraOpThreads,
            interOpNumThreads: 1,
            graphOptimizationLevel: 'all',
          });
          reply({
            type: 'ready',
            provider,
            failures,
            inputNames: [...session.inputNames],
            outputNames: [...session.outputNames],
          });
          return;
        } catch (error) {
          // Fall back to the next provider (e.g. no CUDA libraries on this machine), and say why.
          failures.push(`${provider}: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      reply({ type: 'init-failed', message: failures.join('; ') });
      return;
    }
    if (request.type === 'run') {
      if (!session) throw new Error('session not initialised');
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(request.feeds)) {
        feeds[name] = new ort.Tensor('float32', new Float32Array(t.data), t.dims);
      }
      const started = performance.now();
      const results = await session.run(feeds);
      const ms = performance.now() - started;
      const outputs: Record<string, { dims: number[]; data: ArrayBuffer }> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, tensor] of Object.entries(results)) {
        const data = (tensor.data as Float32Array).slice().buffer;
        outputs[name] = { dims: [...tensor.dims], data };
        transfer.push(data);
      }
      reply({ type: 'result', id: request.id, outputs, ms }, transfer);
      return;
    }
    if (request.type === 'close') {
      await session?.release();
      session = undefined;
      reply({ type: 'closed' });
    }
  } catch (error) {
    const id = request.type === 'run' ? request.id : -1;
    reply({ type: 'error', id, message: (error as Error).message });
  }
});
