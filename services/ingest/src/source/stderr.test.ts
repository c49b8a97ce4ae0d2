import { describe, expect, it } from 'vitest';
import { classifyFailure, FrameMetaParser, isNoAudioStream, redactLine, StderrRing } from './stderr.js';

/**
 * Real stderr of Debian's ffmpeg 5.1.9 (`-nostdin -hide_banner -nostats -loglevel info` and the kind's
 * whitelists), captured against a closed port, a tiny node HTTP server, a hanging TCP server, text files and
 * hostile playlists on this machine.
 */
const REAL: Record<string, string> = {
  rtmpRefused: `[tcp @ 0x5558e3fcbd80] Connection to tcp://127.0.0.1:1?tcp_nodelay=0 failed: Connection refused
[rtmp @ 0x5558e3fcb280] Cannot open connection tcp://127.0.0.1:1?tcp_nodelay=0
rtmp://127.0.0.1:1/live/key: Connection refused`,
  http404: `[http @ 0x563422fb22c0] HTTP error 404 Not Found
http://127.0.0.1:18080/404/clip.mp4: Server returned 404 Not Found`,
  http403: `[http @ 0x55e8ec9ae200] HTTP error 403 Forbidden
http://127.0.0.1:18080/403/x: Server returned 403 Forbidden (access denied)`,
  http401: 'http://127.0.0.1:18080/401/x: Server returned 401 Unauthorized (authorization failed)',
  http410: `[http @ 0x564d57cce200] HTTP error 410 Gone
http://127.0.0.1:18080/410/x.mp4: Server returned 4XX Client Error, but not one of 40{0,1,3,4}`,
  http503: `[http @ 0x562fc60ef200] HTTP error 503 Service Unavailable
http://127.0.0.1:18080/503/x.mp4: Server returned 5XX Server Error reply`,
  textFile: 'file:/tmp/fft/t.txt: Invalid data found when processing input',
  textAsMp4: `[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55eaca8ac9c0] Format mov,mp4,m4a,3gp,3g2,mj2 detected only with low score of 1, misdetection possible!
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55eaca8ac9c0] moov atom not found
file:/tmp/fft/t.mp4: Invalid data found when processing input`,
  noSuchFile: 'file:/tmp/fft/missing.mp4: No such file or directory',
  hlsFileSegment: `[hls @ 0x55accfe419c0] Opening 'file:///etc/passwd?.ts' for reading
[file @ 0x55accfe512c0] Protocol 'file' not on whitelist 'http,https,tcp,tls,crypto'!
[hls @ 0x55accfe419c0] Failed to open segment 0 of playlist 0
[hls @ 0x55accfe419c0] Error when loading first segment 'file:///etc/passwd?.ts'
http://127.0.0.1:18082/evil3.m3u8: Invalid data found when processing input`,
  hlsSegmentExtension: `[hls @ 0x556a9fb4ea40] Skip ('#EXT-X-VERSION:3')
[hls @ 0x556a9fb4ea40] URL file:///etc/passwd is not in allowed_segment_extensions
http://127.0.0.1:18082/evil.m3u8: Invalid data found when processing input`,
  playlistAsFile: `[hls @ 0x5603d0042a00] Format not on whitelist 'mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,flv,mpegts,wav,mp3,aac,ogg,avi'
file:/tmp/fft/www/evil.m3u8: Invalid argument`,
  redirectToFile: 'http://127.0.0.1:18080/302/x: Invalid argument',
  stalled: 'http://127.0.0.1:18081/live.mp4: Connection timed out',
  rtmpStalled: `[rtmp @ 0x55b3a5241200] Cannot read RTMP handshake response
rtmp://127.0.0.1:18081/live/x: Connection timed out`,
  dns: `[tcp @ 0x558272ea5380] Failed to resolve hostname nonexistent.invalid: Name or service not known
http://nonexistent.invalid/live.mp4: Input/output error`,
  noRoute: `[tcp @ 0x5651d9c2e4c0] Connection to tcp://[2001:db8::1]:80 failed: No route to host
http://[2001:db8::1]/live.mp4: No route to host`,
  srtClosed: `[srt @ 0x55c6cf95a280] Connection to srt://127.0.0.1:1 failed: Input/output error
srt://127.0.0.1:1: Input/output error`,
  noVideo: `Stream map '0:v:0' matches no streams.
To ignore this, add a trailing '?' to the map.`,
  maxPixels: `[h264 @ 0x558583e7fec0] [IMGUTILS @ 0x7ffe981b7360] Picture size 2000x2000 exceeds specified max pixel count 1000000, see the documentation if you wish to increase it
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x558583e7e980] Failed to open codec in avformat_find_stream_info
[h264 @ 0x558583e7fec0] video_get_buffer: image parameters invalid
[h264 @ 0x558583e7fec0] get_buffer() failed
[h264 @ 0x558583e7fec0] decode_slice_header error
Stream mapping:
Error while opening decoder for input stream #0:0 : Invalid argument`,
  noAudio: `Output #1, s16le, to 'unix:/tmp/fft/none.sock':
Output file #1 does not contain any stream`,
};

const lines = (name: string): string[] => REAL[name]!.split('\n');

describe('classifyFailure', () => {
  it.each([
    ['rtmpRefused', 'connection_refused'],
    ['http404', 'http_404'],
    ['http403', 'http_403'],
    ['http401', 'http_401'],
    ['http410', 'http_410'],
    ['http503', 'http_503'],
    ['textFile', 'invalid_data'],
    ['textAsMp4', 'invalid_data'],
    ['noSuchFile', 'no_such_file'],
    ['hlsFileSegment', 'protocol_not_allowed'],
    ['hlsSegmentExtension', 'segment_not_allowed'],
    ['playlistAsFile', 'format_not_allowed'],
    ['redirectToFile', 'unknown'],
    ['stalled', 'timeout'],
    ['rtmpStalled', 'timeout'],
    ['dns', 'dns_failed'],
    ['noRoute', 'host_unreachable'],
    ['srtClosed', 'connection_failed'],
    ['noVideo', 'no_video_stream'],
    ['maxPixels', 'too_large'],
  ])('classifies %s as %s', (name, reason) => {
    expect(classifyFailure(lines(name))).toBe(reason);
  });

  it('falls back to the class when ffmpeg gives no exact status', () => {
    expect(classifyFailure(['x: Server returned 4XX Client Error, but not one of 40{0,1,3,4}'])).toBe(
      'http_4xx',
    );
    expect(classifyFailure(['x: Server returned 5XX Server Error reply'])).toBe('http_5xx');
  });

  it('reports a death by signal as killed, whatever the lines say', () => {
    expect(classifyFailure(lines('textFile'), 'SIGSEGV')).toBe('killed');
  });

  it('is unknown for nothing recognisable', () => {
    expect(classifyFailure([])).toBe('unknown');
    expect(classifyFailure(['Conversion failed!'])).toBe('unknown');
  });
});

describe('isNoAudioStream', () => {
  it('spots the audio output that got no stream', () => {
    expect(isNoAudioStream(lines('noAudio'))).toBe(true);
    expect(isNoAudioStream(lines('textFile'))).toBe(false);
  });
});

describe('StderrRing', () => {
  it('keeps the last lines only', () => {
    const ring = new StderrRing(undefined, 3);
    for (let i = 0; i < 10; i += 1) ring.push(`line ${i}`);
    expect(ring.snapshot()).toEqual(['line 7', 'line 8', 'line 9']);
    expect(ring.text()).toBe('line 7\nline 8\nline 9');
  });

  it('scrubs the input and any URL userinfo, and bounds line length', () => {
    const input = 'rtmp://user:pa55@live.example.com/app/s3cr3t-key';
    const ring = new StderrRing(input);
    ring.push(`${input}: Connection refused`);
    ring.push("Input #0, flv, from 'rtmp://other:pw@host/app/k':");
    ring.push('x'.repeat(5000));
    const [first, second, third] = ring.snapshot();
    expect(first).toBe('<input>: Connection refused');
    expect(second).toBe("Input #0, flv, from 'rtmp://***@host/app/k':");
    expect(third!.length).toBeLessThanOrEqual(1001);
    expect(redactLine('[tcp @ 0x1] Connection to tcp://127.0.0.1:1 failed', undefined)).toBe(
      '[tcp @ 0x1] Connection to tcp://127.0.0.1:1 failed',
    );
  });

  it('scrubs the query of every URL it logs: signed HLS segment tokens never reach lastError or events', () => {
    expect(
      redactLine(
        "[hls @ 0x1] Opening 'https://cdn.example.com/live/seg42.ts?token=abc&exp=99' for reading",
        undefined,
      ),
    ).toBe("[hls @ 0x1] Opening 'https://cdn.example.com/live/seg42.ts?***' for reading");
  });
});

describe('FrameMetaParser', () => {
  // Real lines from ffmpeg 5.1.9 with the chain of ffmpeg-args.ts (scene term on).
  const real = `[Parsed_metadata_4 @ 0x560ea02f2640] frame:0    pts:0       pts_time:0
[Parsed_metadata_4 @ 0x560ea02f2640] lavfi.scene_score=0.000000
[Parsed_metadata_4 @ 0x560ea02f2640] livelens.sample=1
[Parsed_metadata_4 @ 0x560ea02f2640] frame:1    pts:6656    pts_time:0.52
[Parsed_metadata_4 @ 0x560ea02f2640] lavfi.scene_score=0.003619
[Parsed_metadata_4 @ 0x560ea02f2640] livelens.sample=1
[Parsed_metadata_4 @ 0x560ea02f2640] frame:4    pts:25600   pts_time:2
[Parsed_metadata_4 @ 0x560ea02f2640] lavfi.scene_score=0.562057
[Parsed_metadata_4 @ 0x560ea02f2640] livelens.sample=1`.split('\n');

  it('assembles one record per frame, closed by the marker line', () => {
    const parser = new FrameMetaParser();
    const records = real.flatMap((line) => parser.push(line).completed);
    expect(records).toEqual([
      { index: 0, ptsSeconds: 0, sceneScore: 0 },
      { index: 1, ptsSeconds: 0.52, sceneScore: 0.003619 },
      { index: 4, ptsSeconds: 2, sceneScore: 0.562057 },
    ]);
    expect(parser.end()).toEqual([]);
  });

  it('closes a record whose marker line was lost at the next frame line, and at the end', () => {
    const parser = new FrameMetaParser();
    const withoutMarkers = real.filter((line) => !line.includes('livelens.sample'));
    const records = withoutMarkers.flatMap((line) => parser.push(line).completed);
    expect(records.map((r) => r.index)).toEqual([0, 1]);
    expect(parser.end()).toEqual([{ index: 4, ptsSeconds: 2, sceneScore: 0.562057 }]);
  });

  it('reads NOPTS as an unknown pts', () => {
    const parser = new FrameMetaParser();
    parser.push('[Parsed_metadata_4 @ 0x1] frame:0    pts:NOPTS   pts_time:NOPTS');
    expect(parser.push('[Parsed_metadata_4 @ 0x1] livelens.sample=1').completed).toEqual([
      { index: 0, ptsSeconds: null, sceneScore: undefined },
    ]);
  });

  it('ignores other lines, other filter instances and other addresses, and does not consume them', () => {
    const parser = new FrameMetaParser();
    parser.push(real[0]!);
    expect(parser.push('    title           : [Parsed_metadata_4 @ 0x1] frame:9 pts:1 pts_time:1')).toEqual({
      consumed: false,
      completed: [],
    });
    expect(parser.push('[Parsed_metadata_3 @ 0x560ea02f2640] frame:9 pts:1 pts_time:1').consumed).toBe(false);
    expect(parser.push('[Parsed_metadata_4 @ 0x999] frame:9 pts:1 pts_time:1').consumed).toBe(false);
    expect(parser.push(real[2]!).completed).toEqual([{ index: 0, ptsSeconds: 0, sceneScore: undefined }]);
  });
});
