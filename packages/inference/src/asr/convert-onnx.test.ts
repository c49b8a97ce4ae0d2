import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data, floatTensor, loadSession } from '../../test/whisper-onnx-run.js';
import { ModelProtoSchema, TensorProto_DataType } from '../gen/onnx/onnx_pb.js';
import { int, OnnxGraph, writeOnnxModel } from './convert-onnx.js';

const packageDir = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const root = resolve(packageDir, '../..');

describe('ONNX model writer', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'livelens-onnx-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** y = x + cast(fp16 [1.5, -2, 0.25]) on a [batch, 3] input. */
  const graph = () => {
    const g = new OnnxGraph('add');
    g.input('x', 'float', ['batch', 3]);
    const half = Uint8Array.of(0x00, 0x3e, 0x00, 0xc0, 0x00, 0x34); // 1.5, -2, 0.25 as float16
    const w = g.op(
      'Cast',
      [g.initializer({ name: 'w:fp16', dims: [3], type: 'float16', data: () => half })],
      { to: int(1) },
    );
    g.op('Add', ['x', w], {}, 'y');
    g.output('y', 'float', ['batch', 3]);
    return g;
  };
  const info = { opset: 17, irVersion: 8, producerName: 'test', producerVersion: '1', metadata: { a: 'b' } };

  it('splices the initializers into a model protobuf-es and ONNX Runtime both read, deterministically', async () => {
    const first = await writeOnnxModel(join(dir, 'a.onnx'), graph(), info);
    const second = await writeOnnxModel(join(dir, 'b.onnx'), graph(), info);
    const bytes = await readFile(first.path);
    expect(first.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(first.bytes).toBe(bytes.byteLength);
    expect(second.sha256).toBe(first.sha256);

    const model = fromBinary(ModelProtoSchema, bytes);
    expect(model.irVersion).toBe(8n);
    expect(model.opsetImport[0]?.version).toBe(17n);
    expect(model.metadataProps.map((p) => [p.key, p.value])).toEqual([['a', 'b']]);
    expect(model.graph?.node.map((n) => n.opType)).toEqual(['Cast', 'Add']);
    const init = model.graph?.initializer[0];
    expect(init?.name).toBe('w:fp16');
    expect(init?.dims).toEqual([3n]);
    expect(init?.dataType).toBe(TensorProto_DataType.FLOAT16);
    expect([...(init?.rawData ?? [])]).toEqual([0x00, 0x3e, 0x00, 0xc0, 0x00, 0x34]);

    const session = await loadSession(first.path);
    try {
      const outputs = await session.run({ x: floatTensor(Float32Array.of(1, 1, 1, 0, 0, 0), [2, 3]) });
      expect([...data(outputs, 'y')]).toEqual([2.5, -1, 1.25, 1.5, -2, 0.25]);
    } finally {
      await session.release();
    }
  });

  it('refuses an initializer whose bytes do not match its shape', async () => {
    const g = new OnnxGraph('bad');
    g.initializer({ name: 'w', dims: [4], type: 'float', data: () => new Uint8Array(8) });
    g.output('w', 'float', [4]);
    await expect(writeOnnxModel(join(dir, 'bad.onnx'), g, info)).rejects.toThrow(
      /initializer w: 8 bytes, expected 16/,
    );
  });

  it('uses generated onnx.proto code that matches a fresh `buf generate` (run `npm run generate` after editing proto/)', async () => {
    const out = await mkdtemp(join(tmpdir(), 'livelens-onnx-gen-'));
    try {
      const template = JSON.stringify({
        version: 'v2',
        inputs: [{ directory: 'proto' }],
        plugins: [
          {
            local: ['node', join(root, 'node_modules/@bufbuild/protoc-gen-es/bin/protoc-gen-es')],
            out,
            opt: ['target=ts', 'import_extension=js'],
          },
        ],
      });
      await promisify(execFile)(join(root, 'node_modules/.bin/buf'), ['generate', '--template', template], {
        cwd: packageDir,
      });
      expect(await readdir(join(out, 'onnx'))).toEqual(await readdir(join(packageDir, 'src/gen/onnx')));
      expect(await readFile(join(packageDir, 'src/gen/onnx/onnx_pb.ts'), 'utf8')).toBe(
        await readFile(join(out, 'onnx/onnx_pb.ts'), 'utf8'),
      );
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
