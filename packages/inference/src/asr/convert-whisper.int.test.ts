import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@livelens/runtime';
import type ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  argmax,
  data,
  floatTensor,
  loadSession,
  logitsAt,
  maxAbsDiff,
  type Outputs,
  runDecoder,
} from '../../test/whisper-onnx-run.js';
import { findModel, loadManifest, type ModelManifest } from '../manifest.js';
import { defaultCacheDir, resolveModel } from '../resolve.js';
import { createModelSession } from '../session.js';
import { convertCt2Whisper, decoderIoNames } from './convert-whisper.js';
import { halfToFloat } from './ct2.js';

// The converted real models against CTranslate2 itself. test/golden/whisper-ct2-parity.json was written by
// reference/asr/ct2_reference.py (ctranslate2 4.8.5, compute_type float32, CPU) from log-mel features of an
// espeak-ng sentence, stored rounded to float16 so that both runtimes read the same numbers.
const cacheDir = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../../.livelens', import.meta.url).pathname,
});
const logger = createLogger({ service: 'inference-test', level: 'silent' });

interface GoldenStep {
  token: number;
  tokenLogit: number;
  logsumexp: number;
  top: [number, number][];
  sampled: number[];
}
interface GoldenCase {
  frames: number;
  encoder: {
    shape: number[];
    mean: number;
    meanAbs: number;
    rms: number;
    maxAbs: number;
    frames: number[];
    dimStride: number;
    values: number[][];
  };
  tokens: number[];
  text: string;
  steps: GoldenStep[];
  languages?: [string, number][];
}
interface Golden {
  features: { shape: [number, number]; float16Base64: string };
  logitStride: number;
  tolerances: { encoderMaxAbs: number; encoderStatsRelative: number; logitsMaxAbs: number };
  models: {
    name: string;
    onnx: { encoder: string; decoder: string };
    prompt: number[];
    cases: GoldenCase[];
  }[];
}
const golden = JSON.parse(
  readFileSync(new URL('../../test/golden/whisper-ct2-parity.json', import.meta.url), 'utf8'),
) as Golden;

/** The golden's features, padded with 0.0 (log-mel domain, as openai and faster-whisper pad) to `frames`. */
function features(frames: number): ort.Tensor {
  const [mels, n] = golden.features.shape;
  const bytes = Buffer.from(golden.features.float16Base64, 'base64');
  const out = new Float32Array(mels * frames);
  for (let m = 0; m < mels; m += 1) {
    for (let t = 0; t < Math.min(n, frames); t += 1)
      out[m * frames + t] = halfToFloat(bytes.readUInt16LE((m * n + t) * 2));
  }
  return floatTensor(out, [1, mels, frames]);
}

function logsumexp(values: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) max = Math.max(max, v);
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

describe('Whisper ONNX converted from CTranslate2: real models', () => {
  let manifest: ModelManifest;
  const measured: Record<string, number> = {};
  beforeAll(async () => {
    manifest = await loadManifest();
  });
  afterAll(() => {
    // The numbers the README's parity table quotes.
    process.stdout.write(`whisper-ct2 parity (max abs diff): ${JSON.stringify(measured)}\n`);
  });
  const resolveId = (id: string) =>
    resolveModel(findModel(manifest, id), { cacheDir, fetch: true, manifest });

  it('makes every derived Whisper file through the manifest, with the sha256 it names, in seconds', async () => {
    // resolveModel runs the conversion if the cache lacks the outputs; here it is timed explicitly too.
    for (const prefix of ['whisper-base-onnx', 'whisper-tiny-en-onnx']) {
      for (const entry of manifest.models.filter((m) => m.id.startsWith(`${prefix}-`))) {
        expect(await resolveId(entry.id)).toMatch(new RegExp(`${entry.id}/1.0.0/${entry.file}$`));
      }
    }
    const out = await mkdtemp(join(tmpdir(), 'livelens-whisper-'));
    try {
      const conversion = await convertCt2Whisper(
        {
          modelBin: [
            await resolveId('whisper-base-ct2-model-part1'),
            await resolveId('whisper-base-ct2-model-part2'),
          ],
          config: await resolveId('whisper-base-ct2-config'),
          tokenizer: await resolveId('whisper-base-ct2-tokenizer'),
        },
        out,
      );
      // Deterministic: a fresh conversion in another directory gives the manifest's bytes.
      for (const file of conversion.files) {
        const entry = manifest.models.find(
          (m) =>
            m.id.startsWith('whisper-base-onnx-') &&
            m.source.type === 'derived' &&
            m.source.output === file.name,
        );
        expect(file.sha256, file.name).toBe(entry?.sha256);
      }
      process.stdout.write(`whisper base conversion: ${conversion.ms.toFixed(0)} ms\n`);
      expect(conversion.ms).toBeLessThan(30_000);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 600_000);

  it('loads the encoder in a worker session with the HF names, and the merged decoder with optimum’s', async () => {
    const encoderPath = await resolveId('whisper-tiny-en-onnx-encoder');
    const session = await createModelSession(
      encoderPath,
      { modelId: 'whisper-tiny-en-onnx-encoder' },
      logger,
    );
    try {
      expect(session.inputNames).toEqual(['input_features']);
      expect(session.outputNames).toEqual(['last_hidden_state']);
      const { outputs } = await session.run({
        input_features: { data: new Float32Array(80 * 3000), dims: [1, 80, 3000] },
      });
      expect(outputs.last_hidden_state?.dims).toEqual([1, 1500, 384]);
    } finally {
      await session.close();
    }
    const decoder = await loadSession(await resolveId('whisper-base-onnx-decoder'));
    try {
      expect(decoder.inputNames).toEqual(decoderIoNames(6).inputs);
      expect(decoder.outputNames).toEqual(decoderIoNames(6).outputs);
      expect(decoder.inputNames).toHaveLength(2 + 24 + 1);
      const meta = Object.fromEntries(decoder.inputMetadata.map((m) => [m.name, m]));
      expect(meta['past_key_values.5.encoder.value']).toMatchObject({
        type: 'float32',
        shape: ['batch_size', 8, 'encoder_sequence_length_out', 64],
      });
      expect(meta.encoder_hidden_states).toMatchObject({
        shape: ['batch_size', 'encoder_sequence_length / 2', 512],
      });
    } finally {
      await decoder.release();
    }
    const generation = JSON.parse(
      await readFile(await resolveId('whisper-base-onnx-generation-config'), 'utf8'),
    );
    expect(generation).toMatchObject({
      decoder_start_token_id: 50258,
      eos_token_id: 50257,
      no_timestamps_token_id: 50363,
      is_multilingual: true,
      task_to_id: { transcribe: 50359, translate: 50358 },
      alignment_heads: [
        [3, 1],
        [4, 2],
        [4, 3],
        [4, 7],
        [5, 1],
        [5, 2],
        [5, 4],
        [5, 6],
      ],
    });
    expect(generation.lang_to_id['<|en|>']).toBe(50259);
    expect(Object.keys(generation.lang_to_id)).toHaveLength(99);
  }, 300_000);

  for (const model of golden.models) {
    describe(`${model.name}: parity with CTranslate2`, () => {
      let encoder: ort.InferenceSession;
      let decoder: ort.InferenceSession;
      beforeAll(async () => {
        encoder = await loadSession(await resolveId(model.onnx.encoder));
        decoder = await loadSession(await resolveId(model.onnx.decoder));
      }, 600_000);
      afterAll(async () => {
        await encoder?.release();
        await decoder?.release();
      });

      for (const c of model.cases) {
        it(`${c.frames} frames: encoder output and every greedy step's logits within tolerance, same transcript`, async () => {
          const tol = golden.tolerances;
          const { last_hidden_state: hidden } = await encoder.run({ input_features: features(c.frames) });
          if (!hidden) throw new Error('no last_hidden_state');
          expect(hidden.dims).toEqual(c.encoder.shape);
          const h = hidden.data as Float32Array;
          const [, T, d] = hidden.dims as [number, number, number];
          let encoderDiff = 0;
          c.encoder.frames.forEach((frame, i) => {
            c.encoder.values[i]?.forEach((expected, j) => {
              encoderDiff = Math.max(
                encoderDiff,
                Math.abs((h[frame * d + j * c.encoder.dimStride] as number) - expected),
              );
            });
          });
          let sum = 0;
          let sumAbs = 0;
          let sumSq = 0;
          for (const v of h) {
            sum += v;
            sumAbs += Math.abs(v);
            sumSq += v * v;
          }
          const n = T * d;
          expect(encoderDiff).toBeLessThanOrEqual(tol.encoderMaxAbs);
          expect(Math.abs(sum / n - c.encoder.mean)).toBeLessThanOrEqual(
            tol.encoderStatsRelative * c.encoder.rms,
          );
          expect(Math.abs(sumAbs / n / c.encoder.meanAbs - 1)).toBeLessThanOrEqual(tol.encoderStatsRelative);
          expect(Math.abs(Math.sqrt(sumSq / n) / c.encoder.rms - 1)).toBeLessThanOrEqual(
            tol.encoderStatsRelative,
          );

          // Teacher-forced on CTranslate2's tokens (so one near-tie cannot make the runs diverge), with the
          // cache exactly as a runtime drives it; our greedy choice must still be CTranslate2's every step.
          let logitsDiff = 0;
          let first: Outputs | undefined;
          let previous: Outputs | undefined;
          let position = model.prompt.length - 1;
          const chosen: number[] = [];
          for (const [s, step] of c.steps.entries()) {
            const ids = s === 0 ? model.prompt : [c.steps[s - 1]?.token as number];
            const out: Outputs = await runDecoder(
              decoder,
              [ids],
              hidden,
              first && previous ? { decoder: previous, encoder: first } : undefined,
            );
            first ??= out;
            previous = out;
            const logits = logitsAt(out, 0, s === 0 ? position : 0);
            position = 0;
            chosen.push(argmax(logits));
            const ours = step.sampled.map((_, k) => logits[k * golden.logitStride] as number);
            logitsDiff = Math.max(
              logitsDiff,
              maxAbsDiff(ours, step.sampled),
              ...step.top.map(([id, v]) => Math.abs((logits[id] as number) - v)),
              Math.abs((logits[step.token] as number) - step.tokenLogit),
              Math.abs(logsumexp(logits) - step.logsumexp),
            );
          }
          expect(chosen).toEqual(c.steps.map((s) => s.token));
          expect(chosen.slice(0, c.tokens.length)).toEqual(c.tokens);
          expect(logitsDiff).toBeLessThanOrEqual(tol.logitsMaxAbs);
          // Cross-attention for word timings: every layer, [B, H, 1, frames/2], rows summing to 1.
          const crossNames = decoder.outputNames.filter((name) => name.startsWith('cross_attentions.'));
          expect(crossNames).toHaveLength(model.name === 'base' ? 6 : 4);
          for (const name of crossNames) {
            expect(previous?.[name]?.dims).toEqual([1, model.name === 'base' ? 8 : 6, 1, c.frames / 2]);
            const row = data(previous as Outputs, name).subarray(0, c.frames / 2);
            expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
          }
          measured[`${model.name}@${c.frames} encoder`] = Number(encoderDiff.toExponential(2));
          measured[`${model.name}@${c.frames} logits`] = Number(logitsDiff.toExponential(2));
          process.stdout.write(`${model.name} @ ${c.frames} frames: ${JSON.stringify(c.text)}\n`);

          if (c.languages) {
            // Language detection (multilingual): the decoder on [sot] alone, softmax over the language tokens.
            const generation = JSON.parse(
              await readFile(
                await resolveId(model.onnx.decoder.replace(/decoder$/, 'generation-config')),
                'utf8',
              ),
            ) as { lang_to_id: Record<string, number> };
            const sot = await runDecoder(decoder, [[model.prompt[0] as number]], hidden);
            const at = logitsAt(sot, 0, 0);
            const langs = Object.entries(generation.lang_to_id);
            const lse = logsumexp(Float32Array.from(langs, ([, id]) => at[id] as number));
            const probs = langs
              .map(([lang, id]) => [lang, Math.exp((at[id] as number) - lse)] as const)
              .sort((a, b) => b[1] - a[1]);
            expect(probs.slice(0, 3).map(([lang]) => lang)).toEqual(c.languages.map(([lang]) => lang));
            for (const [i, [, p]] of c.languages.entries())
              expect(Math.abs((probs[i]?.[1] as number) - p)).toBeLessThan(1e-3);
          }
        }, 300_000);
      }

      it('decodes a prompt in chunks with the cache (causal mask offset by the past) as it does in one call', async () => {
        const c = model.cases[0] as GoldenCase;
        const { last_hidden_state: hidden } = await encoder.run({ input_features: features(c.frames) });
        if (!hidden) throw new Error('no last_hidden_state');
        const tokens = [...model.prompt, ...c.tokens.slice(0, 4)];
        const whole = await runDecoder(decoder, [tokens], hidden);
        const head = await runDecoder(decoder, [tokens.slice(0, 3)], hidden);
        const tail = await runDecoder(decoder, [tokens.slice(3)], hidden, { decoder: head, encoder: head });
        for (let t = 0; t < tokens.length - 3; t += 1) {
          expect(maxAbsDiff(logitsAt(tail, 0, t), logitsAt(whole, 0, t + 3))).toBeLessThan(1e-3);
        }
      }, 300_000);
    });
  }
});
