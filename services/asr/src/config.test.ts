import { readFile } from 'node:fs/promises';
import { commonConfigFields, configTableRows, readmeConfigRows } from '@livelens/runtime';
import { describe, expect, it } from 'vitest';
import { asrConfigFields, loadAsrConfig, vadOptionsOf } from './config.js';

describe('asr config', () => {
  it('has a documented default for every field', () => {
    const config = loadAsrConfig({});
    expect(config).toMatchObject({
      modelsDir: '',
      whisperModel: 'whisper-base',
      language: '',
      beamSize: 1,
      executionProviders: ['cpu'],
      intraOpThreads: 2,
      vadThreshold: 0.5,
      vadMinSpeechMs: 250,
      vadMinSilenceMs: 400,
      vadSpeechPadMs: 200,
      maxSegmentMs: 15_000,
      partialIntervalMs: 3_000,
      idleFlushMs: 5_000,
      maxStreams: 256,
      maxChunkMs: 5_000,
      gapToleranceMs: 50,
      vadMaxBatchSize: 32,
      vadMaxBatchWaitMs: 10,
      maxInFlight: 64,
      partitionsConcurrently: 16,
      groupId: 'livelens-asr',
      createTopics: true,
      topicPartitions: 8,
      kafkaBrokers: ['127.0.0.1:19092'],
    });
    expect(vadOptionsOf(config)).toEqual({
      threshold: 0.5,
      minSpeechMs: 250,
      minSilenceMs: 400,
      speechPadMs: 200,
      maxSegmentMs: 15_000,
    });
  });

  it('parses the model, the language and the providers', () => {
    const config = loadAsrConfig({
      ASR_WHISPER_MODEL: 'whisper-tiny-en',
      ASR_LANGUAGE: 'zh',
      ASR_EXECUTION_PROVIDERS: ' cuda, ,cpu,cuda',
    });
    expect(config.whisperModel).toBe('whisper-tiny-en');
    expect(config.language).toBe('zh');
    expect(config.executionProviders).toEqual(['cuda', 'cpu']);
    expect(config.encoderPaddingS).toBeUndefined();
    expect(loadAsrConfig({ ASR_ENCODER_WINDOW: '4' }).encoderPaddingS).toBe(4);
    expect(loadAsrConfig({ ASR_ENCODER_WINDOW: '0.5' }).encoderPaddingS).toBe(0.5);
    expect(() => loadAsrConfig({ ASR_ENCODER_WINDOW: 'short' })).toThrow(
      /ASR_ENCODER_WINDOW: expected full, or seconds of silence after the segment/,
    );
    expect(() => loadAsrConfig({ ASR_ENCODER_WINDOW: '45' })).toThrow(
      /ASR_ENCODER_WINDOW: expected at most 30 s/,
    );
    expect(() => loadAsrConfig({ ASR_WHISPER_MODEL: 'whisper-tiny-en', ASR_ENCODER_WINDOW: '4' })).toThrow(
      /ASR_WHISPER_MODEL, ASR_ENCODER_WINDOW: whisper-tiny-en needs the full 30 s encoder window/,
    );
    expect(() => loadAsrConfig({ ASR_EXECUTION_PROVIDERS: 'tensorrt,cpu', ASR_ENCODER_WINDOW: '4' })).toThrow(
      /ASR_EXECUTION_PROVIDERS, ASR_ENCODER_WINDOW: tensorrt needs the fixed 30 s encoder window/,
    );
  });

  it('names every bad variable, what it expected and what it got', () => {
    expect(() =>
      loadAsrConfig({
        ASR_WHISPER_MODEL: 'whisper-large',
        ASR_LANGUAGE: 'english',
        ASR_MAX_SEGMENT_MS: '40000',
        ASR_VAD_THRESHOLD: '1',
      }),
    ).toThrow(
      new RegExp(
        [
          'ASR_WHISPER_MODEL: expected one of whisper-base, whisper-tiny-en, got "whisper-large"',
          'ASR_LANGUAGE: expected a Whisper language code (en, zh, ...) or empty, got "english"',
          'ASR_VAD_THRESHOLD: expected a number 0.01..0.99, got "1"',
          'ASR_MAX_SEGMENT_MS: expected an integer 2000..30000, got "40000"',
        ]
          .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('[\\s\\S]*'),
      ),
    );
  });

  it('refuses settings that are each valid but impossible together, naming the variables', () => {
    expect(() => loadAsrConfig({ ASR_MAX_SEGMENT_MS: '2000', ASR_VAD_SPEECH_PAD_MS: '1000' })).toThrow(
      /ASR_MAX_SEGMENT_MS, ASR_VAD_SPEECH_PAD_MS, ASR_VAD_MIN_SPEECH_MS: VAD: maxSegmentMs must leave room/,
    );
  });

  it("matches the README's configuration table", async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const own = Object.fromEntries(
      Object.entries(asrConfigFields).filter(([key]) => !(key in commonConfigFields)),
    );
    expect(readmeConfigRows(readme, 'ASR_')).toEqual(configTableRows(own));
  });
});
