import { readFile } from 'node:fs/promises';
import { commonConfigFields, configTableRows, readmeConfigRows } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import { fusionConfigFields, loadFusionConfig } from './config.js';

describe('fusion config', () => {
  it('has a documented default for every field', () => {
    expect(loadFusionConfig({})).toMatchObject({
      taxonomyPath: '',
      windowMs: 10_000,
      hopMs: 5_000,
      allowedLatenessMs: 120_000,
      maxMediaJumpMs: 3_600_000,
      idleFlushMs: 60_000,
      endGraceMs: 5_000,
      maxInputSkewMs: 8_000,
      maxObservations: 5_000,
      maxEvidence: 20,
      minScoreIncrease: 0.05,
      stateTtlSeconds: 86_400,
      redisKeyPrefix: 'livelens:fusion:',
      grpcPort: 50_052,
      groupId: 'livelens-fusion',
      sessionTimeoutMs: 30_000,
      redisUrl: 'redis://127.0.0.1:16379',
    });
  });

  it('names every bad variable, and refuses a hop longer than the window', () => {
    expect(() => loadFusionConfig({ FUSION_WINDOW_MS: 'ten', FUSION_MIN_SCORE_INCREASE: '2' })).toThrow(
      /FUSION_WINDOW_MS: expected an integer 1000\.\.300000, got "ten"[\s\S]*FUSION_MIN_SCORE_INCREASE: expected a number 0\.\.1, got "2"/,
    );
    expect(() => loadFusionConfig({ FUSION_END_GRACE_MS: '-1' })).toThrow(
      /FUSION_END_GRACE_MS: expected an integer 0\.\.3600000, got "-1"/,
    );
    expect(() => loadFusionConfig({ FUSION_WINDOW_MS: '5000', FUSION_HOP_MS: '10000' })).toThrow(
      /FUSION_WINDOW_MS, FUSION_HOP_MS: window hop must be a positive integer of ms at most the size, got 10000/,
    );
  });

  it("matches the README's configuration table", async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const own = Object.fromEntries(
      Object.entries(fusionConfigFields).filter(([key]) => !(key in commonConfigFields)),
    );
    expect(readmeConfigRows(readme, 'FUSION_')).toEqual(configTableRows(own));
  });
});
