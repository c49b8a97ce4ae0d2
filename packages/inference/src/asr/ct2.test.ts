import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCt2Fixture } from '../../test/ct2-fixture.js';
import {
  bfloat16ToFloat,
  getVariable,
  halfToFloat,
  parseCt2Model,
  readCt2Model,
  readCt2WhisperConfig,
  scalarValue,
  toFloat32,
} from './ct2.js';

const f16 = (...bits: number[]) => new Uint8Array(Uint16Array.from(bits).buffer);
const f32 = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

describe('CTranslate2 model.bin reader', () => {
  const temps: string[] = [];
  afterAll(() => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

  const fixture = () =>
    writeCt2Fixture(
      'WhisperSpec',
      3,
      [
        // Odd lengths first so that later payloads start at odd offsets (as in real files).
        { name: 'decoder/activation', shape: [], dtype: 'int8', bytes: Uint8Array.of(3) },
        { name: 'decoder/alibi', shape: [], dtype: 'int8', bytes: Uint8Array.of(0) },
        { name: 'encoder/num_heads', shape: [], dtype: 'int16', bytes: Uint8Array.of(6, 0) },
        {
          name: 'decoder/embeddings/weight',
          shape: [2, 3],
          dtype: 'float16',
          bytes: f16(0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000, 0x3555),
        },
        { name: 'encoder/layer_norm/gamma', shape: [2], dtype: 'float32', bytes: f32(1.5, -0.25) },
      ],
      [['decoder/projection/weight', 'decoder/embeddings/weight']],
    );

  it('reads the header, scalars, unaligned float16/float32 payloads and resolves aliases', () => {
    const model = parseCt2Model(fixture());
    expect(model.binaryVersion).toBe(6);
    expect(model.specName).toBe('WhisperSpec');
    expect(model.specRevision).toBe(3);
    expect([...model.variables.keys()]).toEqual([
      'decoder/activation',
      'decoder/alibi',
      'decoder/embeddings/weight',
      'encoder/layer_norm/gamma',
      'encoder/num_heads',
    ]);
    expect(scalarValue(getVariable(model, 'decoder/activation'))).toBe(3);
    expect(scalarValue(getVariable(model, 'encoder/num_heads'))).toBe(6);
    const embeddings = getVariable(model, 'decoder/embeddings/weight');
    expect(embeddings.shape).toEqual([2, 3]);
    expect(embeddings.dtype).toBe('float16');
    expect(embeddings.bytes.byteOffset % 2).toBe(1); // the payload really is unaligned
    expect([...toFloat32(embeddings)]).toEqual([1, -2, 2 ** -24, 65504, -0, Math.fround(0.333251953125)]);
    expect([...toFloat32(getVariable(model, 'encoder/layer_norm/gamma'))]).toEqual([1.5, -0.25]);
    // The tied projection is an alias: the same bytes, no copy.
    expect(getVariable(model, 'decoder/projection/weight')).toBe(embeddings);
    expect(model.aliases.get('decoder/projection/weight')).toBe('decoder/embeddings/weight');
  });

  it('decodes IEEE half precision exactly, including subnormals, infinities and NaN, and bfloat16', () => {
    expect(halfToFloat(0x0000)).toBe(0);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(halfToFloat(0x0400)).toBe(2 ** -14); // smallest normal
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(halfToFloat(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(halfToFloat(0xbc00)).toBe(-1);
    expect(bfloat16ToFloat(0x3f80)).toBe(1);
    expect(bfloat16ToFloat(0xc0a0)).toBe(-5);
  });

  it('concatenates a model split into parts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-ct2-'));
    temps.push(dir);
    const bytes = fixture();
    const cut = 37; // anywhere: parts are plain byte ranges
    await writeFile(join(dir, 'model.bin.part1'), bytes.subarray(0, cut));
    await writeFile(join(dir, 'model.bin.part2'), bytes.subarray(cut));
    const model = await readCt2Model([join(dir, 'model.bin.part1'), join(dir, 'model.bin.part2')]);
    expect([...toFloat32(getVariable(model, 'decoder/projection/weight'))]).toEqual([
      1,
      -2,
      2 ** -24,
      65504,
      -0,
      Math.fround(0.333251953125),
    ]);
    await expect(readCt2Model([join(dir, 'model.bin.part1')])).rejects.toThrow(/truncated at byte/);
  });

  it('rejects other binary versions, bad byte counts, trailing bytes and dangling aliases with clear errors', () => {
    const good = fixture();
    const v5 = good.slice();
    v5[0] = 5;
    expect(() => parseCt2Model(v5, 'x/model.bin')).toThrow(
      /x\/model\.bin: .*binary version 5; only version 6/,
    );
    const bad = writeCt2Fixture('WhisperSpec', 3, [
      { name: 'w', shape: [3], dtype: 'float16', bytes: new Uint8Array(4) },
    ]);
    expect(() => parseCt2Model(bad)).toThrow(/w: 4 bytes for a float16 tensor of shape \[3\] \(expected 6\)/);
    expect(() => parseCt2Model(Uint8Array.of(...good, 0))).toThrow(
      /1 unexpected bytes after the alias table/,
    );
    const dangling = writeCt2Fixture('WhisperSpec', 3, [], [['a', 'missing']]);
    expect(() => parseCt2Model(dangling)).toThrow(/alias a points to unknown variable missing/);
    expect(() => getVariable(parseCt2Model(good), 'encoder/conv1/weight')).toThrow(
      /no variable encoder\/conv1\/weight/,
    );
  });

  it('reads a CTranslate2 Whisper config.json and refuses a malformed one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-ct2-'));
    temps.push(dir);
    const path = join(dir, 'config.json');
    await writeFile(
      path,
      JSON.stringify({
        alignment_heads: [
          [1, 0],
          [2, 5],
        ],
        lang_ids: [50259],
        suppress_ids: [1, 2],
        suppress_ids_begin: [220, 50257],
      }),
    );
    expect(await readCt2WhisperConfig(path)).toEqual({
      alignmentHeads: [
        [1, 0],
        [2, 5],
      ],
      langIds: [50259],
      suppressIds: [1, 2],
      suppressIdsBegin: [220, 50257],
    });
    await writeFile(path, JSON.stringify({ alignment_heads: [[1]] }));
    await expect(readCt2WhisperConfig(path)).rejects.toThrow(
      /alignment_heads must be a list of \[layer, head\] pairs/,
    );
  });
});
