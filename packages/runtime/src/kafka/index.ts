export { type EnsureTopicsOptions, MAX_MESSAGE_BYTES, type TopicAdmin } from './admin.js';
export { KafkaClient } from './client.js';
export type {
  ConsumedRecord,
  ConsumerLoop,
  ConsumerLoopState,
  HandlerContext,
  RecordHandler,
} from './consumer-loop.js';
export { fromKafkaError } from './errors.js';
export { type KafkaMetrics, kafkaMetrics, metricPrefix } from './metrics.js';
export type { ConsumerLoopOptions, KafkaClientOptions, PublisherOptions } from './options.js';
export type { OutgoingRecord, PublishedRecord, Publisher } from './publisher.js';
export type { ReadRangeOptions, ReadRecord } from './reader.js';
