import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { type Dockerfile, execForm, last, type Stage } from './dockerfile.js';
import type { ImageModel } from './image-model.js';
import { closure, repo, type Workspace } from './workspaces.js';

// What a service image must hold to run, checked on the model of its Dockerfile (image-model.ts). Each check
// returns its problems as sentences, so a test can show it failing on a broken Dockerfile.

/** The uid every LiveLens image runs as (deploy/k8s assumes it too). */
export const RUNTIME_UID = '10001';

/**
 * The last stage of a service Dockerfile runs the service: as uid 10001 (created in the image), with
 * `CMD ["node", "dist/main.js"]` in the service's folder, a file the build stage compiled; and it holds, for
 * every workspace the service needs in production, its package.json, every entry of its package.json
 * "files" (dist, models.json, taxonomy, bin, ...), and node_modules installed without devDependencies.
 */
export function runtimeProblems(
  file: Dockerfile,
  model: ImageModel,
  service: Workspace,
  all: ReadonlyMap<string, Workspace>,
): string[] {
  const problems: string[] = [];
  const stage = file.stages.at(-1) as Stage;
  problems.push(...userProblems(stage));
  const cmd = execForm(last(stage, 'CMD')?.args ?? '');
  if (JSON.stringify(cmd) !== JSON.stringify(['node', 'dist/main.js'])) {
    problems.push(`CMD is ${JSON.stringify(cmd)}, not ["node", "dist/main.js"]`);
  }
  const workdir = model.workdir(stage);
  if (!workdir.endsWith(`/${service.dir}`))
    problems.push(`WORKDIR is ${workdir}, not the service folder ${service.dir}`);
  const appRoot = workdir.slice(0, workdir.length - service.dir.length - 1) || '/';
  const main = model.resolve(stage, posix.join(workdir, 'dist/main.js'));
  if (main?.kind !== 'produced' || !/\bturbo\s+run\s+build\b/.test(main.run)) {
    problems.push(`dist/main.js is not made by the build stage's turbo run build (${describe(main)})`);
  }
  const modules = model.resolve(stage, posix.join(appRoot, 'node_modules'));
  if (modules?.kind !== 'produced' || !/\bnpm\s+ci\b.*--omit=dev/.test(modules.run)) {
    problems.push(`node_modules is not an npm ci --omit=dev (${describe(modules)})`);
  }
  for (const ws of closure(all, service.pkg.name, { dev: false })) {
    const outDir = ws.pkg.scripts?.build ? buildOutDir(ws) : undefined;
    for (const entry of ['package.json', ...(ws.pkg.files ?? [])]) {
      const origin = model.resolve(stage, posix.join(appRoot, ws.dir, entry));
      if (!origin) problems.push(`${ws.pkg.name} needs ${ws.dir}/${entry}: not in the image`);
      else if (
        entry === outDir &&
        !(origin.kind === 'produced' && /\bturbo\s+run\s+build\b/.test(origin.run))
      ) {
        // turbo prune --docker writes empty placeholders for package.json "bin" files (dist/main.js, ...)
        // into out/json, so a dist folder can exist without the build having made it.
        problems.push(`${ws.dir}/${entry} is not what the build compiled (${describe(origin)})`);
      }
    }
  }
  return problems;
}

/** The folder a workspace's `build` (tsc -p tsconfig.build.json) writes. */
export function buildOutDir(ws: Workspace): string {
  const tsconfig = JSON.parse(readFileSync(join(repo, ws.dir, 'tsconfig.build.json'), 'utf8')) as {
    compilerOptions?: { outDir?: string };
  };
  return tsconfig.compilerOptions?.outDir ?? 'dist';
}

/** The stage runs as a numeric non-root user that a RUN of the stage creates with that uid. */
export function userProblems(stage: Stage): string[] {
  const user = last(stage, 'USER')?.args.trim();
  if (user === undefined) return ['no USER: the image would run as root'];
  if (user !== RUNTIME_UID) return [`USER ${user}, not ${RUNTIME_UID}`];
  const creates = stage.instructions.some(
    (i) => i.keyword === 'RUN' && new RegExp(`useradd\\b.*--uid ${RUNTIME_UID}\\b`).test(i.args),
  );
  return creates ? [] : [`no RUN creates the user with uid ${RUNTIME_UID}`];
}

/** `dist/main.js` is what tsconfig.build.json compiles src/main.ts to. */
export function entryProblems(service: Workspace): string[] {
  const tsconfig = JSON.parse(readFileSync(join(repo, service.dir, 'tsconfig.build.json'), 'utf8')) as {
    compilerOptions?: { rootDir?: string; outDir?: string };
    exclude?: string[];
  };
  const problems: string[] = [];
  if (tsconfig.compilerOptions?.rootDir !== 'src' || tsconfig.compilerOptions?.outDir !== 'dist') {
    problems.push(`${service.dir}/tsconfig.build.json does not compile src/ into dist/`);
  }
  if (!existsSync(join(repo, service.dir, 'src/main.ts')))
    problems.push(`${service.dir}/src/main.ts is missing`);
  return problems;
}

function describe(origin: ReturnType<ImageModel['resolve']>): string {
  if (!origin) return 'nothing makes it';
  return origin.kind === 'file'
    ? `copied from ${origin.path}`
    : `made by RUN ${origin.run} (stage ${origin.stage})`;
}
