#!/usr/bin/env node
// The fusion process: config, health, taxonomy, Redis, topics, signals (runConsumerService does them all).
import { prefixedTopics } from '@livelens/contracts';
import { connectRedis, createRedis, runConsumerService } from '@livelens/runtime';
import { loadFusionConfig } from './config.js';
import { loadFusionRules } from './rules-adapter.js';
import { createFusionService } from './service.js';

runConsumerService({
  name: 'fusion',
  resourceName: 'taxonomy',
  loadConfig: () => loadFusionConfig(),
  // The taxonomy first (an invalid one is a startup error naming the problem), then Redis.
  load: async (config, logger) => {
    const rules = await loadFusionRules(config.taxonomyPath || undefined);
    const redis = createRedis({ url: config.redisUrl, connectionName: 'fusion' }, logger);
    await connectRedis(redis);
    logger.info({ taxonomy: rules.taxonomyVersion, tags: rules.tagCount }, 'taxonomy loaded');
    return { rules, redis };
  },
  close: async ({ redis }) => {
    redis.disconnect();
  },
  topics: (config) => {
    const topics = prefixedTopics(config.kafkaTopicPrefix);
    return [
      topics.frameAnalysis,
      topics.transcripts,
      topics.streamEvents,
      topics.tags,
      topics.review,
      topics.dlq,
    ];
  },
  create: ({ resources, ...deps }, config) => createFusionService({ ...deps, ...resources }, config),
});
