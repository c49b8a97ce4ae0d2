// `livelens stack up|down` for the services part: the four built services started in the background (own
// session, pid files), found again by a later command, and stopped. Kafka and Redis are the suite's; the
// script part (deploy/local/stack.sh) has its own tests in deploy/local.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testInfrastructure, uniqueName } from '@livelens/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { modelsDir } from '../src/paths.js';
import { answersReady, detachedPid, SERVICE_NAMES, startDetached, stopDetached } from '../src/services.js';
import { freeLayout } from './layout.js';

describe('services in the background (livelens stack up / down)', () => {
  const saved = { home: process.env.LIVELENS_HOME, models: process.env.LIVELENS_MODELS_DIR };
  let home = '';
  afterAll(async () => {
    await stopDetached(5_000).catch(() => undefined);
    process.env.LIVELENS_HOME = saved.home;
    process.env.LIVELENS_MODELS_DIR = saved.models;
    if (saved.home === undefined) delete process.env.LIVELENS_HOME;
    if (saved.models === undefined) delete process.env.LIVELENS_MODELS_DIR;
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('starts the four services detached with pid files, finds them again, and stops them', async () => {
    const models = modelsDir();
    home = await mkdtemp(join(tmpdir(), 'livelens-home-'));
    // Pid files and logs in a home of this test's own (a real `stack up` keeps its own); the models stay.
    process.env.LIVELENS_HOME = home;
    process.env.LIVELENS_MODELS_DIR = models;
    const { kafkaBrokers, redisUrl } = testInfrastructure();
    const layout = await freeLayout();
    const ns = uniqueName('detached');
    const options = {
      kafkaBrokers: kafkaBrokers.join(','),
      redisUrl,
      layout,
      namespace: ns,
      topicPrefix: `${ns}.`,
    };
    const pids = await startDetached(options);
    for (const name of SERVICE_NAMES) {
      expect(await detachedPid(name), name).toBe(pids[name]);
      expect(await readFile(join(home, 'run', `${name}.pid`), 'utf8')).toBe(`${pids[name]}\n`);
      expect(await answersReady(layout.metricsPorts[name]), name).toBe(true);
      // Its own session: not killed with the command that started it (Ctrl-C in that terminal).
      const stat = await readFile(`/proc/${pids[name]}/stat`, 'utf8');
      const sid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
      expect(sid, name).toBe(pids[name]);
    }
    // A second `stack up` starts nothing new.
    expect(await startDetached(options)).toEqual(pids);

    const stopped = await stopDetached(20_000);
    expect(stopped.sort()).toEqual([...SERVICE_NAMES].sort());
    for (const name of SERVICE_NAMES) {
      expect(await detachedPid(name), name).toBeUndefined();
      expect(await answersReady(layout.metricsPorts[name]), name).toBe(false);
    }
    expect(await stopDetached()).toEqual([]);
  }, 240_000);
});
