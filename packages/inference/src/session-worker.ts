// The worker side of a ModelSession: one model, run on request (see worker-rpc.ts for why in a worker).
import { loadOrtModel, type OrtModel } from './ort.js';
import type { ExecutionProvider, Tensor } from './session.js';
import { serveWorker } from './worker-rpc.js';

let model: OrtModel | undefined;

serveWorker({
  async init(params: { modelPath: string; executionProviders: ExecutionProvider[]; intraOpThreads: number }) {
    model = await loadOrtModel(params.modelPath, params.executionProviders, params.intraOpThreads);
    const { provider, failures, inputNames, outputNames } = model;
    return { value: { provider, failures, inputNames, outputNames } };
  },
  async run(feeds: Record<string, Tensor>) {
    if (!model) throw new Error('session not initialised');
    const { outputs, ms } = await model.run(feeds);
    // Copy each output out of ONNX Runtime's buffer, and hand the copy over without another copy.
    const transfer: ArrayBuffer[] = [];
    for (const tensor of Object.values(outputs)) {
      tensor.data = tensor.data.slice();
      transfer.push(tensor.data.buffer as ArrayBuffer);
    }
    return { value: { outputs, ms }, transfer };
  },
  async close() {
    await model?.release();
    model = undefined;
    return { value: undefined };
  },
});
