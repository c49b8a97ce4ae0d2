// The CLI's building blocks, for the whole-pipeline test and scripts: the local pipeline, the demo clips, the
// status line and the tag format.
export { BENIGN_CLIP, type DemoClip, type ExpectedTag, LIVE_COMMERCE_CLIP } from './clips.js';
export { formatTagEvent, mediaTime } from './format.js';
export {
  DEFAULT_LAYOUT,
  type Pipeline,
  type PipelineLayout,
  type PipelineOptions,
  SERVICE_NAMES,
  type ServiceName,
  serviceEnv,
  startPipeline,
} from './services.js';
export { parseMetrics, scrape, statusLine, sum } from './status.js';
