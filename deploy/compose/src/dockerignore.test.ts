import { describe, expect, it } from 'vitest';
import { isExcluded, parseDockerignore } from './dockerignore.js';

describe('dockerignore', () => {
  const excluded = (patterns: string, path: string) => isExcluded(parseDockerignore(patterns), path);

  it('matches from the context root: a bare name only at the root, **/ at any depth', () => {
    expect(excluded('node_modules', 'node_modules/zod/index.js')).toBe(true);
    expect(excluded('node_modules', 'services/asr/node_modules/x')).toBe(false);
    expect(excluded('**/node_modules', 'services/asr/node_modules/x')).toBe(true);
    expect(excluded('**/node_modules', 'node_modules')).toBe(true);
    expect(excluded('/dist', 'dist/a.js')).toBe(true);
  });

  it('keeps * and ? inside one segment, and excludes everything under a matched folder', () => {
    expect(excluded('*.log', 'a.log')).toBe(true);
    expect(excluded('*.log', 'logs/a.log')).toBe(false);
    expect(excluded('**/*.log', 'logs/deep/a.log')).toBe(true);
    expect(excluded('bench/results', 'bench/results/run-1/x.json')).toBe(true);
    expect(excluded('bench/result?', 'bench/results/x')).toBe(true);
    expect(excluded('bench/result?', 'bench/result/x')).toBe(false);
  });

  it('re-includes with !, the last matching line winning; skips comments and blank lines', () => {
    const patterns = '# comment\n\n**/*.md\n!README.md\n';
    expect(excluded(patterns, 'docs/gpu.md')).toBe(true);
    expect(excluded(patterns, 'README.md')).toBe(false);
    expect(excluded(`${patterns}README.md\n`, 'README.md')).toBe(true);
    expect(parseDockerignore(patterns).map((p) => p.pattern)).toEqual(['**/*.md', 'README.md']);
  });
});
