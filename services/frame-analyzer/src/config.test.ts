import { readFile } from 'node:fs/promises';
import { commonConfigFields, configTableRows, readmeConfigRows } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import { frameAnalyzerConfigFields, loadFrameAnalyzerConfig } from './config.js';

describe('frame analyzer config', () => {
  it('has a documented default for every field', () => {
    const config = loadFrameAnalyzerConfig({});
    expect(config).toMatchObject({
      modelsDir: '',
      models: ['ocr', 'nsfw'],
      executionProviders: ['cpu'],
      intraOpThreads: 2,
      maxBatchSize: 8,
      maxBatchWaitMs: 50,
      maxFrameAgeMs: 10_000,
      maxInFlight: 32,
      partitionsConcurrently: 16,
      groupId: 'livelens-frame-analyzer',
      ocrDetMaxSide: 960,
      ocrMinConfidence: 0.5,
      createTopics: true,
      topicPartitions: 8,
      kafkaBrokers: ['127.0.0.1:19092'],
    });
  });

  it('parses lists of models and providers, dropping blanks and repeats', () => {
    const config = loadFrameAnalyzerConfig({
      FRAME_ANALYZER_MODELS: ' nsfw, ,nsfw',
      FRAME_ANALYZER_EXECUTION_PROVIDERS: 'cuda,cpu',
    });
    expect(config.models).toEqual(['nsfw']);
    expect(config.executionProviders).toEqual(['cuda', 'cpu']);
  });

  it('names every bad variable, what it expected and what it got', () => {
    expect(() =>
      loadFrameAnalyzerConfig({
        FRAME_ANALYZER_MODELS: 'ocr,faces',
        FRAME_ANALYZER_EXECUTION_PROVIDERS: 'gpu',
        FRAME_ANALYZER_MAX_BATCH_SIZE: '0',
        FRAME_ANALYZER_OCR_MIN_CONFIDENCE: '2',
      }),
    ).toThrow(
      new RegExp(
        [
          'FRAME_ANALYZER_MODELS: expected a comma-separated list of ocr, nsfw, got "ocr,faces"',
          'FRAME_ANALYZER_EXECUTION_PROVIDERS: expected a comma-separated list of tensorrt, cuda, cpu, got "gpu"',
          'FRAME_ANALYZER_MAX_BATCH_SIZE: expected an integer 1..256, got "0"',
          'FRAME_ANALYZER_OCR_MIN_CONFIDENCE: expected a number 0..1, got "2"',
        ]
          .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('[\\s\\S]*'),
      ),
    );
  });

  it("matches the README's configuration table", async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const own = Object.fromEntries(
      Object.entries(frameAnalyzerConfigFields).filter(([key]) => !(key in commonConfigFields)),
    );
    expect(readmeConfigRows(readme, 'FRAME_ANALYZER_')).toEqual(configTableRows(own));
  });
});
