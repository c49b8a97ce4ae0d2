// Whisper on ONNX Runtime, in the thread that calls it (whisper-worker.ts runs it off the main thread): log-mel
// features, the encoder, the merged decoder with its KV cache behind decoding.ts, and the alignment pass for
// word timings. Graph I/O is Hugging Face/optimum's (see convert-whisper.ts), so a hub export runs here too.
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { openOrtSession } from '../ort.js';
import type { ExecutionProvider } from '../session.js';
import { alignWords, type TimedWord } from './alignment.js';
import { type DecodeOptions, type DecoderStep, decodeWindow, type WhisperSpecials } from './decoding.js';
import { melWindow, WHISPER_WINDOW_FRAMES, whisperFeatures } from './mel.js';
import { WhisperTokenizer } from './tokenizer.js';

export interface WhisperPaths {
  encoderPath: string;
  /** optimum's merged decoder (decoder_model_merged.onnx) with cross_attentions outputs. */
  decoderPath: string;
  tokenizerPath: string;
  /** generation_config.json (alignment_heads) or a CT2/HF config.json with alignment_heads. */
  configPath: string;
}

export interface TranscribeOptions extends DecodeOptions {
  /** Time words by cross-attention. @default true */
  wordTimestamps?: boolean;
  /**
   * Seconds of silence (zero mel frames) the encoder sees after the audio, instead of padding every window to
   * 30 s: encoder and cross-attention cost then scale with the segment. Whisper was trained on 30 s windows
   * only; with 4 s the English WER is unchanged and the encoder about twice as fast on short segments, but the
   * multilingual model loops on Mandarin (docs/benchmarks.md). @default undefined (the full 30 s window)
   */
  encoderPaddingS?: number;
}

/**
 * The encoder's input length for `contentFrames` of audio: the full window, or the content plus
 * `paddingS` of silence, rounded up to an even count (the encoder halves it) and at most the full window.
 */
export function encoderWindowFrames(contentFrames: number, paddingS: number | undefined): number {
  if (paddingS === undefined) return WHISPER_WINDOW_FRAMES;
  if (!(Number.isFinite(paddingS) && paddingS >= 0))
    throw new RangeError(`encoderPaddingS must be a number of seconds >= 0, got ${paddingS}`);
  const frames = contentFrames + Math.round(paddingS * 100);
  return Math.min(WHISPER_WINDOW_FRAMES, Math.max(2, frames + (frames % 2)));
}

export interface WhisperTranscript {
  text: string;
  tokens: number[];
  language: string | undefined;
  /** Probability of `language` when detected, 1 when given, undefined for an English-only model. */
  languageProbability: number | undefined;
  avgLogProb: number;
  noSpeechProb: number;
  compressionRatio: number;
  temperature: number;
  noSpeech: boolean;
  /** Seconds from the start of the audio. */
  words: TimedWord[];
  /** Audio seconds decoded (at most 30). */
  durationS: number;
  timings: { featuresMs: number; encoderMs: number; decodeMs: number; alignMs: number };
}

/** The alignment heads [layer, head] from a config file; all heads of the upper half when it has none. */
function alignmentHeads(config: { alignment_heads?: [number, number][] }, layers: number, heads: number) {
  if (Array.isArray(config.alignment_heads) && config.alignment_heads.length > 0)
    return config.alignment_heads;
  const all: [number, number][] = [];
  for (let l = Math.floor(layers / 2); l < layers; l += 1)
    for (let h = 0; h < heads; h += 1) all.push([l, h]);
  return all;
}

export class WhisperRuntime {
  private constructor(
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    readonly tokenizer: WhisperTokenizer,
    private readonly specials: WhisperSpecials,
    private readonly heads: [number, number][],
    private readonly shape: { layers: number; heads: number; headDim: number },
    readonly provider: ExecutionProvider,
    readonly failures: string[],
  ) {}

  static async load(paths: WhisperPaths, providers: readonly ExecutionProvider[], threads: number) {
    const [encoder, decoder] = await Promise.all([
      openOrtSession(paths.encoderPath, providers, threads),
      openOrtSession(paths.decoderPath, providers, threads),
    ]);
    const vocabulary = decoder.session.outputMetadata.find((m) => m.name === 'logits');
    const vocabularySize = vocabulary?.isTensor ? Number(vocabulary.shape[2]) : undefined;
    const tokenizer = await WhisperTokenizer.fromFile(
      paths.tokenizerPath,
      Number.isFinite(vocabularySize) ? { vocabularySize } : {},
    );
    const meta = decoder.session.inputMetadata.find((m) => m.name === 'past_key_values.0.decoder.key');
    const layers = decoder.session.inputNames.filter((n) => n.endsWith('.decoder.key')).length;
    const heads = meta?.isTensor ? Number(meta.shape[1]) : Number.NaN;
    const headDim = meta?.isTensor ? Number(meta.shape[3]) : Number.NaN;
    if (!(layers > 0 && heads > 0 && headDim > 0))
      throw new Error(`${paths.decoderPath} is not a merged Whisper decoder with a KV cache`);
    const config = JSON.parse(await readFile(paths.configPath, 'utf8')) as {
      alignment_heads?: [number, number][];
    };
    const s = tokenizer.special;
    const specials: WhisperSpecials = {
      eot: s.eot,
      sot: s.sot,
      transcribe: s.transcribe,
      translate: s.translate,
      sotPrev: s.sotPrev,
      sotLm: s.sotLm,
      noSpeech: s.noSpeech,
      noTimestamps: s.noTimestamps,
      languages: tokenizer.multilingual ? tokenizer.languages : new Map(),
      blank: tokenizer.beginSuppressTokens().filter((id) => id !== s.eot),
      suppress: tokenizer.suppressTokens([-1]),
    };
    return new WhisperRuntime(
      encoder.session,
      decoder.session,
      tokenizer,
      specials,
      alignmentHeads(config, layers, heads),
      { layers, heads, headDim },
      encoder.provider,
      [...encoder.failures, ...decoder.failures],
    );
  }

  get multilingual(): boolean {
    return this.tokenizer.multilingual;
  }

  /** Transcribes up to 30 s of 16 kHz mono audio (one window; longer audio is cut by the caller, e.g. the VAD). */
  async transcribe(audio: Float32Array, options: TranscribeOptions = {}): Promise<WhisperTranscript> {
    const t0 = performance.now();
    const { mel, contentFrames } = whisperFeatures(audio);
    const frames = Math.min(WHISPER_WINDOW_FRAMES, contentFrames);
    const windowFrames = encoderWindowFrames(frames, options.encoderPaddingS);
    const window = melWindow(mel, 0, frames, windowFrames);
    const t1 = performance.now();
    const { last_hidden_state: hidden } = await this.encoder.run({
      input_features: new ort.Tensor('float32', window, [1, mel.nMels, windowFrames]),
    });
    if (!hidden) throw new Error('encoder has no last_hidden_state output');
    const t2 = performance.now();
    const result = await decodeWindow(
      this.decoderStep(hidden),
      this.specials,
      (tokens) => this.tokenizer.decode(tokens),
      options,
    );
    const t3 = performance.now();
    let words: TimedWord[] = [];
    if ((options.wordTimestamps ?? true) && result.tokens.length > 0)
      words = await this.align(hidden, result.prompt, result.tokens, result.language ?? 'en', frames);
    const t4 = performance.now();
    return {
      text: this.tokenizer.decode(result.tokens),
      tokens: result.tokens,
      language: result.language,
      languageProbability: result.languageProbability,
      avgLogProb: result.avgLogProb,
      noSpeechProb: result.noSpeechProb,
      compressionRatio: result.compressionRatio,
      temperature: result.temperature,
      noSpeech: result.noSpeech,
      words,
      durationS: Math.min(audio.length / 16_000, 30),
      timings: { featuresMs: t1 - t0, encoderMs: t2 - t1, decodeMs: t3 - t2, alignMs: t4 - t3 },
    };
  }

  /** Rows of `hidden` ([1, S, d]) repeated `batch` times. */
  private static tile(tensor: ort.Tensor, batch: number): ort.Tensor {
    if (batch === 1) return tensor;
    const data = tensor.data as Float32Array;
    const out = new Float32Array(data.length * batch);
    for (let b = 0; b < batch; b += 1) out.set(data, b * data.length);
    return new ort.Tensor('float32', out, [batch, ...tensor.dims.slice(1)]);
  }

  /** Rows `parents` of a [B, H, T, D] cache tensor. */
  private static gather(tensor: ort.Tensor, parents: readonly number[]): ort.Tensor {
    const [b, ...rest] = tensor.dims as [number, ...number[]];
    const data = tensor.data as Float32Array;
    const row = data.length / b;
    if (parents.length === b && parents.every((p, i) => p === i)) return tensor;
    const out = new Float32Array(row * parents.length);
    for (const [i, p] of parents.entries()) out.set(data.subarray(p * row, (p + 1) * row), i * row);
    return new ort.Tensor('float32', out, [parents.length, ...rest]);
  }

  private empty(batch: number): ort.Tensor {
    return new ort.Tensor('float32', new Float32Array(0), [batch, this.shape.heads, 0, this.shape.headDim]);
  }

  private ids(rows: readonly (readonly number[])[]): ort.Tensor {
    return new ort.Tensor(
      'int64',
      BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
      [rows.length, rows[0]?.length ?? 0],
    );
  }

  /**
   * The decoder behind decodeWindow: the first call runs the prompt with an empty cache (use_cache_branch
   * false) and keeps the self-attention cache and the cross-attention keys/values; later calls feed one token
   * per hypothesis with the cache rows of its parent. The cross-attention keys/values are the same for every
   * hypothesis (one audio), so they are tiled, never gathered.
   */
  private decoderStep(hidden: ort.Tensor): DecoderStep {
    const { layers } = this.shape;
    let selfCache: ort.Tensor[] = [];
    let crossOne: ort.Tensor[] = [];
    const tiled = new Map<number, { hidden: ort.Tensor; cross: ort.Tensor[] }>();
    const forBatch = (batch: number) => {
      let entry = tiled.get(batch);
      if (!entry) {
        entry = {
          hidden: WhisperRuntime.tile(hidden, batch),
          cross: crossOne.map((t) => WhisperRuntime.tile(t, batch)),
        };
        tiled.set(batch, entry);
      }
      return entry;
    };
    return async (tokens, parents) => {
      const batch = tokens.length;
      const feeds: Record<string, ort.Tensor> = { input_ids: this.ids(tokens) };
      if (parents === null) {
        feeds.encoder_hidden_states = WhisperRuntime.tile(hidden, batch);
        feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.of(0), [1]);
        for (let i = 0; i < layers; i += 1)
          for (const part of ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'])
            feeds[`past_key_values.${i}.${part}`] = this.empty(batch);
      } else {
        const entry = forBatch(batch);
        feeds.encoder_hidden_states = entry.hidden;
        feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.of(1), [1]);
        for (let i = 0; i < layers; i += 1) {
          feeds[`past_key_values.${i}.decoder.key`] = WhisperRuntime.gather(
            selfCache[2 * i] as ort.Tensor,
            parents,
          );
          feeds[`past_key_values.${i}.decoder.value`] = WhisperRuntime.gather(
            selfCache[2 * i + 1] as ort.Tensor,
            parents,
          );
          feeds[`past_key_values.${i}.encoder.key`] = entry.cross[2 * i] as ort.Tensor;
          feeds[`past_key_values.${i}.encoder.value`] = entry.cross[2 * i + 1] as ort.Tensor;
        }
      }
      const out = await this.decoder.run(feeds);
      selfCache = [];
      for (let i = 0; i < layers; i += 1)
        selfCache.push(
          out[`present.${i}.decoder.key`] as ort.Tensor,
          out[`present.${i}.decoder.value`] as ort.Tensor,
        );
      if (parents === null) {
        // The cross-attention keys/values of row 0 (every row is the same audio).
        crossOne = [];
        for (let i = 0; i < layers; i += 1)
          for (const part of ['encoder.key', 'encoder.value']) {
            const t = out[`present.${i}.${part}`] as ort.Tensor;
            const row = (t.data as Float32Array).length / (t.dims[0] as number);
            crossOne.push(
              new ort.Tensor('float32', (t.data as Float32Array).slice(0, row), [1, ...t.dims.slice(1)]),
            );
          }
        tiled.clear();
      }
      const logits = out.logits as ort.Tensor;
      const [, steps, vocab] = logits.dims as [number, number, number];
      const data = logits.data as Float32Array;
      return tokens.map((_, b) =>
        Array.from({ length: steps }, (_, t) =>
          data.subarray((b * steps + t) * vocab, (b * steps + t + 1) * vocab),
        ),
      );
    };
  }

  /** Word timings: one pass over prompt + text + eot without cache, reading the alignment heads' attention. */
  private async align(
    hidden: ort.Tensor,
    prompt: readonly number[],
    text: readonly number[],
    language: string,
    melFrames: number,
  ): Promise<TimedWord[]> {
    const sequence = [...prompt, ...text, this.specials.eot];
    const feeds: Record<string, ort.Tensor> = {
      input_ids: this.ids([sequence]),
      encoder_hidden_states: hidden,
      use_cache_branch: new ort.Tensor('bool', Uint8Array.of(0), [1]),
    };
    for (let i = 0; i < this.shape.layers; i += 1)
      for (const part of ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'])
        feeds[`past_key_values.${i}.${part}`] = this.empty(1);
    const out = await this.decoder.run(feeds);
    const T = sequence.length;
    const heads: Float32Array[] = [];
    let encoderFrames = 0;
    for (const [layer, head] of this.heads) {
      const attention = out[`cross_attentions.${layer}`] as ort.Tensor;
      if (!attention) throw new Error(`decoder has no cross_attentions.${layer} output`);
      const [, H, , S] = attention.dims as [number, number, number, number];
      if (head >= H) throw new Error(`alignment head ${layer}.${head} out of range`);
      encoderFrames = S;
      heads.push((attention.data as Float32Array).slice(head * T * S, (head + 1) * T * S));
    }
    // Probability of each text token at its position (softmax over the text vocabulary, below eot).
    const logits = out.logits as ort.Tensor;
    const vocab = logits.dims[2] as number;
    const all = logits.data as Float32Array;
    const eot = this.specials.eot;
    const probabilities = text.map((token, k) => {
      const row = all.subarray((prompt.length - 1 + k) * vocab, (prompt.length - 1 + k) * vocab + eot);
      let max = Number.NEGATIVE_INFINITY;
      for (const v of row) if (v > max) max = v;
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      return Math.exp((row[token] as number) - max) / sum;
    });
    const split = this.tokenizer.splitToWordTokens([...text, eot], language);
    const words = split.words
      .map((word, i) => ({ word, tokens: split.tokens[i] as number[] }))
      .filter((w) => (w.tokens[0] as number) < eot);
    return alignWords({
      heads,
      tokenCount: T,
      encoderFrames,
      melFrames,
      promptLength: prompt.length,
      words,
      tokenProbabilities: probabilities,
    });
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}
