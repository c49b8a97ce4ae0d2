#!/usr/bin/env node
// The ASR process: config, health, models, topics, signals (runConsumerService does them all).
import { prefixedTopics } from '@livelens/contracts';
import { runConsumerService } from '@livelens/runtime';
import { closeAsrModels, createAsrService, loadAsrConfig, loadAsrModels } from './service.js';

runConsumerService({
  name: 'asr',
  loadConfig: () => loadAsrConfig(),
  // fetch: false: models come from `npm run models` (sha256-checked); a missing one is a startup error that
  // says so, before anything touches Kafka, never a download at run time.
  load: (config, logger) => loadAsrModels(config, logger, { fetch: false }),
  close: closeAsrModels,
  topics: (config) => {
    const topics = prefixedTopics(config.kafkaTopicPrefix);
    return [topics.audio, topics.transcripts, topics.dlq];
  },
  create: ({ resources, ...deps }, config) => createAsrService({ ...deps, models: resources }, config),
});
