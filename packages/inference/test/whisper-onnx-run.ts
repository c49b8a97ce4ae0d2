// Test support: runs converted Whisper graphs on ONNX Runtime directly (int64 and bool inputs, which the
// float32-only ModelSession does not carry), the way a runtime drives optimum's merged decoder.
import ort from 'onnxruntime-node';

export type Feeds = Record<string, ort.Tensor>;
export type Outputs = Record<string, ort.Tensor>;

export function loadSession(path: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 2,
    graphOptimizationLevel: 'all',
  });
}

export const floatTensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
export const idsTensor = (rows: readonly (readonly number[])[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
    [rows.length, rows[0]?.length ?? 0],
  );

/** The decoder's layer count and heads, read from its inputs. */
export function decoderShape(decoder: ort.InferenceSession): { layers: number } {
  return { layers: decoder.inputNames.filter((n) => n.endsWith('.decoder.key')).length };
}

/**
 * One decoder call. Without `past` it is the first step: every past input is an empty [B, H, 0, head_dim] tensor
 * and use_cache_branch is false, so the graph computes the cross-attention keys/values from
 * encoder_hidden_states. With `past` (the previous outputs' decoder presents, and the FIRST step's encoder
 * presents, which later steps return empty), use_cache_branch is true.
 */
export async function runDecoder(
  decoder: ort.InferenceSession,
  ids: readonly (readonly number[])[],
  encoderHidden: ort.Tensor,
  past?: { decoder: Outputs; encoder: Outputs },
): Promise<Outputs> {
  const { layers } = decoderShape(decoder);
  const batch = ids.length;
  const meta = decoder.inputMetadata.find((m) => m.name === 'past_key_values.0.decoder.key');
  const [heads, headDim] = meta?.isTensor
    ? [Number(meta.shape[1]), Number(meta.shape[3])]
    : [Number.NaN, Number.NaN];
  const feeds: Feeds = {
    input_ids: idsTensor(ids),
    encoder_hidden_states: encoderHidden,
    use_cache_branch: new ort.Tensor('bool', Uint8Array.of(past ? 1 : 0), [1]),
  };
  for (let i = 0; i < layers; i += 1) {
    for (const part of ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value']) {
      const name = `past_key_values.${i}.${part}`;
      const present = `present.${i}.${part}`;
      const source = part.startsWith('decoder') ? past?.decoder : past?.encoder;
      feeds[name] = source?.[present] ?? floatTensor(new Float32Array(0), [batch, heads, 0, headDim]);
    }
  }
  return decoder.run(feeds);
}

/** The logits of position `t` of batch row `b`: [V]. */
export function logitsAt(outputs: Outputs, b: number, t: number): Float32Array {
  const logits = outputs.logits as ort.Tensor;
  const [, T, V] = logits.dims as [number, number, number];
  return (logits.data as Float32Array).subarray((b * T + t) * V, (b * T + t + 1) * V);
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i += 1)
    worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

/** The float32 data of output `name` (throws when it is missing). */
export function data(outputs: Outputs, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor) throw new Error(`no output ${name}`);
  return tensor.data as Float32Array;
}
