import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@livelens/test-support';
import { composeSpeechClip } from '@livelens/test-support/media';
import { describe, expect, it } from 'vitest';
import {
  asrEnv,
  audioChunks,
  collect,
  fetchTestModels,
  startProducer,
  testNamespace,
  wordsOf,
} from './harness.js';

const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** src/main.ts under tsx as its own process, its output gathered. */
function spawnAsr(env: Record<string, string>) {
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

describe('asr process (src/main.ts)', () => {
  it('refuses to start without its models, naming `npm run models`, before touching Kafka', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'livelens-no-models-'));
    try {
      const proc = spawnAsr(asrEnv(testNamespace(), { ASR_MODELS_DIR: empty }));
      const [code] = await proc.exited;
      expect(code).toBe(1);
      expect(proc.output()).toMatch(/asr failed to start/);
      expect(proc.output()).toMatch(
        /model (silero-vad-v5|whisper-tiny-en-onnx-[a-z-]+): not found at .*; run `npm run models`/,
      );
      expect(proc.output()).not.toMatch(/created topics/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('refuses a bad configuration with exit code 2, naming the variable, the expected and the actual value', async () => {
    const proc = spawnAsr(
      asrEnv(testNamespace(), {
        ASR_WHISPER_MODEL: 'whisper-large',
        ASR_PARTIAL_INTERVAL_MS: '-1',
        ASR_LANGUAGE: 'English',
      }),
    );
    const [code] = await proc.exited;
    expect(code).toBe(2);
    expect(proc.output()).toMatch(
      /ASR_WHISPER_MODEL: expected one of whisper-base, whisper-tiny-en, got "whisper-large"/,
    );
    expect(proc.output()).toMatch(/ASR_PARTIAL_INTERVAL_MS: expected an integer 0\.\.30000, got "-1"/);
    expect(proc.output()).toMatch(/ASR_LANGUAGE: expected a Whisper language code/);
  });

  it('serves, reports ready, transcribes, and on SIGTERM drains, commits up to the open segment and exits 0', async () => {
    const ns = testNamespace();
    await fetchTestModels();
    const proc = spawnAsr(asrEnv(ns, { METRICS_PORT: '0', ASR_PARTIAL_INTERVAL_MS: '0' }));
    const producer = await startProducer();
    const transcripts = await collect(ns.topics.transcripts, ns.topics.dlq);
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
      // A sentence, then a second one still being spoken when the audio stops.
      const clip = await composeSpeechClip({
        durationS: 7,
        lines: [
          { text: 'Link in my bio.', atS: 0.5 },
          { text: 'Follow me at live deals for more drops.', atS: 3.5 },
        ],
      });
      const chunks = audioChunks('proc-1', clip.pcm.subarray(0, 5 * 16_000), { sessionEpoch: 'e' });
      const sent: string[] = [];
      for (const message of chunks) {
        const [r] = await producer.publisher.publish(ns.topics.audio, { message });
        sent.push(r?.baseOffset ?? '');
      }
      await waitFor('the first final', () => (transcripts.records.length >= 1 ? true : undefined), {
        timeoutMs: 60_000,
      });
      expect(wordsOf(transcripts.messages()[0]?.text ?? '')).toContain('bio');
      // Every chunk taken in (the first final may come before the last chunks are).
      const metrics = await waitFor('five seconds of audio taken in', async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /^livelens_asr_audio_seconds_total 5$/m.test(text) ? text : undefined;
      });
      expect(metrics).toMatch(/^livelens_asr_segments_total\{kind="final"\} 1$/m);
      expect(metrics).toMatch(/^livelens_asr_real_time_ratio_count\{kind="final"\} 1$/m);
      expect(metrics).toMatch(/^livelens_asr_queue_depth\{stage="whisper"\} 0$/m);
      expect(metrics).toMatch(/^livelens_asr_streams 1$/m);

      proc.child.kill('SIGTERM');
      const [code] = await proc.exited;
      expect(code).toBe(0);
      expect(proc.output()).toMatch(/shut down cleanly/);
      // The second sentence was open: its first chunk (the one holding 3.5 s - padding) is where the group
      // resumes; nothing of it was published.
      const committed = await producer.kafka.admin().committedOffsets(ns.groupId, ns.topics.audio.name);
      const partition = [...committed].find(([, o]) => o !== '-1')?.[0] ?? -1;
      expect(committed.get(partition)).toBe(sent[3]);
      expect(transcripts.messages()).toHaveLength(1);
    } finally {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await Promise.all([transcripts.stop(), producer.stop()]);
    }
  }, 120_000);
});
