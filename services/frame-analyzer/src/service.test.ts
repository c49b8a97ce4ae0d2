import { createLogger, KafkaClient } from '@livelens/runtime';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { loadFrameAnalyzerConfig } from './config.js';
import type { FrameModels } from './models.js';
import { createFrameAnalyzerService } from './service.js';

// Liveness only: nothing here connects (the consumer loop is built, not started).
describe('frame analyzer liveness', () => {
  const logger = createLogger({ service: 'frame-analyzer-test', level: 'silent' });
  const config = loadFrameAnalyzerConfig({ KAFKA_BROKERS: '127.0.0.1:1' });
  const info = { id: 'm', version: '1', path: '/dev/null' };
  const modelsWith = (failure: Error | undefined): FrameModels => ({
    ocr: {
      reader: {
        provider: 'cpu',
        failure,
        recognize: async () => ({ lines: [], detMs: 0, recMs: 0 }),
        close: async () => undefined,
      },
      det: info,
      rec: info,
    },
  });
  const service = (models: FrameModels) => {
    const registry = new Registry();
    const kafka = new KafkaClient({ brokers: config.kafkaBrokers }, { logger, registry });
    return createFrameAnalyzerService(
      { kafka, publisher: kafka.publisher({ service: 'frame-analyzer' }), models, logger, registry },
      config,
    );
  };

  it('is live while its model workers are', () => {
    expect(service(modelsWith(undefined)).live()).toEqual({ ok: true });
  });

  it('fails liveness once a model worker is gone for good, so the process is replaced', () => {
    const live = service(modelsWith(new Error('OCR: gave up after 3 restarts'))).live();
    expect(live.ok).toBe(false);
    expect(live.reason).toMatch(/model worker failed: OCR: gave up after 3 restarts/);
  });
});
