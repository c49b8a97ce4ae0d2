/**
 * Makes the parity goldens of packages/inference from the Python reference pipeline (see README.md):
 *
 *   npx tsx packages/inference/reference/make-goldens.ts
 *
 * 1. renders the frames (ocrParitySuite, plus a few for NSFW) with generateTextFrame;
 * 2. builds or reuses the reference venv (setup.sh) and checks the cached models' sha256;
 * 3. runs ocr_reference.py and nsfw_reference.py on the frames;
 * 4. writes test/golden/ocr-parity.json and test/golden/nsfw-parity.json (each frame's spec, so a test can
 *    render it again, and the sha256 of its bytes, so the test can tell when its ffmpeg/FreeType drew
 *    different pixels) and prints what the reference read next to what was drawn.
 *
 * Run it again only when the frames, the models or the reference change, and commit the result: Python is
 * never needed by the tests.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  generateTextFrame,
  ocrAccuracySuite,
  ocrParitySuite,
  TEXT_FRAME_GENERATOR_VERSION,
  type TextFrameSpec,
} from '@livelens/test-support/media';
import { findModel, loadManifest } from '../src/manifest.js';
import { defaultCacheDir, resolveModel } from '../src/resolve.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, '..');
const repoRoot = resolve(packageDir, '../..');
const goldenDir = join(packageDir, 'test', 'golden');

/** The reference's OCR output for one image (ocr_reference.py). */
interface OcrResult {
  image: string;
  sha256: string;
  width: number;
  height: number;
  det_input: [number, number] | null;
  lines: { box: [number, number][]; text: string; confidence: number }[];
  decode_ms: number;
  det_ms: number;
  rec_ms: number;
  total_ms: number;
}

interface NsfwResult {
  image: string;
  sha256: string;
  nsfw_score: number;
}

interface ReferenceOutput<R> {
  reference: Record<string, unknown>;
  results: R[];
}

/**
 * Frames for the NSFW golden beyond the OCR ones: flat and noisy skin tones, which the model scores well
 * above zero (0.05 to 0.3), so that parity is checked away from the floor too.
 */
function nsfwExtraFrames(): TextFrameSpec[] {
  const live = { text: 'LIVE', sizePx: 24, x: 20, y: 20 } as const;
  return [
    { name: 'nsfw-skin-flat-light', background: { color: '#d9a07a' }, lines: [live] },
    { name: 'nsfw-skin-flat-dark', background: { color: '#8d5524' }, lines: [live] },
    {
      name: 'nsfw-skin-noisy',
      background: { noise: { color: '#d9a07a', strength: 30, seed: 2 } },
      lines: [live],
    },
    { name: 'nsfw-testsrc2', background: 'testsrc2', lines: [live] },
  ];
}

async function modelPaths(): Promise<Record<'det' | 'rec' | 'keys' | 'nsfw', { id: string; path: string }>> {
  const manifest = await loadManifest();
  const cacheDir = defaultCacheDir({
    ...process.env,
    LIVELENS_HOME: process.env.LIVELENS_HOME ?? join(repoRoot, '.livelens'),
  });
  const one = async (id: string) => ({
    id,
    // fetch: false: a missing or corrupted model is an error that says to run `npm run models`.
    path: await resolveModel(findModel(manifest, id), { cacheDir, fetch: false }),
  });
  const [det, rec, keys, nsfw] = await Promise.all(
    ['ppocrv4-det', 'ppocrv4-rec', 'ppocr-keys-v1', 'open-nsfw'].map(one),
  );
  if (!det || !rec || !keys || !nsfw) throw new Error('unreachable: four models asked, fewer resolved');
  return { det, rec, keys, nsfw };
}

async function python(args: string[]): Promise<string> {
  const { stdout } = await run('bash', [join(here, 'setup.sh')], { encoding: 'utf8' });
  const interpreter = stdout.trim().split('\n').pop() ?? '';
  const result = await run(interpreter, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  process.stderr.write(result.stderr);
  return result.stdout;
}

async function ffmpegVersion(): Promise<string> {
  const { stdout } = await run('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8' });
  return stdout.split('\n')[0] ?? '';
}

function modelInfo(manifest: Awaited<ReturnType<typeof loadManifest>>, id: string) {
  const entry = findModel(manifest, id);
  return { id, version: entry.version, file: entry.file, sha256: entry.sha256 };
}

async function writeGolden(name: string, value: unknown): Promise<string> {
  const path = join(goldenDir, name);
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
  return path;
}

async function main(): Promise<void> {
  const models = await modelPaths();
  const manifest = await loadManifest();
  const ocrSpecs = ocrParitySuite();
  const accuracy = ocrAccuracySuite();
  const nsfwSpecs = [
    ...ocrSpecs,
    ...accuracy.filter((s) => ['zh-smptebars-box', 'zh-noisy', 'en-flat-light-serif'].includes(s.name)),
    ...nsfwExtraFrames(),
  ];
  const frames = new Map<string, Awaited<ReturnType<typeof generateTextFrame>>>();
  for (const spec of [...ocrSpecs, ...nsfwSpecs]) {
    if (!frames.has(spec.name)) frames.set(spec.name, await generateTextFrame(spec));
  }
  const frame = (name: string) => {
    const f = frames.get(name);
    if (!f) throw new Error(`no frame ${name}`);
    return f;
  };
  const generator = {
    textFrameGeneratorVersion: TEXT_FRAME_GENERATOR_VERSION,
    ffmpeg: await ffmpegVersion(),
  };

  // OCR: 5 timed runs per frame after a warm-up; the lines must agree across runs (the script checks).
  const ocr = JSON.parse(
    await python([
      join(here, 'ocr_reference.py'),
      '--det-model',
      models.det.path,
      '--rec-model',
      models.rec.path,
      '--keys',
      models.keys.path,
      '--threads',
      '1',
      '--repeat',
      '5',
      ...ocrSpecs.map((s) => frame(s.name).path),
    ]),
  ) as ReferenceOutput<OcrResult>;
  const ocrFrames = ocrSpecs.map((spec, i) => {
    const result = ocr.results[i];
    const made = frame(spec.name);
    if (!result || result.sha256 !== made.sha256)
      throw new Error(`ocr_reference: no result for ${spec.name}`);
    return {
      name: spec.name,
      spec,
      sha256: made.sha256,
      width: result.width,
      height: result.height,
      detInput: result.det_input,
      expected: spec.lines.map((l) => l.text),
      lines: result.lines,
    };
  });
  // Timings depend on the machine: printed, not stored (the goldens change only when results do).
  const { repeat: _repeat, warmup: _warmup, ...reference } = ocr.reference;
  const ocrPath = await writeGolden('ocr-parity.json', {
    $comment:
      'Generated by packages/inference/reference/make-goldens.ts from the Python reference (ocr_reference.py); ' +
      'do not edit. Each frame is generateTextFrame(spec); sha256 is of the bytes the reference read.',
    generator,
    reference,
    models: ['ppocrv4-det', 'ppocrv4-rec', 'ppocr-keys-v1'].map((id) => modelInfo(manifest, id)),
    frames: ocrFrames,
  });

  const nsfw = JSON.parse(
    await python([
      join(here, 'nsfw_reference.py'),
      '--model',
      models.nsfw.path,
      ...nsfwSpecs.map((s) => frame(s.name).path),
    ]),
  ) as ReferenceOutput<NsfwResult>;
  const nsfwFrames = nsfwSpecs.map((spec, i) => {
    const result = nsfw.results[i];
    const made = frame(spec.name);
    if (!result || result.sha256 !== made.sha256)
      throw new Error(`nsfw_reference: no result for ${spec.name}`);
    return { name: spec.name, spec, sha256: made.sha256, nsfwScore: result.nsfw_score };
  });
  const nsfwPath = await writeGolden('nsfw-parity.json', {
    $comment:
      'Generated by packages/inference/reference/make-goldens.ts from the Python reference (nsfw_reference.py); ' +
      'do not edit. Each frame is generateTextFrame(spec); sha256 is of the bytes the reference read.',
    generator,
    reference: nsfw.reference,
    models: [modelInfo(manifest, 'open-nsfw')],
    frames: nsfwFrames,
  });

  // The goldens are committed: format them as the repo's formatter would.
  await run('npx', ['biome', 'format', '--write', ocrPath, nsfwPath], { cwd: repoRoot });

  console.log(`\nOCR reference: ${String(ocr.reference.engine)}, threads ${String(ocr.reference.threads)}`);
  for (const [i, f] of ocrFrames.entries()) {
    const r = ocr.results[i] as OcrResult;
    console.log(
      `\n${f.name} (${f.spec.format ?? 'jpeg'}): det ${r.det_ms} ms, rec ${r.rec_ms} ms, total ${r.total_ms} ms ` +
        `(decode ${r.decode_ms} ms), median of 5`,
    );
    console.log(`  expected: ${f.expected.map((t) => JSON.stringify(t)).join(' | ')}`);
    console.log(
      `  read:     ${f.lines.map((l) => `${JSON.stringify(l.text)} (${l.confidence.toFixed(3)})`).join(' | ')}`,
    );
  }
  console.log('\nNSFW reference:');
  for (const f of nsfwFrames) console.log(`  ${f.name.padEnd(28)} ${f.nsfwScore.toFixed(6)}`);
  console.log(`\nwrote ${ocrPath}\nwrote ${nsfwPath}`);
}

await mkdir(goldenDir, { recursive: true });
await main();
