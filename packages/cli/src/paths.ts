import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the CLI runs from a checkout (packages/cli/src → ../../..). */
export const repoRoot = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** `$LIVELENS_HOME`, else `<repo>/.livelens`: caches, data, logs and pid files of the local stack. */
export function livelensHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(repoRoot, env.LIVELENS_HOME ?? '.livelens');
}

export const logsDir = (env: NodeJS.ProcessEnv = process.env) => resolve(livelensHome(env), 'logs');
export const runDir = (env: NodeJS.ProcessEnv = process.env) => resolve(livelensHome(env), 'run');

/** The model cache the services read: `$LIVELENS_MODELS_DIR`, else `$LIVELENS_HOME/models`. */
export function modelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIVELENS_MODELS_DIR ? resolve(env.LIVELENS_MODELS_DIR) : resolve(livelensHome(env), 'models');
}

export const stackScript = resolve(repoRoot, 'deploy/local/stack.sh');
