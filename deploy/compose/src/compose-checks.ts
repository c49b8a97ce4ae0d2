import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { ErrorObject } from 'ajv';
import {
  buildOf,
  type ComposeDocument,
  type ComposeService,
  dependsOn,
  environmentOf,
  healthcheckCommand,
  mountsOf,
  servicesOf,
} from './compose-file.js';
import { parseDockerfile } from './dockerfile.js';
import {
  closure,
  declaredConfigVariables,
  repo,
  sourceFiles,
  type Workspace,
  workspaces,
} from './workspaces.js';

// The checks of a compose document against the Compose schema and against this repository. Each returns the
// problems it finds as sentences (empty: none), so the tests can show a check passing on the shipped file and
// failing on a broken one.

/** Ajv's errors as `path: message`, the deepest first (the most specific, as compose-go reports them). */
export function schemaProblems(errors: readonly ErrorObject[] | null | undefined): string[] {
  const lines = [...(errors ?? [])]
    .sort((a, b) => b.instancePath.split('/').length - a.instancePath.split('/').length)
    .map((e) => {
      const where = e.instancePath === '' ? '(top level)' : e.instancePath;
      const p = e.params as Record<string, unknown>;
      const detail =
        p.additionalProperty !== undefined
          ? ` (${String(p.additionalProperty)})`
          : p.unevaluatedProperty !== undefined
            ? ` (${String(p.unevaluatedProperty)})`
            : Array.isArray(p.allowedValues)
              ? ` (${p.allowedValues.join(', ')})`
              : '';
      return `${where}: ${e.message ?? e.keyword}${detail}`;
    });
  return [...new Set(lines)];
}

/** Which LiveLens program a compose service runs, from the Dockerfile (and target) it is built from. */
export interface LivelensRole {
  /** The service folder (ingest, frame-analyzer, asr, fusion), or `models` for the model fetcher. */
  readonly role: string;
  /** The workspace package whose code runs (for `models`, @livelens/inference). */
  readonly pkg: string;
  readonly dockerfile: string;
}

export function livelensRole(service: ComposeService, composeDir: string): LivelensRole | undefined {
  const build = buildOf(service, composeDir);
  if (!build) return undefined;
  const m = /^services\/([\w-]+)\/Dockerfile$/.exec(relative(repo, build.dockerfile));
  if (!m) return undefined;
  if (build.target === 'models')
    return { role: 'models', pkg: '@livelens/inference', dockerfile: build.dockerfile };
  return { role: m[1] as string, pkg: `@livelens/${m[1]}`, dockerfile: build.dockerfile };
}

/** depends_on targets, conditions, named volumes and build references all resolve. */
export function referenceProblems(doc: ComposeDocument, composeDir: string): string[] {
  const problems: string[] = [];
  const services = new Map(servicesOf(doc));
  const declaredVolumes = new Set(Object.keys((doc.volumes as Record<string, unknown> | undefined) ?? {}));
  const usedVolumes = new Set<string>();
  for (const [name, service] of services) {
    for (const [dep, condition] of dependsOn(service)) {
      const target = services.get(dep);
      if (!target) {
        problems.push(`${name}: depends_on ${dep}, which is not a service`);
        continue;
      }
      if (condition === 'service_healthy' && !healthcheckCommand(target)) {
        problems.push(`${name}: waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
      }
      if (condition === 'service_completed_successfully' && (target.restart ?? 'no') !== 'no') {
        problems.push(
          `${name}: waits for ${dep} to complete, but ${dep} restarts (${String(target.restart)})`,
        );
      }
    }
    for (const mount of mountsOf(service, composeDir).filter((m) => m.type === 'volume')) {
      usedVolumes.add(mount.source);
      if (!declaredVolumes.has(mount.source))
        problems.push(`${name}: volume ${mount.source} is not declared`);
    }
    const build = buildOf(service, composeDir);
    if (build) {
      if (!existsSync(build.context)) problems.push(`${name}: build context ${build.context} does not exist`);
      if (!existsSync(build.dockerfile)) {
        problems.push(`${name}: ${relative(repo, build.dockerfile)} does not exist`);
      } else if (build.target !== undefined) {
        const stages = parseDockerfile(readFileSync(build.dockerfile, 'utf8')).stages.map((s) => s.name);
        if (!stages.includes(build.target)) {
          problems.push(`${name}: ${relative(repo, build.dockerfile)} has no stage ${build.target}`);
        }
      }
    }
  }
  for (const v of declaredVolumes)
    if (!usedVolumes.has(v)) problems.push(`volume ${v} is declared but not used`);
  return problems;
}

/** Every bind mount's source exists (relative ones are relative to the compose file's folder). */
export function mountProblems(doc: ComposeDocument, composeDir: string): string[] {
  const problems: string[] = [];
  for (const [name, service] of servicesOf(doc)) {
    for (const m of mountsOf(service, composeDir).filter((x) => x.type === 'bind')) {
      if (!existsSync(m.source))
        problems.push(`${name}: mounts ${relative(repo, m.source)}, which does not exist`);
    }
  }
  return problems;
}

/**
 * The variables a LiveLens program reads: the fields its config declares (`field('NAME', ...)` in
 * services/<name>/src/config.ts and packages/runtime/src/config/common.ts), and any other variable its
 * production code reads by name (`env.NAME`, `process.env.NAME`, e.g. LIVELENS_MODELS_DIR in
 * @livelens/inference).
 */
export function variablesRead(
  role: LivelensRole,
  all: ReadonlyMap<string, Workspace> = workspaces(),
): Set<string> {
  const names = new Set<string>();
  if (role.role !== 'models') {
    for (const file of [`services/${role.role}/src/config.ts`, 'packages/runtime/src/config/common.ts']) {
      for (const n of declaredConfigVariables(file)) names.add(n);
    }
  }
  for (const ws of closure(all, role.pkg, { dev: false })) {
    for (const file of sourceFiles(ws.dir)) {
      const text = readFileSync(`${repo}/${file}`, 'utf8');
      for (const m of text.matchAll(/\b(?:process\.)?env\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1] as string);
    }
  }
  return names;
}

/** Every variable given to a LiveLens service is one that the program reads. */
export function environmentProblems(doc: ComposeDocument, composeDir: string): string[] {
  const problems: string[] = [];
  const all = workspaces();
  for (const [name, service] of servicesOf(doc)) {
    const role = livelensRole(service, composeDir);
    if (!role) continue;
    const read = variablesRead(role, all);
    for (const variable of environmentOf(service).keys()) {
      if (!read.has(variable)) problems.push(`${name}: ${variable} is not a variable ${role.pkg} reads`);
    }
  }
  return problems;
}
