// The demo's generated live-commerce clips: what is shown and said, and which tags each should produce and
// from when (the whole-pipeline test holds the pipeline to these).
import type { ClipOptions, GeneratedClip } from '@livelens/test-support/media';

/** A tag the clip should produce, and the cue that should trigger it. */
export interface ExpectedTag {
  readonly tagId: string;
  /** What triggers it (for reports). */
  readonly cue: string;
  /**
   * When the cue is complete in media time, s: the end of the spoken line, or the start of an on-screen text.
   * Resolved against the generated clip (speech durations are known only after synthesis).
   */
  readonly cueEndS: (clip: GeneratedClip) => number;
}

export interface DemoClip {
  readonly name: string;
  readonly options: ClipOptions;
  readonly expected: readonly ExpectedTag[];
}

const spokenEnd = (text: string) => (clip: GeneratedClip) => {
  const line = clip.speech.find((s) => s.text === text);
  if (!line) throw new Error(`the clip has no spoken line "${text}"`);
  return line.atS + line.durationS;
};
const shownFrom = (text: string) => (clip: GeneratedClip) => {
  const overlay = clip.overlays.find((o) => o.text === text);
  if (!overlay) throw new Error(`the clip has no overlay "${text}"`);
  return overlay.fromS;
};

const CTA = 'This detox tea is only nineteen ninety nine today. Add to cart and buy now.';
const CODE = 'Use code SAVE20 at checkout for twenty percent off.';
const LINK = 'The link is in my bio, tap the link to shop.';
// Phrased so that Whisper base hears it through espeak-ng ("this tea cures diabetes" comes out as noise).
const HEALTH = 'It is a miracle cure for diabetes.';
const DIVERT = 'For wholesale prices, message me on WhatsApp.';

/**
 * A host scene selling a "detox tea": a price and a promo code on screen; spoken: a call to action, the code,
 * a link-in-bio line, a risky health claim and an off-platform diversion.
 */
export const LIVE_COMMERCE_CLIP: DemoClip = {
  name: 'live-commerce',
  options: {
    durationS: 44,
    width: 960,
    height: 540,
    fps: 25,
    background: 'testsrc2',
    overlays: [
      { text: 'LIVE  Detox Tea', fromS: 0, toS: 44, position: 'top-left', fontSize: 36 },
      { text: 'NOW $19.99', fromS: 3, toS: 44, position: 'bottom-left', fontSize: 48 },
      { text: 'USE CODE SAVE20', fromS: 10, toS: 30, position: 'bottom-right', fontSize: 48 },
    ],
    speech: [
      { text: 'Welcome back to the live show, everyone.', atS: 0.5 },
      { text: CTA, atS: 4 },
      { text: CODE, atS: 11 },
      { text: LINK, atS: 18 },
      { text: HEALTH, atS: 25 },
      { text: DIVERT, atS: 32 },
      { text: 'Thanks for watching, see you tomorrow.', atS: 39 },
    ],
  },
  expected: [
    { tagId: 'price_mention', cue: '"NOW $19.99" on screen', cueEndS: shownFrom('NOW $19.99') },
    { tagId: 'call_to_action', cue: `said "${CTA}"`, cueEndS: spokenEnd(CTA) },
    { tagId: 'promo_code', cue: '"USE CODE SAVE20" on screen', cueEndS: shownFrom('USE CODE SAVE20') },
    { tagId: 'link_in_bio', cue: `said "${LINK}"`, cueEndS: spokenEnd(LINK) },
    { tagId: 'health_claims', cue: `said "${HEALTH}"`, cueEndS: spokenEnd(HEALTH) },
    { tagId: 'off_platform_diversion', cue: `said "${DIVERT}"`, cueEndS: spokenEnd(DIVERT) },
  ],
};

/** A benign cooking stream: talk and on-screen text with nothing risky in it. */
export const BENIGN_CLIP: DemoClip = {
  name: 'benign-cooking',
  options: {
    durationS: 30,
    width: 960,
    height: 540,
    fps: 25,
    background: { color: '#3a6b35' },
    overlays: [{ text: 'Cooking with Ana', fromS: 0, toS: 30, position: 'top-left', fontSize: 36 }],
    speech: [
      { text: 'Hi everyone, today we are cooking pasta with tomatoes and basil.', atS: 0.5 },
      { text: 'First boil the water and add a pinch of salt.', atS: 7 },
      { text: 'Stir the sauce slowly and taste it as it simmers.', atS: 14 },
      { text: 'That is it for today, thanks for cooking with me.', atS: 22 },
    ],
  },
  expected: [],
};
