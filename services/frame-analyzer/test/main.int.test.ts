import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { AnalysisStatus, FrameSampleSchema, recordIds } from '@livelens/contracts';
import { waitFor } from '@livelens/test-support';
import { generateClip } from '@livelens/test-support/media';
import { describe, expect, it } from 'vitest';
import { analyzerEnv, collect, fetchTestModels, framesOf, startProducer, testNamespace } from './harness.js';

const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** src/main.ts under tsx as its own process, its output gathered. */
function spawnAnalyzer(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', mainTs], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 1_000_000) output = output.slice(-100_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, output: () => output, exited };
}

describe('frame analyzer process (src/main.ts)', () => {
  it('refuses to start without its models, naming `npm run models`, before touching Kafka', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'livelens-no-models-'));
    try {
      const ns = testNamespace();
      const proc = spawnAnalyzer(analyzerEnv(ns, { FRAME_ANALYZER_MODELS_DIR: empty }));
      const [code] = await proc.exited;
      expect(code).toBe(1);
      expect(proc.output()).toMatch(/frame-analyzer failed to start/);
      expect(proc.output()).toMatch(/model ppocrv4-det: not found at .*; run `npm run models`/);
      expect(proc.output()).not.toMatch(/created topics/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('refuses a bad configuration with exit code 2, naming the variable, the expected and the actual value', async () => {
    const proc = spawnAnalyzer(
      analyzerEnv(testNamespace(), {
        FRAME_ANALYZER_MODELS: 'ocr,faces',
        FRAME_ANALYZER_MAX_BATCH_SIZE: '0',
      }),
    );
    const [code] = await proc.exited;
    expect(code).toBe(2);
    expect(proc.output()).toMatch(/FRAME_ANALYZER_MODELS: expected a comma-separated list of ocr, nsfw/);
    expect(proc.output()).toMatch(/"ocr,faces"/);
    expect(proc.output()).toMatch(/FRAME_ANALYZER_MAX_BATCH_SIZE: expected an integer 1\.\.256, got "0"/);
  });

  it('serves, reports ready, analyses, and on SIGTERM drains, commits and exits 0', async () => {
    const ns = testNamespace();
    const env = analyzerEnv(ns, { METRICS_PORT: '0' });
    await fetchTestModels();
    const proc = spawnAnalyzer(env);
    const producer = await startProducer();
    const analyses = await collect(ns.topics.frameAnalysis, ns.topics.dlq);
    try {
      const port = await waitFor('the health server', () => {
        const line = proc
          .output()
          .split('\n')
          .find((l) => l.includes('health server listening'));
        return line ? (JSON.parse(line) as { port: number }).port : undefined;
      });
      await waitFor(
        'readiness',
        async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      const clip = await generateClip({ durationS: 2, background: 'smptebars', audio: false });
      const frames = await framesOf(clip.path, [0.5, 1, 1.5]);
      await producer.publisher.publish(
        ns.topics.frames,
        frames.map((jpeg, seq) => ({
          message: create(FrameSampleSchema, {
            streamId: 'proc-1',
            sessionEpoch: 'e',
            seq: BigInt(seq),
            frameId: recordIds.frame('proc-1', 'e', seq),
            captureTimeUnixMs: BigInt(Date.now()),
            width: 1280,
            height: 720,
            jpeg,
          }),
        })),
      );
      await waitFor('three analyses', () => (analyses.records.length >= 3 ? true : undefined), {
        timeoutMs: 60_000,
      });
      expect(analyses.messages().map((a) => [Number(a.frameSeq), a.status])).toEqual([
        [0, AnalysisStatus.COMPLETE],
        [1, AnalysisStatus.COMPLETE],
        [2, AnalysisStatus.COMPLETE],
      ]);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^livelens_frame_analyzer_frames_analyzed_total 3$/m);
      expect(metrics).toMatch(
        /^livelens_frame_analyzer_inference_seconds_count\{model="ppocrv4-det"\} \d+$/m,
      );
      expect(metrics).toMatch(/^livelens_frame_analyzer_queue_depth_frames 0$/m);

      proc.child.kill('SIGTERM');
      const [code] = await proc.exited;
      expect(code).toBe(0);
      expect(proc.output()).toMatch(/shut down cleanly/);
      const { kafka } = producer;
      const ends = await kafka.admin().endOffsets(ns.topics.frames.name);
      const committed = await kafka.admin().committedOffsets(ns.groupId, ns.topics.frames.name);
      for (const [partition, end] of ends) expect(committed.get(partition)).toBe(end === '0' ? '-1' : end);
    } finally {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await Promise.all([analyses.stop(), producer.stop()]);
    }
  }, 120_000);
});
