import { copyFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { GapReason, StreamState } from '@livelens/contracts';
import { waitFor } from '@livelens/test-support';
import {
  corruptFile,
  fileRoute,
  generateClip,
  hostileHlsPlaylist,
  nonMediaResponse,
  publishRtmp,
  startHlsLive,
  startHttpServer,
  startRtmpServer,
  startSrtSource,
} from '@livelens/test-support/media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ingestEnv, mediaRoot, startIngest, testNamespace } from './harness.js';

type Collected = Awaited<ReturnType<typeof collect>>;
const stateOf = (e: { kind: { case?: string; value?: unknown } }) =>
  e.kind.case === 'stateChange' ? StreamState[(e.kind.value as { state: StreamState }).state] : undefined;

describe('ingest: live sources (real nginx-rtmp, HLS over HTTP, SRT) and hostile input', () => {
  const ns = testNamespace();
  let ingest: Awaited<ReturnType<typeof startIngest>>;
  let clip: Awaited<ReturnType<typeof generateClip>>;
  let frames: Awaited<ReturnType<typeof collect<typeof ns.topics.frames.schema>>>;
  let audio: Awaited<ReturnType<typeof collect<typeof ns.topics.audio.schema>>>;
  let events: Awaited<ReturnType<typeof collect<typeof ns.topics.streamEvents.schema>>>;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    clip = await generateClip({
      durationS: 8,
      width: 960,
      height: 540,
      overlays: [{ text: 'LIVE: 50% off, link in bio', fromS: 0, toS: 8 }],
      speech: [{ text: 'use code SAVE20 now', atS: 2 }],
    });
    ingest = await startIngest(ingestEnv(ns.prefix, { INGEST_MAX_STREAMS: '6' }));
    [frames, audio, events] = await Promise.all([
      collect(ns.topics.frames),
      collect(ns.topics.audio),
      collect(ns.topics.streamEvents),
    ]);
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await Promise.all([frames?.stop(), audio?.stop(), events?.stop()]);
    await ingest?.stop();
  });

  const framesOf = (id: string) => frames.messages().filter((f) => f.streamId === id);
  const eventsOf = (id: string) => events.messages().filter((e) => e.streamId === id);
  const waitState = (id: string, state: keyof typeof StreamState, timeoutMs = 30_000) =>
    waitFor(`${id} to be ${state}`, () => eventsOf(id).find((e) => stateOf(e) === state), { timeoutMs });

  it('RTMP: frames at the asked rate, rising pts, gapless audio; a dropped source reconnects with a gap record; one that never returns fails while another stream goes on', async () => {
    const rtmpA = await startRtmpServer();
    stops.push(() => rtmpA.stop());
    const rtmpB = await startRtmpServer();
    stops.push(() => rtmpB.stop());
    let publisherA = await publishRtmp(clip.path, rtmpA.url('shop'), { loop: true });
    const publisherB = await publishRtmp(clip.path, rtmpB.url('other'), { loop: true });
    stops.push(() => publisherB.stop());

    await ingest.client.startStream({
      sourceUrl: rtmpA.url('shop'),
      streamId: 'rtmp-shop',
      options: { frameRateFps: 2 },
    });
    await ingest.client.startStream({ sourceUrl: rtmpB.url('other'), streamId: 'rtmp-other' });
    await waitState('rtmp-shop', 'RUNNING');
    await waitFor('8 s of frames', () => (framesOf('rtmp-shop').length >= 17 ? true : undefined), {
      timeoutMs: 30_000,
    });

    const got = framesOf('rtmp-shop');
    const spanMs = Number((got.at(-1)?.ptsMs ?? 0n) - (got[0]?.ptsMs ?? 0n));
    const rate = ((got.length - 1) * 1000) / spanMs;
    console.log(
      `[ingest rtmp] ${got.length} frames over ${spanMs} ms of media: ${rate.toFixed(3)} fps (asked 2)`,
    );
    expect(rate).toBeGreaterThan(1.8);
    expect(rate).toBeLessThan(2.2);
    for (let i = 1; i < got.length; i += 1)
      expect((got[i]?.ptsMs ?? 0n) > (got[i - 1]?.ptsMs ?? 0n)).toBe(true);
    const chunks = audio.messages().filter((a) => a.streamId === 'rtmp-shop');
    expect(chunks.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < chunks.length; i += 1) {
      const gap =
        Number(chunks[i]?.startMs) - (Number(chunks[i - 1]?.startMs) + (chunks[i - 1]?.durationMs ?? 0));
      expect(Math.abs(gap)).toBeLessThanOrEqual(chunks[i - 1]?.durationMs ?? 1000);
    }

    // The source dies mid-stream, then comes back.
    await publisherA.stop({ abrupt: true });
    await waitState('rtmp-shop', 'RECONNECTING');
    const before = framesOf('rtmp-shop').length;
    publisherA = await publishRtmp(clip.path, rtmpA.url('shop'), { loop: true });
    await waitFor('frames to resume', () => (framesOf('rtmp-shop').length >= before + 3 ? true : undefined), {
      timeoutMs: 30_000,
    });
    // The drop shows as a reconnect (ffmpeg saw the end) or a stall (it saw nothing until its timeout).
    const gap = await waitFor('a gap record for the drop', () =>
      eventsOf('rtmp-shop').find(
        (e) => e.kind.case === 'gap' && [GapReason.RECONNECT, GapReason.STALL].includes(e.kind.value.reason),
      ),
    );
    if (gap.kind.case !== 'gap') throw new Error('not a gap');
    console.log(`[ingest rtmp] gap ${GapReason[gap.kind.value.reason]}: ${gap.kind.value.detail}`);
    const range = gap.kind.value.mediaRange;
    expect(Number(range?.endMs)).toBeGreaterThan(Number(range?.startMs));
    const resumed = framesOf('rtmp-shop');
    expect(new Set(resumed.map((f) => f.sessionEpoch)).size).toBe(1); // same session, seq goes on
    expect(resumed.map((f) => Number(f.seq))).toEqual(resumed.map((_, i) => i));
    const firstAfter = resumed[before];
    expect(Number(firstAfter?.ptsMs)).toBeGreaterThanOrEqual(Number(range?.endMs));

    // Now the source never returns: the server itself is gone.
    await publisherA.stop({ abrupt: true });
    await rtmpA.stop({ abrupt: true });
    const failed = await waitState('rtmp-shop', 'FAILED', 60_000);
    const failedAt = Number(failed.eventTimeUnixMs);
    const reconnects = eventsOf('rtmp-shop').filter((e) => stateOf(e) === 'RECONNECTING').length;
    // One for the first drop, then reconnects until the budget (3 in a row without a healthy run) is spent.
    expect(reconnects).toBeGreaterThanOrEqual(3);
    // The other stream was never disturbed.
    await waitFor('the other stream to keep going', () =>
      framesOf('rtmp-other').some((f) => Number(f.captureTimeUnixMs) > failedAt + 1_000) ? true : undefined,
    );
    expect(eventsOf('rtmp-other').filter((e) => stateOf(e) === 'RECONNECTING')).toEqual([]);
    await ingest.client.stopStream({ streamId: 'rtmp-other' });
    await waitState('rtmp-other', 'ENDED');
  }, 120_000);

  it('live HLS over HTTP, SRT and progressive HTTP: frames arrive with rising pts', async () => {
    const hls = await startHlsLive(clip.path, { loop: true });
    stops.push(() => hls.stop());
    const srt = await startSrtSource(clip.path, { loop: true });
    stops.push(() => srt.stop());
    const http = await startHttpServer({ '/clip.mp4': fileRoute(clip.path) });
    stops.push(() => http.stop());
    await ingest.client.startStream({ sourceUrl: hls.playlistUrl, streamId: 'hls-1' });
    await ingest.client.startStream({ sourceUrl: srt.url, streamId: 'srt-1' });
    await ingest.client.startStream({ sourceUrl: http.url('/clip.mp4'), streamId: 'http-1' });
    for (const id of ['hls-1', 'srt-1', 'http-1']) {
      await waitFor(`${id} frames`, () => (framesOf(id).length >= 4 ? true : undefined), {
        timeoutMs: 30_000,
      });
      const got = framesOf(id);
      for (let i = 1; i < got.length; i += 1)
        expect((got[i]?.ptsMs ?? 0n) > (got[i - 1]?.ptsMs ?? 0n)).toBe(true);
      expect(got[0]?.height).toBe(540);
      await ingest.client.stopStream({ streamId: id });
    }
  }, 90_000);

  it('hostile input: a playlist of file: segments, a non-media response and a corrupt file fail cleanly and leak nothing', async () => {
    const http = await startHttpServer({
      '/evil.m3u8': hostileHlsPlaylist({ variant: 'file' }),
      '/evil2.m3u8': hostileHlsPlaylist({ variant: 'protocols' }),
      '/login.mp4': nonMediaResponse(),
    });
    stops.push(() => http.stop());
    const corrupt = await corruptFile(clip.path);
    const corruptInRoot = join(mediaRoot, `corrupt-${basename(corrupt)}`);
    await copyFile(corrupt, corruptInRoot);

    await ingest.client.startStream({ sourceUrl: http.url('/evil.m3u8'), streamId: 'evil-hls' });
    await ingest.client.startStream({ sourceUrl: http.url('/evil2.m3u8'), streamId: 'evil-hls-2' });
    await ingest.client.startStream({ sourceUrl: http.url('/login.mp4'), streamId: 'not-media' });
    await ingest.client.startStream({ sourceUrl: `file://${corruptInRoot}`, streamId: 'corrupt' });

    for (const id of ['evil-hls', 'evil-hls-2', 'not-media']) {
      const failed = await waitState(id, 'FAILED');
      if (failed.kind.case !== 'stateChange') throw new Error('not a state change');
      console.log(
        `[ingest hostile] ${id}: ${failed.kind.value.reason} (${failed.kind.value.detail.slice(0, 120)})`,
      );
      expect(failed.kind.value.reason).not.toBe('');
      expect(framesOf(id)).toEqual([]);
    }
    // The corrupt file decodes with errors or not at all: either way it reaches an end, with no crash.
    await waitFor('the corrupt file to end or fail', () =>
      eventsOf('corrupt').find((e) => stateOf(e) === 'ENDED' || stateOf(e) === 'FAILED'),
    );
    // Nothing of /etc/passwd went anywhere: not in a frame, not in audio, not in an event.
    const everything = [
      ...frames.messages().map((f) => Buffer.from(f.jpeg).toString('latin1')),
      ...audio.messages().map((a) => Buffer.from(a.pcmS16le).toString('latin1')),
      ...events.messages().map((e) => JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? String(v) : v))),
    ].join('\n');
    expect(everything).not.toContain('root:x:0:0');
    // The service is still healthy and serving.
    expect((await ingest.client.listStreams({})).streams.length).toBeGreaterThan(0);
  }, 90_000);
});

export type { Collected };
