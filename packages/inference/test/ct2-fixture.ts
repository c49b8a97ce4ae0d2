// Test support: synthetic CTranslate2 model.bin files, written the way CTranslate2's writer does.
import { CT2_DTYPES, type Ct2DataType, halfToFloat } from '../src/asr/ct2.js';

/** A variable for the synthetic writer: raw little-endian payload bytes. */
export interface FixtureVariable {
  name: string;
  shape: number[];
  dtype: Ct2DataType;
  bytes: Uint8Array;
}

/** Writes a model.bin the way CTranslate2's `ModelSpec._serialize` does (binary version 6). */
export function writeCt2Fixture(
  spec: string,
  revision: number,
  variables: FixtureVariable[],
  aliases: [string, string][] = [],
): Uint8Array {
  const chunks: number[] = [];
  const u8 = (v: number) => chunks.push(v & 0xff);
  const u16 = (v: number) => {
    u8(v);
    u8(v >> 8);
  };
  const u32 = (v: number) => {
    u16(v & 0xffff);
    u16(v >>> 16);
  };
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u16(b.length + 1);
    for (const x of b) u8(x);
    u8(0);
  };
  u32(6);
  str(spec);
  u32(revision);
  u32(variables.length);
  for (const v of [...variables].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    str(v.name);
    u8(v.shape.length);
    for (const d of v.shape) u32(d);
    u8(CT2_DTYPES.indexOf(v.dtype));
    u32(v.bytes.byteLength);
    for (const x of v.bytes) u8(x);
  }
  u32(aliases.length);
  for (const [alias, target] of aliases) {
    str(alias);
    str(target);
  }
  return Uint8Array.from(chunks);
}

/** A deterministic PRNG (mulberry32), so fixtures are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The float16 bits of `x` (round half up on the dropped mantissa bits; fixture values are normal numbers). */
function halfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign; // the fixture's values are never that small: flush to zero
  const rounded = (exp << 10) | (mant >>> 13);
  return sign | (rounded + ((mant >>> 12) & 1));
}

/** Dimensions of the synthetic Whisper. */
export const TINY_WHISPER = {
  nMels: 4,
  d: 8,
  heads: 2,
  ffn: 32,
  vocab: 12,
  audioCtx: 6,
  textCtx: 10,
} as const;

/**
 * A tiny random WhisperSpec (1 encoder and 1 decoder layer) with the real variable names, fused q‖k‖v and
 * k‖v layouts (key bias slots zero) and the tied projection alias. `dtype` is the weights' storage type.
 */
export function tinyWhisperFixture(dtype: 'float16' | 'float32' | 'bfloat16' | 'int8', seed = 1): Uint8Array {
  const { nMels, d, heads, ffn, vocab, audioCtx, textCtx } = TINY_WHISPER;
  const random = prng(seed);
  const variables: FixtureVariable[] = [];
  const tensor = (name: string, shape: number[], init: (i: number) => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    // float16-exact values, so every storage type of the fixture can hold the same numbers.
    const values = Array.from({ length: n }, (_, i) => halfToFloat(halfBits(init(i))));
    // An int8 model (quantized) keeps its 1-D vectors in float32, as CTranslate2 does for biases and norms.
    const storage = dtype === 'int8' && shape.length < 2 ? 'float32' : dtype;
    let bytes: Uint8Array;
    if (storage === 'float32') bytes = new Uint8Array(Float32Array.from(values).buffer);
    else if (storage === 'float16') bytes = new Uint8Array(Uint16Array.from(values.map(halfBits)).buffer);
    else if (storage === 'bfloat16') {
      const u = new Uint32Array(Float32Array.from(values).buffer);
      bytes = new Uint8Array(Uint16Array.from(u, (x) => x >>> 16).buffer);
    } else bytes = new Uint8Array(Int8Array.from(values, (v) => Math.round(v * 100)).buffer);
    variables.push({ name, shape, dtype: storage, bytes });
  };
  const w = (name: string, shape: number[], scale = 0.5) =>
    tensor(name, shape, () => (random() * 2 - 1) * scale);
  const scalar = (name: string, type: 'int8' | 'int16', value: number) =>
    variables.push({
      name,
      shape: [],
      dtype: type,
      bytes: type === 'int8' ? Uint8Array.of(value) : Uint8Array.of(value & 0xff, value >> 8),
    });
  const norm = (prefix: string) => {
    tensor(`${prefix}/gamma`, [d], () => 1 + (random() - 0.5) * 0.2);
    w(`${prefix}/beta`, [d], 0.1);
  };
  const linear = (prefix: string, out: number, inp: number, zeroBias?: [number, number]) => {
    w(`${prefix}/weight`, [out, inp], 1 / Math.sqrt(inp));
    tensor(`${prefix}/bias`, [out], (i) =>
      zeroBias && i >= zeroBias[0] && i < zeroBias[1] ? 0 : (random() - 0.5) * 0.2,
    );
  };
  const ffnBlock = (prefix: string) => {
    norm(`${prefix}/ffn/layer_norm`);
    linear(`${prefix}/ffn/linear_0`, ffn, d);
    linear(`${prefix}/ffn/linear_1`, d, ffn);
  };
  scalar('encoder/num_heads', 'int16', heads);
  w('encoder/conv1/weight', [d, nMels, 3], 0.4);
  w('encoder/conv1/bias', [d], 0.1);
  w('encoder/conv2/weight', [d, d, 3], 0.2);
  w('encoder/conv2/bias', [d], 0.1);
  w('encoder/position_encodings/encodings', [audioCtx, d], 1);
  norm('encoder/layer_norm');
  norm('encoder/layer_0/self_attention/layer_norm');
  linear('encoder/layer_0/self_attention/linear_0', 3 * d, d, [d, 2 * d]);
  linear('encoder/layer_0/self_attention/linear_1', d, d);
  ffnBlock('encoder/layer_0');
  scalar('decoder/num_heads', 'int16', heads);
  scalar('decoder/activation', 'int8', 3);
  w('decoder/embeddings/weight', [vocab, d], 1);
  w('decoder/position_encodings/encodings', [textCtx, d], 0.3);
  norm('decoder/layer_norm');
  norm('decoder/layer_0/self_attention/layer_norm');
  linear('decoder/layer_0/self_attention/linear_0', 3 * d, d, [d, 2 * d]);
  linear('decoder/layer_0/self_attention/linear_1', d, d);
  norm('decoder/layer_0/attention/layer_norm');
  linear('decoder/layer_0/attention/linear_0', d, d);
  linear('decoder/layer_0/attention/linear_1', 2 * d, d, [0, d]);
  linear('decoder/layer_0/attention/linear_2', d, d);
  ffnBlock('decoder/layer_0');
  return writeCt2Fixture('WhisperSpec', 3, variables, [
    ['decoder/projection/weight', 'decoder/embeddings/weight'],
  ]);
}

/** The CTranslate2 config.json and the tokenizer.json (special tokens only) of the synthetic Whisper. */
export const TINY_WHISPER_CONFIG = {
  alignment_heads: [[0, 1]],
  lang_ids: [],
  suppress_ids: [1],
  suppress_ids_begin: [2, 4],
};
export const TINY_WHISPER_TOKENIZER = {
  added_tokens: [
    '<|endoftext|>',
    '<|startoftranscript|>',
    '<|translate|>',
    '<|transcribe|>',
    '<|startoflm|>',
    '<|startofprev|>',
    '<|nocaptions|>',
    '<|notimestamps|>',
  ].map((content, i) => ({ id: 4 + i, content, special: true })),
};
