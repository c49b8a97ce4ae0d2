import { freeTcpPort } from '@livelens/test-support/media';
import type { PipelineLayout } from '../src/services.js';

/** A pipeline layout on free ports, so a test's services share no port with another pipeline. */
export async function freeLayout(): Promise<PipelineLayout> {
  const [ingest, frameAnalyzer, asr, fusion, ingestGrpc, fusionGrpc] = await Promise.all(
    Array.from({ length: 6 }, () => freeTcpPort()),
  );
  return {
    metricsPorts: {
      ingest: ingest as number,
      'frame-analyzer': frameAnalyzer as number,
      asr: asr as number,
      fusion: fusion as number,
    },
    ingestGrpcPort: ingestGrpc as number,
    fusionGrpcPort: fusionGrpc as number,
  };
}
