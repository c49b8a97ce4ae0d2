import { StreamState } from '@livelens/contracts';
import type { LiveLensError } from '@livelens/runtime';
import { waitFor } from '@livelens/test-support';
import { generateClip, textFileNamedMp4 } from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ingestEnv, startIngest, testNamespace } from './harness.js';

const rejection = async (promise: Promise<unknown>) =>
  (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as LiveLensError;

describe('ingest: file replay and the control API, against the real broker, Redis and ffmpeg', () => {
  const ns = testNamespace();
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let clipPath = '';

  beforeAll(async () => {
    const clip = await generateClip({
      durationS: 6,
      width: 1280,
      height: 720,
      overlays: [{ text: 'SALE $29.99 code SAVE20', fromS: 0, toS: 6 }],
      speech: [{ text: 'link in my bio', atS: 1 }],
    });
    clipPath = clip.path;
    ingest = await startIngest(ingestEnv(ns.prefix, { INGEST_MAX_STREAMS: '3' }));
  });
  afterAll(async () => {
    await ingest?.stop();
  });

  it('replays a file in real time: frames at the asked rate, scaled, pts rising, audio gapless, then ended', async () => {
    const frames = await collect(ns.topics.frames);
    const audio = await collect(ns.topics.audio);
    const events = await collect(ns.topics.streamEvents);
    try {
      const { stream } = await ingest.client.startStream({
        sourceUrl: `file://${clipPath}`,
        streamId: 'replay-1',
        options: { frameRateFps: 2, maxHeight: 360, audioChunkMs: 500 },
        labels: { shop: 'demo' },
      });
      expect(stream?.streamId).toBe('replay-1');
      expect(stream?.ownerReplicaId).toBe(ingest.config.replicaId);
      const ended = await waitFor(
        'the stream to end',
        () =>
          events
            .messages()
            .find(
              (e) =>
                e.streamId === 'replay-1' &&
                e.kind.case === 'stateChange' &&
                e.kind.value.state === StreamState.ENDED,
            ),
        { timeoutMs: 30_000 },
      );
      expect(ended.kind.case === 'stateChange' && ended.kind.value.reason).toBe('source_eof');
      await waitFor('the last records', async () =>
        (await ingest.client.getStream({ streamId: 'replay-1' })).stream?.state === StreamState.ENDED
          ? true
          : undefined,
      );

      const got = frames.messages().filter((f) => f.streamId === 'replay-1');
      // 6 s at 2 fps: 12 frames (±10%, and the first frame at t=0).
      expect(got.length).toBeGreaterThanOrEqual(11);
      expect(got.length).toBeLessThanOrEqual(14);
      expect(got.map((f) => Number(f.seq))).toEqual(got.map((_, i) => i));
      for (let i = 1; i < got.length; i += 1) {
        const step = Number((got[i]?.ptsMs ?? 0n) - (got[i - 1]?.ptsMs ?? 0n));
        expect(step).toBeGreaterThan(400);
        expect(step).toBeLessThan(600);
      }
      expect(got[0]?.width).toBe(640);
      expect(got[0]?.height).toBe(360);
      expect(Array.from(got[0]?.jpeg.subarray(0, 2) ?? [])).toEqual([0xff, 0xd8]);
      expect(new Set(got.map((f) => f.sessionEpoch)).size).toBe(1);
      // Real-time pacing: capture times spread over the clip's duration, not a burst.
      const span = Number((got.at(-1)?.captureTimeUnixMs ?? 0n) - (got[0]?.captureTimeUnixMs ?? 0n));
      expect(span).toBeGreaterThan(4_000);

      const records = audio.messages().filter((a) => a.streamId === 'replay-1');
      // The session's audio ends in band: one end_of_session record after the last chunk, no samples.
      const marker = records.at(-1);
      expect(marker?.endOfSession).toBe(true);
      expect([marker?.durationMs, marker?.pcmS16le.length]).toEqual([0, 0]);
      const chunks = records.slice(0, -1);
      expect(chunks.some((c) => c.endOfSession)).toBe(false);
      expect(Number(marker?.seq)).toBe(chunks.length);
      expect(Number(marker?.startMs)).toBe(Number(chunks.at(-1)?.startMs) + (chunks.at(-1)?.durationMs ?? 0));
      expect(chunks.length).toBeGreaterThanOrEqual(10);
      for (let i = 1; i < chunks.length; i += 1) {
        // Gapless: each chunk starts where the previous ended.
        expect(Number(chunks[i]?.startMs)).toBe(
          Number(chunks[i - 1]?.startMs) + (chunks[i - 1]?.durationMs ?? 0),
        );
      }
      expect(chunks.slice(0, -1).every((c) => c.durationMs === 500 && c.pcmS16le.length === 16_000)).toBe(
        true,
      );

      const states = events
        .messages()
        .filter((e) => e.streamId === 'replay-1' && e.kind.case === 'stateChange')
        .map((e) => (e.kind.case === 'stateChange' ? StreamState[e.kind.value.state] : ''));
      expect(states).toEqual(['RUNNING', 'ENDED']);
      // Nothing lost on a clean replay: no gap record (the shorter last chunk included).
      expect(events.messages().filter((e) => e.streamId === 'replay-1' && e.kind.case === 'gap')).toEqual([]);
      expect(events.messages().find((e) => e.streamId === 'replay-1')?.labels).toEqual({ shop: 'demo' });

      const info = (await ingest.client.getStream({ streamId: 'replay-1' })).stream;
      expect(Number(info?.framesPublished)).toBe(got.length);
      expect(info?.audioSecondsPublished).toBeGreaterThan(5);

      // The metrics an SRE watches say the same.
      const metric = async (name: string) =>
        ((await ingest.registry.getSingleMetric(name)?.get())?.values ?? []).reduce(
          (sum, v) => sum + v.value,
          0,
        );
      expect(await metric('livelens_ingest_frames_published_total')).toBe(got.length);
      expect(await metric('livelens_ingest_audio_published_seconds_total')).toBeCloseTo(
        info?.audioSecondsPublished ?? 0,
        3,
      );
      const latency = (
        await ingest.registry.getSingleMetric('livelens_ingest_publish_latency_seconds')?.get()
      )?.values;
      const latencyCount = latency?.find(
        (v) => (v as { metricName?: string }).metricName?.endsWith('_count') && v.labels.topic === 'frames',
      )?.value;
      expect(latencyCount).toBe(got.length);
    } finally {
      await Promise.all([frames.stop(), audio.stop(), events.stop()]);
    }
  }, 60_000);

  it('answers with the right status codes', async () => {
    const { client } = ingest;
    const bad = async (url: string) => (await rejection(client.startStream({ sourceUrl: url }))).code;
    expect(await bad('file:///etc/passwd')).toBe('invalid_argument');
    expect(await bad('http://169.254.169.254/latest/meta-data/')).toBe('invalid_argument');
    expect(await bad('concat:/etc/passwd|x.mp4')).toBe('invalid_argument');
    expect(await bad('gopher://example.com/')).toBe('invalid_argument');
    const refused = await rejection(client.startStream({ sourceUrl: 'http://169.254.169.254/' }));
    expect(refused.message).toMatch(/169\.254\.169\.254/);
    expect(
      await rejection(
        client.startStream({ sourceUrl: `file://${clipPath}`, options: { frameRateFps: 500 } }),
      ),
    ).toMatchObject({
      code: 'invalid_argument',
    });

    expect((await rejection(client.getStream({ streamId: 'nope' }))).code).toBe('not_found');
    expect((await rejection(client.stopStream({ streamId: 'nope' }))).code).toBe('not_found');

    const first = await client.startStream({
      sourceUrl: `file://${clipPath}`,
      streamId: 'dup',
      requestId: 'req-1',
    });
    // The same request again (a client retry) returns the same stream and starts nothing new.
    const retry = await client.startStream({
      sourceUrl: `file://${clipPath}`,
      streamId: 'dup-other',
      requestId: 'req-1',
    });
    expect(retry.stream?.streamId).toBe('dup');
    expect(retry.stream?.sessionEpoch).toBe(first.stream?.sessionEpoch);
    expect(
      (await rejection(client.startStream({ sourceUrl: `file://${clipPath}`, streamId: 'dup' }))).code,
    ).toBe('already_exists');
    await client.startStream({ sourceUrl: `file://${clipPath}`, streamId: 'cap-2' });
    await client.startStream({ sourceUrl: `file://${clipPath}`, streamId: 'cap-3' });
    // Three running on the only replica (max 3): the fourth is refused.
    expect(
      (await rejection(client.startStream({ sourceUrl: `file://${clipPath}`, streamId: 'cap-4' }))).code,
    ).toBe('resource_exhausted');
    const listed = (
      await client.listStreams({ states: [StreamState.RUNNING, StreamState.STARTING] })
    ).streams.map((s) => s.streamId);
    expect(listed.sort()).toEqual(['cap-2', 'cap-3', 'dup']);

    const stopped = await client.stopStream({ streamId: 'dup' });
    expect(stopped.stream?.state).toBe(StreamState.ENDED);
    expect((await client.stopStream({ streamId: 'dup' })).stream?.state).toBe(StreamState.ENDED); // twice is fine
    await Promise.all(['cap-2', 'cap-3'].map((streamId) => client.stopStream({ streamId })));
    expect(ingest.service.manager.ownedCount).toBe(0);
  }, 60_000);

  it('fails a stream whose file is not media, with the reason, and keeps serving', async () => {
    const events = await collect(ns.topics.streamEvents);
    try {
      const notMedia = await textFileNamedMp4();
      // The URL policy needs it under the media root.
      const { copyFile } = await import('node:fs/promises');
      const target = `${clipPath}.notmedia.mp4`;
      await copyFile(notMedia, target);
      await ingest.client.startStream({ sourceUrl: `file://${target}`, streamId: 'garbage' });
      const failed = await waitFor('the failure', () =>
        events
          .messages()
          .find(
            (e) =>
              e.streamId === 'garbage' &&
              e.kind.case === 'stateChange' &&
              e.kind.value.state === StreamState.FAILED,
          ),
      );
      expect(failed.kind.case === 'stateChange' && failed.kind.value.reason).toBe('invalid_data');
      const info = (await ingest.client.getStream({ streamId: 'garbage' })).stream;
      expect(info?.state).toBe(StreamState.FAILED);
      expect(info?.lastError).toMatch(/invalid_data/);
      expect(info?.restarts).toBe(0); // not media from the first byte: no pointless reconnects
    } finally {
      await events.stop();
    }
  }, 30_000);
});
