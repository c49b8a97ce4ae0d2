import { GapReason, StreamState } from '@livelens/contracts';
import { waitFor } from '@livelens/test-support';
import { ffmpegPids, generateClip, publishRtmp, startRtmpServer } from '@livelens/test-support/media';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, ingestEnv, killProcess, spawnIngest, testNamespace } from './harness.js';

// Two ingest replicas as real processes sharing one Redis and one broker (reliability.md cases 8 and 10).
describe('ingest: two replicas share streams through Redis leases', () => {
  const ns = testNamespace();
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('pulls each of 4 streams exactly once; kill -9 of one replica moves its streams to the other within the lease time', async () => {
    const clip = await generateClip({
      durationS: 6,
      width: 640,
      height: 360,
      speech: [{ text: 'buy now', atS: 1 }],
    });
    const rtmp = await startRtmpServer();
    cleanups.push(() => rtmp.stop());
    const ids = ['r-0', 'r-1', 'r-2', 'r-3'];
    for (const id of ids) {
      const publisher = await publishRtmp(clip.path, rtmp.url(id), { loop: true });
      cleanups.push(() => publisher.stop());
    }
    const frames = await collect(ns.topics.frames);
    const events = await collect(ns.topics.streamEvents);
    cleanups.push(
      () => frames.stop(),
      () => events.stop(),
    );

    // Each replica can carry all four: the survivor of a kill must have room for the other's streams.
    const env = (replica: string) =>
      ingestEnv(ns.prefix, { INGEST_REPLICA_ID: replica, INGEST_MAX_STREAMS: '4' });
    const a = await spawnIngest(env('replica-a'));
    cleanups.push(() => killProcess(a.child, 'SIGKILL'));
    const b = await spawnIngest(env('replica-b'));
    cleanups.push(() => killProcess(b.child, 'SIGKILL'));
    // Alternate which replica takes the call: ownership must not depend on where a call lands.
    for (const [i, id] of ids.entries()) {
      await (i % 2 === 0 ? a : b).client.startStream({ sourceUrl: rtmp.url(id), streamId: id });
    }
    const owners = async () =>
      Object.fromEntries(
        await Promise.all(
          ids.map(async (id) => [id, (await a.client.getStream({ streamId: id })).stream] as const),
        ),
      );
    await waitFor(
      'all four running',
      async () =>
        Object.values(await owners()).every((s) => s?.state === StreamState.RUNNING) ? true : undefined,
      { timeoutMs: 45_000 },
    );
    const before = await owners();
    const byReplica = (name: string) => ids.filter((id) => before[id]?.ownerReplicaId === name);
    // The replica a call lands on takes the stream when it has room: two each, each stream on one.
    expect(byReplica('replica-a')).toEqual(['r-0', 'r-2']);
    expect(byReplica('replica-b')).toEqual(['r-1', 'r-3']);
    // Pulled once: every frame of a stream so far belongs to one session (one ffmpeg on one replica).
    await waitFor('frames of every stream', () =>
      ids.every((id) => frames.messages().some((f) => f.streamId === id)) ? true : undefined,
    );
    for (const id of ids) {
      const epochs = new Set(
        frames
          .messages()
          .filter((f) => f.streamId === id)
          .map((f) => f.sessionEpoch),
      );
      expect(epochs).toEqual(new Set([before[id]?.sessionEpoch]));
    }

    // kill -9 replica a: no drain, no lease release.
    const ffmpegOfA = ffmpegPids({ childrenOf: a.child.pid });
    expect(ffmpegOfA.length).toBe(2);
    const killedAt = Date.now();
    await killProcess(a.child, 'SIGKILL');
    const moved = byReplica('replica-a');
    await waitFor(
      "the killed replica's streams to run elsewhere",
      async () => {
        const now = await Promise.all(
          moved.map(async (id) => (await b.client.getStream({ streamId: id })).stream),
        );
        return now.every((s) => s?.state === StreamState.RUNNING && s.ownerReplicaId === 'replica-b')
          ? now
          : undefined;
      },
      { timeoutMs: 45_000 },
    );
    const tookMs = Date.now() - killedAt;
    console.log(
      `[ingest replicas] streams of the killed replica running again after ${tookMs} ms (lease TTL 3000 ms)`,
    );
    // Lease TTL + a reconcile interval + ffmpeg's start and first frame.
    expect(tookMs).toBeLessThan(3_000 + 500 + 4_000);
    for (const id of moved) {
      const takeover = await waitFor(`${id} takeover gap`, () =>
        events
          .messages()
          .find(
            (e) => e.streamId === id && e.kind.case === 'gap' && e.kind.value.reason === GapReason.TAKEOVER,
          ),
      );
      expect(takeover.sessionEpoch).not.toBe(before[id]?.sessionEpoch);
      expect(takeover.kind.case === 'gap' && takeover.kind.value.detail).toMatch(/replica-a/);
      await waitFor(`${id} frames from the new session`, () =>
        frames.messages().some((f) => f.streamId === id && f.sessionEpoch === takeover.sessionEpoch)
          ? true
          : undefined,
      );
    }
    // b's own streams were never interrupted.
    for (const id of ['r-1', 'r-3']) {
      expect((await b.client.getStream({ streamId: id })).stream?.sessionEpoch).toBe(
        before[id]?.sessionEpoch,
      );
    }
    // The killed replica's ffmpeg processes did not outlive it (they die on their next write to a closed pipe).
    await waitFor(
      'no orphan ffmpeg',
      () => (ffmpegOfA.every((pid) => !ffmpegPids().includes(pid)) ? true : undefined),
      {
        timeoutMs: 10_000,
      },
    );

    // A graceful stop (SIGTERM) of b: exit 0, all four of its ffmpeg processes reaped.
    const ffmpegOfB = ffmpegPids({ childrenOf: b.child.pid });
    expect(ffmpegOfB.length).toBe(4);
    const exited = new Promise<number | null>((resolve) => b.child.once('exit', (code) => resolve(code)));
    b.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(ffmpegOfB.filter((pid) => ffmpegPids().includes(pid))).toEqual([]);
  }, 150_000);
});
