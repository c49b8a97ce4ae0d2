import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// The alert rules and the scrape config, checked and unit-tested with promtool (Debian's prometheus package,
// installed by deploy/local/stack.sh), and tied to the metrics the services really register.

const run = promisify(execFile);
const here = new URL('.', import.meta.url).pathname;
const repo = new URL('../../', import.meta.url).pathname;

async function promtool(args: string[], cwd = here) {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('promtool not found: `npm run setup` installs it (Debian package prometheus)');
    return { code: Number(e.code), output: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

/** Metric names the services register: `name: 'livelens_...'` in their metrics modules. */
async function registeredNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const service of await readdir(join(repo, 'services'))) {
    const text = await readFile(join(repo, 'services', service, 'src', 'metrics.ts'), 'utf8').catch(() => '');
    for (const m of text.matchAll(/name: '(livelens_[a-z_]+)'/g)) names.add(m[1] as string);
  }
  return names;
}

describe('Prometheus config and alert rules', () => {
  const temps: string[] = [];
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('passes promtool check config and check rules', async () => {
    const config = await promtool(['check', 'config', 'prometheus.yml']);
    expect(config.output).toContain('SUCCESS: 1 rule files found');
    expect(config.code, config.output).toBe(0);
    const rules = await promtool(['check', 'rules', 'alerts.yml']);
    expect(rules.output).toContain('SUCCESS: 7 rules found');
    expect(rules.code, rules.output).toBe(0);
  });

  it('fires every alert on the series that should trigger it, and not on healthy ones (promtool test rules)', async () => {
    const result = await promtool(['test', 'rules', 'alerts.test.yml']);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
    // Every rule has a unit test.
    const rules = await readFile(join(here, 'alerts.yml'), 'utf8');
    const tests = await readFile(join(here, 'alerts.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1] as string);
    expect(alerts).toHaveLength(7);
    for (const alert of alerts) expect(tests, alert).toContain(`alertname: ${alert}`);
  });

  it('catches a broken rule: the same tests fail when a threshold is wrong', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livelens-alerts-'));
    temps.push(dir);
    const rules = await readFile(join(here, 'alerts.yml'), 'utf8');
    await writeFile(
      join(dir, 'alerts.yml'),
      rules.replace('_consumer_lag_messages"}) > 1000', '_consumer_lag_messages"}) > 5000'),
    );
    await copyFile(join(here, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
    const result = await promtool(['test', 'rules', 'alerts.test.yml'], dir);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('alertname: LiveLensConsumerLagHigh');
  });

  it('names only metrics the services register (literal names, and the runtime consumer metrics by suffix)', async () => {
    // The expressions only: comments and annotations may name metrics for the reader.
    const rules = (await readFile(join(here, 'alerts.yml'), 'utf8'))
      .split('\n')
      .filter((line) => !/^\s*#/.test(line) && !/^\s*(summary|description):/.test(line))
      .join('\n');
    const registered = await registeredNames();
    const literal = [
      ...rules.matchAll(/\b(livelens_(?:ingest|frame_analyzer|asr|fusion)_[a-z_]+?)(?:_bucket)?\b/g),
    ].map((m) => m[1] as string);
    expect(literal.length).toBeGreaterThan(4);
    for (const name of literal) expect(registered, name).toContain(name);
    const runtime = await readFile(join(repo, 'packages/runtime/src/kafka/metrics.ts'), 'utf8');
    for (const suffix of ['consumer_lag_messages', 'dlq_messages_total'])
      expect(runtime).toContain(`\${p}${suffix}`);
  });
});
