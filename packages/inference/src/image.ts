import { LiveLensError } from '@livelens/runtime';
import sharp from 'sharp';

/** A decoded image: packed 8-bit RGB, row-major, `width * height * 3` bytes. */
export interface DecodedImage {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

/**
 * Larger images are refused before decoding: a frame is at most 4K from ingest, and a small file that
 * claims a huge size (a decompression bomb) must not take the process's memory.
 */
export const MAX_IMAGE_PIXELS = 4096 * 4096;

/**
 * Decodes JPEG/PNG/WebP bytes once into RGB, for every model of a frame to share. Bytes that are not a
 * decodable image raise `invalid_argument` (a poison frame: the caller dead-letters it).
 */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { data, width: info.width, height: info.height };
  } catch (cause) {
    throw new LiveLensError(`undecodable image (${bytes.length} bytes): ${(cause as Error).message}`, {
      code: 'invalid_argument',
      cause,
    });
  }
}

/** A sharp pipeline over a decoded image (no re-decode). */
export function rawImage(image: DecodedImage): sharp.Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
}
