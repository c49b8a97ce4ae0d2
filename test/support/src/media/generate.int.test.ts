import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../index.js';
import { MediaFixtureError } from './errors.js';
import { corruptFile, generateClip, mediaCacheDir, textFileNamedMp4, truncatedFile } from './generate.js';
import { decodeAudio, grayFrame, meanAbsDiff, probeMedia, rmsDb } from './probe.js';
import { runTool } from './process.js';

const SHOP_CLIP = {
  durationS: 6,
  background: { color: '#303030' },
  sceneCut: { atS: 4, background: { color: '#c03030' } },
  overlays: [{ text: '$29.99 — code SAVE20', fromS: 1, toS: 3 }],
  speech: [{ text: 'link in my bio', atS: 3 }],
} as const;

describe('generateClip', () => {
  const scratch = join(tmpdir(), uniqueName('livelens-media-cache'));
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('makes a 1280x720 25 fps H.264/AAC MP4 whose overlay, scene cut and speech are really in it', async () => {
    const clip = await generateClip(SHOP_CLIP);
    expect(clip.path.startsWith(mediaCacheDir())).toBe(true);
    expect(clip).toMatchObject({
      width: 1280,
      height: 720,
      fps: 25,
      durationS: 6,
      hasAudio: true,
      sampleRate: 44100,
    });

    const { streams, format } = await probeMedia(clip.path);
    const video = streams.find((s) => s.codec_type === 'video');
    const audio = streams.find((s) => s.codec_type === 'audio');
    expect(video).toMatchObject({ codec_name: 'h264', width: 1280, height: 720, avg_frame_rate: '25/1' });
    expect(audio).toMatchObject({ codec_name: 'aac', sample_rate: '44100', channels: 1 });
    expect(Number(video?.duration)).toBeCloseTo(6, 1);
    expect(Number(audio?.duration)).toBeCloseTo(6, 1);
    expect(format.format_name).toContain('mp4');

    // Speech: loud where the line was placed, digital silence elsewhere.
    const [line] = clip.speech;
    expect(line?.text).toBe('link in my bio');
    expect(line?.durationS).toBeGreaterThan(0.5);
    expect(line?.durationS).toBeLessThan(3);
    const pcm = await decodeAudio(clip.path);
    const speechEnd = 3 + (line?.durationS ?? 0);
    expect(rmsDb(pcm, 3, speechEnd)).toBeGreaterThan(-35);
    expect(rmsDb(pcm, 0.2, 2.8)).toBeLessThan(-80);
    expect(rmsDb(pcm, speechEnd + 0.2, 5.9)).toBeLessThan(-80);

    // Overlay: the bottom of the picture changes while the text is up, the top does not.
    const plain = await grayFrame(clip.path, 0.5);
    const withText = await grayFrame(clip.path, 2);
    const bottom = { x: 0, y: 0.8, w: 1, h: 0.2 };
    const top = { x: 0, y: 0, w: 1, h: 0.5 };
    expect(meanAbsDiff(plain, withText, bottom)).toBeGreaterThan(10);
    expect(meanAbsDiff(plain, withText, top)).toBeLessThan(2);
    // Scene cut: a different picture after 4 s.
    const afterCut = await grayFrame(clip.path, 4.5);
    expect(meanAbsDiff(plain, afterCut)).toBeGreaterThan(20);
  }, 30_000);

  it('serves the same options from the cache without running anything', async () => {
    const first = await generateClip(SHOP_CLIP);
    const started = performance.now();
    const again = await generateClip({ ...SHOP_CLIP });
    expect(performance.now() - started).toBeLessThan(200);
    expect(again).toMatchObject({ cached: true, path: first.path, key: first.key, speech: first.speech });
    const other = await generateClip({ ...SHOP_CLIP, speech: [{ text: 'link in my bio', atS: 2 }] });
    expect(other.key).not.toBe(first.key);
    expect(other.path).not.toBe(first.path);
  }, 30_000);

  it('makes a new clip once under concurrent calls and leaves no temp files behind', async () => {
    const options = {
      durationS: 2,
      width: 320,
      height: 180,
      speech: [{ text: uniqueName('say'), atS: 0.5 }],
    };
    const [a, b] = await Promise.all([
      generateClip(options, { cacheDir: scratch }),
      generateClip(options, { cacheDir: scratch }),
    ]);
    expect(a.cached).toBe(false);
    expect(b.path).toBe(a.path);
    const files = await readdir(scratch);
    expect(files.sort()).toEqual([`clip-${a.key.slice(0, 24)}.json`, `clip-${a.key.slice(0, 24)}.mp4`]);
    expect((await generateClip(options, { cacheDir: scratch })).cached).toBe(true);
  }, 30_000);

  it('makes video-only clips and 16 kHz audio on request', async () => {
    const silent = await generateClip(
      { durationS: 1, width: 320, height: 180, audio: false },
      { cacheDir: scratch },
    );
    expect((await probeMedia(silent.path)).streams.map((s) => s.codec_type)).toEqual(['video']);
    const narrow = await generateClip(
      { durationS: 1, width: 320, height: 180, sampleRate: 16000 },
      { cacheDir: scratch },
    );
    const audio = (await probeMedia(narrow.path)).streams.find((s) => s.codec_type === 'audio');
    expect(audio?.sample_rate).toBe('16000');
  }, 30_000);

  it('loops with -c copy without audio going back in time', async () => {
    const clip = await generateClip({ durationS: 2, width: 320, height: 180 }, { cacheDir: scratch });
    const looped = join(scratch, 'looped.flv');
    // What publishRtmp({ loop: true }) does, without -re: three rounds of the file, remuxed to FLV.
    await runTool('ffmpeg', [
      '-v',
      'error',
      '-stream_loop',
      '2',
      '-i',
      clip.path,
      '-c',
      'copy',
      '-f',
      'flv',
      looped,
    ]);
    const csv = await runTool('ffprobe', [
      ...['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=pts', '-of', 'csv=p=0', looped],
    ]);
    const pts = csv.toString().trim().split('\n').map(Number);
    expect(pts.length).toBeGreaterThan(250); // 3 x 2 s of 23 ms frames
    expect(pts.filter((p, i) => i > 0 && p <= (pts[i - 1] ?? 0))).toEqual([]);
    await rm(looped);
  }, 30_000);

  it('rejects impossible options by name', async () => {
    await expect(generateClip({ durationS: 2, speech: [{ text: 'late', atS: 5 }] })).rejects.toMatchObject({
      code: 'invalid_options',
      message: expect.stringContaining('must start inside [0, 2)'),
    });
    await expect(generateClip({ durationS: 2, width: 641 })).rejects.toBeInstanceOf(MediaFixtureError);
    await expect(generateClip({ durationS: 2, background: { color: 'red:x=1' } })).rejects.toMatchObject({
      code: 'invalid_options',
    });
  });
});

describe('hostile local files', () => {
  it('corrupts the middle, truncates, and names a text file .mp4', async () => {
    const clip = await generateClip(SHOP_CLIP);
    const original = await readFile(clip.path);

    const corrupt = await corruptFile(clip.path);
    const damaged = await readFile(corrupt);
    expect(damaged.length).toBe(original.length);
    const quarter = Math.floor(original.length / 4);
    expect(damaged.subarray(0, quarter).equals(original.subarray(0, quarter))).toBe(true);
    expect(damaged.subarray(-quarter).equals(original.subarray(-quarter))).toBe(true);
    expect(damaged.subarray(quarter, -quarter).equals(original.subarray(quarter, -quarter))).toBe(false);

    const truncated = await truncatedFile(clip.path);
    expect((await stat(truncated)).size).toBe(Math.floor(original.length / 2));

    const text = await textFileNamedMp4();
    expect(text.endsWith('.mp4')).toBe(true);
    await expect(probeMedia(text)).rejects.toMatchObject({ code: 'tool_failed', tool: 'ffprobe' });
  }, 30_000);
});
