import { describe, expect, it } from 'vitest';
import { execForm, parseCopy, parseDockerfile, stageArgs, stageOf, substitute } from './dockerfile.js';

const text = `# syntax=docker/dockerfile:1.7
ARG IMAGE=node:20-bookworm-slim

FROM \${IMAGE} AS base
ARG V=1.2.3
RUN apt-get update \\
 # a comment inside a continued instruction is dropped
 && apt-get install --yes tini

FROM base AS app
WORKDIR /app
COPY --from=base --chmod=0755 /usr/bin/tini /tini
COPY ["a b.txt", "c.txt", "dest/"]
CMD ["node", "dist/main.js"]
`;

describe('dockerfile reader', () => {
  const file = parseDockerfile(text);

  it('reads stages, global ARGs into FROM, continued lines without their comments', () => {
    expect(file.globalArgs.get('IMAGE')).toBe('node:20-bookworm-slim');
    expect(file.stages.map((s) => [s.name, s.from])).toEqual([
      ['base', 'node:20-bookworm-slim'],
      ['app', 'base'],
    ]);
    const run = stageOf(file, 'base')?.instructions.find((i) => i.keyword === 'RUN');
    expect(run).toEqual({ keyword: 'RUN', args: 'apt-get update && apt-get install --yes tini', line: 6 });
    expect(stageArgs(stageOf(file, 'base') as never).get('V')).toBe('1.2.3');
  });

  it('reads COPY flags, sources and destination in both forms, and exec-form CMDs', () => {
    const copies = (stageOf(file, 'app')?.instructions ?? [])
      .filter((i) => i.keyword === 'COPY')
      .map(parseCopy);
    expect(copies.map((c) => [c.from, c.chmod, c.sources, c.dest])).toEqual([
      ['base', '0755', ['/usr/bin/tini'], '/tini'],
      [undefined, undefined, ['a b.txt', 'c.txt'], 'dest/'],
    ]);
    expect(execForm('["node", "dist/main.js"]')).toEqual(['node', 'dist/main.js']);
    expect(execForm('node dist/main.js')).toBeUndefined();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build argument, as written there
    expect(substitute('npm@${V}', new Map([['V', '11']]))).toBe('npm@11');
  });

  it('refuses what it cannot read rather than misreading it', () => {
    expect(() => parseDockerfile('FROM a\nRUN <<EOF\necho\nEOF\n')).toThrow(/heredocs/);
    expect(() => parseDockerfile('FROM a\nRUN echo \\\n')).toThrow(/ends inside a continued instruction/);
    // A blank line inside a continued instruction does not end it (Docker only warns).
    expect(parseDockerfile('FROM a\nRUN a \\\n\n && b\n').stages[0]?.instructions[0]?.args).toBe('a && b');
    expect(() => parseCopy({ keyword: 'COPY', args: '--frm=x a b', line: 3 })).toThrow(
      'unknown COPY flag --frm',
    );
  });
});
