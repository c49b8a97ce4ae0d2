// A reader for CTranslate2 model directories (`model.bin` binary version 6, `config.json`), the format
// faster-whisper's weights ship in. Layout (CTranslate2 `ModelSpec._serialize`, read by C++
// `models::Model::load`): every integer little-endian with no padding anywhere, so tensor payloads start at
// arbitrary byte offsets; strings are `uint16 n` (bytes including a trailing NUL) + bytes; variables are
// written sorted by name, then an alias table (`decoder/projection/weight` → `decoder/embeddings/weight`
// for Whisper's tied output projection). See shared/research/whisper-onnx.md §1–2.
import { open, readFile, stat } from 'node:fs/promises';
import { LiveLensError } from '@livelens/runtime';

/** CTranslate2's `DataType` enum, in id order (`include/ctranslate2/types.h`). */
export const CT2_DTYPES = ['float32', 'int8', 'int16', 'int32', 'float16', 'bfloat16'] as const;
export type Ct2DataType = (typeof CT2_DTYPES)[number];

const ITEM_BYTES: Record<Ct2DataType, number> = {
  float32: 4,
  int8: 1,
  int16: 2,
  int32: 4,
  float16: 2,
  bfloat16: 2,
};

/** The only binary version CTranslate2 has written since October 2022 (and the only one read here). */
export const CT2_BINARY_VERSION = 6;

/** One variable of a model.bin. */
export interface Ct2Variable {
  readonly name: string;
  /** Row-major dimensions; `[]` for a scalar. */
  readonly shape: readonly number[];
  readonly dtype: Ct2DataType;
  /** The little-endian payload: a view into the file's bytes, at any byte offset (copy before typed views). */
  readonly bytes: Uint8Array;
}

/** A parsed model.bin: its spec and variables, aliases resolved on lookup. */
export interface Ct2Model {
  readonly binaryVersion: number;
  /** E.g. `WhisperSpec`. */
  readonly specName: string;
  readonly specRevision: number;
  /** The variables stored in the file, in file order (sorted by name). */
  readonly variables: ReadonlyMap<string, Ct2Variable>;
  /** Alias name → the name of the variable holding the data. */
  readonly aliases: ReadonlyMap<string, string>;
}

function formatError(source: string, message: string, cause?: unknown): LiveLensError {
  return new LiveLensError(`${source}: not a CTranslate2 model.bin we can read: ${message}`, {
    code: 'invalid_argument',
    cause,
    context: { path: source },
  });
}

/**
 * Parses a CTranslate2 model.bin (binary version 6). The variables' payloads stay views into `bytes` (no
 * copy), so keep `bytes` alive while the model is used. `source` names the file in errors.
 */
export function parseCt2Model(bytes: Uint8Array, source = 'model.bin'): Ct2Model {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  const need = (n: number, what: string) => {
    if (offset + n > bytes.byteLength) {
      throw formatError(
        source,
        `truncated at byte ${offset} reading ${what} (file has ${bytes.byteLength} bytes)`,
      );
    }
  };
  const u8 = (what: string) => {
    need(1, what);
    return view.getUint8(offset++);
  };
  const u16 = (what: string) => {
    need(2, what);
    const v = view.getUint16(offset, true);
    offset += 2;
    return v;
  };
  const u32 = (what: string) => {
    need(4, what);
    const v = view.getUint32(offset, true);
    offset += 4;
    return v;
  };
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const str = (what: string) => {
    const n = u16(`the length of ${what}`);
    // The length counts the trailing NUL, so 0 is invalid (the C++ reader rejects it too).
    if (n === 0) throw formatError(source, `empty string for ${what} at byte ${offset - 2}`);
    need(n, what);
    const text = decoder.decode(bytes.subarray(offset, offset + n - 1));
    offset += n;
    return text;
  };

  const binaryVersion = u32('the binary version');
  if (binaryVersion !== CT2_BINARY_VERSION) {
    throw formatError(
      source,
      `binary version ${binaryVersion}; only version ${CT2_BINARY_VERSION} (CTranslate2 ≥ 3.0) is supported`,
    );
  }
  const specName = str('the spec name');
  const specRevision = u32('the spec revision');
  const count = u32('the variable count');
  const variables = new Map<string, Ct2Variable>();
  for (let i = 0; i < count; i += 1) {
    const name = str(`the name of variable ${i}`);
    const rank = u8(`the rank of ${name}`);
    const shape: number[] = [];
    for (let d = 0; d < rank; d += 1) shape.push(u32(`dimension ${d} of ${name}`));
    const dtypeId = u8(`the dtype of ${name}`);
    const dtype = CT2_DTYPES[dtypeId];
    if (!dtype) throw formatError(source, `unknown dtype id ${dtypeId} for ${name}`);
    const numBytes = u32(`the byte count of ${name}`);
    const expected = shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[dtype];
    if (numBytes !== expected) {
      throw formatError(
        source,
        `${name}: ${numBytes} bytes for a ${dtype} tensor of shape [${shape.join(', ')}] (expected ${expected})`,
      );
    }
    need(numBytes, `the data of ${name}`);
    variables.set(name, { name, shape, dtype, bytes: bytes.subarray(offset, offset + numBytes) });
    offset += numBytes;
  }
  const aliases = new Map<string, string>();
  const aliasCount = u32('the alias count');
  for (let i = 0; i < aliasCount; i += 1) {
    const alias = str(`the name of alias ${i}`);
    const target = str(`the target of alias ${alias}`);
    aliases.set(alias, target);
  }
  if (offset !== bytes.byteLength) {
    throw formatError(source, `${bytes.byteLength - offset} unexpected bytes after the alias table`);
  }
  for (const [alias, target] of aliases) {
    if (!variables.has(target))
      throw formatError(source, `alias ${alias} points to unknown variable ${target}`);
  }
  return { binaryVersion, specName, specRevision, variables, aliases };
}

/**
 * Reads a model.bin, or the parts of one split across packages (`model.bin.part1`, `model.bin.part2`, in
 * order): the parts are concatenated into one buffer (one copy of the weights in memory, no more).
 */
export async function readCt2Model(parts: readonly string[]): Promise<Ct2Model> {
  if (parts.length === 0)
    throw new LiveLensError('readCt2Model: no model.bin given', { code: 'invalid_argument' });
  const source = parts.length === 1 ? (parts[0] as string) : `${parts[0]} (+${parts.length - 1} parts)`;
  let bytes: Uint8Array;
  if (parts.length === 1) {
    bytes = await readFile(parts[0] as string);
  } else {
    const sizes = await Promise.all(parts.map(async (p) => (await stat(p)).size));
    bytes = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const [i, part] of parts.entries()) {
      const handle = await open(part, 'r');
      try {
        const size = sizes[i] as number;
        let read = 0;
        while (read < size) {
          const { bytesRead } = await handle.read(bytes, at + read, size - read, read);
          if (bytesRead === 0) throw formatError(part, 'file shrank while reading');
          read += bytesRead;
        }
        at += size;
      } finally {
        await handle.close();
      }
    }
  }
  return parseCt2Model(bytes, source);
}

/** The variable `name`, following an alias; a clear error when the model lacks it. */
export function getVariable(model: Ct2Model, name: string): Ct2Variable {
  const variable = model.variables.get(model.aliases.get(name) ?? name);
  if (!variable) {
    throw new LiveLensError(`the ${model.specName} model has no variable ${name}`, {
      code: 'invalid_argument',
    });
  }
  return variable;
}

/** Whether `name` is stored or aliased in the model. */
export function hasVariable(model: Ct2Model, name: string): boolean {
  return model.variables.has(model.aliases.get(name) ?? name);
}

/** The value of a scalar variable (any dtype), e.g. `decoder/activation` or `encoder/num_heads`. */
export function scalarValue(variable: Ct2Variable): number {
  if (variable.shape.length !== 0) {
    throw new LiveLensError(`${variable.name} is not a scalar (shape [${variable.shape.join(', ')}])`, {
      code: 'invalid_argument',
    });
  }
  return toFloat32(variable)[0] as number;
}

const halfScratch = new DataView(new ArrayBuffer(4));

/** IEEE 754 binary16 bits → number, including subnormals, ±Infinity and NaN. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 bits → number: the upper half of a float32. */
export function bfloat16ToFloat(bits: number): number {
  halfScratch.setUint32(0, bits << 16, true);
  return halfScratch.getFloat32(0, true);
}

/** Decodes a variable to float32 (exact for float16, bfloat16, int8/16/32 values; copies). */
export function toFloat32(variable: Ct2Variable): Float32Array {
  const { bytes, dtype } = variable;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / ITEM_BYTES[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < n; i += 1) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'float16':
      for (let i = 0; i < n; i += 1) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i += 1) out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
      break;
    case 'int8':
      for (let i = 0; i < n; i += 1) out[i] = view.getInt8(i);
      break;
    case 'int16':
      for (let i = 0; i < n; i += 1) out[i] = view.getInt16(i * 2, true);
      break;
    case 'int32':
      for (let i = 0; i < n; i += 1) out[i] = view.getInt32(i * 4, true);
      break;
  }
  return out;
}

/** The bytes of one element of `dtype`. */
export function itemBytes(dtype: Ct2DataType): number {
  return ITEM_BYTES[dtype];
}

/** CTranslate2's Whisper `config.json` (`WhisperConfig`): read by the runtime, not by the graph. */
export interface Ct2WhisperConfig {
  /** [decoder layer, head] pairs whose cross-attention follows the audio (word timings). */
  alignmentHeads: [number, number][];
  /** Language token ids (multilingual models). */
  langIds: number[];
  /** Non-speech tokens suppressed when the caller asks for the default (`-1`). */
  suppressIds: number[];
  /** Tokens suppressed at the first sampled position (`" "` and end-of-text). */
  suppressIdsBegin: number[];
}

const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x));

/** Reads and checks a CTranslate2 Whisper `config.json`. */
export async function readCt2WhisperConfig(path: string): Promise<Ct2WhisperConfig> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new LiveLensError(`${path}: cannot read the CTranslate2 config: ${(cause as Error).message}`, {
      code: 'invalid_argument',
      cause,
    });
  }
  const heads = raw.alignment_heads;
  if (!Array.isArray(heads) || !heads.every((h) => isIntArray(h) && h.length === 2)) {
    throw new LiveLensError(`${path}: alignment_heads must be a list of [layer, head] pairs`, {
      code: 'invalid_argument',
    });
  }
  const list = (key: string) => {
    const v = raw[key] ?? [];
    if (!isIntArray(v)) {
      throw new LiveLensError(`${path}: ${key} must be a list of token ids`, { code: 'invalid_argument' });
    }
    return v;
  };
  return {
    alignmentHeads: heads as [number, number][],
    langIds: list('lang_ids'),
    suppressIds: list('suppress_ids'),
    suppressIdsBegin: list('suppress_ids_begin'),
  };
}
