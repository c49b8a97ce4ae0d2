// The worker side of WhisperAsr: the encoder, the decoder with its KV cache and all of decoding (see
// worker-rpc.ts for why in a worker). The cache never crosses threads: a call brings audio, takes text.
import type { ExecutionProvider } from '../session.js';
import { serveWorker } from '../worker-rpc.js';
import { type TranscribeOptions, type WhisperPaths, WhisperRuntime } from './whisper-runtime.js';

export interface WhisperWorkerInit extends WhisperPaths {
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
}

let runtime: WhisperRuntime | undefined;

serveWorker({
  async init(params: WhisperWorkerInit) {
    try {
      runtime = await WhisperRuntime.load(params, params.executionProviders, params.intraOpThreads);
    } catch (error) {
      throw Object.assign(new Error((error as Error).message), { code: 'failed_precondition' });
    }
    return {
      value: { provider: runtime.provider, failures: runtime.failures, multilingual: runtime.multilingual },
    };
  },
  async transcribe(params: { audio: Float32Array; options: TranscribeOptions }) {
    if (!runtime) throw new Error('Whisper worker not initialised');
    return { value: await runtime.transcribe(params.audio, params.options) };
  },
  async close() {
    await runtime?.release();
    runtime = undefined;
    return { value: undefined };
  },
});
