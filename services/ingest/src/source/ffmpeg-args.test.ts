import { PassThrough } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { describe, expect, it } from 'vitest';
import {
  buildFfmpegArgs,
  buildVideoFilter,
  CONTAINER_FORMATS,
  FORMAT_WHITELIST,
  findUnsafeArgs,
  PROTOCOL_WHITELIST,
  selectExpression,
  validateSourceSpec,
} from './ffmpeg-args.js';
import type { SourceKind, SourceSpec } from './types.js';

const INPUTS: Record<SourceKind, string> = {
  rtmp: 'rtmp://live.example.com/app/streamkey',
  hls: 'https://cdn.example.com/live/index.m3u8',
  http: 'https://cdn.example.com/clip.mp4',
  srt: 'srt://live.example.com:9000?streamid=abc',
  file: '/media/clip.mp4',
};

function spec(kind: SourceKind, overrides: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind,
    input: INPUTS[kind],
    frameRateFps: 1,
    sceneChangeThreshold: 0,
    maxHeight: 720,
    audioChunkMs: 1000,
    realtime: false,
    rwTimeoutMs: 10_000,
    maxFrameBytes: 4 * 1024 * 1024,
    maxPixels: 8192 * 4320,
    jpegQuality: 5,
    ...overrides,
  };
}

/** The value after `option` in argv (the first occurrence). */
function optionValue(argv: readonly string[], option: string): string | undefined {
  const at = argv.indexOf(option);
  return at >= 0 ? argv[at + 1] : undefined;
}

const KINDS: SourceKind[] = ['rtmp', 'hls', 'http', 'srt', 'file'];

describe('buildFfmpegArgs', () => {
  it('builds the exact argv for an rtmp source with audio', () => {
    const args = buildFfmpegArgs(
      spec('rtmp', { sceneChangeThreshold: 0.3 }),
      '/tmp/livelens-ffmpeg-x/audio.sock',
    );
    expect(args.argv).toEqual([
      '-nostdin',
      '-hide_banner',
      '-nostats',
      '-loglevel',
      'info',
      '-protocol_whitelist',
      'rtmp,rtmps,tcp,tls',
      '-format_whitelist',
      'flv,live_flv',
      '-rw_timeout',
      '10000000',
      '-max_pixels',
      '35389440',
      '-i',
      'rtmp://live.example.com/app/streamkey',
      '-map',
      '0:v:0',
      '-an',
      '-sn',
      '-dn',
      '-filter:v',
      "metadata=mode=delete,select='isnan(prev_selected_t)+gt(floor(t*1),floor(prev_selected_t*1))+lt(t,prev_selected_t)+gt(scene,0.3)',scale=w=-2:h='min(trunc(ih/2)*2,720)',metadata=mode=add:key=livelens.sample:value=1,metadata=mode=print",
      '-fps_mode',
      'passthrough',
      '-c:v',
      'mjpeg',
      '-q:v',
      '5',
      '-threads',
      '1',
      '-f',
      'image2pipe',
      '-flush_packets',
      '1',
      'pipe:1',
      '-map',
      '0:a:0?',
      '-vn',
      '-sn',
      '-dn',
      '-filter:a',
      'aresample=16000:async=1:first_pts=0',
      '-ac',
      '1',
      '-c:a',
      'pcm_s16le',
      '-f',
      's16le',
      '-flush_packets',
      '1',
      'unix:/tmp/livelens-ffmpeg-x/audio.sock',
    ]);
  });

  it.each(KINDS)('sets the %s whitelists', (kind) => {
    const { argv } = buildFfmpegArgs(spec(kind), undefined);
    expect(optionValue(argv, '-protocol_whitelist')).toBe(PROTOCOL_WHITELIST[kind].join(','));
    expect(optionValue(argv, '-format_whitelist')).toBe(FORMAT_WHITELIST[kind].join(','));
  });

  it('uses the documented whitelists per kind', () => {
    expect(PROTOCOL_WHITELIST).toEqual({
      rtmp: ['rtmp', 'rtmps', 'tcp', 'tls'],
      hls: ['http', 'https', 'tcp', 'tls', 'crypto'],
      http: ['http', 'https', 'tcp', 'tls', 'crypto'],
      srt: ['srt', 'udp'],
      file: ['file'],
    });
    expect(FORMAT_WHITELIST.rtmp).toEqual(['flv', 'live_flv']);
    expect(FORMAT_WHITELIST.srt).toEqual(['mpegts']);
    expect(FORMAT_WHITELIST.file).toEqual(CONTAINER_FORMATS);
    expect(FORMAT_WHITELIST.http).toEqual(CONTAINER_FORMATS);
    // Only what HLS carries: no avi/matroska/ogg in which a segment could nest another playlist (CVE-2017-9993).
    expect(FORMAT_WHITELIST.hls).toEqual(['hls', 'mpegts', 'mov', 'mp4', 'm4a', 'aac', 'mp3', 'webvtt']);
    for (const wide of ['avi', 'matroska', 'ogg', 'flv', 'wav'])
      expect(FORMAT_WHITELIST.hls).not.toContain(wide);
  });

  it('passes a file as file:<path> and gives it no rw_timeout', () => {
    const args = buildFfmpegArgs(spec('file'), undefined);
    expect(args.input).toBe('file:/media/clip.mp4');
    expect(args.argv).not.toContain('-rw_timeout');
  });

  it.each(['rtmp', 'hls', 'http', 'srt'] as const)('gives %s a -rw_timeout in microseconds', (kind) => {
    expect(
      optionValue(buildFfmpegArgs(spec(kind, { rwTimeoutMs: 2500 }), undefined).argv, '-rw_timeout'),
    ).toBe('2500000');
  });

  it('adds -re only when realtime', () => {
    expect(buildFfmpegArgs(spec('file', { realtime: true }), undefined).inputOptions).toContain('-re');
    expect(buildFfmpegArgs(spec('file'), undefined).argv).not.toContain('-re');
  });

  it('has no audio output when no socket is given', () => {
    const args = buildFfmpegArgs(spec('http'), undefined);
    expect(args.audioOutputOptions).toBeUndefined();
    expect(args.audioTarget).toBeUndefined();
    expect(args.argv.at(-1)).toBe('pipe:1');
    expect(args.argv.filter((a) => a === '-map')).toHaveLength(1);
  });

  it('is exactly what fluent-ffmpeg passes to ffmpeg (no option split, nothing added)', () => {
    for (const kind of KINDS) {
      const args = buildFfmpegArgs(
        spec(kind, { sceneChangeThreshold: 0.25 }),
        '/tmp/dir with space/audio.sock',
      );
      const command = ffmpeg(args.input)
        .inputOptions(...args.inputOptions)
        .output(new PassThrough())
        .outputOptions(...args.videoOutputOptions)
        .output(args.audioTarget!)
        .outputOptions(...args.audioOutputOptions!);
      expect(command._getArguments()).toEqual(args.argv);
    }
  });
});

describe('argv safety (fails if anyone ever adds an unsafe option)', () => {
  it.each(KINDS)('the %s argv has no unsafe option and no local protocol in a network whitelist', (kind) => {
    for (const realtime of [false, true]) {
      const { argv } = buildFfmpegArgs(spec(kind, { realtime, sceneChangeThreshold: 0.4 }), '/tmp/x/a.sock');
      expect(findUnsafeArgs(argv)).toEqual([]);
      expect(argv).not.toContain('-safe');
      expect(argv).not.toContain('-allowed_extensions');
      expect(argv).not.toContain('-allowed_segment_extensions');
      expect(argv).not.toContain('-extension_picky');
      const protocols = optionValue(argv, '-protocol_whitelist')!.split(',');
      const formats = optionValue(argv, '-format_whitelist')!.split(',');
      if (kind !== 'file') {
        for (const local of ['file', 'concat', 'concatf', 'subfile', 'data', 'pipe', 'fd']) {
          expect(protocols).not.toContain(local);
        }
      }
      expect(formats).not.toContain('concat');
      if (kind !== 'hls') expect(formats).not.toContain('hls');
      expect(argv.join(' ')).not.toMatch(/\bconcat:|\bsubfile[:,]|\bdata:/);
    }
  });

  it('flags each unsafe pattern', () => {
    const base = buildFfmpegArgs(spec('hls'), undefined).argv;
    expect(findUnsafeArgs([...base, '-safe', '0'])).toContain('-safe 0');
    expect(findUnsafeArgs(['-allowed_extensions', 'ALL', ...base])).toContain('-allowed_extensions ALL');
    expect(findUnsafeArgs(['-extension_picky', '0', ...base])).toContain('-extension_picky 0');
    expect(findUnsafeArgs(['-protocol_whitelist', 'http,file', '-format_whitelist', 'mp4'])).toContain(
      'file mixed with other protocols: http,file',
    );
    expect(findUnsafeArgs(['-protocol_whitelist', 'http,concat', '-format_whitelist', 'mp4'])).toContain(
      'local protocol concat in the whitelist',
    );
    expect(findUnsafeArgs(['-protocol_whitelist', 'file', '-format_whitelist', 'mp4,hls'])).toContain(
      'hls demuxer allowed for a local file',
    );
    expect(findUnsafeArgs(['-protocol_whitelist', 'http', '-format_whitelist', 'mp4,concat'])).toContain(
      'indirect demuxer concat in the whitelist',
    );
    expect(findUnsafeArgs(['-i', 'x'])).toEqual(['no -protocol_whitelist', 'no -format_whitelist']);
  });
});

describe('video filter', () => {
  it('samples on a 1/fps grid, with the scene term only when the threshold is above 0', () => {
    expect(selectExpression(2, 0)).toBe(
      'isnan(prev_selected_t)+gt(floor(t*2),floor(prev_selected_t*2))+lt(t,prev_selected_t)',
    );
    expect(selectExpression(0.5, 0.3)).toBe(
      'isnan(prev_selected_t)+gt(floor(t*0.5),floor(prev_selected_t*0.5))+lt(t,prev_selected_t)+gt(scene,0.3)',
    );
    expect(selectExpression(1, 0.0000001)).not.toMatch(/e-/);
  });

  it('never upscales and keeps the height even', () => {
    expect(buildVideoFilter(spec('file', { maxHeight: 361 }))).toContain(
      "scale=w=-2:h='min(trunc(ih/2)*2,360)'",
    );
  });
});

describe('validateSourceSpec', () => {
  it.each([
    ['frameRateFps', 0],
    ['frameRateFps', 61],
    ['sceneChangeThreshold', 1.5],
    ['sceneChangeThreshold', -0.1],
    ['maxHeight', 0],
    ['audioChunkMs', 12.5],
    ['rwTimeoutMs', 0],
    ['maxFrameBytes', Number.POSITIVE_INFINITY],
    ['maxPixels', 0],
    ['jpegQuality', 1],
    ['jpegQuality', 32],
  ] as const)('rejects %s = %s, naming the field', (field, value) => {
    expect(() => validateSourceSpec(spec('file', { [field]: value }))).toThrow(
      expect.objectContaining({ code: 'invalid_argument', message: expect.stringContaining(field) }),
    );
  });

  it.each([
    ['file', 'relative/clip.mp4'],
    ['file', 'file:///etc/passwd'],
    ['rtmp', 'http://example.com/x'],
    ['hls', 'file:///etc/passwd'],
    ['http', 'concat:/etc/passwd|/etc/hosts'],
    ['srt', 'udp://example.com:9000'],
    ['http', 'http://example.com/\nx'],
  ] as const)('rejects a %s source opening %j, without echoing it', (kind, input) => {
    let error: unknown;
    try {
      validateSourceSpec(spec(kind, { input }));
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'invalid_argument' });
    expect((error as Error).message).not.toContain(input);
  });

  it('accepts every kind with its scheme', () => {
    for (const kind of KINDS) expect(() => validateSourceSpec(spec(kind))).not.toThrow();
    expect(() => validateSourceSpec(spec('rtmp', { input: 'rtmps://x.example/app/key' }))).not.toThrow();
  });
});
