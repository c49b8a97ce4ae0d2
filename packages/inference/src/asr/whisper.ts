import { LiveLensError, type Logger } from '@livelens/runtime';
import { modelError } from '../errors.js';
import type { ExecutionProvider } from '../session.js';
import { SupervisedWorker } from '../worker-rpc.js';
import type { TranscribeOptions, WhisperPaths, WhisperTranscript } from './whisper-runtime.js';
import type { WhisperWorkerInit } from './whisper-worker.js';

export type { TranscribeOptions, WhisperPaths, WhisperTranscript } from './whisper-runtime.js';

export interface WhisperCreateOptions {
  /** For logs and errors. @default 'whisper' */
  modelId?: string;
  /** @default ['cpu'] */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads per inference. @default 1 */
  intraOpThreads?: number;
  /** A window not transcribed by then fails (retriable) and the worker is replaced. @default 120000 */
  timeoutMs?: number;
}

/**
 * Whisper speech recognition (ONNX Runtime, Hugging Face graph layout): features, encoder, decoding with the
 * KV cache and word alignment all run in one supervised worker thread; a call takes up to 30 s of 16 kHz mono
 * audio and returns the transcript with word timings. One window at a time.
 */
export class WhisperAsr {
  private constructor(
    private readonly worker: SupervisedWorker<WhisperWorkerInit>,
    readonly modelId: string,
    readonly provider: ExecutionProvider,
    readonly multilingual: boolean,
    private readonly timeoutMs: number,
  ) {}

  static async create(
    paths: WhisperPaths,
    create: WhisperCreateOptions,
    logger: Logger,
  ): Promise<WhisperAsr> {
    const modelId = create.modelId ?? 'whisper';
    const requested = [...(create.executionProviders ?? ['cpu'])];
    let started: {
      worker: SupervisedWorker<WhisperWorkerInit>;
      ready: { provider: ExecutionProvider; failures: string[]; multilingual: boolean };
    };
    try {
      started = await SupervisedWorker.start('asr/whisper-worker.js', `ASR ${modelId}`, {
        ...paths,
        executionProviders: requested,
        intraOpThreads: create.intraOpThreads ?? 1,
      });
    } catch (error) {
      throw modelError(modelId, `cannot load: ${(error as Error).message}`, { code: 'failed_precondition' });
    }
    const { worker, ready } = started;
    logger.info(
      {
        modelId,
        provider: ready.provider,
        requested,
        fallbacks: ready.failures,
        multilingual: ready.multilingual,
      },
      'model session ready',
    );
    return new WhisperAsr(worker, modelId, ready.provider, ready.multilingual, create.timeoutMs ?? 120_000);
  }

  /** Set once the worker died and could not be restarted (a service fails its liveness). */
  get failure(): LiveLensError | undefined {
    return this.worker.failure;
  }

  /** Transcribes up to 30 s of 16 kHz mono float audio (copied to the worker). */
  async transcribe(audio: Float32Array, options: TranscribeOptions = {}): Promise<WhisperTranscript> {
    try {
      return await this.worker.call<WhisperTranscript>(
        'transcribe',
        { audio, options },
        { timeoutMs: this.timeoutMs },
      );
    } catch (error) {
      const cause = LiveLensError.from(error);
      throw new LiveLensError(`${this.modelId}: transcription failed: ${cause.message}`, {
        code: cause.code,
        retriable: cause.retriable,
        cause,
        context: { modelId: this.modelId },
      });
    }
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
