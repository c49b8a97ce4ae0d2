// CTranslate2 Whisper (faster-whisper's float16 `model.bin`) → ONNX graphs with the Hugging Face / optimum
// interface, in TypeScript (no Python, no PyTorch). Outputs, next to the HF JSON files a runtime reads:
//   encoder_model.onnx          input_features [B, 80, T ≤ 3000] → last_hidden_state [B, T/2, d]
//   decoder_model_merged.onnx   optimum's merged decoder (an `If` on use_cache_branch), with the
//                               cross-attention probabilities of every layer (`cross_attentions.{i}`)
// The maths is CTranslate2's (src/layers/whisper.cc, src/layers/attention_layer.cc), which is openai's and
// HF's: see shared/research/whisper-onnx.md §2.3 and the pitfall checklist §8, ticked where it applies.
// Weights stay float16 initializers (lossless) with a Cast to float32 that ONNX Runtime folds at load, so
// every operation runs in float32, as CTranslate2 does with compute_type=float32.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LiveLensError } from '@livelens/runtime';
import {
  type Attr,
  float,
  graphAttr,
  type Initializer,
  int,
  ints,
  OnnxGraph,
  writeOnnxModel,
} from './convert-onnx.js';
import {
  type Ct2Model,
  type Ct2Variable,
  type Ct2WhisperConfig,
  getVariable,
  hasVariable,
  itemBytes,
  readCt2Model,
  readCt2WhisperConfig,
  scalarValue,
  toFloat32,
} from './ct2.js';

/** The builder name that models.json's derived entries use. */
export const CT2_WHISPER_ONNX_BUILDER = 'ct2-whisper-onnx';
/** Bumped whenever the output bytes change (stored as the ONNX models' producer_version). */
export const CT2_WHISPER_ONNX_VERSION = '1';

/** Every file the conversion writes, in the layout of a Hugging Face ONNX export of Whisper. */
export const WHISPER_ONNX_FILES = [
  'encoder_model.onnx',
  'decoder_model_merged.onnx',
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'tokenizer.json',
] as const;
export type WhisperOnnxFile = (typeof WHISPER_ONNX_FILES)[number];

const OPSET = 17; // LayerNormalization, Shape(start, end)
const IR_VERSION = 8;
const LAYER_NORM_EPSILON = 1e-5; // CTranslate2's default (src/layers/common.cc), openai's and HF's
const FLOAT32_LOWEST = -3.4028234663852886e38; // masked attention scores, as HF does (finfo.min)

/** Model dimensions, all read from model.bin. */
export interface WhisperDims {
  nMels: number;
  dModel: number;
  vocabSize: number;
  encoderLayers: number;
  decoderLayers: number;
  encoderHeads: number;
  decoderHeads: number;
  headDim: number;
  ffnDim: number;
  /** Encoder positions (1500): the longest encoder output, so inputs of at most 2 × 1500 frames. */
  audioContext: number;
  /** Decoder positions (448): prompt + generated tokens. */
  textContext: number;
}

const bad = (message: string) =>
  new LiveLensError(`cannot convert the CTranslate2 Whisper model: ${message}`, { code: 'invalid_argument' });

function countLayers(model: Ct2Model, prefix: string): number {
  let n = 0;
  while (hasVariable(model, `${prefix}/layer_${n}/ffn/linear_0/weight`)) n += 1;
  return n;
}

/** Checks the spec and derives the dimensions (research §2.2: everything comes from the file). */
export function whisperDims(model: Ct2Model): WhisperDims {
  if (model.specName !== 'WhisperSpec') throw bad(`the spec is ${model.specName}, not WhisperSpec`);
  // Revision 3 since CTranslate2 3.5; revision 2 differs only in the activation byte (ignored below).
  if (model.specRevision < 2 || model.specRevision > 3) {
    throw bad(`WhisperSpec revision ${model.specRevision} (supported: 2 and 3)`);
  }
  for (const variable of model.variables.values()) {
    if (variable.shape.length === 0) continue; // scalars keep their own types (num_heads is int16)
    if (variable.dtype !== 'float16' && variable.dtype !== 'float32' && variable.dtype !== 'bfloat16') {
      throw bad(
        `${variable.name} is ${variable.dtype}: quantized models are not supported; use a float16 or ` +
          'float32 conversion (ct2-transformers-converter --quantization float16)',
      );
    }
  }
  const embeddings = getVariable(model, 'decoder/embeddings/weight').shape;
  const conv1 = getVariable(model, 'encoder/conv1/weight').shape;
  const encoderPositions = getVariable(model, 'encoder/position_encodings/encodings').shape;
  const decoderPositions = getVariable(model, 'decoder/position_encodings/encodings').shape;
  const ffn = getVariable(model, 'encoder/layer_0/ffn/linear_0/weight').shape;
  const dModel = embeddings[1] as number;
  const encoderHeads = scalarValue(getVariable(model, 'encoder/num_heads'));
  const decoderHeads = scalarValue(getVariable(model, 'decoder/num_heads'));
  if (dModel % encoderHeads !== 0 || encoderHeads !== decoderHeads) {
    throw bad(`d_model ${dModel} with ${encoderHeads} encoder and ${decoderHeads} decoder heads`);
  }
  // Activation id 3 is exact GELU; revision-2 files store 1 for the same GELU (research §1).
  const activation = scalarValue(getVariable(model, 'decoder/activation'));
  if (activation !== 3 && activation !== 1) throw bad(`decoder activation id ${activation} is not GELU`);
  if (hasVariable(model, 'decoder/projection/bias')) throw bad('the output projection has a bias');
  return {
    nMels: conv1[1] as number,
    dModel,
    vocabSize: embeddings[0] as number,
    encoderLayers: countLayers(model, 'encoder'),
    decoderLayers: countLayers(model, 'decoder'),
    encoderHeads,
    decoderHeads,
    headDim: dModel / encoderHeads,
    ffnDim: ffn[0] as number,
    audioContext: encoderPositions[0] as number,
    textContext: decoderPositions[0] as number,
  };
}

/** An aligned copy of a payload (model.bin offsets are often odd). */
function alignedCopy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** [rows, cols] → [cols, rows] for 2- or 4-byte elements. */
function transpose2d(variable: Ct2Variable): Uint8Array {
  const [rows, cols] = variable.shape as [number, number];
  const copy = alignedCopy(variable.bytes);
  if (itemBytes(variable.dtype) === 2) {
    const src = new Uint16Array(copy.buffer);
    const dst = new Uint16Array(rows * cols);
    for (let r = 0; r < rows; r += 1)
      for (let c = 0; c < cols; c += 1) dst[c * rows + r] = src[r * cols + c] as number;
    return new Uint8Array(dst.buffer);
  }
  const src = new Uint32Array(copy.buffer);
  const dst = new Uint32Array(rows * cols);
  for (let r = 0; r < rows; r += 1)
    for (let c = 0; c < cols; c += 1) dst[c * rows + r] = src[r * cols + c] as number;
  return new Uint8Array(dst.buffer);
}

/**
 * The model's weights as graph values. float16 variables become float16 initializers followed by a Cast to
 * float32 (in the root graph, so both `If` branches share it; ONNX Runtime folds it at load); float32 stays;
 * bfloat16 is widened exactly at conversion. Linear weights are stored transposed ([in, out]) for MatMul.
 */
class Weights {
  private readonly values = new Map<string, string>();
  constructor(
    private readonly model: Ct2Model,
    private readonly root: OnnxGraph,
  ) {}

  /** The float32 value of variable `name` (aliases followed), as stored. */
  get(name: string): string {
    return this.value(getVariable(this.model, name), false);
  }

  /** The float32 value of the 2-D variable `name`, transposed: [out, in] → [in, out]. */
  transposed(name: string): string {
    return this.value(getVariable(this.model, name), true);
  }

  private value(variable: Ct2Variable, transpose: boolean): string {
    const key = `${variable.name}${transpose ? '^T' : ''}`;
    const known = this.values.get(key);
    if (known) return known;
    const dims = transpose ? [...variable.shape].reverse() : [...variable.shape];
    const bytes = () => (transpose ? transpose2d(variable) : variable.bytes);
    let name: string;
    if (variable.dtype === 'float16') {
      const init: Initializer = { name: `${key}:fp16`, dims, type: 'float16', data: bytes };
      name = this.root.op('Cast', [this.root.initializer(init)], { to: int(1) }, key); // 1 = FLOAT
    } else if (variable.dtype === 'float32') {
      name = this.root.initializer({ name: key, dims, type: 'float', data: bytes });
    } else {
      const widened = () => {
        const f32 = toFloat32(variable);
        if (!transpose) return new Uint8Array(f32.buffer);
        const [rows, cols] = variable.shape as [number, number];
        const out = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r += 1)
          for (let c = 0; c < cols; c += 1) out[c * rows + r] = f32[r * cols + c] as number;
        return new Uint8Array(out.buffer);
      };
      name = this.root.initializer({ name: key, dims, type: 'float', data: widened });
    }
    this.values.set(key, name);
    return name;
  }

  /** Checks that rows [from, to) of a bias are zero: where CTranslate2 fused k_proj, which has no bias. */
  checkZeroBias(name: string, from: number, to: number): void {
    const values = toFloat32(getVariable(this.model, name)).subarray(from, to);
    if (values.some((v) => v !== 0)) throw bad(`${name}[${from}:${to}] (the key bias) is not zero`);
  }
}

/** Graph-building helpers shared by the encoder and the decoder. */
class Layers {
  constructor(
    readonly g: OnnxGraph,
    readonly w: Weights,
    readonly dims: WhisperDims,
  ) {}

  op(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string): string {
    return this.g.op(opType, inputs, attrs, out);
  }

  layerNorm(x: string, prefix: string, out?: string): string {
    return this.op(
      'LayerNormalization',
      [x, this.w.get(`${prefix}/gamma`), this.w.get(`${prefix}/beta`)],
      { axis: int(-1), epsilon: float(LAYER_NORM_EPSILON) },
      out,
    );
  }

  /** y = x·Wᵀ + b (the weight stored transposed). */
  linear(x: string, prefix: string): string {
    const y = this.op('MatMul', [x, this.w.transposed(`${prefix}/weight`)]);
    return this.op('Add', [y, this.w.get(`${prefix}/bias`)]);
  }

  /** Exact GELU, 0.5·x·(1 + erf(x/√2)), in the pattern ONNX Runtime fuses into one Gelu kernel. */
  gelu(x: string): string {
    const erf = this.op('Erf', [this.op('Div', [x, this.g.floats([Math.SQRT2])])]);
    const y = this.op('Mul', [x, this.op('Add', [erf, this.g.floats([1])])]);
    return this.op('Mul', [y, this.g.floats([0.5])]);
  }

  /** [B, T, d] → [B, H, T, head_dim] */
  splitHeads(x: string): string {
    const r = this.op('Reshape', [x, this.g.int64s([0, 0, this.dims.decoderHeads, this.dims.headDim])]);
    return this.op('Transpose', [r], { perm: ints([0, 2, 1, 3]) });
  }

  /** [B, H, T, head_dim] → [B, T, d] */
  mergeHeads(x: string): string {
    const t = this.op('Transpose', [x], { perm: ints([0, 2, 1, 3]) });
    return this.op('Reshape', [t, this.g.int64s([0, 0, this.dims.dModel])]);
  }

  /** Splits the last axis into `parts` equal pieces. */
  split(x: string, parts: number): string[] {
    const sizes = Array.from({ length: parts }, () => this.dims.dModel);
    return this.g.opN('Split', [x, this.g.int64s(sizes)], parts, { axis: int(-1) });
  }

  /**
   * Scaled dot-product attention over heads. Q is scaled by head_dim^-0.5 (HF's convention: cached keys
   * stay raw k_proj outputs, interchangeable with HF exports); softmax in float32. `masked` ([T, S] bool,
   * true = hidden) is applied before the softmax. Returns the output and the post-softmax probabilities.
   */
  attention(q: string, k: string, v: string, masked?: string): { out: string; probs: string } {
    const scaled = this.op('Mul', [q, this.g.floats([1 / Math.sqrt(this.dims.headDim)])]);
    const kt = this.op('Transpose', [k], { perm: ints([0, 1, 3, 2]) });
    let scores = this.op('MatMul', [scaled, kt]);
    if (masked) scores = this.op('Where', [masked, this.g.floats([FLOAT32_LOWEST]), scores]);
    const probs = this.op('Softmax', [scores], { axis: int(-1) });
    return { out: this.op('MatMul', [probs, v]), probs };
  }

  /** Pre-norm feed-forward block with its residual. */
  ffn(x: string, prefix: string): string {
    const h = this.layerNorm(x, `${prefix}/ffn/layer_norm`);
    const y = this.linear(this.gelu(this.linear(h, `${prefix}/ffn/linear_0`)), `${prefix}/ffn/linear_1`);
    return this.op('Add', [x, y]);
  }
}

/** encoder_model.onnx: conv1+GELU → conv2(stride 2)+GELU → + positions[0:T/2] → layers → final LayerNorm. */
export function buildEncoderGraph(model: Ct2Model, dims: WhisperDims): OnnxGraph {
  const g = new OnnxGraph('whisper_encoder');
  const w = new Weights(model, g);
  const L = new Layers(g, w, dims);
  const features = g.input('input_features', 'float', ['batch_size', dims.nMels, 'encoder_sequence_length']);
  const conv = (x: string, name: string, stride: number) =>
    L.op('Conv', [x, w.get(`encoder/${name}/weight`), w.get(`encoder/${name}/bias`)], {
      kernel_shape: ints([3]),
      pads: ints([1, 1]),
      strides: ints([stride]),
    });
  const h = L.gelu(conv(L.gelu(conv(features, 'conv1', 1)), 'conv2', 2)); // [B, d, T/2]
  let x = L.op('Transpose', [h], { perm: ints([0, 2, 1]) }); // [B, T/2, d]
  // Dynamic time axis: positions 0..T/2-1 of the 1500-row table (research §7). T = 3000 uses all of it;
  // T > 3000 fails in the Add (the slice stops at 1500 rows).
  const frames = L.op('Shape', [x], { start: int(1), end: int(2) });
  const positions = L.op('Slice', [
    w.get('encoder/position_encodings/encodings'),
    g.int64s([0]),
    frames,
    g.int64s([0]),
  ]);
  x = L.op('Add', [x, positions]);
  for (let i = 0; i < dims.encoderLayers; i += 1) {
    const p = `encoder/layer_${i}`;
    w.checkZeroBias(`${p}/self_attention/linear_0/bias`, dims.dModel, 2 * dims.dModel);
    const hNorm = L.layerNorm(x, `${p}/self_attention/layer_norm`);
    const [q, k, v] = L.split(L.linear(hNorm, `${p}/self_attention/linear_0`), 3) as [string, string, string];
    const { out } = L.attention(L.splitHeads(q), L.splitHeads(k), L.splitHeads(v));
    x = L.op('Add', [x, L.linear(L.mergeHeads(out), `${p}/self_attention/linear_1`)]);
    x = L.ffn(x, p);
  }
  L.layerNorm(x, 'encoder/layer_norm', 'last_hidden_state');
  g.output('last_hidden_state', 'float', ['batch_size', 'encoder_sequence_length / 2', dims.dModel]);
  return g;
}

/** Graph input and output names of the decoder, in optimum's order. */
export function decoderIoNames(layers: number): { inputs: string[]; outputs: string[] } {
  const kv = (prefix: string) =>
    Array.from({ length: layers }, (_, i) =>
      ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'].map((s) => `${prefix}.${i}.${s}`),
    ).flat();
  return {
    inputs: ['input_ids', 'encoder_hidden_states', ...kv('past_key_values'), 'use_cache_branch'],
    outputs: [
      'logits',
      ...kv('present'),
      ...Array.from({ length: layers }, (_, i) => `cross_attentions.${i}`),
    ],
  };
}

/**
 * One branch of the merged decoder. withPast: self-attention keys/values are the past ones followed by the
 * new ones, cross-attention keys/values are the past encoder ones (the encoder presents are empty, as
 * optimum's merged graph has them: the runtime keeps the first step's); without past: everything from
 * input_ids and encoder_hidden_states. Returns the branch's output values in decoderIoNames order.
 */
function decoderBranch(L: Layers, withPast: boolean): string[] {
  const { g, w, dims } = L;
  const tag = withPast ? 'with_past' : 'no_past';
  // Positions past_len .. past_len + T - 1 (no position_ids input in HF's Whisper exports).
  const pastLen = withPast
    ? L.op('Gather', [L.op('Shape', ['past_key_values.0.decoder.key']), g.int64s([2], [])], { axis: int(0) })
    : g.int64s([0], []);
  const curLen = L.op('Gather', [L.op('Shape', ['input_ids']), g.int64s([1], [])], { axis: int(0) });
  const totalLen = L.op('Add', [pastLen, curLen]);
  const positions = L.op('Slice', [
    w.get('decoder/position_encodings/encodings'),
    L.op('Unsqueeze', [pastLen, g.int64s([0])]),
    L.op('Unsqueeze', [totalLen, g.int64s([0])]),
    g.int64s([0]),
  ]);
  // Token embedding, not scaled by √d (scale_embeddings = false for Whisper).
  const tokens = L.op('Gather', [w.get('decoder/embeddings/weight'), 'input_ids'], { axis: int(0) });
  let x = L.op('Add', [tokens, positions]);
  // Causal mask with the past offset: query t (absolute position past_len + t) sees keys s ≤ past_len + t.
  const keyIndex = L.op('Range', [g.int64s([0], []), totalLen, g.int64s([1], [])]);
  const queryIndex = L.op('Unsqueeze', [
    L.op('Range', [pastLen, totalLen, g.int64s([1], [])]),
    g.int64s([1]),
  ]);
  const masked = L.op('Greater', [keyIndex, queryIndex]); // [T, S]

  const presents: string[] = [];
  const crossAttentions: string[] = [];
  const empty = withPast
    ? g.initializer({
        // optimum's placeholder for the with-past branch's encoder presents: [0, H, 1, head_dim]
        name: 'empty_encoder_present',
        dims: [0, dims.decoderHeads, 1, dims.headDim],
        type: 'float',
        data: () => new Uint8Array(0),
      })
    : '';
  for (let i = 0; i < dims.decoderLayers; i += 1) {
    const p = `decoder/layer_${i}`;
    w.checkZeroBias(`${p}/self_attention/linear_0/bias`, dims.dModel, 2 * dims.dModel);
    w.checkZeroBias(`${p}/attention/linear_1/bias`, 0, dims.dModel);
    // Self-attention.
    const h = L.layerNorm(x, `${p}/self_attention/layer_norm`);
    const [q, k, v] = L.split(L.linear(h, `${p}/self_attention/linear_0`), 3) as [string, string, string];
    let keys = L.splitHeads(k);
    let values = L.splitHeads(v);
    if (withPast) {
      keys = L.op('Concat', [`past_key_values.${i}.decoder.key`, keys], { axis: int(2) });
      values = L.op('Concat', [`past_key_values.${i}.decoder.value`, values], { axis: int(2) });
    }
    const self = L.attention(L.splitHeads(q), keys, values, masked);
    x = L.op('Add', [x, L.linear(L.mergeHeads(self.out), `${p}/self_attention/linear_1`)]);
    // Cross-attention.
    const hc = L.layerNorm(x, `${p}/attention/layer_norm`);
    const qc = L.splitHeads(L.linear(hc, `${p}/attention/linear_0`));
    let crossKeys: string;
    let crossValues: string;
    let encoderPresentKey: string;
    let encoderPresentValue: string;
    if (withPast) {
      crossKeys = `past_key_values.${i}.encoder.key`;
      crossValues = `past_key_values.${i}.encoder.value`;
      encoderPresentKey = L.op('Identity', [empty]);
      encoderPresentValue = L.op('Identity', [empty]);
    } else {
      const [ck, cv] = L.split(L.linear('encoder_hidden_states', `${p}/attention/linear_1`), 2) as [
        string,
        string,
      ];
      crossKeys = L.splitHeads(ck);
      crossValues = L.splitHeads(cv);
      encoderPresentKey = crossKeys;
      encoderPresentValue = crossValues;
    }
    const cross = L.attention(qc, crossKeys, crossValues);
    crossAttentions.push(cross.probs);
    x = L.op('Add', [x, L.linear(L.mergeHeads(cross.out), `${p}/attention/linear_2`)]);
    x = L.ffn(x, p);
    presents.push(keys, values, encoderPresentKey, encoderPresentValue);
  }
  x = L.layerNorm(x, 'decoder/layer_norm');
  // Tied output projection: Gemm with transB on the [V, d] embedding itself, so ONNX Runtime keeps one copy.
  const flat = L.op('Reshape', [x, g.int64s([-1, dims.dModel])]);
  const logits2d = L.op('Gemm', [flat, w.get('decoder/projection/weight')], { transB: int(1) });
  const logitsShape = L.op('Concat', [L.op('Shape', ['input_ids']), g.int64s([dims.vocabSize])], {
    axis: int(0),
  });
  const logits = L.op('Reshape', [logits2d, logitsShape]);
  const outputs = [logits, ...presents, ...crossAttentions];
  // A subgraph output must be a distinct value produced in the branch: pass everything through Identity
  // named after the output (a no-op that ONNX Runtime removes).
  const names = decoderIoNames(dims.decoderLayers).outputs;
  return outputs.map((value, j) => {
    const out = L.op('Identity', [value], {}, `${tag}/${names[j]}`);
    g.output(out, 'float');
    return out;
  });
}

/** decoder_model_merged.onnx: optimum's interface (research §3.3), plus cross_attentions.{i}. */
export function buildDecoderGraph(model: Ct2Model, dims: WhisperDims): OnnxGraph {
  const root = new OnnxGraph('whisper_decoder');
  const w = new Weights(model, root);
  const H = dims.decoderHeads;
  const hd = dims.headDim;
  root.input('input_ids', 'int64', ['batch_size', 'decoder_sequence_length']);
  root.input('encoder_hidden_states', 'float', ['batch_size', 'encoder_sequence_length / 2', dims.dModel]);
  for (let i = 0; i < dims.decoderLayers; i += 1) {
    for (const kind of ['key', 'value']) {
      root.input(`past_key_values.${i}.decoder.${kind}`, 'float', [
        'batch_size',
        H,
        'past_decoder_sequence_length',
        hd,
      ]);
    }
    for (const kind of ['key', 'value']) {
      root.input(`past_key_values.${i}.encoder.${kind}`, 'float', [
        'batch_size',
        H,
        'encoder_sequence_length_out',
        hd,
      ]);
    }
  }
  root.input('use_cache_branch', 'bool', [1]);

  const withPast = root.subgraph('with_past');
  decoderBranch(new Layers(withPast, w, dims), true);
  const noPast = root.subgraph('no_past');
  decoderBranch(new Layers(noPast, w, dims), false);
  const { outputs } = decoderIoNames(dims.decoderLayers);
  root.opN(
    'If',
    ['use_cache_branch'],
    outputs.length,
    { then_branch: graphAttr(withPast), else_branch: graphAttr(noPast) },
    outputs,
  );

  root.output('logits', 'float', ['batch_size', 'decoder_sequence_length', dims.vocabSize]);
  for (let i = 0; i < dims.decoderLayers; i += 1) {
    for (const kind of ['key', 'value']) {
      root.output(`present.${i}.decoder.${kind}`, 'float', [
        'batch_size',
        H,
        'present_decoder_sequence_length',
        hd,
      ]);
    }
    for (const kind of ['key', 'value']) {
      root.output(`present.${i}.encoder.${kind}`, 'float', [
        'batch_size',
        H,
        'encoder_sequence_length_out',
        hd,
      ]);
    }
  }
  for (let i = 0; i < dims.decoderLayers; i += 1) {
    root.output(`cross_attentions.${i}`, 'float', [
      'batch_size',
      H,
      'decoder_sequence_length',
      'encoder_sequence_length_out',
    ]);
  }
  return root;
}

/** Token ids looked up by string in tokenizer.json (research §5.1: they differ between .en and multilingual). */
export interface WhisperSpecialTokens {
  eot: number;
  sot: number;
  translate: number;
  transcribe: number;
  startOfLm: number;
  startOfPrev: number;
  noSpeech: number;
  noTimestamps: number;
  /** `<|0.00|>`: no_timestamps + 1 (older tokenizer.json files lack the timestamp tokens). */
  timestampBegin: number;
}

function specialTokens(tokenizer: { added_tokens?: { id: number; content: string }[] }): {
  tokens: WhisperSpecialTokens;
  byId: Map<number, string>;
} {
  const byContent = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const t of tokenizer.added_tokens ?? []) {
    byContent.set(t.content, t.id);
    byId.set(t.id, t.content);
  }
  const id = (...names: string[]) => {
    for (const n of names) {
      const v = byContent.get(n);
      if (v !== undefined) return v;
    }
    throw bad(`tokenizer.json has no ${names.join(' or ')} token`);
  };
  const noTimestamps = id('<|notimestamps|>');
  return {
    tokens: {
      eot: id('<|endoftext|>'),
      sot: id('<|startoftranscript|>'),
      translate: id('<|translate|>'),
      transcribe: id('<|transcribe|>'),
      startOfLm: id('<|startoflm|>'),
      startOfPrev: id('<|startofprev|>'),
      noSpeech: id('<|nospeech|>', '<|nocaptions|>'),
      noTimestamps,
      timestampBegin: noTimestamps + 1,
    },
    byId,
  };
}

/** HF `config.json` (WhisperConfig) for the converted model. */
export function hfConfig(
  dims: WhisperDims,
  tokens: WhisperSpecialTokens,
  ct2: Ct2WhisperConfig,
): Record<string, unknown> {
  return {
    activation_function: 'gelu',
    architectures: ['WhisperForConditionalGeneration'],
    begin_suppress_tokens: ct2.suppressIdsBegin,
    bos_token_id: tokens.eot,
    d_model: dims.dModel,
    decoder_attention_heads: dims.decoderHeads,
    decoder_ffn_dim: dims.ffnDim,
    decoder_layers: dims.decoderLayers,
    decoder_start_token_id: tokens.sot,
    encoder_attention_heads: dims.encoderHeads,
    encoder_ffn_dim: dims.ffnDim,
    encoder_layers: dims.encoderLayers,
    eos_token_id: tokens.eot,
    is_encoder_decoder: true,
    max_length: dims.textContext,
    max_source_positions: dims.audioContext,
    max_target_positions: dims.textContext,
    median_filter_width: 7,
    model_type: 'whisper',
    num_hidden_layers: dims.encoderLayers,
    num_mel_bins: dims.nMels,
    pad_token_id: tokens.eot,
    scale_embedding: false,
    suppress_tokens: ct2.suppressIds,
    tie_word_embeddings: true,
    use_cache: true,
    vocab_size: dims.vocabSize,
  };
}

/** HF `generation_config.json` (WhisperGenerationConfig): alignment heads, suppression, languages. */
export function hfGenerationConfig(
  dims: WhisperDims,
  tokens: WhisperSpecialTokens,
  byId: ReadonlyMap<number, string>,
  ct2: Ct2WhisperConfig,
): Record<string, unknown> {
  const multilingual = dims.vocabSize >= 51865; // openai's rule
  const languages: Record<string, number> = {};
  if (multilingual) {
    for (const id of ct2.langIds) {
      const content = byId.get(id);
      if (!content) throw bad(`language token ${id} of config.json is not in tokenizer.json`);
      languages[content] = id;
    }
  }
  return {
    alignment_heads: ct2.alignmentHeads,
    begin_suppress_tokens: ct2.suppressIdsBegin,
    bos_token_id: tokens.eot,
    decoder_start_token_id: tokens.sot,
    eos_token_id: tokens.eot,
    is_multilingual: multilingual,
    ...(multilingual
      ? { lang_to_id: languages, task_to_id: { transcribe: tokens.transcribe, translate: tokens.translate } }
      : {}),
    max_initial_timestamp_index: 50,
    max_length: dims.textContext,
    no_timestamps_token_id: tokens.noTimestamps,
    pad_token_id: tokens.eot,
    prev_sot_token_id: tokens.startOfPrev,
    return_timestamps: false,
    suppress_tokens: ct2.suppressIds,
  };
}

/** HF `preprocessor_config.json` (WhisperFeatureExtractor). */
export function hfPreprocessorConfig(dims: WhisperDims): Record<string, unknown> {
  return {
    chunk_length: 30,
    feature_extractor_type: 'WhisperFeatureExtractor',
    feature_size: dims.nMels,
    hop_length: 160,
    n_fft: 400,
    n_samples: 480000,
    nb_max_frames: 3000,
    padding_side: 'right',
    padding_value: 0.0,
    processor_class: 'WhisperProcessor',
    return_attention_mask: false,
    sampling_rate: 16000,
  };
}

/** The CTranslate2 files a conversion reads. */
export interface Ct2WhisperSources {
  /** model.bin, or its parts in order (concatenated). */
  modelBin: readonly string[];
  /** CTranslate2's config.json. */
  config: string;
  /** The HF tokenizer.json shipped beside it. */
  tokenizer: string;
}

export interface ConvertedFile {
  name: WhisperOnnxFile;
  path: string;
  bytes: number;
  sha256: string;
}

export interface WhisperConversion {
  dims: WhisperDims;
  files: ConvertedFile[];
  ms: number;
}

/**
 * Converts a CTranslate2 Whisper model into `outDir` (which must exist): the two ONNX graphs and the HF
 * JSON files (WHISPER_ONNX_FILES). Deterministic: the same inputs give the same bytes.
 */
export async function convertCt2Whisper(
  sources: Ct2WhisperSources,
  outDir: string,
): Promise<WhisperConversion> {
  const started = performance.now();
  const [model, ct2, tokenizerText] = await Promise.all([
    readCt2Model(sources.modelBin),
    readCt2WhisperConfig(sources.config),
    readFile(sources.tokenizer),
  ]);
  const dims = whisperDims(model);
  const { tokens, byId } = specialTokens(JSON.parse(tokenizerText.toString('utf8')));
  const info = {
    opset: OPSET,
    irVersion: IR_VERSION,
    producerName: 'livelens-ct2-whisper-onnx',
    producerVersion: CT2_WHISPER_ONNX_VERSION,
    metadata: {
      source: `CTranslate2 ${model.specName} revision ${model.specRevision}, binary version ${model.binaryVersion}`,
      weights: 'float16 initializers cast to float32 (lossless)',
    },
  };
  const files: ConvertedFile[] = [];
  const onnx = async (name: WhisperOnnxFile, graph: OnnxGraph) => {
    const written = await writeOnnxModel(join(outDir, name), graph, info);
    files.push({ name, ...written });
  };
  await onnx('encoder_model.onnx', buildEncoderGraph(model, dims));
  await onnx('decoder_model_merged.onnx', buildDecoderGraph(model, dims));
  const put = async (name: WhisperOnnxFile, bytes: Uint8Array) => {
    const path = join(outDir, name);
    await writeFile(path, bytes);
    files.push({
      name,
      path,
      bytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  };
  const json = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
  await put('config.json', json(hfConfig(dims, tokens, ct2)));
  await put('generation_config.json', json(hfGenerationConfig(dims, tokens, byId, ct2)));
  await put('preprocessor_config.json', json(hfPreprocessorConfig(dims)));
  // tokenizer.json is copied unchanged, so the directory holds everything a runtime reads.
  await put('tokenizer.json', tokenizerText);
  return { dims, files, ms: performance.now() - started };
}

/**
 * The `ct2-whisper-onnx` builder of models.json's derived entries: finds the CTranslate2 files among the
 * inputs by file name (`model.bin` or `model.bin.partN`, `config.json`, `tokenizer.json`; others, such as
 * the vocabulary, are ignored) and converts them into `outDir`.
 */
export async function ct2WhisperOnnxBuilder(
  inputs: readonly { entry: { id: string; file: string }; path: string }[],
  outDir: string,
): Promise<ReadonlyMap<string, string>> {
  const parts: { index: number; path: string }[] = [];
  let config: string | undefined;
  let tokenizer: string | undefined;
  for (const { entry, path } of inputs) {
    const part = /^model\.bin(?:\.part(\d+))?$/.exec(entry.file);
    if (part) parts.push({ index: Number(part[1] ?? 0), path });
    else if (entry.file === 'config.json') config = path;
    else if (entry.file === 'tokenizer.json') tokenizer = path;
  }
  if (parts.length === 0 || !config || !tokenizer) {
    throw bad(
      `its inputs (${inputs.map((i) => `${i.entry.id}: ${i.entry.file}`).join(', ')}) must include model.bin ` +
        '(or model.bin.part1, part2, ...), config.json and tokenizer.json',
    );
  }
  parts.sort((a, b) => a.index - b.index);
  const conversion = await convertCt2Whisper(
    { modelBin: parts.map((p) => p.path), config, tokenizer },
    outDir,
  );
  return new Map(conversion.files.map((f) => [f.name, f.sha256]));
}
