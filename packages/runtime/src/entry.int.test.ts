import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

// Vitest resolves CommonJS named exports that Node's own ESM loader does not (kafkajs' error classes were
// one): load the built package the way a service's main.js will, under plain Node.
describe('package entry', () => {
  it('loads under plain Node ESM with every public export', async () => {
    const script = `
      const m = await import('@livelens/runtime');
      const names = ['KafkaClient', 'createGrpcServer', 'createGrpcClient', 'createRedis', 'startHealthServer',
        'loadConfig', 'createLogger', 'LiveLensError', 'handleShutdownSignals', 'fromKafkaError'];
      console.log(JSON.stringify(names.filter((n) => typeof m[n] !== 'function')));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: process.cwd(),
    });
    expect(JSON.parse(stdout)).toEqual([]);
  });
});
