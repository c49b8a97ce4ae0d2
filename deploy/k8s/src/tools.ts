import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';

// The tools the manifests are rendered and validated with, all from package registries (nothing from GitHub
// releases or schema sites): kustomize and kubeconform built from the Go module proxy, the Kubernetes JSON
// schemas from PyPI's kubernetes-validate, KEDA's ScaledObject CRD from KEDA's own Go module. Everything is
// cached under <repo>/.livelens (gitignored) and rebuilt only when a version below changes.

const run = promisify(execFile);

/** The repository root. */
export const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** Pinned versions: bump here, the cache follows. */
export const versions = {
  /** v5.8.3 needs Go 1.27; v5.8.2 builds with the machine's Go 1.26. */
  kustomize: {
    module: 'sigs.k8s.io/kustomize/kustomize/v5',
    pkg: 'sigs.k8s.io/kustomize/kustomize/v5',
    version: 'v5.8.2',
  },
  kubeconform: {
    module: 'github.com/yannh/kubeconform',
    pkg: 'github.com/yannh/kubeconform/cmd/kubeconform',
    version: 'v0.8.0',
  },
  /** The strict JSON schemas of Kubernetes 1.25 to 1.37 (generated from each release's OpenAPI spec). */
  schemas: { pypi: 'kubernetes-validate', version: '1.37.0' },
  /** Validated against the oldest and the newest release the manifests claim. */
  kubernetes: ['1.34.0', '1.37.0'],
  /** KEDA's CRDs (config/crd/bases) and its Kafka scaler's metadata (pkg/scalers/kafka_scaler.go). */
  keda: { module: 'github.com/kedacore/keda/v2', version: 'v2.21.0' },
} as const;

export const binDir = join(repo, '.livelens', 'bin');
/** Bump when what is written under the cache changes shape: older caches are then left aside. */
const cacheFormat = 1;
const cacheDir = join(repo, '.livelens', 'k8s', `v${cacheFormat}`);
export const kustomizeBin = join(binDir, 'kustomize');
export const kubeconformBin = join(binDir, 'kubeconform');
/** `<dir>/v<k8s version>-local-strict/<kind>-<group>-<version>.json` */
export const kubernetesSchemaDir = join(cacheDir, `${versions.schemas.pypi}-${versions.schemas.version}`);
/** `<dir>/<group>/<kind>_<version>.json` */
export const crdSchemaDir = join(cacheDir, `keda-${versions.keda.version}`);
/** The Kafka trigger's metadata keys, read from KEDA's source: see {@link KafkaScalerKeys}. */
export const kafkaScalerKeysFile = join(crdSchemaDir, 'kafka-scaler-keys.json');

/** The kubeconform `-schema-location` templates for the cached schemas. */
export const schemaLocations = [
  `${kubernetesSchemaDir}/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
  `${crdSchemaDir}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`,
];

function goBinary(): string {
  if (process.env.GO) return process.env.GO;
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
}

/** The Go toolchain's environment: this Go, never a downloaded one; everything else as configured. */
function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: 'local', ...extra };
}

async function exec(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    return await run(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: 15 * 60_000, ...options });
  } catch (error) {
    const e = error as { code?: string | number; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error(`${file} not found (needed to build the deploy/k8s test tools)`);
    throw new Error(`${file} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** The module version a Go binary was built from (`go version -m`), or undefined when it is not there. */
async function builtVersion(bin: string, module: string): Promise<string | undefined> {
  if (!existsSync(bin)) return undefined;
  try {
    const { stdout } = await exec(goBinary(), ['version', '-m', bin], { env: goEnv() });
    const line = stdout.split('\n').find((l) => l.trim().startsWith('mod\t') || l.trim().startsWith('mod '));
    const [, path, version] = line?.trim().split(/\s+/) ?? [];
    return path === module ? version : undefined;
  } catch {
    return undefined;
  }
}

async function ensureGoTool(
  bin: string,
  tool: { module: string; pkg: string; version: string },
  log: (line: string) => void,
): Promise<void> {
  if ((await builtVersion(bin, tool.module)) === tool.version) return;
  await mkdir(binDir, { recursive: true });
  const started = Date.now();
  log(`building ${tool.pkg}@${tool.version} from the Go module proxy into ${binDir}`);
  await exec(goBinary(), ['install', `${tool.pkg}@${tool.version}`], { env: goEnv({ GOBIN: binDir }) });
  log(`built ${tool.pkg}@${tool.version} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Writes `dir` through a temporary sibling and a rename, so an interrupted run leaves no half cache. */
async function writeDirAtomically(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The Kubernetes schemas: kubernetes-validate's wheel (PyPI, `pip download`, no install) carries the strict JSON
 * schemas of each release, one file per kind, whose `$ref`s point at `/api/_definitions.json` under an
 * `https://kubernetes.io` `$id`. kubeconform would fetch that URL; rewritten to the sibling file
 * (`_definitions.json#/$defs/...`) and without the `$id`, every reference resolves on disk.
 */
async function ensureKubernetesSchemas(log: (line: string) => void): Promise<void> {
  const missing = versions.kubernetes.filter(
    (v) => !existsSync(join(kubernetesSchemaDir, `v${v}-local-strict`)),
  );
  if (missing.length === 0) return;
  log(
    `fetching ${versions.schemas.pypi}==${versions.schemas.version} from PyPI (Kubernetes ${missing.join(', ')})`,
  );
  const work = await mkdtemp(join(cacheDir, 'pip-'));
  try {
    await exec('python3', [
      '-m',
      'pip',
      'download',
      '--no-deps',
      '--only-binary=:all:',
      '-q',
      `${versions.schemas.pypi}==${versions.schemas.version}`,
      '-d',
      work,
    ]);
    const wheel = (await readdir(work)).find((f) => f.endsWith('.whl'));
    if (!wheel)
      throw new Error(`pip downloaded no wheel of ${versions.schemas.pypi}==${versions.schemas.version}`);
    for (const version of missing) {
      const flavour = `v${version}-local-strict`;
      const member = `kubernetes_validate/kubernetes-json-schema/${flavour}/`;
      await exec('python3', [
        '-c',
        [
          'import sys, zipfile',
          'with zipfile.ZipFile(sys.argv[1]) as z:',
          '    names = [n for n in z.namelist() if n.startswith(sys.argv[2]) and n.endswith(".json")]',
          '    if not names: sys.exit("no schemas under " + sys.argv[2])',
          '    z.extractall(sys.argv[3], names)',
        ].join('\n'),
        join(work, wheel),
        member,
        work,
      ]);
      await writeDirAtomically(join(kubernetesSchemaDir, flavour), async (out) => {
        const from = join(work, member);
        for (const file of await readdir(from)) {
          const schema = JSON.parse(await readFile(join(from, file), 'utf8')) as Record<string, unknown>;
          delete schema.$id;
          const text = JSON.stringify(schema).replaceAll('"/api/_definitions.json#', '"_definitions.json#');
          await writeFile(join(out, file), text);
        }
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

type JsonSchema = { [key: string]: unknown };

/**
 * An OpenAPI v3 schema of a CRD as a strict JSON schema, as kubeconform's openapi2jsonschema makes them:
 * objects with declared properties admit no others (unless x-kubernetes-preserve-unknown-fields), int-or-string
 * accepts both, `nullable` admits null. CEL rules (x-kubernetes-validations) cannot be checked here.
 */
export function strictSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    if (key === 'properties' || key === 'patternProperties') {
      out[key] = Object.fromEntries(
        Object.entries(value as JsonSchema).map(([k, v]) => [k, strictSchema(v)]),
      );
    } else out[key] = strictSchema(value);
  }
  if (out['x-kubernetes-int-or-string'] === true && out.type === undefined && out.anyOf === undefined) {
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (out.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (
    out.type === 'object' &&
    out.properties !== undefined &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

/** The metadata keys of KEDA's kafka trigger, from the `keda:"name=...,order=..."` tags of its config struct. */
export interface KafkaScalerKeys {
  /** Key → its Go type (string, int64, bool, []string, ...). */
  readonly triggerMetadata: Record<string, string>;
  /** Keys that may instead be given as `<key>FromEnv` (order includes resolvedEnv). */
  readonly fromEnv: readonly string[];
  /** Keys without a default and not optional. */
  readonly required: readonly string[];
  /** Keys whose value must be one of a list. */
  readonly enums: Record<string, readonly string[]>;
}

export function kafkaScalerKeys(goSource: string): KafkaScalerKeys {
  const triggerMetadata: Record<string, string> = {};
  const fromEnv: string[] = [];
  const required: string[] = [];
  const enums: Record<string, string[]> = {};
  for (const m of goSource.matchAll(/^\s*\w+\s+(\S+)\s+`keda:"([^"]*)"`/gm)) {
    const [, type, tag] = m as unknown as [string, string, string];
    const parts = new Map(
      tag.split(',').map((p) => {
        const [k, v] = p.split('=');
        return [k?.trim() ?? '', v ?? ''] as const;
      }),
    );
    const name = parts.get('name');
    const order = parts.get('order')?.split(';') ?? [];
    if (!name || !order.includes('triggerMetadata')) continue;
    triggerMetadata[name] = type;
    if (order.includes('resolvedEnv')) fromEnv.push(name);
    if (!parts.has('optional') && !parts.has('default')) required.push(name);
    const allowed = parts.get('enum');
    if (allowed) enums[name] = allowed.split(';');
  }
  return { triggerMetadata, fromEnv, required, enums };
}

async function ensureKeda(log: (line: string) => void): Promise<void> {
  if (existsSync(kafkaScalerKeysFile)) return;
  const { module, version } = versions.keda;
  log(`fetching ${module}@${version} from the Go module proxy (its CRDs and Kafka scaler)`);
  await mkdir(cacheDir, { recursive: true });
  const { stdout } = await exec(goBinary(), ['mod', 'download', '-json', `${module}@${version}`], {
    cwd: cacheDir,
    env: goEnv(),
  });
  const { Dir: dir } = JSON.parse(stdout) as { Dir: string };
  await writeDirAtomically(crdSchemaDir, async (out) => {
    const bases = join(dir, 'config', 'crd', 'bases');
    for (const file of await readdir(bases)) {
      if (!file.endsWith('.yaml')) continue;
      const crd = parse(await readFile(join(bases, file), 'utf8')) as {
        spec: {
          group: string;
          names: { kind: string };
          versions: { name: string; schema?: { openAPIV3Schema?: JsonSchema } }[];
        };
      };
      const { group, names } = crd.spec;
      await mkdir(join(out, group), { recursive: true });
      for (const v of crd.spec.versions) {
        const schema = strictSchema(v.schema?.openAPIV3Schema ?? {}) as JsonSchema;
        const properties = (schema.properties ?? {}) as JsonSchema;
        // Pin apiVersion and kind as the built-in schemas do.
        properties.apiVersion = { type: 'string', enum: [`${group}/${v.name}`] };
        properties.kind = { type: 'string', enum: [names.kind] };
        schema.properties = properties;
        await writeFile(
          join(out, group, `${names.kind.toLowerCase()}_${v.name}.json`),
          JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }),
        );
      }
    }
    const source = await readFile(join(dir, 'pkg', 'scalers', 'kafka_scaler.go'), 'utf8');
    await writeFile(join(out, 'kafka-scaler-keys.json'), JSON.stringify(kafkaScalerKeys(source), null, 2));
  });
}

/** Builds or fetches whatever is missing; quick when everything is cached. */
export async function ensureTools(log: (line: string) => void = () => undefined): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  // One at a time: the machine is small and other suites may be running.
  await ensureGoTool(kustomizeBin, versions.kustomize, log);
  await ensureGoTool(kubeconformBin, versions.kubeconform, log);
  await ensureKubernetesSchemas(log);
  await ensureKeda(log);
}
