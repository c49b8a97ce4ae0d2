import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { promtool as promtoolIn, registeredNames } from './metric-names.js';

// The alert rules and the scrape config, checked and unit-tested with promtool (Debian's prometheus package,
// installed by deploy/local/stack.sh), and tied to the metrics the services really register.

const here = new URL('.', import.meta.url).pathname;
const promtool = (args: string[], cwd = here) => promtoolIn(args, cwd);

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

  it('names only metrics the services register (literal names, and the runtime metrics by name pattern)', async () => {
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
    // Name patterns (the runtime's per-service metrics): each matches some registered name.
    const patterns = [...rules.matchAll(/__name__=~"([^"]+)"/g)].map((m) => m[1] as string);
    expect(patterns.length).toBeGreaterThan(2);
    for (const pattern of patterns) {
      const matching = [...registered].filter((name) => new RegExp(`^(?:${pattern})$`).test(name));
      expect(matching, pattern).not.toHaveLength(0);
    }
  });
});
