// A small ONNX graph builder and a streaming, deterministic model writer, on the protoc-gen-es types of
// onnx/onnx.proto (src/gen). The converters build graphs with it; the weights never pass through protobuf-es:
// each initializer's bytes are produced when written (so at most one converted weight is held at a time,
// next to the source file) and spliced into the GraphProto as length-delimited fields, which protobuf
// parsers accept in any field order. Same graph and weights → same bytes.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  type GraphProto,
  GraphProtoSchema,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from '../gen/onnx/onnx_pb.js';

/** Element types the converters use. */
export type ElemType = 'float' | 'float16' | 'int64' | 'bool';

const DATA_TYPE: Record<ElemType, TensorProto_DataType> = {
  float: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  int64: TensorProto_DataType.INT64,
  bool: TensorProto_DataType.BOOL,
};
const ELEM_BYTES: Record<ElemType, number> = { float: 4, float16: 2, int64: 8, bool: 1 };

/** A dimension: a fixed size or a symbolic name (`batch_size`). */
export type Dim = number | string;

/** An initializer whose bytes (little-endian, C order) are produced only when the model is written. */
export interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: ElemType;
  /** Must return exactly prod(dims) × element size bytes. */
  readonly data: () => Uint8Array;
}

/** A node attribute, tagged with its ONNX type (JavaScript numbers cannot tell int from float). */
export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'float'; value: number }
  | { kind: 'graph'; value: OnnxGraph };

export const int = (value: number): Attr => ({ kind: 'int', value });
export const ints = (value: readonly number[]): Attr => ({ kind: 'ints', value });
export const float = (value: number): Attr => ({ kind: 'float', value });
export const graphAttr = (value: OnnxGraph): Attr => ({ kind: 'graph', value });

/** Names, initializers and constants shared by a graph and its subgraphs (ONNX names are global). */
class ModelScope {
  readonly initializers: Initializer[] = [];
  private readonly initializerNames = new Set<string>();
  private readonly constants = new Map<string, string>();
  private counter = 0;

  fresh(hint: string): string {
    this.counter += 1;
    return `${hint}_${this.counter}`;
  }

  addInitializer(init: Initializer): string {
    if (this.initializerNames.has(init.name)) throw new Error(`duplicate initializer ${init.name}`);
    const expected = init.dims.reduce((a, b) => a * b, 1) * ELEM_BYTES[init.type];
    const data = () => {
      const bytes = init.data();
      if (bytes.byteLength !== expected) {
        throw new Error(`initializer ${init.name}: ${bytes.byteLength} bytes, expected ${expected}`);
      }
      return bytes;
    };
    this.initializers.push({ ...init, data });
    this.initializerNames.add(init.name);
    return init.name;
  }

  /** A small constant tensor, stored once per distinct value. */
  constant(type: 'float' | 'int64', values: readonly number[], dims: readonly number[]): string {
    const key = `${type}:${dims.join('x')}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${type}_${this.constants.size}`;
    const bytes = new Uint8Array(values.length * ELEM_BYTES[type]);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => {
      if (type === 'float') view.setFloat32(i * 4, v, true);
      else view.setBigInt64(i * 8, BigInt(v), true);
    });
    this.addInitializer({ name, dims, type, data: () => bytes });
    this.constants.set(key, name);
    return name;
  }
}

/** A graph under construction: nodes in topological order (the order they are added). */
export class OnnxGraph {
  readonly nodes: NodeProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly scope: ModelScope;

  constructor(
    readonly name: string,
    scope?: ModelScope,
  ) {
    this.scope = scope ?? new ModelScope();
  }

  /** A subgraph (an `If` branch): shares this model's names and initializers. */
  subgraph(name: string): OnnxGraph {
    return new OnnxGraph(name, this.scope);
  }

  get initializers(): readonly Initializer[] {
    return this.scope.initializers;
  }

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims?: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  initializer(init: Initializer): string {
    return this.scope.addInitializer(init);
  }

  /** A float32 scalar or vector constant. */
  floats(values: readonly number[], dims: readonly number[] = []): string {
    return this.scope.constant('float', values, dims);
  }

  /** An int64 scalar or vector constant. */
  int64s(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.scope.constant('int64', values, dims);
  }

  /** Adds a node with one output and returns the output's name (`out` names it, else a fresh name). */
  op(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const [output] = this.opN(opType, inputs, 1, attrs, out ? [out] : undefined);
    return output as string;
  }

  /** Adds a node with `count` outputs. */
  opN(
    opType: string,
    inputs: readonly string[],
    count: number,
    attrs: Record<string, Attr> = {},
    outs?: readonly string[],
  ): string[] {
    const nodeName = this.scope.fresh(`${this.name}/${opType}`);
    const outputs = outs ? [...outs] : Array.from({ length: count }, (_, i) => `${nodeName}_out${i}`);
    this.nodes.push(
      create(NodeProtoSchema, {
        name: nodeName,
        opType,
        input: [...inputs],
        output: outputs,
        attribute: Object.entries(attrs).map(([name, attr]) => attribute(name, attr)),
      }),
    );
    return outputs;
  }

  /** The GraphProto without initializers (they are written by {@link writeOnnxModel}). */
  toProto(): GraphProto {
    return create(GraphProtoSchema, {
      name: this.name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
    });
  }
}

function valueInfo(name: string, type: ElemType, dims?: readonly Dim[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: DATA_TYPE[type],
          ...(dims
            ? {
                shape: create(TensorShapeProtoSchema, {
                  dim: dims.map((d) =>
                    create(TensorShapeProto_DimensionSchema, {
                      value:
                        typeof d === 'number'
                          ? { case: 'dimValue', value: BigInt(d) }
                          : { case: 'dimParam', value: d },
                    }),
                  ),
                }),
              }
            : {}),
        }),
      },
    }),
  });
}

function attribute(name: string, attr: Attr): AttributeProto {
  switch (attr.kind) {
    case 'int':
      return create(AttributeProtoSchema, {
        name,
        type: AttributeProto_AttributeType.INT,
        i: BigInt(attr.value),
      });
    case 'ints':
      return create(AttributeProtoSchema, {
        name,
        type: AttributeProto_AttributeType.INTS,
        ints: attr.value.map((v) => BigInt(v)),
      });
    case 'float':
      return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: attr.value });
    case 'graph':
      return create(AttributeProtoSchema, {
        name,
        type: AttributeProto_AttributeType.GRAPH,
        g: attr.value.toProto(),
      });
  }
}

/** What goes around the graph in the ModelProto. */
export interface OnnxModelInfo {
  /** ai.onnx opset. */
  opset: number;
  irVersion: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  /** Stored as metadata_props, in this order. */
  metadata?: Record<string, string>;
}

/** The size and sha256 of a written file. */
export interface WrittenFile {
  path: string;
  bytes: number;
  sha256: string;
}

// Protobuf wire format, for the spliced fields: key = field number << 3 | wire type (2 = length-delimited).
const GRAPH_INITIALIZER_KEY = (5 << 3) | 2; // GraphProto.initializer
const TENSOR_RAW_DATA_KEY = (9 << 3) | 2; // TensorProto.raw_data
const MODEL_GRAPH_KEY = (7 << 3) | 2; // ModelProto.graph

function varint(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/**
 * Writes `graph` (with every initializer of its model scope) as an ONNX model to `path` and returns its size
 * and sha256. Initializers are written in the order they were added, each produced just before it is written.
 */
export async function writeOnnxModel(
  path: string,
  graph: OnnxGraph,
  info: OnnxModelInfo,
): Promise<WrittenFile> {
  const model = toBinary(
    ModelProtoSchema,
    create(ModelProtoSchema, {
      irVersion: BigInt(info.irVersion),
      producerName: info.producerName,
      producerVersion: info.producerVersion,
      ...(info.docString ? { docString: info.docString } : {}),
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(info.opset) })],
      metadataProps: Object.entries(info.metadata ?? {}).map(([key, value]) =>
        create(StringStringEntryProtoSchema, { key, value }),
      ),
    }),
  );
  const graphBody = toBinary(GraphProtoSchema, graph.toProto());
  // Each initializer: TensorProto{dims, data_type, name} followed by the raw_data field.
  const heads = graph.initializers.map((init) => {
    const header = toBinary(
      TensorProtoSchema,
      create(TensorProtoSchema, {
        dims: init.dims.map((d) => BigInt(d)),
        dataType: DATA_TYPE[init.type],
        name: init.name,
      }),
    );
    const rawBytes = init.dims.reduce((a, b) => a * b, 1) * ELEM_BYTES[init.type];
    const rawPrefix = Uint8Array.of(TENSOR_RAW_DATA_KEY, ...varint(rawBytes));
    const tensorBytes = header.byteLength + rawPrefix.byteLength + rawBytes;
    const fieldPrefix = Uint8Array.of(GRAPH_INITIALIZER_KEY, ...varint(tensorBytes));
    return {
      init,
      prefix: concat([fieldPrefix, header, rawPrefix]),
      total: fieldPrefix.byteLength + tensorBytes,
    };
  });
  const graphBytes = graphBody.byteLength + heads.reduce((a, h) => a + h.total, 0);
  if (model.byteLength + graphBytes > 2 ** 31 - 1) {
    throw new Error(`the model would be ${model.byteLength + graphBytes} bytes, over protobuf's 2 GB limit`);
  }

  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  let written = 0;
  const write = async (chunk: Uint8Array) => {
    hash.update(chunk);
    let at = 0;
    while (at < chunk.byteLength) {
      const { bytesWritten } = await handle.write(chunk, at, chunk.byteLength - at);
      at += bytesWritten;
    }
    written += chunk.byteLength;
  };
  try {
    await write(model);
    await write(Uint8Array.of(MODEL_GRAPH_KEY, ...varint(graphBytes)));
    await write(graphBody);
    for (const { init, prefix } of heads) {
      await write(prefix);
      await write(init.data());
    }
  } finally {
    await handle.close();
  }
  return { path, bytes: written, sha256: hash.digest('hex') };
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
