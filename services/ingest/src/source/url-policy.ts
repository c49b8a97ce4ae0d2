/**
 * Source URL policy: the first gate every StartStream call passes, before any ffmpeg is spawned.
 *
 * `validateSourceUrl(raw, policy)` turns a user-supplied URL into a `ValidatedSource` or throws a
 * non-retriable `LiveLensError` with code 'invalid_argument' and a message the user can act on (never the
 * URL itself, so credentials and tokens stay out of errors and logs). It refuses, in this order:
 * 1. strings that are empty, too long, contain control/whitespace characters, start with '-' (ffmpeg would
 *    read them as an option), name an ffmpeg pseudo- or nested protocol (`concat:`, `subfile,`, `data:`,
 *    `pipe:`, `crypto+http:` …), contain shell metacharacters, or are not absolute WHATWG URLs;
 * 2. schemes outside `allowedSchemes` (which can only ever name rtmp, rtmps, http, https, srt and file);
 * 3. network sources whose host is missing, numeric but not canonical (`rtmp://0x7f000001/`), a cloud metadata
 *    name, unresolvable, or resolves to ANY address in `BLOCKED_RANGES` (loopback, private, link-local and
 *    metadata, CGNAT, multicast, documentation, IPv4-mapped/NAT64 forms of those …) that neither
 *    `allowPrivateNetworks` nor `allowedCidrs` admits;
 * 4. file sources when no media root is set, or whose real path (symlinks resolved) is outside the media root,
 *    is not a regular file, or is a playlist/list that could make ffmpeg open other files.
 *
 * What `input` is: for network sources the WHATWG-normalized URL, so ffmpeg connects to exactly the host we
 * checked (`http://0x7f.1/` is handed on as `http://127.0.0.1/`, never as the original spelling); for files
 * the absolute real path, so a symlink swapped after this check cannot redirect ffmpeg elsewhere through
 * that link (a writer inside the media root could still swap a parent directory: keep the root read-only
 * to untrusted parties).
 *
 * WHAT THIS GATE CANNOT STOP, and where the defence is instead:
 * - HTTP redirects: ffmpeg follows 3xx itself, to any host and (HTTP→RTSP) even other protocols.
 * - HLS playlists: segment and child-playlist URLs may point at other hosts, private addresses or local
 *   files; only the top-level URL passes through here.
 * - DNS rebinding: the name is resolved here and again by ffmpeg; a hostile DNS server can answer a public
 *   address to us and 127.0.0.1 to ffmpeg a moment later.
 * - Hostile media: decoder and demuxer bugs are reached by any bytes, from any allowed source.
 * The defence there is (a) ffmpeg's own `-protocol_whitelist` per scheme (never file, concat, subfile, data,
 * pipe for network sources) with `-format_whitelist`, untouched `allowed_extensions`, and a wall-clock
 * watchdog, built by the argv builder; and (b) a network egress policy in deployment (Kubernetes
 * NetworkPolicy or netns rules) that lets the ffmpeg processes reach only the public internet: no
 * cluster, node, metadata (169.254.169.254) or private ranges. See reliability.md §3 and §7 cases 27–29.
 * Whether a caller may use `file:` at all (case 38: admins only) is authorization, decided before this gate;
 * leave 'file' out of `allowedSchemes` to refuse it for everyone.
 */
import { lookup } from 'node:dns/promises';
import { realpath, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LiveLensError } from '@livelens/runtime';
import {
  type BlockedAddress,
  type Cidr,
  cidrContains,
  embeddedIPv4,
  findBlockedRange,
  type IpAddress,
  isBlockedHostname,
  parseCidr,
  parseIp,
} from './ip-ranges.js';

// What ffmpeg is asked to open (one declaration, in types.ts): decides the whitelists downstream.
import type { SourceKind } from './types.js';

export type { SourceKind };

/** The policy a source URL is checked against. Build it with `urlPolicyWithDefaults()`. */
export interface UrlPolicy {
  /**
   * Schemes accepted; only rtmp, rtmps, http, https, srt and file can be named.
   * @default ['rtmp','rtmps','http','https','srt','file']
   */
  allowedSchemes: readonly string[];
  /** Directory local files must be under (realpath-checked); undefined = file sources refused. @default undefined */
  mediaRoot: string | undefined;
  /** Allow loopback/private/link-local/... destinations (dev only). @default false */
  allowPrivateNetworks: boolean;
  /** CIDRs allowed even though private (e.g. ['127.0.0.0/8'] for tests, or a CDN range). @default [] */
  allowedCidrs: readonly string[];
  /** Longest accepted URL, in UTF-16 code units. @default 2048 */
  maxUrlLength: number;
  /** DNS lookup, injectable for unit tests. @default dns.lookup(host, { all: true, verbatim: true }) */
  resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
  /** DNS timeout. @default 3000 */
  resolveTimeoutMs?: number;
}

/** A source that passed the policy. */
export interface ValidatedSource {
  /** rtmp/rtmps → 'rtmp'; http(s) with a path ending .m3u8 (any case) or ?format=hls → 'hls'; other http(s) → 'http'. */
  kind: SourceKind;
  /**
   * What ffmpeg should open: the normalized URL (network; credentials kept, because ffmpeg needs them: never
   * log it), or the absolute real path (file).
   */
  input: string;
  /**
   * For logs, events and API responses. Userinfo becomes `***@`; a query string becomes `?***` (keys are
   * dropped too: a bare `?s3cr3t` is a key, and SRT puts passphrase and streamid there); the fragment is
   * dropped; for rtmp the stream name after the application (`/app/***`) is masked, because it is the
   * stream key. For files: the file URL as requested.
   */
  redactedUrl: string;
  /** Resolved IPs (network kinds), deduplicated; empty for files. */
  addresses: string[];
}

/** Which rule refused a URL; set as `context.rule` on the error, for logs and a bounded metrics label. */
export type UrlPolicyRule =
  | 'empty'
  | 'too_long'
  | 'control_character'
  | 'leading_dash'
  | 'pseudo_protocol'
  | 'shell_metacharacter'
  | 'malformed'
  | 'scheme_not_allowed'
  | 'missing_host'
  | 'bad_port'
  | 'bad_host'
  | 'non_canonical_ip'
  | 'metadata_host'
  | 'unresolvable_host'
  | 'blocked_address'
  | 'bad_option'
  | 'file_disabled'
  | 'file_syntax'
  | 'file_outside_root'
  | 'file_not_found'
  | 'file_not_regular'
  | 'file_extension';

/** The schemes this module knows how to classify; `allowedSchemes` can only narrow this. */
const SCHEME_KINDS: ReadonlyMap<string, SourceKind> = new Map([
  ['rtmp', 'rtmp'],
  ['rtmps', 'rtmp'],
  ['http', 'http'],
  ['https', 'http'],
  ['srt', 'srt'],
  ['file', 'file'],
]);

/** @see UrlPolicy.allowedSchemes */
export const DEFAULT_ALLOWED_SCHEMES: readonly string[] = ['rtmp', 'rtmps', 'http', 'https', 'srt', 'file'];
const DEFAULT_MAX_URL_LENGTH = 2048;
const DEFAULT_RESOLVE_TIMEOUT_MS = 3000;

/**
 * ffmpeg protocols that wrap or read other resources (`concat:a|b`, `subfile,,start,…:file`, `cache:`,
 * `crypto+http:`, `data:`, `pipe:`, `fd:`, `tee:`): refused with their own message even before URL parsing,
 * whatever the policy says. Anything else not in the allowlist (gopher, ftp, rtsp, unix, tcp, udp …) gets
 * the plain "scheme not allowed" message.
 */
const PSEUDO_PROTOCOLS: ReadonlySet<string> = new Set([
  'async',
  'cache',
  'concat',
  'concatf',
  'crypto',
  'data',
  'fd',
  'hls',
  'md5',
  'pipe',
  'subfile',
  'tee',
]);

/**
 * Characters with meaning to a shell. The argv is built without a shell, so they are harmless to ffmpeg,
 * but no stream URL needs them raw (percent-encode them), and refusing them keeps copy-pasted command lines
 * and log-viewer accidents harmless too (reliability.md case 38). '&', '=', '*', '~', '!' and '#' stay
 * allowed: query strings, CDN tokens and SRT stream ids (`#!::r=…`) use them.
 */
const SHELL_METACHARACTERS = /[`$;|<>"'\\{}]/;

/** ASCII/Unicode control, format and unassigned characters, and every kind of whitespace. */
const CONTROL_OR_SPACE = /[\p{C}\p{Z}\s]/u;

/**
 * File extensions refused for file sources: lists and playlists (and SDP/DASH manifests) make ffmpeg open
 * further files or network addresses named inside them. ffmpeg also sniffs content, so this is a first line
 * only; the argv builder's `-protocol_whitelist file` and format whitelist are the real limit.
 */
const REFUSED_FILE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.m3u8',
  '.m3u',
  '.txt',
  '.ffconcat',
  '.concat',
  '.sdp',
  '.mpd',
  '.pls',
]);

/**
 * Fills in the documented defaults and checks the policy, so a bad configuration fails at startup rather
 * than on the first StartStream. Throws `LiveLensError` 'invalid_config' naming the field and the value.
 */
export function urlPolicyWithDefaults(options: Partial<UrlPolicy> = {}): UrlPolicy {
  const policy: UrlPolicy = {
    allowedSchemes: options.allowedSchemes ?? DEFAULT_ALLOWED_SCHEMES,
    mediaRoot: options.mediaRoot,
    allowPrivateNetworks: options.allowPrivateNetworks ?? false,
    allowedCidrs: options.allowedCidrs ?? [],
    maxUrlLength: options.maxUrlLength ?? DEFAULT_MAX_URL_LENGTH,
    resolveTimeoutMs: options.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS,
    ...(options.resolve ? { resolve: options.resolve } : {}),
  };
  for (const scheme of policy.allowedSchemes) {
    if (!SCHEME_KINDS.has(scheme)) {
      throw configError(
        `url policy allowedSchemes: '${scheme}' is not supported (expected a subset of ${DEFAULT_ALLOWED_SCHEMES.join(', ')})`,
      );
    }
  }
  if (!Number.isInteger(policy.maxUrlLength) || policy.maxUrlLength < 1) {
    throw configError(`url policy maxUrlLength: expected a positive integer, got ${policy.maxUrlLength}`);
  }
  const timeoutMs = policy.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw configError(`url policy resolveTimeoutMs: expected a positive number, got ${timeoutMs}`);
  }
  if (policy.mediaRoot !== undefined && !path.isAbsolute(policy.mediaRoot)) {
    throw configError(`url policy mediaRoot: expected an absolute path, got '${policy.mediaRoot}'`);
  }
  compileCidrs(policy.allowedCidrs);
  return policy;
}

/**
 * Checks a user-supplied source URL against `policy` (see the top of this file) and returns what ffmpeg
 * should open. Throws `LiveLensError` 'invalid_argument' (retriable false) naming the rule that refused it;
 * 'invalid_config' for a bad `allowedCidrs` entry, 'failed_precondition' when the media root is unreadable.
 */
export async function validateSourceUrl(raw: string, policy: UrlPolicy): Promise<ValidatedSource> {
  checkRawString(raw, policy.maxUrlLength);
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw refuse(
      'malformed',
      'source URL is not a valid absolute URL (expected e.g. rtmp://host/app/stream, https://host/live.m3u8, srt://host:9000 or file:///media/clip.mp4)',
      {},
      error,
    );
  }
  const scheme = url.protocol.slice(0, -1);
  const kind = SCHEME_KINDS.get(scheme);
  const allowed = policy.allowedSchemes.filter((s) => SCHEME_KINDS.has(s));
  if (kind === undefined || !allowed.includes(scheme)) {
    throw refuse(
      'scheme_not_allowed',
      `source URL scheme '${scheme}' is not allowed (allowed: ${allowed.join(', ') || 'none'})`,
      { scheme },
    );
  }
  if (kind === 'file') return validateFileSource(raw, url, policy);
  return validateNetworkSource(url, scheme, kind, policy);
}

/** The checks made on the raw string, before any parser sees it. */
function checkRawString(raw: string, maxUrlLength: number): void {
  if (typeof raw !== 'string' || raw.length === 0) {
    throw refuse('empty', 'source URL is empty');
  }
  if (raw.length > maxUrlLength) {
    throw refuse('too_long', `source URL is ${raw.length} characters long; the limit is ${maxUrlLength}`);
  }
  const control = CONTROL_OR_SPACE.exec(raw);
  if (control) {
    const codePoint = control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw refuse(
      'control_character',
      `source URL contains a control or whitespace character (U+${codePoint}) at position ${control.index}; percent-encode spaces as %20`,
    );
  }
  if (raw.startsWith('-')) {
    throw refuse('leading_dash', "source URL must not start with '-' (ffmpeg would read it as an option)");
  }
  // ffmpeg picks its protocol from the leading run of [A-Za-z0-9+.-] up to ':' (or ',' for subfile), so
  // read the prefix the way ffmpeg does, not the way WHATWG does: `subfile,,start,0,…:` is no URL to WHATWG.
  const prefix = /^([A-Za-z0-9+.-]*)([:,])/.exec(raw);
  if (prefix) {
    const name = prefix[1]!.toLowerCase();
    if (PSEUDO_PROTOCOLS.has(name) || name.includes('+') || prefix[2] === ',') {
      throw refuse(
        'pseudo_protocol',
        `source URL uses the ffmpeg pseudo-protocol '${name}${prefix[2]}', which can read local files or other URLs: refused`,
        { scheme: name },
      );
    }
  }
  const meta = SHELL_METACHARACTERS.exec(raw);
  if (meta) {
    throw refuse(
      'shell_metacharacter',
      `source URL contains the shell metacharacter '${meta[0]}' at position ${meta.index}; percent-encode it if it is part of the URL`,
    );
  }
}

async function validateNetworkSource(
  url: URL,
  scheme: string,
  kind: SourceKind,
  policy: UrlPolicy,
): Promise<ValidatedSource> {
  if (url.hostname === '') {
    throw refuse('missing_host', `source URL has no host (expected ${scheme}://host…)`, { scheme });
  }
  // http/https are WHATWG "special" schemes: their host is already canonical (IPv4 number forms such as
  // 2130706433 or 0x7f.1 become 127.0.0.1, IDN becomes punycode, case is folded). rtmp, rtmps and srt are
  // not: their host is kept as written, and ffmpeg hands it to getaddrinfo, which reads `0x7f000001`,
  // `2130706433` and `0177.1` as 127.0.0.1 (inet_aton). Those are refused below unless canonical.
  const special = scheme === 'http' || scheme === 'https';
  if (!special) url.hostname = url.hostname.toLowerCase();
  const host = url.hostname;
  const context = { scheme, host };
  if (url.port !== '') {
    const port = Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw refuse('bad_port', `source URL port ${url.port} is out of range (1-65535)`, context);
    }
  }

  let addresses: string[];
  if (host.startsWith('[')) {
    addresses = [host.slice(1, -1)];
  } else if (isIP(host) === 4) {
    addresses = [host];
  } else if (endsInNumber(host)) {
    let meaning = '';
    try {
      meaning = ` (it means ${new URL(`http://${host}/`).hostname})`;
    } catch {
      // Not even WHATWG reads it as an address: refuse all the same, without saying what it means.
    }
    throw refuse(
      'non_canonical_ip',
      `source host '${host}' is a non-canonical numeric IPv4 address${meaning}; write IPv4 addresses as four decimal numbers a.b.c.d`,
      context,
    );
  } else {
    if (!isHostName(host)) {
      throw refuse(
        'bad_host',
        `source host '${host}' is not a valid host name (letters, digits, '-', '_' and '.'; write international names in their xn-- form)`,
        context,
      );
    }
    if (isBlockedHostname(host)) {
      throw refuse(
        'metadata_host',
        `source host ${host} is a cloud metadata service name: refused (SSRF guard)`,
        context,
      );
    }
    addresses = await resolveHost(host, policy, context);
  }

  const allowedCidrs = compileCidrs(policy.allowedCidrs);
  for (const address of addresses) {
    const ip = parseIp(address);
    if (!ip) {
      throw refuse(
        'unresolvable_host',
        `cannot resolve host ${host}: the resolver returned '${address}', which is not an IP address`,
        context,
      );
    }
    const blocked = findBlockedRange(ip);
    if (blocked && !policy.allowPrivateNetworks && !isAllowed(ip, allowedCidrs)) {
      throw refuse(
        'blocked_address',
        `source host ${host} resolves to ${describeAddress(address, blocked)}: refused (SSRF guard)`,
        { ...context, address },
      );
    }
  }

  if (kind === 'srt') checkSrtOptions(url, context);

  // A fragment is never sent by an HTTP client, so drop it from what ffmpeg gets. For rtmp and srt ffmpeg
  // does not know fragments: '#' is part of the stream name or of an SRT streamid (`#!::r=live`), kept.
  if (special) url.hash = '';
  return {
    kind: kind === 'http' && isHls(url) ? 'hls' : kind,
    input: url.href,
    redactedUrl: redactNetworkUrl(url, kind),
    addresses: [...new Set(addresses)],
  };
}

/**
 * WHATWG's "ends in a number" test: the last label (after one trailing dot) is all digits or 0x-hex. Such
 * a host is an IPv4 address to WHATWG and to getaddrinfo, never a DNS name.
 */
function endsInNumber(host: string): boolean {
  const labels = host.split('.');
  if (labels.at(-1) === '' && labels.length > 1) labels.pop();
  const last = labels.at(-1) ?? '';
  return /^\d+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

/** A DNS name of letters, digits, '-' and '_' labels (1–63 each, not starting with '-'), 253 at most. */
function isHostName(host: string): boolean {
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => /^[a-z0-9_][a-z0-9_-]{0,62}$/i.test(label));
}

async function resolveHost(
  host: string,
  policy: UrlPolicy,
  context: { scheme: string; host: string },
): Promise<string[]> {
  const resolve = policy.resolve ?? ((name: string) => lookup(name, { all: true, verbatim: true }));
  const timeoutMs = policy.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  let results: { address: string; family: number }[];
  try {
    // dns.lookup cannot be cancelled; on timeout its late answer is simply ignored.
    results = await Promise.race([resolve(host), timeout]);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const why = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
    throw refuse('unresolvable_host', `cannot resolve host ${host} (${why})`, context, error);
  } finally {
    clearTimeout(timer);
  }
  if (!Array.isArray(results) || results.length === 0) {
    throw refuse('unresolvable_host', `cannot resolve host ${host} (no addresses)`, context);
  }
  return results.map((result) => result.address);
}

/** Parsed `allowedCidrs`; a bad entry is a configuration error, not the user's. */
function compileCidrs(cidrs: readonly string[]): Cidr[] {
  return cidrs.map((text) => {
    try {
      return parseCidr(text);
    } catch (error) {
      throw configError(`url policy allowedCidrs: ${(error as Error).message}`, error);
    }
  });
}

/** An address (or the IPv4 address it embeds) inside one of the allowed CIDRs. */
function isAllowed(ip: IpAddress, allowedCidrs: readonly Cidr[]): boolean {
  const inner = embeddedIPv4(ip);
  return allowedCidrs.some(
    (cidr) => cidrContains(cidr, ip) || (inner !== undefined && cidrContains(cidr, inner)),
  );
}

function describeAddress(address: string, blocked: BlockedAddress): string {
  const embedded =
    blocked.embeddedIPv4 && blocked.via
      ? ` (${blocked.via.description.replace(/^an? /, '').replace(/ address$/, '')} ${blocked.embeddedIPv4})`
      : '';
  return `${address}${embedded}, ${blocked.range.description}`;
}

/**
 * ffmpeg's libsrt reads options from everything after '?' (what WHATWG calls query and fragment alike).
 * Ingest is always the caller: `mode=listener` or `rendezvous` would open a port on the ingest host.
 */
function checkSrtOptions(url: URL, context: { scheme: string; host: string }): void {
  const options = `${url.search.slice(1)}${url.hash}`;
  for (const pair of options.split('&')) {
    const [key, value = ''] = pair.split('=', 2);
    if (key?.toLowerCase() === 'mode' && value !== 'caller') {
      throw refuse(
        'bad_option',
        `srt option mode=${value.slice(0, 16)} is not accepted: ingest always connects as caller`,
        context,
      );
    }
  }
}

/** http(s) sources that are HLS playlists: a path ending .m3u8 (any case) or `?format=hls`. */
function isHls(url: URL): boolean {
  return (
    url.pathname.toLowerCase().endsWith('.m3u8') || url.searchParams.get('format')?.toLowerCase() === 'hls'
  );
}

/** See `ValidatedSource.redactedUrl`. */
function redactNetworkUrl(url: URL, kind: SourceKind): string {
  const userinfo = url.username !== '' || url.password !== '' ? '***@' : '';
  let pathname = url.pathname;
  if (kind === 'rtmp') {
    // rtmp://host/app/stream: the application is routing, the stream name is the key.
    const match = /^(\/[^/]*)\/./.exec(pathname);
    if (match) pathname = `${match[1]}/***`;
  }
  const query = url.search !== '' ? '?***' : '';
  return `${url.protocol}//${userinfo}${url.host}${pathname}${query}`;
}

async function validateFileSource(raw: string, url: URL, policy: UrlPolicy): Promise<ValidatedSource> {
  const context = { scheme: 'file' };
  if (policy.mediaRoot === undefined) {
    throw refuse('file_disabled', 'file sources are disabled: set INGEST_MEDIA_ROOT', context);
  }
  // Only file:///abs/path (or file://localhost/abs/path): WHATWG would also accept file:rel and
  // file://otherhost/, neither of which means a local absolute path.
  if (!/^file:\/\/(localhost)?\//i.test(raw)) {
    throw refuse('file_syntax', 'file source URLs must be absolute: file:///path/under/media/root', context);
  }
  if (raw.includes('?') || raw.includes('#')) {
    throw refuse(
      'file_syntax',
      "file source URLs take no query string or fragment (percent-encode '?' as %3F and '#' as %23)",
      context,
    );
  }
  let requested: string;
  try {
    requested = path.resolve(fileURLToPath(url));
  } catch (error) {
    // e.g. an encoded '/' (%2F) in a path segment.
    throw refuse(
      'file_syntax',
      `file source URL is not a local path: ${(error as Error).message}`,
      context,
      error,
    );
  }
  if (/\p{C}/u.test(requested)) {
    throw refuse(
      'control_character',
      'file source path contains a control character (percent-encoded)',
      context,
    );
  }
  checkFileExtension(requested, requested);

  let realRoot: string;
  try {
    realRoot = await realpath(policy.mediaRoot);
  } catch (error) {
    throw new LiveLensError('file sources are unavailable: the media root is not accessible on this server', {
      code: 'failed_precondition',
      retriable: false,
      cause: error,
      context: { rule: 'file_disabled' },
    });
  }
  // Lexical check first, so paths outside the root get one answer whether or not they exist (no probing
  // of the server's file system through "not found" versus "outside").
  if (!isInside(path.resolve(policy.mediaRoot), requested) && !isInside(realRoot, requested)) {
    throw refuse('file_outside_root', `file source ${requested} is outside the media root: refused`, context);
  }
  let real: string;
  try {
    real = await realpath(requested);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const why =
      code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${String(code)})`;
    throw refuse('file_not_found', `file source ${requested} ${why}`, context, error);
  }
  if (!isInside(realRoot, real)) {
    throw refuse(
      'file_outside_root',
      `file source ${requested} resolves through a symbolic link to a path outside the media root: refused`,
      context,
    );
  }
  checkFileExtension(requested, real);
  let isFile: boolean;
  try {
    isFile = (await stat(real)).isFile();
  } catch (error) {
    throw refuse('file_not_found', `file source ${requested} cannot be read`, context, error);
  }
  if (!isFile) {
    throw refuse('file_not_regular', `file source ${requested} is not a regular file`, context);
  }
  return { kind: 'file', input: real, redactedUrl: pathToFileURL(requested).href, addresses: [] };
}

/**
 * `child` is strictly inside `root`. `path.relative` gives '..' or '../…' for paths outside and an absolute
 * path across roots; a name like '..clip.mp4' directly under the root is inside, hence the separator test.
 */
function isInside(root: string, child: string): boolean {
  const relative = path.relative(root, child);
  return (
    relative !== '' &&
    relative !== '..' &&
    !relative.startsWith(`..${path.sep}`) &&
    !path.isAbsolute(relative)
  );
}

/** Checks both the requested name and the real one: a `clip.mp4` symlink to `list.m3u8` is still a list. */
function checkFileExtension(requested: string, real: string): void {
  for (const name of [requested, real]) {
    const extension = path.extname(name).toLowerCase();
    if (REFUSED_FILE_EXTENSIONS.has(extension)) {
      throw refuse(
        'file_extension',
        `file source ${requested} is a playlist or list (${extension}), which could make ffmpeg open other files: refused`,
        { scheme: 'file' },
      );
    }
  }
}

function refuse(
  rule: UrlPolicyRule,
  message: string,
  context: { scheme?: string; host?: string; address?: string } = {},
  cause?: unknown,
): LiveLensError {
  return new LiveLensError(message, {
    code: 'invalid_argument',
    retriable: false,
    cause,
    context: { rule, ...context },
  });
}

function configError(message: string, cause?: unknown): LiveLensError {
  return new LiveLensError(message, { code: 'invalid_config', retriable: false, cause });
}
