import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TINY_WHISPER_CONFIG,
  TINY_WHISPER_TOKENIZER,
  tinyWhisperFixture,
  writeCt2Fixture,
} from '../../test/ct2-fixture.js';
import {
  argmax,
  data,
  floatTensor,
  loadSession,
  logitsAt,
  maxAbsDiff,
  runDecoder,
} from '../../test/whisper-onnx-run.js';
import {
  convertCt2Whisper,
  decoderIoNames,
  WHISPER_ONNX_FILES,
  type WhisperConversion,
} from './convert-whisper.js';

// The converter on a tiny synthetic WhisperSpec (random weights, real variable names and layouts): what the
// graphs look like and how they behave. The real models and the numerical parity with CTranslate2 are in
// convert-whisper.int.test.ts.
describe('CTranslate2 Whisper → ONNX converter (synthetic model)', () => {
  let dir = '';
  const convert = async (name: string, modelBin: Uint8Array) => {
    const out = join(dir, name);
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'model.bin'), modelBin);
    return convertCt2Whisper(
      {
        modelBin: [join(out, 'model.bin')],
        config: join(dir, 'config.json'),
        tokenizer: join(dir, 'tokenizer.json'),
      },
      out,
    );
  };
  let f16: WhisperConversion;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'livelens-convert-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify(TINY_WHISPER_CONFIG));
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(TINY_WHISPER_TOKENIZER));
    f16 = await convert('f16', tinyWhisperFixture('float16'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const path = (c: WhisperConversion, name: string) => c.files.find((f) => f.name === name)?.path as string;

  it('writes the HF layout, with dimensions read from model.bin, and is deterministic', async () => {
    expect(f16.files.map((f) => f.name)).toEqual([...WHISPER_ONNX_FILES]);
    expect(f16.dims).toEqual({
      nMels: 4,
      dModel: 8,
      vocabSize: 12,
      encoderLayers: 1,
      decoderLayers: 1,
      encoderHeads: 2,
      decoderHeads: 2,
      headDim: 4,
      ffnDim: 32,
      audioContext: 6,
      textContext: 10,
    });
    const again = await convert('f16-again', tinyWhisperFixture('float16'));
    expect(again.files.map((f) => f.sha256)).toEqual(f16.files.map((f) => f.sha256));
    const generation = JSON.parse(await readFile(path(f16, 'generation_config.json'), 'utf8'));
    expect(generation).toMatchObject({
      alignment_heads: [[0, 1]],
      begin_suppress_tokens: [2, 4],
      decoder_start_token_id: 5,
      eos_token_id: 4,
      no_timestamps_token_id: 11,
      is_multilingual: false,
      max_initial_timestamp_index: 50,
    });
    const config = JSON.parse(await readFile(path(f16, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'whisper', d_model: 8, vocab_size: 12, num_mel_bins: 4 });
  });

  it("has optimum's input and output names and shapes", async () => {
    const encoder = await loadSession(path(f16, 'encoder_model.onnx'));
    const decoder = await loadSession(path(f16, 'decoder_model_merged.onnx'));
    try {
      expect(encoder.inputNames).toEqual(['input_features']);
      expect(encoder.outputNames).toEqual(['last_hidden_state']);
      expect(encoder.inputMetadata[0]).toMatchObject({ shape: ['batch_size', 4, 'encoder_sequence_length'] });
      const io = decoderIoNames(1);
      expect(decoder.inputNames).toEqual(io.inputs);
      expect(decoder.outputNames).toEqual(io.outputs);
      expect(io.inputs).toEqual([
        'input_ids',
        'encoder_hidden_states',
        'past_key_values.0.decoder.key',
        'past_key_values.0.decoder.value',
        'past_key_values.0.encoder.key',
        'past_key_values.0.encoder.value',
        'use_cache_branch',
      ]);
      expect(io.outputs).toEqual([
        'logits',
        'present.0.decoder.key',
        'present.0.decoder.value',
        'present.0.encoder.key',
        'present.0.encoder.value',
        'cross_attentions.0',
      ]);
      const meta = Object.fromEntries(decoder.inputMetadata.map((m) => [m.name, m]));
      expect(meta.input_ids).toMatchObject({
        type: 'int64',
        shape: ['batch_size', 'decoder_sequence_length'],
      });
      expect(meta.use_cache_branch).toMatchObject({ type: 'bool', shape: [1] });
      expect(meta['past_key_values.0.decoder.key']).toMatchObject({
        shape: ['batch_size', 2, 'past_decoder_sequence_length', 4],
      });
    } finally {
      await encoder.release();
      await decoder.release();
    }
  });

  it('takes a dynamic encoder length up to 2 × the position table, and decodes with the KV cache exactly as without', async () => {
    const encoder = await loadSession(path(f16, 'encoder_model.onnx'));
    const decoder = await loadSession(path(f16, 'decoder_model_merged.onnx'));
    try {
      const features = (frames: number) =>
        floatTensor(
          Float32Array.from({ length: 4 * frames }, (_, i) => Math.sin(i * 0.37)),
          [1, 4, frames],
        );
      for (const frames of [12, 8, 5]) {
        const { last_hidden_state } = await encoder.run({ input_features: features(frames) });
        expect(last_hidden_state?.dims).toEqual([1, Math.floor((frames - 1) / 2) + 1, 8]);
      }
      await expect(encoder.run({ input_features: features(14) })).rejects.toThrow();
      const hidden = (await encoder.run({ input_features: features(12) })).last_hidden_state as ReturnType<
        typeof floatTensor
      >;

      const tokens = [5, 1, 2, 3, 0, 9];
      const whole = await runDecoder(decoder, [tokens], hidden);
      expect(whole.logits?.dims).toEqual([1, 6, 12]);
      expect(whole['present.0.decoder.key']?.dims).toEqual([1, 2, 6, 4]);
      expect(whole['present.0.encoder.key']?.dims).toEqual([1, 2, 6, 4]);
      const cross = whole['cross_attentions.0'];
      expect(cross?.dims).toEqual([1, 2, 6, 6]);
      for (let row = 0; row < 12; row += 1) {
        const sum = data(whole, 'cross_attentions.0')
          .subarray(row * 6, row * 6 + 6)
          .reduce((a, b) => a + b, 0);
        expect(sum).toBeCloseTo(1, 5); // post-softmax probabilities
      }
      // The same tokens in chunks of 3, 1, 2 with the cache: the causal mask must be offset by the past
      // length (query t of a chunk sees keys ≤ past + t), positions continue, encoder K/V come from step 0.
      const first = await runDecoder(decoder, [tokens.slice(0, 3)], hidden);
      const second = await runDecoder(decoder, [tokens.slice(3, 4)], hidden, {
        decoder: first,
        encoder: first,
      });
      const third = await runDecoder(decoder, [tokens.slice(4)], hidden, { decoder: second, encoder: first });
      expect(second['present.0.encoder.key']?.dims).toEqual([0, 2, 1, 4]); // optimum's empty placeholder
      expect(third['present.0.decoder.key']?.dims).toEqual([1, 2, 6, 4]);
      const chunked = [
        logitsAt(first, 0, 0),
        logitsAt(first, 0, 1),
        logitsAt(first, 0, 2),
        logitsAt(second, 0, 0),
        logitsAt(third, 0, 0),
        logitsAt(third, 0, 1),
      ];
      for (const [t, logits] of chunked.entries())
        expect(maxAbsDiff(logits, logitsAt(whole, 0, t))).toBeLessThan(1e-5);
      expect(
        maxAbsDiff(
          third['present.0.decoder.value']?.data as Float32Array,
          whole['present.0.decoder.value']?.data as Float32Array,
        ),
      ).toBeLessThan(1e-5);
      // A batch of two different prompts gives each row what it gives alone.
      const other = [5, 7, 7, 7, 8, 1];
      const pair = floatTensor(
        new Float32Array([...(hidden.data as Float32Array), ...(hidden.data as Float32Array)]),
        [2, 6, 8],
      );
      const batched = await runDecoder(decoder, [tokens, other], pair);
      const alone = await runDecoder(decoder, [other], hidden);
      expect(maxAbsDiff(logitsAt(batched, 1, 5), logitsAt(alone, 0, 5))).toBeLessThan(1e-5);
      expect(argmax(logitsAt(batched, 0, 2))).toBe(argmax(logitsAt(whole, 0, 2)));
      // Past the 10-row decoder position table: an error, not a silent wrap.
      await expect(runDecoder(decoder, [[...tokens, ...tokens]], hidden)).rejects.toThrow();
    } finally {
      await encoder.release();
      await decoder.release();
    }
  });

  it('gives bit-identical results from float16 and float32 storage of the same values; bfloat16 works too', async () => {
    const f32 = await convert('f32', tinyWhisperFixture('float32'));
    const bf16 = await convert('bf16', tinyWhisperFixture('bfloat16'));
    const input = floatTensor(
      Float32Array.from({ length: 4 * 12 }, (_, i) => Math.cos(i)),
      [1, 4, 12],
    );
    const outputs: Float32Array[] = [];
    for (const c of [f16, f32, bf16]) {
      const encoder = await loadSession(path(c, 'encoder_model.onnx'));
      const decoder = await loadSession(path(c, 'decoder_model_merged.onnx'));
      const hidden = (await encoder.run({ input_features: input })).last_hidden_state as ReturnType<
        typeof floatTensor
      >;
      outputs.push(new Float32Array(logitsAt(await runDecoder(decoder, [[5, 1, 2]], hidden), 0, 2)));
      await encoder.release();
      await decoder.release();
    }
    // The fixture's values are float16-exact, so the float32 model holds the same numbers: the Cast folded
    // by ONNX Runtime must reproduce them exactly (transposition included).
    expect(maxAbsDiff(outputs[0] as Float32Array, outputs[1] as Float32Array)).toBe(0);
    expect(outputs[2]?.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(outputs[0] as Float32Array, outputs[2] as Float32Array)).toBeLessThan(0.5); // bfloat16 keeps 8 bits
  });

  it('refuses a quantized (int8) model and a model that is not Whisper, saying why', async () => {
    await expect(convert('int8', tinyWhisperFixture('int8'))).rejects.toThrow(
      /decoder\/embeddings\/weight is int8: quantized models are not supported; use a float16 or float32 conversion/,
    );
    await expect(convert('t5', writeCt2Fixture('TransformerSpec', 1, []))).rejects.toThrow(
      /cannot convert the CTranslate2 Whisper model: the spec is TransformerSpec, not WhisperSpec/,
    );
  });
});
