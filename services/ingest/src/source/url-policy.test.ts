import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LiveLensError } from '@livelens/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type UrlPolicy,
  urlPolicyWithDefaults,
  type ValidatedSource,
  validateSourceUrl,
} from './url-policy.js';

/** A resolver that answers from a table, records the names asked, and fails like getaddrinfo otherwise. */
function fakeResolver(table: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = async (host: string) => {
    asked.push(host);
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolve, asked };
}

const dns = fakeResolver({
  'cdn.example': ['93.184.216.34'],
  'live.example': ['93.184.216.35', '2606:2800:220:1::35'],
  host: ['93.184.216.36'],
  'internal.example': ['10.0.0.5'],
  'mixed.example': ['93.184.216.34', '192.168.1.10'],
  'ula.example': ['fd00::1'],
  'twice.example': ['93.184.216.34', '93.184.216.34'],
  'garbage.example': ['not-an-ip'],
  'metadata.google.internal': ['93.184.216.34'],
});

const policy = (overrides: Partial<UrlPolicy> = {}): UrlPolicy =>
  urlPolicyWithDefaults({ resolve: dns.resolve, ...overrides });

/** Runs the validation, expecting a non-retriable invalid_argument refusal; returns it for message checks. */
async function refusal(raw: string, withPolicy: UrlPolicy = policy()): Promise<LiveLensError> {
  const outcome = await validateSourceUrl(raw, withPolicy).then(
    (source) => source,
    (error: unknown) => error,
  );
  expect(outcome, `expected ${raw.slice(0, 80)} to be refused`).toBeInstanceOf(LiveLensError);
  const error = outcome as LiveLensError;
  expect(error.code).toBe('invalid_argument');
  expect(error.retriable).toBe(false);
  return error;
}

async function accepted(raw: string, withPolicy: UrlPolicy = policy()): Promise<ValidatedSource> {
  return validateSourceUrl(raw, withPolicy);
}

describe('raw string checks (before any parser)', () => {
  it('refuses an empty URL', async () => {
    const error = await refusal('');
    expect(error.message).toBe('source URL is empty');
    expect(error.context.rule).toBe('empty');
  });

  it('refuses a 64 KiB URL, and honours maxUrlLength', async () => {
    const huge = `http://cdn.example/${'a'.repeat(64 * 1024 - 'http://cdn.example/'.length)}`;
    expect(huge.length).toBe(65536);
    expect((await refusal(huge)).message).toBe('source URL is 65536 characters long; the limit is 2048');
    const short = policy({ maxUrlLength: 30 });
    expect((await refusal('http://cdn.example/abcdefghijklmnop', short)).message).toBe(
      'source URL is 35 characters long; the limit is 30',
    );
  });

  it.each([
    ['newline', 'http://cdn.example/live\n.m3u8', '000A', 23],
    ['carriage return', 'http://cdn.example/live\r', '000D', 23],
    ['space', 'http://cdn.example/my live.m3u8', '0020', 21],
    ['tab', 'http://cdn.example/\tlive', '0009', 19],
    ['NUL', 'http://cdn.example/\u0000', '0000', 19],
    ['DEL', 'http://cdn.example/\u007f', '007F', 19],
    ['no-break space', 'http://cdn.example/\u00a0', '00A0', 19],
    ['right-to-left override', 'http://cdn.example/\u202e', '202E', 19],
  ])('refuses a %s', async (_name, raw, codePoint, position) => {
    const error = await refusal(raw);
    expect(error.message).toBe(
      `source URL contains a control or whitespace character (U+${codePoint}) at position ${position}; percent-encode spaces as %20`,
    );
    expect(error.context.rule).toBe('control_character');
  });

  it("refuses a URL starting with '-' (argv injection)", async () => {
    for (const raw of ['-i', '-rtmp://cdn.example/app/key', '-filter_complex=x']) {
      expect((await refusal(raw)).message).toBe(
        "source URL must not start with '-' (ffmpeg would read it as an option)",
      );
    }
  });

  it.each([
    ['$(id)', 'http://cdn.example/$(id)', '$', 19],
    ['backticks', 'http://cdn.example/`id`', '`', 19],
    ['a semicolon', 'rtmp://cdn.example/app;reboot', ';', 22],
    ['a pipe', 'http://cdn.example/a|b', '|', 20],
    ['a redirect', 'http://cdn.example/>x', '>', 19],
    ['a quote', "http://cdn.example/'x'", "'", 19],
    ['a backslash', 'http://evil.example\\@127.0.0.1/', '\\', 19],
  ])('refuses %s (shell metacharacter)', async (_name, raw, character, position) => {
    const error = await refusal(raw);
    expect(error.message).toBe(
      `source URL contains the shell metacharacter '${character}' at position ${position}; percent-encode it if it is part of the URL`,
    );
    expect(error.context.rule).toBe('shell_metacharacter');
  });

  it.each([
    ['concat:/etc/passwd|x', 'concat:'],
    ['subfile,,start,0,end,100,,:/etc/passwd', 'subfile,'],
    ['data:text/plain;base64,aGk=', 'data:'],
    ['pipe:0', 'pipe:'],
    ['fd:3', 'fd:'],
    ['tee:http://cdn.example/a', 'tee:'],
    ['async:http://cdn.example/a', 'async:'],
    ['cache:http://cdn.example/a', 'cache:'],
    ['crypto:http://cdn.example/a', 'crypto:'],
    ['crypto+http://cdn.example/a', 'crypto+http:'],
    ['hls+http://cdn.example/live.m3u8', 'hls+http:'],
    ['cache+file:///etc/passwd', 'cache+file:'],
    ['CONCAT:/etc/passwd', 'concat:'],
  ])('refuses the ffmpeg pseudo-protocol in %s', async (raw, shown) => {
    const error = await refusal(raw);
    expect(error.message).toBe(
      `source URL uses the ffmpeg pseudo-protocol '${shown}', which can read local files or other URLs: refused`,
    );
    expect(error.context.rule).toBe('pseudo_protocol');
  });

  it('refuses strings that are not absolute URLs, without echoing them', async () => {
    for (const raw of ['cdn.example/live.m3u8', '/etc/passwd', 'http://', 'rtmp://cdn.example:99999/app']) {
      const error = await refusal(raw);
      expect(error.message).toMatch(
        /^source URL is not a valid absolute URL \(expected e\.g\. rtmp:\/\/host/,
      );
      expect(error.context.rule).toBe('malformed');
    }
  });
});

describe('schemes', () => {
  it.each(['gopher', 'ftp', 'rtsp', 'tcp', 'udp', 'javascript', 'rtmpt', 'ws'])(
    "refuses '%s' with the list of allowed schemes",
    async (scheme) => {
      const raw = scheme === 'javascript' ? 'javascript:alert(1)' : `${scheme}://x`;
      const error = await refusal(raw);
      expect(error.message).toBe(
        `source URL scheme '${scheme}' is not allowed (allowed: rtmp, rtmps, http, https, srt, file)`,
      );
      expect(error.context.rule).toBe('scheme_not_allowed');
    },
  );

  it('refuses unix: sockets', async () => {
    expect((await refusal('unix:/var/run/docker.sock')).message).toBe(
      "source URL scheme 'unix' is not allowed (allowed: rtmp, rtmps, http, https, srt, file)",
    );
  });

  it('refuses schemes the policy leaves out', async () => {
    const networkOnly = policy({ allowedSchemes: ['rtmps', 'https'], mediaRoot: '/' });
    expect((await refusal('file:///etc/hostname', networkOnly)).message).toBe(
      "source URL scheme 'file' is not allowed (allowed: rtmps, https)",
    );
    expect((await refusal('http://cdn.example/live.m3u8', networkOnly)).message).toBe(
      "source URL scheme 'http' is not allowed (allowed: rtmps, https)",
    );
    expect((await accepted('https://cdn.example/live.m3u8', networkOnly)).kind).toBe('hls');
  });
});

describe('network destinations (SSRF guard)', () => {
  it('refuses the cloud metadata address', async () => {
    const error = await refusal('http://169.254.169.254/latest/meta-data/');
    expect(error.message).toBe(
      'source host 169.254.169.254 resolves to 169.254.169.254, a link-local/metadata address: refused (SSRF guard)',
    );
    expect(error.context).toMatchObject({ rule: 'blocked_address', host: '169.254.169.254', scheme: 'http' });
  });

  it('refuses loopback written as an IPv4-mapped IPv6 literal', async () => {
    expect((await refusal('http://[::ffff:127.0.0.1]/')).message).toBe(
      'source host [::ffff:7f00:1] resolves to ::ffff:7f00:1 (IPv4-mapped 127.0.0.1), a loopback address: refused (SSRF guard)',
    );
    expect((await refusal('rtmp://[::ffff:169.254.169.254]/app/key')).message).toMatch(
      /\(IPv4-mapped 169\.254\.169\.254\), a link-local\/metadata address: refused \(SSRF guard\)$/,
    );
  });

  it('refuses decimal, hex and short IPv4 forms of http(s) hosts, which WHATWG normalizes to 127.0.0.1', async () => {
    for (const raw of ['http://2130706433/', 'http://0x7f.1/', 'https://0177.0.0.1/', 'http://127.1/']) {
      expect((await refusal(raw)).message, raw).toBe(
        'source host 127.0.0.1 resolves to 127.0.0.1, a loopback address: refused (SSRF guard)',
      );
    }
    expect(dns.asked).not.toContain('2130706433');
  });

  it('refuses non-canonical numeric hosts of rtmp/srt, which WHATWG leaves as written', async () => {
    expect((await refusal('rtmp://0x7f000001/live')).message).toBe(
      "source host '0x7f000001' is a non-canonical numeric IPv4 address (it means 127.0.0.1); write IPv4 addresses as four decimal numbers a.b.c.d",
    );
    for (const raw of [
      'rtmp://2130706433/live',
      'srt://0177.0.0.1:9000',
      'rtmps://127.1/app',
      'rtmp://8.8.8.010/a',
    ]) {
      const error = await refusal(raw);
      expect(error.message, raw).toMatch(/^source host '.+' is a non-canonical numeric IPv4 address/);
      expect(error.context.rule).toBe('non_canonical_ip');
    }
    // Not even an address to WHATWG: still refused, without an interpretation.
    expect((await refusal('rtmp://1.2.3.4.5/live')).message).toBe(
      "source host '1.2.3.4.5' is a non-canonical numeric IPv4 address; write IPv4 addresses as four decimal numbers a.b.c.d",
    );
  });

  it('refuses canonical loopback literals of rtmp and srt too', async () => {
    expect((await refusal('rtmp://127.0.0.1/live')).message).toBe(
      'source host 127.0.0.1 resolves to 127.0.0.1, a loopback address: refused (SSRF guard)',
    );
    expect((await refusal('srt://[::1]:9000')).message).toBe(
      'source host [::1] resolves to ::1, a loopback address: refused (SSRF guard)',
    );
  });

  it('refuses a DNS name resolving to 10.0.0.5', async () => {
    const error = await refusal('https://internal.example/live.m3u8');
    expect(error.message).toBe(
      'source host internal.example resolves to 10.0.0.5, a private (RFC 1918) address: refused (SSRF guard)',
    );
    expect(error.context).toMatchObject({ rule: 'blocked_address', address: '10.0.0.5' });
  });

  it('refuses a name resolving to one public and one private address', async () => {
    expect((await refusal('rtmp://mixed.example/app/key')).message).toBe(
      'source host mixed.example resolves to 192.168.1.10, a private (RFC 1918) address: refused (SSRF guard)',
    );
    expect((await refusal('srt://ula.example:9000')).message).toBe(
      'source host ula.example resolves to fd00::1, a unique-local (private IPv6) address: refused (SSRF guard)',
    );
  });

  it('refuses cloud metadata names by name, before DNS and whatever the policy allows', async () => {
    const before = dns.asked.length;
    for (const raw of [
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://METADATA/',
      'rtmp://instance-data/x',
    ]) {
      const error = await refusal(raw, policy({ allowPrivateNetworks: true, allowedCidrs: ['0.0.0.0/0'] }));
      expect(error.message).toMatch(
        /^source host \S+ is a cloud metadata service name: refused \(SSRF guard\)$/,
      );
      expect(error.context.rule).toBe('metadata_host');
    }
    expect(dns.asked.length).toBe(before);
  });

  it('refuses hosts that do not resolve, as not retriable', async () => {
    const error = await refusal('https://nowhere.example/live.m3u8');
    expect(error.message).toBe('cannot resolve host nowhere.example (ENOTFOUND)');
    expect(error.context.rule).toBe('unresolvable_host');
    expect((error.cause as Error).message).toBe('getaddrinfo ENOTFOUND nowhere.example');
  });

  it('refuses hosts whose lookup times out', async () => {
    const slow = policy({ resolve: () => new Promise(() => undefined), resolveTimeoutMs: 50 });
    const started = Date.now();
    const error = await refusal('rtmp://slow.example/app/key', slow);
    expect(error.message).toBe('cannot resolve host slow.example (timed out after 50 ms)');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses an empty answer or a non-IP answer from the resolver', async () => {
    expect((await refusal('http://empty.example/', policy({ resolve: async () => [] }))).message).toBe(
      'cannot resolve host empty.example (no addresses)',
    );
    expect((await refusal('http://garbage.example/')).message).toBe(
      "cannot resolve host garbage.example: the resolver returned 'not-an-ip', which is not an IP address",
    );
  });

  it('checks ports: 0 is refused, 1 and 65535 are fine', async () => {
    const error = await refusal('srt://cdn.example:0');
    expect(error.message).toBe('source URL port 0 is out of range (1-65535)');
    expect(error.context.rule).toBe('bad_port');
    expect((await accepted('srt://cdn.example:65535')).input).toBe('srt://cdn.example:65535');
    expect((await accepted('rtmp://cdn.example:1/app')).input).toBe('rtmp://cdn.example:1/app');
  });

  it('requires a host, and a plain ASCII one for rtmp/srt', async () => {
    expect((await refusal('rtmp:/app/stream')).message).toBe(
      'source URL has no host (expected rtmp://host…)',
    );
    expect((await refusal('srt:cdn.example')).message).toBe('source URL has no host (expected srt://host…)');
    expect((await refusal('rtmp://h\u00e9llo.example/app')).message).toBe(
      "source host 'h%c3%a9llo.example' is not a valid host name (letters, digits, '-', '_' and '.'; write international names in their xn-- form)",
    );
  });

  it('refuses srt listener and rendezvous modes (ingest is always the caller)', async () => {
    for (const raw of [
      'srt://cdn.example:9000?mode=listener',
      'srt://cdn.example:9000?streamid=#!::r=live&mode=rendezvous',
    ]) {
      const error = await refusal(raw);
      expect(error.message).toMatch(
        /^srt option mode=\w+ is not accepted: ingest always connects as caller$/,
      );
      expect(error.context.rule).toBe('bad_option');
    }
    expect((await accepted('srt://cdn.example:9000?mode=caller')).kind).toBe('srt');
  });

  it('lets 127.0.0.1 through when allowedCidrs names it, while 10.0.0.1 stays refused', async () => {
    const loopbackAllowed = policy({ allowedCidrs: ['127.0.0.0/8'] });
    const source = await accepted('http://127.0.0.1:8081/live.m3u8', loopbackAllowed);
    expect(source).toEqual({
      kind: 'hls',
      input: 'http://127.0.0.1:8081/live.m3u8',
      redactedUrl: 'http://127.0.0.1:8081/live.m3u8',
      addresses: ['127.0.0.1'],
    });
    expect((await accepted('http://[::ffff:127.0.0.1]/', loopbackAllowed)).addresses).toEqual([
      '::ffff:7f00:1',
    ]);
    expect((await refusal('http://10.0.0.1/', loopbackAllowed)).message).toBe(
      'source host 10.0.0.1 resolves to 10.0.0.1, a private (RFC 1918) address: refused (SSRF guard)',
    );
    expect((await refusal('http://169.254.169.254/', loopbackAllowed)).context.rule).toBe('blocked_address');
  });

  it('lets private destinations through with allowPrivateNetworks (dev only)', async () => {
    const dev = policy({ allowPrivateNetworks: true });
    expect((await accepted('rtmp://internal.example/live/cam1', dev)).addresses).toEqual(['10.0.0.5']);
    expect((await accepted('http://127.0.0.1:8888/cam.m3u8', dev)).kind).toBe('hls');
    expect((await accepted('rtmp://mixed.example/app/key', dev)).addresses).toEqual([
      '93.184.216.34',
      '192.168.1.10',
    ]);
    // Non-canonical numeric hosts stay refused: the spelling, not the destination, is the problem.
    expect((await refusal('rtmp://0x7f000001/live', dev)).context.rule).toBe('non_canonical_ip');
  });

  it('accepts public hosts, recording the resolved addresses once each', async () => {
    expect((await accepted('rtmp://live.example/app/key')).addresses).toEqual([
      '93.184.216.35',
      '2606:2800:220:1::35',
    ]);
    expect((await accepted('http://twice.example/a.mp4')).addresses).toEqual(['93.184.216.34']);
    expect((await accepted('http://8.8.8.8/a.mp4')).addresses).toEqual(['8.8.8.8']);
  });

  it('uses the real resolver by default: localhost is loopback', async () => {
    const real = urlPolicyWithDefaults();
    const error = await refusal('http://localhost:8080/live.m3u8', real);
    expect(error.message).toMatch(
      /^source host localhost resolves to (127\.\d+\.\d+\.\d+|::1), a loopback address: refused \(SSRF guard\)$/,
    );
    const source = await accepted(
      'http://localhost:8080/live.m3u8',
      urlPolicyWithDefaults({ allowedCidrs: ['127.0.0.0/8', '::1/128'] }),
    );
    expect(source.kind).toBe('hls');
    expect(source.addresses.length).toBeGreaterThan(0);
    for (const address of source.addresses) expect(address).toMatch(/^(127\.\d+\.\d+\.\d+|::1)$/);
  });

  it('treats a bad allowedCidrs entry as a configuration error', async () => {
    const bad = { ...policy(), allowedCidrs: ['10.0.0.0/33'] };
    const error = await validateSourceUrl('http://10.0.0.1/', bad).catch((e: unknown) => e as LiveLensError);
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('invalid_config');
    expect((error as LiveLensError).message).toMatch(
      /^url policy allowedCidrs: '10\.0\.0\.0\/33' is not a CIDR/,
    );
  });
});

describe('kind detection and normalization', () => {
  it.each([
    ['https://cdn.example/live/index.m3u8', 'hls'],
    ['https://cdn.example/live/INDEX.M3U8', 'hls'],
    ['http://cdn.example/play?format=hls', 'hls'],
    ['http://cdn.example/play?format=HLS&x=1', 'hls'],
    ['http://cdn.example/video.mp4', 'http'],
    ['http://cdn.example/live.m3u8.mp4', 'http'],
    ['https://cdn.example/stream.ts', 'http'],
    ['rtmp://cdn.example/live/key', 'rtmp'],
    ['rtmps://cdn.example/live/key', 'rtmp'],
    ['srt://cdn.example:9000?streamid=abc', 'srt'],
  ])('%s is %s', async (raw, kind) => {
    expect((await accepted(raw)).kind).toBe(kind);
  });

  it('hands ffmpeg the normalized URL: host case folded, default port and dot segments gone, no fragment', async () => {
    expect((await accepted('HTTP://CDN.Example:80/a/../live.m3u8#frag')).input).toBe(
      'http://cdn.example/live.m3u8',
    );
    expect((await accepted('RTMP://CDN.Example/App/Key')).input).toBe('rtmp://cdn.example/App/Key');
  });

  it("keeps '#' for srt, where it belongs to the streamid", async () => {
    const source = await accepted('srt://cdn.example:9000?streamid=#!::r=live/cam1,m=request');
    expect(source.input).toBe('srt://cdn.example:9000?streamid=#!::r=live/cam1,m=request');
    expect(source.redactedUrl).toBe('srt://cdn.example:9000?***');
  });
});

describe('redaction', () => {
  it('hides userinfo, the rtmp stream key and the query, and keeps credentials only in input', async () => {
    const source = await accepted('rtmp://user:secret@host/app/streamkey?token=abc');
    expect(source.redactedUrl).toBe('rtmp://***@host/app/***?***');
    expect(source.input).toBe('rtmp://user:secret@host/app/streamkey?token=abc');
    expect(source.kind).toBe('rtmp');
  });

  it('hides query strings and fragments of http(s) and srt URLs, keeping the path and port', async () => {
    expect(
      (await accepted('https://viewer@cdn.example:8443/live/index.m3u8?hdnts=exp=1~hmac=ab#t=3')).redactedUrl,
    ).toBe('https://***@cdn.example:8443/live/index.m3u8?***');
    expect((await accepted('srt://cdn.example:9000?passphrase=hunter2hunter2')).redactedUrl).toBe(
      'srt://cdn.example:9000?***',
    );
    expect((await accepted('rtmp://cdn.example/app')).redactedUrl).toBe('rtmp://cdn.example/app');
  });

  it('never echoes credentials in refusals', async () => {
    for (const raw of [
      'rtmp://user:secret@10.0.0.1/app/streamkey?token=abc',
      'rtmp://user:secret@nowhere.example/app/streamkey?token=abc',
      'rtmp://user:secret@0x7f000001/app/streamkey',
      'gopher://user:secret@host/',
      'rtmp://user:secret@host/app/$key',
      'rtmp://user:secret@host/app/key\n',
      `rtmp://user:secret@host/${'k'.repeat(3000)}`,
      'rtmp://user:secret@host:0/app',
    ]) {
      const error = await refusal(raw);
      expect(error.message, raw.slice(0, 60)).not.toMatch(/secret|user|streamkey|token|abc/);
    }
  });
});

describe('file sources', () => {
  let base: string;
  let root: string;
  let rootLink: string;
  let outside: string;
  const url = (file: string) => pathToFileURL(file).href;

  beforeAll(async () => {
    base = await realpath(await mkdtemp(path.join(tmpdir(), 'livelens-url-policy-')));
    root = path.join(base, 'media');
    outside = path.join(base, 'outside');
    rootLink = path.join(base, 'media-link');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(root, 'clip.mp4'), 'not really mp4');
    await writeFile(path.join(root, 'sub', 'my clip #1.mp4'), 'x');
    await writeFile(path.join(root, '..clip.mp4'), 'x');
    for (const name of ['list.m3u8', 'LIST.M3U', 'files.txt', 'list.ffconcat', 'list.concat']) {
      await writeFile(path.join(root, name), 'file /etc/passwd\n');
    }
    await writeFile(path.join(outside, 'secret.mp4'), 'secret');
    await symlink(path.join(outside, 'secret.mp4'), path.join(root, 'escape.mp4'));
    await symlink(outside, path.join(root, 'outside-dir'));
    await symlink(path.join(root, 'clip.mp4'), path.join(root, 'alias.mp4'));
    await symlink(path.join(root, 'list.m3u8'), path.join(root, 'disguised.mp4'));
    await symlink(root, rootLink);
  });

  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('refuses file sources when no media root is set', async () => {
    const error = await refusal('file:///etc/passwd', policy({ mediaRoot: undefined }));
    expect(error.message).toBe('file sources are disabled: set INGEST_MEDIA_ROOT');
    expect(error.context.rule).toBe('file_disabled');
  });

  it('refuses /etc/passwd with a media root elsewhere, and dot-segment escapes', async () => {
    const withRoot = policy({ mediaRoot: root });
    expect((await refusal('file:///etc/passwd', withRoot)).message).toBe(
      'file source /etc/passwd is outside the media root: refused',
    );
    for (const raw of [
      `${url(root)}/../outside/secret.mp4`,
      `${url(root)}/%2e%2e/outside/secret.mp4`,
      url(`${root}-other/x.mp4`),
    ]) {
      const error = await refusal(raw, withRoot);
      expect(error.message, raw).toMatch(/^file source \S+ is outside the media root: refused$/);
      expect(error.context.rule).toBe('file_outside_root');
    }
  });

  it('accepts a regular file under the root, handing ffmpeg its real path', async () => {
    const source = await accepted(url(path.join(root, 'clip.mp4')), policy({ mediaRoot: root }));
    expect(source).toEqual({
      kind: 'file',
      input: path.join(root, 'clip.mp4'),
      redactedUrl: url(path.join(root, 'clip.mp4')),
      addresses: [],
    });
    expect(
      (await accepted(`file://localhost${path.join(root, 'clip.mp4')}`, policy({ mediaRoot: root }))).input,
    ).toBe(path.join(root, 'clip.mp4'));
    expect((await accepted(url(path.join(root, '..clip.mp4')), policy({ mediaRoot: root }))).input).toBe(
      path.join(root, '..clip.mp4'),
    );
  });

  it('percent-decodes the path', async () => {
    const raw = `${url(root)}/sub/my%20clip%20%231.mp4`;
    expect((await accepted(raw, policy({ mediaRoot: root }))).input).toBe(
      path.join(root, 'sub', 'my clip #1.mp4'),
    );
  });

  it('refuses a symlink escaping the media root, and a symlinked directory that does', async () => {
    const withRoot = policy({ mediaRoot: root });
    expect((await refusal(url(path.join(root, 'escape.mp4')), withRoot)).message).toBe(
      `file source ${path.join(root, 'escape.mp4')} resolves through a symbolic link to a path outside the media root: refused`,
    );
    expect((await refusal(url(path.join(root, 'outside-dir', 'secret.mp4')), withRoot)).context.rule).toBe(
      'file_outside_root',
    );
  });

  it('follows symlinks that stay inside, and a media root that is itself a symlink', async () => {
    expect((await accepted(url(path.join(root, 'alias.mp4')), policy({ mediaRoot: root }))).input).toBe(
      path.join(root, 'clip.mp4'),
    );
    const viaLink = policy({ mediaRoot: rootLink });
    expect((await accepted(url(path.join(rootLink, 'clip.mp4')), viaLink)).input).toBe(
      path.join(root, 'clip.mp4'),
    );
    expect((await accepted(url(path.join(root, 'clip.mp4')), viaLink)).input).toBe(
      path.join(root, 'clip.mp4'),
    );
    expect((await refusal(url(path.join(rootLink, 'escape.mp4')), viaLink)).context.rule).toBe(
      'file_outside_root',
    );
  });

  it.each(['list.m3u8', 'LIST.M3U', 'files.txt', 'list.ffconcat', 'list.concat', 'disguised.mp4'])(
    'refuses the playlist or list %s',
    async (name) => {
      const error = await refusal(url(path.join(root, name)), policy({ mediaRoot: root }));
      expect(error.message).toMatch(
        /^file source \S+ is a playlist or list \(\.(m3u8|m3u|txt|ffconcat|concat)\), which could make ffmpeg open other files: refused$/,
      );
      expect(error.context.rule).toBe('file_extension');
    },
  );

  it('refuses directories and missing files', async () => {
    const withRoot = policy({ mediaRoot: root });
    expect((await refusal(url(path.join(root, 'sub')), withRoot)).message).toBe(
      `file source ${path.join(root, 'sub')} is not a regular file`,
    );
    expect((await refusal(url(path.join(root, 'nope.mp4')), withRoot)).message).toBe(
      `file source ${path.join(root, 'nope.mp4')} does not exist`,
    );
  });

  it('refuses file URLs that are not file:///absolute/path', async () => {
    const withRoot = policy({ mediaRoot: root });
    for (const raw of ['file://fileserver/share/clip.mp4', 'file:clip.mp4', 'file:/etc/passwd']) {
      expect((await refusal(raw, withRoot)).message, raw).toBe(
        'file source URLs must be absolute: file:///path/under/media/root',
      );
    }
    expect((await refusal(`${url(path.join(root, 'clip.mp4'))}?x=1`, withRoot)).message).toBe(
      "file source URLs take no query string or fragment (percent-encode '?' as %3F and '#' as %23)",
    );
    expect((await refusal(`${url(root)}/sub%2Fclip.mp4`, withRoot)).context.rule).toBe('file_syntax');
    expect((await refusal(`${url(root)}/clip%00.mp4`, withRoot)).message).toBe(
      'file source path contains a control character (percent-encoded)',
    );
  });

  it('reports a missing media root as a server-side precondition, not the caller’s error', async () => {
    const missing = policy({ mediaRoot: path.join(base, 'does-not-exist') });
    const error = await validateSourceUrl(url(path.join(base, 'does-not-exist', 'a.mp4')), missing).catch(
      (e: unknown) => e as LiveLensError,
    );
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('failed_precondition');
    expect((error as LiveLensError).message).toBe(
      'file sources are unavailable: the media root is not accessible on this server',
    );
  });
});

describe('urlPolicyWithDefaults', () => {
  it('fills in the documented defaults', () => {
    expect(urlPolicyWithDefaults()).toEqual({
      allowedSchemes: ['rtmp', 'rtmps', 'http', 'https', 'srt', 'file'],
      mediaRoot: undefined,
      allowPrivateNetworks: false,
      allowedCidrs: [],
      maxUrlLength: 2048,
      resolveTimeoutMs: 3000,
    });
  });

  it.each([
    [{ allowedSchemes: ['rtmp', 'rtsp'] }, "url policy allowedSchemes: 'rtsp' is not supported"],
    [{ allowedCidrs: ['10.0.0.0/8', 'private'] }, "url policy allowedCidrs: 'private' is not a CIDR"],
    [{ maxUrlLength: 0 }, 'url policy maxUrlLength: expected a positive integer, got 0'],
    [{ resolveTimeoutMs: -1 }, 'url policy resolveTimeoutMs: expected a positive number, got -1'],
    [{ mediaRoot: 'media' }, "url policy mediaRoot: expected an absolute path, got 'media'"],
  ] as [Partial<UrlPolicy>, string][])('refuses %o as invalid_config', (options, message) => {
    let error: unknown;
    try {
      urlPolicyWithDefaults(options);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(LiveLensError);
    expect((error as LiveLensError).code).toBe('invalid_config');
    expect((error as LiveLensError).message).toContain(message);
  });
});
