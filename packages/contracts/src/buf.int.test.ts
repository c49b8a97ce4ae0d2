import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const buf = join(root, 'node_modules/.bin/buf');

async function bufRun(args: string[], cwd = root) {
  try {
    const { stdout, stderr } = await run(buf, args, { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The ref buf breaking compares against: local main, else origin/main (a clone checked out elsewhere). */
async function mainRef(): Promise<string | undefined> {
  for (const [ref, input] of [
    ['main', '.git#branch=main'],
    ['origin/main', '.git#ref=origin/main'],
  ] as const) {
    try {
      await run('git', ['rev-parse', '--verify', '--quiet', ref], { cwd: root });
      return input;
    } catch {
      // try the next
    }
  }
  return undefined;
}

describe('protobuf contracts (buf)', () => {
  const scratch: string[] = [];
  afterAll(async () => {
    await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('pass buf lint', async () => {
    const result = await bufRun(['lint']);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('have no breaking change against main', async () => {
    const against = await mainRef();
    expect(against, 'no main branch to compare with: fetch it (git fetch origin main)').toBeDefined();
    const result = await bufRun(['breaking', '--against', against ?? '']);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('make buf breaking fail on a removed field (the check can fail)', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'livelens-buf-'));
    scratch.push(copy);
    await cp(join(root, 'proto'), join(copy, 'proto'), { recursive: true });
    await cp(join(root, 'buf.yaml'), join(copy, 'buf.yaml'));
    const media = join(copy, 'proto/livelens/v1/media.proto');
    const text = await readFile(media, 'utf8');
    await writeFile(media, text.replace(/^\s*float scene_change_score = 10;\n/m, ''));
    const result = await bufRun(['breaking', '--against', root], copy);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/scene_change_score|deleted/i);
  });

  it('match the committed generated code (run `npm run generate` after editing proto/)', async () => {
    const out = await mkdtemp(join(tmpdir(), 'livelens-gen-'));
    scratch.push(out);
    const template = JSON.stringify({
      version: 'v2',
      inputs: [{ directory: 'proto' }],
      plugins: [
        {
          local: ['node', join(root, 'node_modules/@bufbuild/protoc-gen-es/bin/protoc-gen-es')],
          out,
          opt: ['target=ts', 'import_extension=js'],
        },
      ],
    });
    const result = await bufRun(['generate', '--template', template]);
    expect(result.code, result.output).toBe(0);
    const dir = 'livelens/v1';
    const fresh = (await readdir(join(out, dir))).sort();
    const committed = (await readdir(join(root, 'packages/contracts/src/gen', dir))).sort();
    expect(committed).toEqual(fresh);
    for (const name of fresh) {
      const want = await readFile(join(out, dir, name), 'utf8');
      const have = await readFile(join(root, 'packages/contracts/src/gen', dir, name), 'utf8');
      expect(have, `${dir}/${name} is stale or hand-edited`).toBe(want);
    }
  });
});
