export { decodeRecord, encodeRecord } from './codec.js';
export { ContractError, type ContractErrorCode } from './errors.js';
export * from './gen/livelens/v1/analysis_pb.js';
export * from './gen/livelens/v1/common_pb.js';
export * from './gen/livelens/v1/dlq_pb.js';
export * from './gen/livelens/v1/ingest_service_pb.js';
export * from './gen/livelens/v1/media_pb.js';
export * from './gen/livelens/v1/stream_pb.js';
export * from './gen/livelens/v1/tag_service_pb.js';
export * from './gen/livelens/v1/tags_pb.js';
export * from './gen/livelens/v1/transcript_pb.js';
export { recordIds } from './ids.js';
export {
  allTopics,
  prefixedTopics,
  renameTopic,
  STREAM_ID_PATTERN,
  type TopicSpec,
  topics,
} from './topics.js';
