import type { DescMessage } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import {
  type AudioChunk,
  AudioChunkSchema,
  prefixedTopics,
  recordIds,
  type TopicSpec,
} from '@livelens/contracts';
import { findModel, loadManifest, resolveModel } from '@livelens/inference';
import { KafkaClient } from '@livelens/runtime';
import { collectTopic, metricReader, startTestProducer, testLogger } from '@livelens/runtime/testing';
import { repoRoot, testInfrastructure, uniqueName } from '@livelens/test-support';
import { Registry } from 'prom-client';
import { loadAsrConfig } from '../src/config.js';
import {
  type AsrModels,
  createAsrService,
  loadAsrModels,
  VAD_MODEL_ID,
  WHISPER_MODELS,
  whisperModelIds,
} from '../src/service.js';

/** The models every test of a run shares: fetched into the repo's cache on first use (sha256-checked). */
export const modelsDir = `${repoRoot}/.livelens/models`;

export { testLogger };

/** A namespace for one test: its own topics and consumer group, so tests never see each other's records. */
export function testNamespace() {
  const prefix = `${uniqueName('t')}.`;
  return { prefix, topics: prefixedTopics(prefix), groupId: uniqueName('asr') };
}

/** The environment of an ASR replica in tests: the real broker, unique topics and group, tiny.en. */
export function asrEnv(
  ns: ReturnType<typeof testNamespace>,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const { kafkaBrokers, redisUrl } = testInfrastructure();
  return {
    KAFKA_BROKERS: kafkaBrokers.join(','),
    REDIS_URL: redisUrl,
    KAFKA_TOPIC_PREFIX: ns.prefix,
    METRICS_PORT: '0',
    ASR_GROUP_ID: ns.groupId,
    ASR_MODELS_DIR: modelsDir,
    ASR_WHISPER_MODEL: 'whisper-tiny-en',
    ASR_TOPIC_PARTITIONS: '2',
    LOG_LEVEL: process.env.LIVELENS_TEST_LOG_LEVEL ?? 'warn',
    ...overrides,
  };
}

/** Loads (fetching if needed) the real models the config names. */
export async function loadTestModels(env: Record<string, string>): Promise<AsrModels> {
  return loadAsrModels(loadAsrConfig(env), testLogger('models'), { fetch: true });
}

/** Makes sure every model of the service is in the test cache (fetched and converted if not). */
export async function fetchTestModels(): Promise<void> {
  const manifest = await loadManifest();
  const ids = [VAD_MODEL_ID, ...WHISPER_MODELS.flatMap((m) => Object.values(whisperModelIds(m)))];
  for (const id of ids) await resolveModel(findModel(manifest, id), { cacheDir: modelsDir, fetch: true });
}

/** An ASR replica in this process, built the way main.ts builds it, over already loaded models. */
export async function startAsr(env: Record<string, string>, models: AsrModels, now?: () => number) {
  const config = loadAsrConfig(env);
  const logger = testLogger('asr');
  const registry = new Registry();
  const kafka = new KafkaClient({ brokers: config.kafkaBrokers }, { logger, registry });
  const topics = prefixedTopics(config.kafkaTopicPrefix);
  await kafka.admin().ensureTopics([topics.audio, topics.transcripts, topics.dlq], {
    partitions: config.topicPartitions,
  });
  const publisher = kafka.publisher({ service: 'asr' });
  await publisher.connect();
  const service = createAsrService(
    { kafka, publisher, models, logger, registry, ...(now ? { now } : {}) },
    config,
  );
  await service.start();
  const { metric, metricSum } = metricReader(registry);
  return {
    config,
    service,
    registry,
    kafka,
    metric,
    metricSum,
    async stop() {
      await service.stop(10_000);
      await publisher.disconnect();
    },
  };
}

/** A producer of test records: protobuf through the topic's contract, or raw bytes (garbage). */
export const startProducer = () =>
  startTestProducer(testInfrastructure().kafkaBrokers, testLogger('producer'));

/** Reads a topic from the beginning into an array, in arrival order, for assertions; `stop()` when done. */
export const collect = <D extends DescMessage>(spec: TopicSpec<D>, dlq: TopicSpec) =>
  collectTopic(testInfrastructure().kafkaBrokers, spec, dlq, testLogger('collector'));

/** 16 kHz samples per chunk of `chunkMs`. */
const SAMPLES_PER_MS = 16;

/**
 * A stream's audio as ingest publishes it: consecutive chunks of `chunkMs` (1 s by default), seq from
 * `firstSeq`, media time from `startMs`, capture time `captureStartMs + media offset`.
 */
export function audioChunks(
  streamId: string,
  pcm: Int16Array,
  options: {
    sessionEpoch?: string;
    chunkMs?: number;
    startMs?: number;
    firstSeq?: number;
    captureStartMs?: number;
    /** Append the session's end marker (AudioChunk.end_of_session), as ingest does when a session ends. */
    endOfSession?: boolean;
  } = {},
): AudioChunk[] {
  const { sessionEpoch = 'epoch-1', chunkMs = 1_000, startMs = 0, firstSeq = 0 } = options;
  const captureStartMs = options.captureStartMs ?? Date.now();
  const per = chunkMs * SAMPLES_PER_MS;
  const chunks: AudioChunk[] = [];
  for (let at = 0, i = 0; at < pcm.length; at += per, i += 1) {
    const samples = pcm.subarray(at, Math.min(pcm.length, at + per));
    const seq = firstSeq + i;
    const mediaMs = startMs + at / SAMPLES_PER_MS;
    chunks.push(
      create(AudioChunkSchema, {
        streamId,
        sessionEpoch,
        seq: BigInt(seq),
        chunkId: recordIds.audioChunk(streamId, sessionEpoch, seq),
        startMs: BigInt(mediaMs),
        durationMs: samples.length / SAMPLES_PER_MS,
        captureTimeUnixMs: BigInt(captureStartMs + at / SAMPLES_PER_MS),
        sampleRateHz: 16_000,
        channels: 1,
        pcmS16le: new Uint8Array(
          samples.buffer.slice(samples.byteOffset, samples.byteOffset + samples.byteLength),
        ),
      }),
    );
  }
  if (options.endOfSession) {
    const seq = firstSeq + chunks.length;
    chunks.push(
      create(AudioChunkSchema, {
        streamId,
        sessionEpoch,
        seq: BigInt(seq),
        chunkId: recordIds.audioChunk(streamId, sessionEpoch, seq),
        startMs: BigInt(startMs + pcm.length / SAMPLES_PER_MS),
        captureTimeUnixMs: BigInt(captureStartMs + pcm.length / SAMPLES_PER_MS),
        sampleRateHz: 16_000,
        channels: 1,
        endOfSession: true,
      }),
    );
  }
  return chunks;
}

/** Word error rate-ish check helper: the words of a text, lower case, punctuation dropped. */
export const wordsOf = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9 ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
