/**
 * ffmpeg's stderr, line by line: a bounded ring of recent lines for failure details (credentials scrubbed),
 * the failure classifier, and the parser of the per-frame lines the `metadata=mode=print` filter writes.
 * The patterns come from real ffmpeg 5.1 output (stderr.test.ts pastes the lines they were taken from).
 */
import { PRINT_FILTER_NAME, SAMPLE_MARKER_KEY } from './ffmpeg-args.js';
import type { FailureReason } from './types.js';

/** Lines kept for `SourceExit.detail`. */
export const STDERR_RING_LINES = 50;
/** A longer line is cut (ffmpeg's own lines are under 1 KiB; this bounds anything echoed from the stream). */
export const STDERR_MAX_LINE_CHARS = 1000;

/**
 * The last `capacity` lines, scrubbed of the input string (a URL with credentials, an RTMP stream key, an SRT
 * passphrase: ffmpeg echoes the input in `Input #0 ... from '<url>'` and in its final error line) and of any
 * `scheme://user:pass@` userinfo.
 */
export class StderrRing {
  private readonly lines: string[] = [];

  constructor(
    private readonly secret: string | undefined,
    private readonly capacity = STDERR_RING_LINES,
  ) {}

  push(line: string): void {
    if (line.trim() === '') return;
    this.lines.push(redactLine(line, this.secret));
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  snapshot(): string[] {
    return [...this.lines];
  }

  text(): string {
    return this.lines.join('\n');
  }
}

/** Scrubs `secret` (exact occurrences) and URL userinfo from a line, and bounds its length. */
export function redactLine(line: string, secret: string | undefined): string {
  let out = line.length > STDERR_MAX_LINE_CHARS ? `${line.slice(0, STDERR_MAX_LINE_CHARS)}…` : line;
  if (secret && secret.length >= 4) out = out.split(secret).join('<input>');
  // Userinfo anywhere, and query strings of every URL ffmpeg logs (HLS segments carry signed tokens).
  return out
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@'"]+@/gi, '$1***@')
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s'"?]*)\?[^\s'"]*/gi, '$1?***');
}

interface Rule {
  reason: FailureReason | ((match: RegExpMatchArray) => FailureReason);
  pattern: RegExp;
}

/**
 * Most specific first: an HLS playlist whose segment is refused ends with the generic "Invalid data found
 * when processing input" after the line that says why, and the why must win.
 */
const RULES: readonly Rule[] = [
  { reason: 'protocol_not_allowed', pattern: /Protocol '[^']*' not on whitelist/ },
  { reason: 'format_not_allowed', pattern: /Format not on whitelist|not on format whitelist/ },
  { reason: 'segment_not_allowed', pattern: /is not in allowed_(segment_)?extensions/ },
  { reason: 'too_large', pattern: /exceeds specified max pixel count/ },
  { reason: (m) => `http_${m[1]}` as FailureReason, pattern: /HTTP error (\d{3})\b/ },
  { reason: (m) => `http_${m[1]}` as FailureReason, pattern: /Server returned (\d{3})\b/ },
  { reason: 'http_4xx', pattern: /Server returned 4XX/ },
  { reason: 'http_5xx', pattern: /Server returned 5XX/ },
  {
    reason: 'dns_failed',
    pattern: /Failed to resolve hostname|Name or service not known|Temporary failure in name resolution/,
  },
  { reason: 'connection_refused', pattern: /Connection refused/ },
  { reason: 'host_unreachable', pattern: /No route to host|Network is unreachable|Host is unreachable/ },
  { reason: 'timeout', pattern: /Connection timed out|Operation timed out/ },
  { reason: 'no_such_file', pattern: /No such file or directory/ },
  { reason: 'no_video_stream', pattern: /Stream map '0:v:0' matches no streams/ },
  { reason: 'connection_failed', pattern: /Connection to \S+ failed/ },
  { reason: 'invalid_data', pattern: /Invalid data found when processing input/ },
];

/**
 * Turns the last stderr lines and the exit status of a failed ffmpeg into a machine reason. A death by a
 * signal we did not send is `killed` whatever the lines say (a crash leaves unrelated decode warnings).
 */
export function classifyFailure(lines: readonly string[], signal: string | null = null): FailureReason {
  if (signal !== null) return 'killed';
  let best: { rank: number; reason: FailureReason } | undefined;
  for (const line of lines) {
    RULES.forEach((rule, rank) => {
      if (best && best.rank <= rank) return;
      const match = line.match(rule.pattern);
      if (!match) return;
      best = { rank, reason: typeof rule.reason === 'function' ? rule.reason(match) : rule.reason };
    });
  }
  return best?.reason ?? 'unknown';
}

/**
 * True when ffmpeg refused to start because the audio output got no stream: the input has no audio, and
 * ffmpeg 5.1 treats an output with nothing mapped (`-map 0:a:0?` matched nothing) as fatal.
 */
export function isNoAudioStream(lines: readonly string[]): boolean {
  return lines.some((line) => /^Output file #1 does not contain any stream/.test(line));
}

/** What ffmpeg printed for one sampled frame. */
export interface FrameMeta {
  /** The print filter's frame counter: 0 for the first sampled frame, +1 per frame. */
  index: number;
  /** `pts_time` in seconds; null when ffmpeg printed NOPTS. */
  ptsSeconds: number | null;
  /** `lavfi.scene_score`, when the select filter computed one. */
  sceneScore: number | undefined;
}

const PRINT_LINE = new RegExp(`^\\[${PRINT_FILTER_NAME} @ (0x[0-9a-f]+)\\] (.*)$`);
const FRAME_LINE = /^frame:(\d+)\s+pts:(\S+)\s+pts_time:(\S+)\s*$/;
const KEY_LINE = /^([A-Za-z0-9_.]+)=(.*)$/;

/**
 * Assembles `FrameMeta` records from the print filter's lines:
 * `[Parsed_metadata_4 @ 0x55d…] frame:3    pts:19456   pts_time:1.52`, then one `key=value` line per frame
 * metadata entry in insertion order, so the `livelens.sample=1` marker (added last) ends the record.
 *
 * Only lines from that exact filter name are read, and only from the first address seen: other lines (which
 * may echo stream-chosen text) cannot forge a record. A record whose marker line is missing is closed by the
 * next `frame:` line, so one lost line costs at most that frame's scene score, never a hang.
 */
export class FrameMetaParser {
  private address: string | undefined;
  private open: FrameMeta | undefined;

  /** Feeds one stderr line. Returns a completed record, or undefined. `consumed` says whether the line was one. */
  push(line: string): { consumed: boolean; completed: FrameMeta[] } {
    const match = PRINT_LINE.exec(line);
    if (!match) return { consumed: false, completed: [] };
    const [, address, body] = match as unknown as [string, string, string];
    this.address ??= address;
    if (address !== this.address) return { consumed: false, completed: [] };
    const completed: FrameMeta[] = [];
    const frame = FRAME_LINE.exec(body);
    if (frame) {
      if (this.open) completed.push(this.open);
      const seconds = Number(frame[3]);
      this.open = {
        index: Number(frame[1]),
        ptsSeconds: Number.isFinite(seconds) ? seconds : null,
        sceneScore: undefined,
      };
      return { consumed: true, completed };
    }
    const entry = KEY_LINE.exec(body);
    if (entry && this.open) {
      if (entry[1] === 'lavfi.scene_score') {
        const score = Number(entry[2]);
        if (Number.isFinite(score)) this.open.sceneScore = score;
      } else if (entry[1] === SAMPLE_MARKER_KEY) {
        completed.push(this.open);
        this.open = undefined;
      }
    }
    return { consumed: true, completed };
  }

  /** At exit: the record still open (its marker never came). */
  end(): FrameMeta[] {
    const open = this.open;
    this.open = undefined;
    return open ? [open] : [];
  }
}
