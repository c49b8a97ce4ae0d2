// The CLI's building blocks, for the whole-pipeline tests, the pipeline benchmark and scripts: the local
// pipeline and its replicas, the models, the demo clips, the status line and the tag format.
export { BENIGN_CLIP, type DemoClip, type ExpectedTag, LIVE_COMMERCE_CLIP } from './clips.js';
export { formatTagEvent, mediaTime } from './format.js';
export {
  DEFAULT_LAYOUT,
  type Pipeline,
  type PipelineLayout,
  type PipelineOptions,
  type ReplicaOptions,
  SERVICE_NAMES,
  type ServiceName,
  type ServiceProcess,
  serviceEnv,
  startPipeline,
  startReplica,
} from './services.js';
export { ensureModels } from './stack.js';
export { parseMetrics, type Sample, scrape, statusLine, sum } from './status.js';
