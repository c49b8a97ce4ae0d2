import { readFile } from 'node:fs/promises';
import { LiveLensError } from '@livelens/runtime';
import { z } from 'zod';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const RelativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'expected a relative path without ..');

const PlainFileName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name');

/** Programs that make a model out of other manifest models (see resolve.ts `DERIVED_BUILDERS`). */
export const DerivedBuilder = z.enum(['ct2-whisper-onnx']);
export type DerivedBuilder = z.infer<typeof DerivedBuilder>;

/**
 * Where a model's bytes come from: a file inside a registry package, a local path, or a conversion of other
 * models of the manifest (`derived`: `builder` run on the models `from`, in that order; `output` is the
 * builder's file this entry is). A conversion runs once for all the entries that share its builder and inputs.
 */
export const ModelSource = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('npm'),
    package: z.string().min(1),
    version: z.string().min(1),
    path: RelativePath,
  }),
  z.object({
    type: z.literal('pypi'),
    package: z.string().min(1),
    version: z.string().min(1),
    /** The wheel (default), or the source archive: `path` then starts with the archive's top folder. */
    dist: z.enum(['wheel', 'sdist']).optional(),
    path: RelativePath,
  }),
  z.object({
    type: z.literal('maven'),
    group: z.string().min(1),
    artifact: z.string().min(1),
    version: z.string().min(1),
    path: RelativePath,
  }),
  z.object({ type: z.literal('local'), path: z.string().min(1) }),
  z.object({
    type: z.literal('derived'),
    builder: DerivedBuilder,
    from: z.array(z.string().min(1)).min(1),
    output: PlainFileName,
  }),
]);
export type ModelSource = z.infer<typeof ModelSource>;

/** One model: what it is, where it comes from, and the checksum its bytes must have. */
export const ModelEntry = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected [a-z0-9._-]'),
  version: z.string().min(1),
  task: z.string().min(1),
  license: z.string().regex(/\b(MIT|BSD|Apache)/, 'expected an MIT, BSD or Apache license'),
  source: ModelSource,
  file: PlainFileName,
  sha256: Sha256,
});
export type ModelEntry = z.infer<typeof ModelEntry>;

export const ModelManifest = z.object({ models: z.array(ModelEntry).min(1) }).superRefine((m, ctx) => {
  const seen = new Set<string>();
  for (const entry of m.models) {
    if (seen.has(entry.id)) ctx.addIssue({ code: 'custom', message: `duplicate model id ${entry.id}` });
    seen.add(entry.id);
  }
  const byId = new Map(m.models.map((e) => [e.id, e]));
  const outputs = new Set<string>();
  for (const entry of m.models) {
    if (entry.source.type !== 'derived') continue;
    for (const id of entry.source.from) {
      const input = byId.get(id);
      if (!input) ctx.addIssue({ code: 'custom', message: `${entry.id}: derived from unknown model ${id}` });
      else if (input.source.type === 'derived') {
        ctx.addIssue({
          code: 'custom',
          message: `${entry.id}: derived from ${id}, itself derived (not supported)`,
        });
      }
    }
    const key = JSON.stringify([entry.source.builder, entry.source.from, entry.source.output]);
    if (outputs.has(key)) {
      ctx.addIssue({
        code: 'custom',
        message: `${entry.id}: another entry is the same output of the same conversion`,
      });
    }
    outputs.add(key);
  }
});
export type ModelManifest = z.infer<typeof ModelManifest>;

/** The manifest that ships with this package (models.json). */
export const DEFAULT_MANIFEST_URL = new URL('../models.json', import.meta.url);

/** Reads and validates a manifest; a bad one is an `invalid_config` error naming the path and the problem. */
export async function loadManifest(url: URL | string = DEFAULT_MANIFEST_URL): Promise<ModelManifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(url, 'utf8'));
  } catch (cause) {
    throw new LiveLensError(`cannot read the model manifest ${String(url)}: ${(cause as Error).message}`, {
      code: 'invalid_config',
      cause,
    });
  }
  const parsed = ModelManifest.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new LiveLensError(`invalid model manifest ${String(url)}: ${problems}`, { code: 'invalid_config' });
  }
  return parsed.data;
}

/** The entry of `id`, or a `not_found` error listing the known ids. */
export function findModel(manifest: ModelManifest, id: string): ModelEntry {
  const entry = manifest.models.find((m) => m.id === id);
  if (!entry) {
    throw new LiveLensError(`unknown model ${id} (known: ${manifest.models.map((m) => m.id).join(', ')})`, {
      code: 'not_found',
    });
  }
  return entry;
}
