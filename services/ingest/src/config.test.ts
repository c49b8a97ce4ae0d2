import { readFile } from 'node:fs/promises';
import { commonConfigFields, configTableRows, readmeConfigRows } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import { ingestConfigFields } from './config.js';

describe('ingest config', () => {
  it("matches the README's configuration table (every variable, its default and meaning)", async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const own = Object.fromEntries(
      Object.entries(ingestConfigFields)
        .filter(([key]) => !(key in commonConfigFields))
        // The replica id's default is computed (this host and pid): the README names the rule.
        .map(([key, f]) => [key, key === 'replicaId' ? { ...f, default: 'hostname-pid' } : f]),
    );
    expect(readmeConfigRows(readme, 'INGEST_')).toEqual(configTableRows(own));
  });
});
