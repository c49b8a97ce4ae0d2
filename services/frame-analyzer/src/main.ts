#!/usr/bin/env node
// The frame analyzer process: config, health, models, topics, signals (runConsumerService does them all).
import { prefixedTopics } from '@livelens/contracts';
import { runConsumerService } from '@livelens/runtime';
import {
  closeFrameModels,
  createFrameAnalyzerService,
  loadFrameAnalyzerConfig,
  loadFrameModels,
} from './service.js';

runConsumerService({
  name: 'frame-analyzer',
  loadConfig: () => loadFrameAnalyzerConfig(),
  // fetch: false: models come from `npm run models` (sha256-checked); a missing one is a startup error that
  // says so, before anything touches Kafka, never a download at run time.
  load: (config, logger) => loadFrameModels(config, logger, { fetch: false }),
  close: closeFrameModels,
  topics: (config) => {
    const topics = prefixedTopics(config.kafkaTopicPrefix);
    return [topics.frames, topics.frameAnalysis, topics.dlq];
  },
  create: ({ resources, ...deps }, config) =>
    createFrameAnalyzerService({ ...deps, models: resources }, config),
});
