import { existsSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { type Dockerfile, parseCopy, type Stage, stageOf } from './dockerfile.js';

// What each stage of a Dockerfile holds, without Docker: the build context is a real folder (already filtered
// by .dockerignore), `turbo prune` really runs (its output is a real folder), and the effects of the other
// RUN lines that matter are recorded as "produced" paths: `npm ci` makes node_modules, `turbo run build`
// makes each built workspace's dist, `mkdir -p` makes folders. Every COPY is then checked: its source must
// exist where it is taken from (the context, or another stage's files), and a path in any stage can be
// traced to where it comes from. Instructions that do nothing the checks need (apt-get, ENV, ...) are skipped.

/** Where a path of an image comes from: a real file or folder on this machine, or a RUN that made it. */
export type Origin =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'produced'; readonly stage: string; readonly line: number; readonly run: string };

type Source =
  | { readonly kind: 'real'; readonly path: string }
  | { readonly kind: 'stage'; readonly stage: string; readonly path: string }
  | { readonly kind: 'produced'; readonly stage: string; readonly line: number; readonly run: string };

interface Layer {
  readonly target: string;
  readonly dir: boolean;
  readonly source: Source;
}

export interface ImageModelOptions {
  /** A folder holding the build context (the repository, less what .dockerignore leaves out). */
  readonly context: string;
  /** Runs `turbo prune <pkg> --docker` and returns its output folder (json/, full/, package-lock.json). */
  readonly prune: (pkg: string) => string;
  /** The folders `turbo run build --filter=<pkg>` writes, relative to the workspace root (e.g. packages/runtime/dist). */
  readonly buildOutputs: (pkg: string) => string[];
}

interface StageState {
  layers: Layer[];
  workdir: string;
}

export class ImageModel {
  /** COPY instructions whose source does not exist, as `line N: ...`. */
  readonly problems: string[] = [];
  /** The package each stage's `turbo prune` pruned for. */
  readonly prunedFor = new Map<string, string>();
  private readonly states = new Map<string, StageState>();

  constructor(
    readonly file: Dockerfile,
    private readonly options: ImageModelOptions,
  ) {
    for (const stage of file.stages) this.states.set(key(stage), this.build(stage));
  }

  /** The working directory a stage ends with. */
  workdir(stage: Stage): string {
    return (this.states.get(key(stage)) as StageState).workdir;
  }

  /** Where an absolute path of a stage comes from; undefined when nothing put it there. */
  resolve(stage: Stage, path: string): Origin | undefined {
    const state = this.states.get(key(stage));
    if (!state) return undefined;
    return this.resolveIn(state.layers, posix.normalize(path).replace(/(.)\/$/, '$1'));
  }

  private resolveIn(layers: readonly Layer[], path: string): Origin | undefined {
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i] as Layer;
      let rel: string | undefined;
      if (path === layer.target) rel = '';
      else if (layer.dir && path.startsWith(layer.target === '/' ? '/' : `${layer.target}/`)) {
        rel = path.slice(layer.target === '/' ? 1 : layer.target.length + 1);
      }
      if (rel === undefined) continue;
      const s = layer.source;
      if (s.kind === 'produced') return { kind: 'produced', stage: s.stage, line: s.line, run: s.run };
      if (s.kind === 'real') {
        const p = rel === '' ? s.path : join(s.path, rel);
        if (existsSync(p)) return { kind: 'file', path: p };
        continue; // an earlier layer may hold it
      }
      const from = stageOf(this.file, s.stage);
      const found = from && this.resolve(from, rel === '' ? s.path : posix.join(s.path, rel));
      if (found) return found;
    }
    return undefined;
  }

  private build(stage: Stage): StageState {
    const parent = stageOf(this.file, stage.from);
    const base = parent && parent.index < stage.index ? this.states.get(key(parent)) : undefined;
    const state: StageState = { layers: [...(base?.layers ?? [])], workdir: base?.workdir ?? '/' };
    const name = key(stage);
    for (const ins of stage.instructions) {
      if (ins.keyword === 'WORKDIR') state.workdir = posix.resolve(state.workdir, ins.args.trim());
      else if (ins.keyword === 'COPY' || ins.keyword === 'ADD') this.copy(state, parseCopy(ins), ins.keyword);
      else if (ins.keyword === 'RUN') this.run(state, name, ins.args, ins.line);
    }
    return state;
  }

  private copy(state: StageState, copy: ReturnType<typeof parseCopy>, keyword: string): void {
    const dest = posix.resolve(state.workdir, copy.dest);
    const destIsDir = copy.dest.endsWith('/') || copy.dest === '.' || copy.sources.length > 1;
    const fromStage = copy.from === undefined ? undefined : stageOf(this.file, copy.from);
    if (copy.from !== undefined && !fromStage) return; // --from an image: its files are not known here
    for (const src of copy.sources) {
      let dir: boolean;
      let source: Source;
      if (fromStage) {
        const path = posix.resolve(this.workdir(fromStage), src);
        const origin = this.resolve(fromStage, path);
        if (!origin) {
          this.problems.push(
            `line ${copy.line}: ${keyword} --from=${copy.from} ${src}: nothing in that stage makes it`,
          );
          continue;
        }
        dir = src.endsWith('/') || (origin.kind === 'file' ? statSync(origin.path).isDirectory() : true);
        source = {
          kind: 'stage',
          stage: copy.from as string,
          path: posix.normalize(path).replace(/(.)\/$/, '$1'),
        };
      } else {
        const path = join(this.options.context, src);
        if (!existsSync(path)) {
          this.problems.push(`line ${copy.line}: ${keyword} ${src}: not in the build context`);
          continue;
        }
        dir = statSync(path).isDirectory();
        source = { kind: 'real', path };
      }
      const target = dir || !destIsDir ? dest : posix.join(dest, posix.basename(src));
      state.layers.push({ target: target.replace(/(.)\/$/, '$1'), dir, source });
    }
  }

  private run(state: StageState, stage: string, args: string, line: number): void {
    const produced = (target: string) =>
      state.layers.push({
        target: posix.resolve(state.workdir, target),
        dir: true,
        source: { kind: 'produced', stage, line, run: args },
      });
    const prune = /\bturbo(?:@\S+)?\s+prune\s+(@?[\w./-]+)(.*)$/.exec(args);
    if (prune && /--docker\b/.test(prune[2] as string)) {
      const out = /--out-dir[=\s](\S+)/.exec(prune[2] as string)?.[1] ?? 'out';
      this.prunedFor.set(stage, prune[1] as string);
      const target = posix.resolve(state.workdir, out);
      state.layers.push({
        target,
        dir: true,
        source: { kind: 'real', path: this.options.prune(prune[1] as string) },
      });
    }
    if (/\bnpm\s+ci\b/.test(args)) produced('node_modules');
    const build = /\bturbo\s+run\s+build\b.*--filter[=\s](\S+)/.exec(args);
    for (const out of build ? this.options.buildOutputs(build[1] as string) : []) {
      // A workspace is built only if its sources are in the stage (from the prune output, for these images).
      const dir = posix.dirname(posix.resolve(state.workdir, out));
      const missing = ['package.json', 'tsconfig.build.json', 'src'].filter(
        (f) => !this.resolveIn(state.layers, posix.join(dir, f)),
      );
      if (missing.length > 0) {
        this.problems.push(
          `line ${line}: turbo run build needs ${missing.map((f) => posix.join(dir, f)).join(', ')}: not in the stage`,
        );
      } else produced(out);
    }
    for (const m of args.matchAll(/\bmkdir\s+-p\s+([^&;|]+)/g)) {
      for (const dir of (m[1] as string).trim().split(/\s+/)) produced(dir);
    }
  }
}

function key(stage: Stage): string {
  return stage.name ?? String(stage.index);
}
