import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The npm workspaces of the repository and how they depend on each other, read from the package.json files
// (the root's "workspaces" globs, each package's dependencies, scripts and "files").

/** The repository root. */
export const repo = fileURLToPath(new URL('../../../', import.meta.url));

export interface PackageJson {
  readonly name: string;
  readonly version?: string;
  readonly scripts?: Readonly<Record<string, string>>;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
  readonly files?: readonly string[];
  readonly workspaces?: readonly string[];
  readonly packageManager?: string;
}

export interface Workspace {
  /** Repository-relative folder, `/`-separated (e.g. `services/asr`). */
  readonly dir: string;
  readonly pkg: PackageJson;
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export function rootPackage(): PackageJson {
  return readJson<PackageJson>(join(repo, 'package.json'));
}

/** Every workspace of the root package.json, by package name. */
export function workspaces(): Map<string, Workspace> {
  const byName = new Map<string, Workspace>();
  for (const glob of rootPackage().workspaces ?? []) {
    const dirs = glob.endsWith('/*')
      ? readdirSync(join(repo, glob.slice(0, -2)), { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => `${glob.slice(0, -2)}/${d.name}`)
      : [glob];
    for (const dir of dirs) {
      const file = join(repo, dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = readJson<PackageJson>(file);
      byName.set(pkg.name, { dir, pkg });
    }
  }
  return byName;
}

/**
 * The workspace packages `name` needs, itself first: through `dependencies` only (what runs in production),
 * or also through `devDependencies` (what a build of it compiles against).
 */
export function closure(
  all: ReadonlyMap<string, Workspace>,
  name: string,
  options: { dev: boolean },
): Workspace[] {
  const seen = new Map<string, Workspace>();
  const visit = (n: string) => {
    const ws = all.get(n);
    if (!ws || seen.has(n)) return;
    seen.set(n, ws);
    const dev = options.dev ? ws.pkg.devDependencies : undefined;
    for (const dep of Object.keys({ ...ws.pkg.dependencies, ...dev })) visit(dep);
  };
  visit(name);
  return [...seen.values()];
}

/** Variable names a LiveLens config declares: the first argument of each `field('NAME', ...)` in a file. */
export function declaredConfigVariables(file: string): string[] {
  const source = readFileSync(join(repo, file), 'utf8');
  return [...source.matchAll(/\bfield\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1] as string);
}

/** The TypeScript sources of a workspace, tests left out. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(repo, rel), { withFileTypes: true })) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'gen' && entry.name !== 'node_modules') walk(path);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
    }
  };
  if (existsSync(join(repo, dir, 'src'))) walk(`${dir}/src`);
  return out;
}
