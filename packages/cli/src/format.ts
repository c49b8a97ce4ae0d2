// How the CLI prints tags: one block per tag event, time, stream, tag, score, evidence and rationale.
import { EpisodeState, Modality, Severity, type TagEvent, TagKind } from '@livelens/contracts';

/** An enum value's name as protobuf-es generates it (`TagKind.RISK` → 'RISK'), 'UNSPECIFIED' when unknown. */
const enumName = (values: Record<number, string>, value: number) =>
  value === 0 ? 'UNSPECIFIED' : (values[value] ?? 'UNSPECIFIED');
const MODALITY: Record<number, string> = {
  [Modality.SPEECH]: 'said',
  [Modality.VISUAL_TEXT]: 'seen',
  [Modality.VISUAL]: 'image',
};

/** Media time as m:ss.s. */
export function mediaTime(ms: number | bigint): string {
  const total = Number(ms) / 1000;
  const minutes = Math.floor(total / 60);
  return `${minutes}:${(total - minutes * 60).toFixed(1).padStart(4, '0')}`;
}

export const kindName = (kind: TagKind) => (kind === 0 ? 'unknown' : enumName(TagKind, kind).toLowerCase());
export const stateName = (state: EpisodeState) => (state === 0 ? 'UNKNOWN' : enumName(EpisodeState, state));

export interface FormatOptions {
  /** ANSI colours. */
  readonly color?: boolean;
  /** Evidence lines shown (the strongest first). @default 3 */
  readonly maxEvidence?: number;
}

/** One tag event as a few lines of text. */
export function formatTagEvent(event: TagEvent, options: FormatOptions = {}): string {
  const paint = (code: string, text: string) => (options.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const risk = event.kind === TagKind.RISK;
  const window = event.window
    ? `${mediaTime(event.window.startMs)}–${mediaTime(event.window.endMs)}`
    : 'no window';
  const head = [
    paint('2', new Date(Number(event.emittedTimeUnixMs)).toISOString().slice(11, 23)),
    event.streamId,
    paint(risk ? '1;31' : '1;36', event.tagId),
    `${kindName(event.kind)}/${enumName(Severity, event.severity).toLowerCase()}`,
    `score ${event.score.toFixed(2)}`,
    stateName(event.state),
    `media ${window}`,
  ].join('  ');
  // The strongest piece of each modality first (what was said and what was seen), then the strongest others.
  const ranked = [...event.evidence].sort((a, b) => b.confidence - a.confidence);
  const firsts = ranked.filter((e, i) => ranked.findIndex((o) => o.modality === e.modality) === i);
  const evidence = [...firsts, ...ranked.filter((e) => !firsts.includes(e))]
    .slice(0, options.maxEvidence ?? 3)
    .map(
      (e) =>
        `    ${MODALITY[e.modality] ?? 'evidence'} "${truncate(e.snippet, 80)}" at ${mediaTime(e.mediaTimeMs)}` +
        ` (${e.confidence.toFixed(2)}, ${e.source?.topic ?? '?'}@${e.source?.partition ?? '?'}:${e.source?.offset ?? '?'})`,
    );
  const lines = [head, ...evidence];
  if (event.rationale) lines.push(`    why: ${event.rationale}`);
  if (event.incomplete) lines.push('    (incomplete: part of the window had no input)');
  return lines.join('\n');
}

function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}
