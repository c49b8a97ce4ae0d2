export { modelError } from './errors.js';
export {
  DEFAULT_MANIFEST_URL,
  findModel,
  loadManifest,
  ModelEntry,
  ModelManifest,
  ModelSource,
} from './manifest.js';
export {
  cachedPath,
  defaultCacheDir,
  describeSource,
  type ResolveOptions,
  resolveModel,
  sha256File,
} from './resolve.js';
export { OpenNsfwClassifier, preprocessOpenNsfw } from './risk/open-nsfw.js';
export {
  createModelSession,
  type ExecutionProvider,
  type ModelSession,
  type SessionOptions,
  type Tensor,
} from './session.js';
