import { describe, expect, it } from 'vitest';
import { LiveLensError } from '../errors.js';
import { commonConfigFields } from './common.js';
import { configTableMarkdown, env, field, loadConfig } from './config.js';

const fields = {
  ...commonConfigFields,
  frameRateFps: field('INGEST_FRAME_RATE_FPS', env.number(0.1, 30), 'Frames per second.', '1'),
  mediaRoot: field('INGEST_MEDIA_ROOT', env.string(), 'Directory local files are read from.'),
  dryRun: field('INGEST_DRY_RUN', env.bool(), 'Do nothing.', 'false'),
};

describe('loadConfig', () => {
  it('applies defaults and parses units', () => {
    const config = loadConfig(fields, {
      INGEST_MEDIA_ROOT: '/media',
      KAFKA_BROKERS: 'a:1, b:2',
      INGEST_DRY_RUN: 'yes',
    });
    expect(config.kafkaBrokers).toEqual(['a:1', 'b:2']);
    expect(config.metricsPort).toBe(9464);
    expect(config.frameRateFps).toBe(1);
    expect(config.dryRun).toBe(true);
    expect(config.logLevel).toBe('info');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('fails fast naming every bad variable, what it expects and what it got', () => {
    let error: unknown;
    try {
      loadConfig(fields, {
        METRICS_PORT: 'eighty',
        KAFKA_BROKERS: 'no-port',
        INGEST_FRAME_RATE_FPS: '500',
        REDIS_URL: 'http://x',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LiveLensError);
    const { code, retriable, message } = error as LiveLensError;
    expect(code).toBe('invalid_config');
    expect(retriable).toBe(false);
    expect(message).toContain('METRICS_PORT: expected an integer 0..65535, got "eighty"');
    expect(message).toContain('KAFKA_BROKERS: expected host:port[,host:port...], got "no-port"');
    expect(message).toContain('INGEST_FRAME_RATE_FPS: expected a number 0.1..30, got "500"');
    expect(message).toContain('REDIS_URL: expected a redis or rediss URL, got "http://x"');
    expect(message).toContain('INGEST_MEDIA_ROOT is required');
  });

  it('never prints the credentials of a bad URL', () => {
    expect(() =>
      loadConfig(fields, { INGEST_MEDIA_ROOT: '/m', REDIS_URL: 'http://user:hunter2@cache:6379' }),
    ).toThrow('REDIS_URL: expected a redis or rediss URL, got "http://***@cache:6379"');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig(fields, { INGEST_MEDIA_ROOT: '/m', METRICS_PORT: '' }).metricsPort).toBe(9464);
  });

  it('renders the README table from the same fields', () => {
    const table = configTableMarkdown(fields);
    expect(table).toContain('| `KAFKA_BROKERS` | `127.0.0.1:19092` |');
    expect(table).toContain('| `INGEST_MEDIA_ROOT` | `(required)` |');
  });
});
