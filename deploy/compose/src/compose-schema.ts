import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { repo } from './workspaces.js';

// The official Compose Specification JSON schema, as Docker Compose itself validates with it: the file
// `schema/compose-spec.json` of the Go module github.com/compose-spec/compose-go/v2 (the loader behind
// `docker compose`). It comes through the Go module proxy with the ordinary client (`go mod download`), which
// checks the module against the checksum database; the version and its hash are pinned here, so a run uses
// exactly this schema or fails. The module cache lives under $LIVELENS_HOME (default .livelens, gitignored).

const run = promisify(execFile);

/** The module that carries the schema, and the pinned version. */
export const COMPOSE_GO_MODULE = 'github.com/compose-spec/compose-go/v2';
export const COMPOSE_GO_VERSION = 'v2.16.2';
/** go.sum hash (h1:) of the module zip at that version. */
export const COMPOSE_GO_SUM = 'h1:pTp1DqQwJzFd85GzlWsSszKA1ABrV/ySqsClujIcWA8=';
/** Where in the module the schema is. */
export const SCHEMA_PATH = 'schema/compose-spec.json';

/** The Go binary: `go` on PATH, else where the official Go distribution installs it. */
function goBinary(): string {
  const onPath = (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, 'go')));
  return !onPath && existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
}

export interface ComposeSchema {
  readonly schema: Record<string, unknown>;
  /** `<module>@<version>`. */
  readonly source: string;
  /** The file it was read from (inside the module cache). */
  readonly file: string;
}

/** Downloads (once; later runs read the cache) and reads the pinned Compose Specification schema. */
export async function composeSpecSchema(): Promise<ComposeSchema> {
  const home = resolve(repo, process.env.LIVELENS_HOME ?? '.livelens');
  const env = {
    ...process.env,
    GOMODCACHE: join(home, 'go-mod'),
    // Writable module files, so that removing .livelens works as for any other cache.
    GOFLAGS: [process.env.GOFLAGS, '-modcacherw'].filter(Boolean).join(' '),
    // Never fetch another Go toolchain: `go mod download` of a module needs none.
    GOTOOLCHAIN: 'local',
  };
  let stdout: string;
  try {
    ({ stdout } = await run(
      goBinary(),
      ['mod', 'download', '-json', `${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION}`],
      {
        cwd: tmpdir(), // outside any module
        env,
        timeout: 180_000,
        maxBuffer: 1024 * 1024,
      },
    ));
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') {
      throw new Error(
        'go not found: the Compose schema comes from the Go module proxy (install Go, e.g. Debian golang-go)',
      );
    }
    throw new Error(
      `go mod download ${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION} failed: ${(e.stdout ?? '') + (e.stderr ?? '') || e.message}`,
    );
  }
  const info = JSON.parse(stdout) as { Dir?: string; Sum?: string; Error?: string };
  if (info.Error) throw new Error(`go mod download: ${info.Error}`);
  if (info.Sum !== COMPOSE_GO_SUM) {
    throw new Error(
      `${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION} has hash ${info.Sum}, expected ${COMPOSE_GO_SUM}`,
    );
  }
  const file = join(info.Dir as string, SCHEMA_PATH);
  const schema = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  return { schema, source: `${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION}`, file };
}
