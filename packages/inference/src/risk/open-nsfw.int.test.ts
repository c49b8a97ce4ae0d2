import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createLogger } from '@livelens/runtime';
import { generateClip } from '@livelens/test-support/media';
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

  it('preprocesses to 224x224 BGR minus the means: a pure red image is (0-104, 0-117, 255-123) everywhere', async () => {
    const sharp = (await import('sharp')).default;
    const red = await sharp({ create: { width: 640, height: 360, channels: 3, background: '#ff0000' } })
      .png()
      .toBuffer();
    const input = await preprocessOpenNsfw(await decodeImage(red));
    expect(input.length).toBe(224 * 224 * 3);
    expect(Array.from(input.subarray(0, 3))).toEqual([-104, -117, 132]);
    expect(Array.from(input.subarray(input.length - 3))).toEqual([-104, -117, 132]);
  });

  it('refuses bytes that are not an image with invalid_argument (a poison frame, for the DLQ)', async () => {
    await expect(decodeImage(Buffer.from('\xff\xd8 not really a jpeg'))).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });
});
