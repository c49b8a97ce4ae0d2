/** Messages between a ModelSession (main thread) and its worker. Float32 tensors only, buffers transferred. */
export interface TensorMessage {
  dims: number[];
  data: ArrayBuffer;
}

export type WorkerRequest =
  | { type: 'init'; modelPath: string; executionProviders: string[]; intraOpThreads: number }
  | { type: 'run'; id: number; feeds: Record<string, TensorMessage> }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready'; provider: string; failures: string[]; inputNames: string[]; outputNames: string[] }
  | { type: 'init-failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, TensorMessage>; ms: number }
  | { type: 'error'; id: number; message: string }
  | { type: 'closed' };
