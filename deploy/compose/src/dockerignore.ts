// .dockerignore matching as Docker does it (moby/patternmatcher): patterns are relative to the context root
// (a leading `/` is dropped, `./` and `//` cleaned), `*` and `?` stay within one path segment, `**` spans any
// number of segments, a pattern that matches a directory excludes everything under it, `!` re-includes,
// and the last matching pattern wins. Unlike .gitignore, `node_modules` alone matches only at the root.

/** One line of a .dockerignore: the cleaned pattern, whether it re-includes, and its regular expression. */
export interface DockerignorePattern {
  readonly pattern: string;
  readonly negated: boolean;
  readonly regex: RegExp;
}

/** Parses .dockerignore text: blank lines and `#` comments are skipped. */
export function parseDockerignore(text: string): DockerignorePattern[] {
  const patterns: DockerignorePattern[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    if (negated) line = line.slice(1).trim();
    const pattern = cleanPath(line);
    if (pattern === '') continue;
    patterns.push({ pattern, negated, regex: patternRegex(pattern) });
  }
  return patterns;
}

/** Whether `path` (relative to the context root, `/`-separated) is left out of the build context. */
export function isExcluded(patterns: readonly DockerignorePattern[], path: string): boolean {
  const clean = cleanPath(path);
  const parents = parentPaths(clean);
  let excluded = false;
  for (const p of patterns) {
    // A pattern excludes the path itself or any directory above it.
    if (p.regex.test(clean) || parents.some((parent) => p.regex.test(parent))) excluded = !p.negated;
  }
  return excluded;
}

function cleanPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

function parentPaths(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

function patternRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` at a segment start: any number of whole segments, none included; `**` elsewhere: anything.
      if (pattern[i + 2] === '/' && (i === 0 || pattern[i - 1] === '/')) {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) source += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/^!/, '^');
        source += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      source += escapeRegex(pattern[i + 1] as string);
      i += 1;
    } else source += escapeRegex(c);
  }
  return new RegExp(`^${source}$`);
}

function escapeRegex(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
