// Small formatting helpers shared by the engine's explanations and the rationale sentences.

import type { ObservationKind } from '../model.js';
import type { TextModality } from '../taxonomy/index.js';

/** `12.4 s` (media time in explanations). */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** `0:12`, `12:05`, `1:02:03` (media time in rationales). */
export function clock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Where an observation was: "in speech", "on screen", "in the image". */
export function place(kind: ObservationKind): string {
  return kind === 'speech' ? 'in speech' : kind === 'screen_text' ? 'on screen' : 'in the image';
}

/** Where a condition looks: "in speech", "on screen", "in speech or on screen". */
export function placeOf(modalities: readonly TextModality[]): string {
  return modalities.map(place).join(' or ');
}

/** At most `max` characters, cut at a word boundary where one is near, with an ellipsis. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}

/** A quoted list of at most `max` items: `'a', 'b', 'c' (+4 more)`. */
export function quotedList(items: readonly string[], max = 3): string {
  const shown = items.slice(0, max).map((item) => `'${item}'`);
  const more = items.length > max ? ` (+${items.length - max} more)` : '';
  return `${shown.join(', ')}${more}`;
}

/** Two decimals, for confidences and scores. */
export function fixed2(value: number): string {
  return value.toFixed(2);
}
