// Extractors: the structured facts rules ask about (a price, a discount, a promo code, a link, a phone number,
// a social handle) pulled out of RAW transcript or OCR text. They run on the NFKC form of the input (full-width
// "＄２９.９９" reads as "$29.99") but not on normalizeText's output, because they need the punctuation that
// normalisation drops ("+60", "15,50 €", "IG: @name"), and they report `raw` and `index` in that NFKC string
// so that evidence can quote it. Each extractor is a set of regular expressions producing candidates, then
// validation (the tricky part: years, model numbers, dates and common words are not prices, phones or codes)
// and a left-to-right pass that drops overlapping candidates. extract.test.ts pins every format and the hard
// negatives.
import { CHINESE_NUMERAL_CHARS, chineseNumeralValue } from './normalize.js';

/** What every extraction carries: where it is and its canonical value. */
interface ExtractionBase {
  /** The matched substring of the NFKC form of the input. */
  readonly raw: string;
  /** The offset of `raw` in the NFKC form of the input (UTF-16 code units, as String.prototype.slice). */
  readonly index: number;
  /** A canonical string for comparing and display: "29.99 USD", "50%", "SAVE20", "bit.ly/xyz", "+60123456789". */
  readonly value: string;
}

/** A price: an amount with its currency. */
export interface PriceExtraction extends ExtractionBase {
  readonly type: 'price';
  /** The amount in major units (29.99 for $29.99), rounded to cents. */
  readonly amount: number;
  /** ISO 4217 code: USD, CNY, EUR, GBP, MYR, PHP, JPY, SGD, HKD, TWD, AUD, CAD, INR, IDR, THB, VND, KRW. */
  readonly currency: string;
}

/** A percentage, or a Chinese discount (五折) expressed as the percent taken off. */
export interface PercentExtraction extends ExtractionBase {
  readonly type: 'percent';
  /** The percent: 50 for "50%", and the DISCOUNT for 折 notation (八折 = pay 80% = 20 off → 20). */
  readonly percent: number;
  /** True when the text itself says it is a reduction: "50% off", any 折, 半价, "half price". */
  readonly discount: boolean;
}

/** A promo code announced after a cue ("use code SAVE20", "优惠码：ABC123"). `raw` spans the cue and the code. */
export interface PromoCodeExtraction extends ExtractionBase {
  readonly type: 'promo_code';
  /** The code in upper case, letters and digits only (3–20 characters). Same as `value`. */
  readonly code: string;
}

/** A link: `value` is the lower-case host and path, without scheme, `www.` or a trailing slash. */
export interface UrlExtraction extends ExtractionBase {
  readonly type: 'url';
  /** Lower-case host without `www.` ("shop.example.com"). */
  readonly host: string;
  /** Lower-case path, query and fragment ("/abc"), or "" when there is none. */
  readonly path: string;
}

/** A phone number: `value` is its digits, with a leading "+" when the text had one. */
export interface PhoneExtraction extends ExtractionBase {
  readonly type: 'phone';
  /** Whether it was written with a "+" country code. */
  readonly international: boolean;
}

/** The platforms a handle can be attributed to; `unknown` for a bare "@name". */
export type HandlePlatform =
  | 'instagram'
  | 'telegram'
  | 'whatsapp'
  | 'wechat'
  | 'tiktok'
  | 'facebook'
  | 'line'
  | 'unknown';

/**
 * A social account: `value` is the id as written, with its "@" when it had one ("@name", "abc123"), or the
 * phone number (as in PhoneExtraction) when the account is given as one ("whatsapp +60 12-345 6789").
 */
export interface HandleExtraction extends ExtractionBase {
  readonly type: 'handle';
  readonly platform: HandlePlatform;
}

/** Any extraction; `type` tells which. */
export type Extraction =
  | PriceExtraction
  | PercentExtraction
  | PromoCodeExtraction
  | UrlExtraction
  | PhoneExtraction
  | HandleExtraction;

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

/** A span found by a pattern, before it becomes an extraction. */
interface Span {
  readonly index: number;
  readonly end: number;
}

function spanOf(e: { readonly index: number; readonly raw: string }): Span {
  return { index: e.index, end: e.index + e.raw.length };
}

function overlaps(a: Span, b: Span): boolean {
  return a.index < b.end && b.index < a.end;
}

/**
 * Keeps, left to right, the earliest then longest candidate and drops those that overlap one already kept:
 * "$29.99 dollars" is one price, not "$29.99" and "29.99 dollars".
 */
function dropOverlapping<T extends { readonly index: number; readonly raw: string }>(candidates: T[]): T[] {
  const sorted = [...candidates].sort((a, b) => a.index - b.index || b.raw.length - a.raw.length);
  const kept: T[] = [];
  for (const c of sorted) {
    const last = kept[kept.length - 1];
    if (last === undefined || !overlaps(spanOf(last), spanOf(c))) kept.push(c);
  }
  return kept;
}

function* matchesOf(pattern: RegExp, text: string): Generator<RegExpExecArray> {
  const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    yield m;
    if (m[0] === '') re.lastIndex += 1;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** An alternation of literal strings, longest first so that "US$" is tried before "$". */
function alternation(words: readonly string[]): string {
  return [...words]
    .sort((a, b) => b.length - a.length)
    .map(escapeRegExp)
    .join('|');
}

const LATIN_START = /^\p{Script=Latin}/u;
const LATIN_END = /\p{Script=Latin}$/u;

/**
 * An alternation of cue words that may not be cut out of a longer Latin word: a cue starting with a Latin
 * letter may not follow one ("barcode" is not "code"), a cue ending with one may not precede one ("加vip" is
 * not "加v"). CJK ends need no boundary, since Chinese has no spaces ("用优惠码ABC", "微信号abc123").
 */
function cueAlternation(words: readonly string[]): string {
  return [...words]
    .sort((a, b) => b.length - a.length)
    .map((w) => {
      const before = LATIN_START.test(w) ? '(?<![\\p{Script=Latin}\\p{N}])' : '';
      const after = LATIN_END.test(w) ? '(?![\\p{Script=Latin}\\p{N}])' : '';
      return `${before}${escapeRegExp(w).replace(/ /g, '\\s+')}${after}`;
    })
    .join('|');
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Arabic number with optional `.`/`,` separators; its meaning is decided by parseAmount. */
const NUMBER = String.raw`\d+(?:[.,]\d+)*`;
/**
 * A run of Chinese numeral characters, from its first one: without the lookbehind a failed match would be
 * retried from every character of a long run (quadratic on a transcript of 一一一…).
 */
const CN_NUMBER = `(?<![${CHINESE_NUMERAL_CHARS}])[${CHINESE_NUMERAL_CHARS}]+`;
/** Not in the middle of a Latin word or of a number. */
const NUMBER_START = String.raw`(?<![\p{Script=Latin}\d.,])`;

/**
 * Parses an Arabic number written with either decimal convention: "1,299.00" and "1.299,00" are both 1299,
 * "29.99" and "15,50" are decimals, "1,299" and "1.299.000" are grouped integers.
 *
 * Why this works: prices have at most two decimals and digit groups always have three digits. So when both
 * separators appear, the last one is the decimal mark; when one kind appears once, it is a decimal mark
 * unless exactly three digits follow it; when it appears more than once, it groups thousands. A number that
 * fits none of these (a group of two, three decimals after a grouped part) is not an amount: `undefined`.
 * Known limit: "1.299" is read as 1299 (currencies with three decimals, like KWD, are not handled).
 */
export function parseAmount(s: string): number | undefined {
  if (!/^\d+(?:[.,]\d+)*$/.test(s)) return undefined;
  const separators = s.match(/[.,]/g) ?? [];
  if (separators.length === 0) return Number(s);
  const lastAt = Math.max(s.lastIndexOf('.'), s.lastIndexOf(','));
  const lastSeparator = s[lastAt]!;
  const tail = s.slice(lastAt + 1);
  const mixed = new Set(separators).size > 1;
  const isDecimal = mixed || (separators.length === 1 && tail.length !== 3);
  const integerPart = isDecimal ? s.slice(0, lastAt) : s;
  if (isDecimal && tail.length > 2) return undefined;
  const groups = integerPart.split(/[.,]/);
  if (isDecimal && integerPart.includes(lastSeparator)) return undefined;
  if (groups.length > 1 && !groups.slice(1).every((g) => g.length === 3)) return undefined;
  if (groups.length > 1 && groups[0]!.length > 3) return undefined;
  return Number(`${groups.join('')}${isDecimal ? `.${tail}` : ''}`);
}

// ---------------------------------------------------------------------------------------------------------
// Prices

/** Currency markers written before the amount ("$29.99", "RM 49.90", "RMB 88"). Letter codes need a word start. */
const PREFIX_SYMBOLS: Readonly<Record<string, string>> = {
  $: 'USD',
  US$: 'USD',
  HK$: 'HKD',
  NT$: 'TWD',
  S$: 'SGD',
  A$: 'AUD',
  C$: 'CAD',
  'JP¥': 'JPY',
  '€': 'EUR',
  '£': 'GBP',
  '¥': 'CNY',
  '₱': 'PHP',
  '₹': 'INR',
  '฿': 'THB',
  '₩': 'KRW',
  '₫': 'VND',
};
const PREFIX_CODES: Readonly<Record<string, string>> = {
  USD: 'USD',
  RMB: 'CNY',
  CNY: 'CNY',
  EUR: 'EUR',
  GBP: 'GBP',
  RM: 'MYR',
  MYR: 'MYR',
  PHP: 'PHP',
  SGD: 'SGD',
  HKD: 'HKD',
  JPY: 'JPY',
  RP: 'IDR',
  IDR: 'IDR',
  RS: 'INR',
  INR: 'INR',
  THB: 'THB',
  AUD: 'AUD',
  CAD: 'CAD',
  TWD: 'TWD',
};

/** Currency words and signs written after the amount ("29.99 dollars", "199元", "15,50 €", "1000円"). */
const SUFFIX_WORDS: Readonly<Record<string, string>> = {
  dollars: 'USD',
  dollar: 'USD',
  bucks: 'USD',
  usd: 'USD',
  美元: 'USD',
  美金: 'USD',
  元: 'CNY',
  圆: 'CNY',
  块钱: 'CNY',
  块: 'CNY',
  rmb: 'CNY',
  yuan: 'CNY',
  人民币: 'CNY',
  円: 'JPY',
  日元: 'JPY',
  yen: 'JPY',
  '€': 'EUR',
  euros: 'EUR',
  euro: 'EUR',
  eur: 'EUR',
  欧元: 'EUR',
  pounds: 'GBP',
  pound: 'GBP',
  quid: 'GBP',
  gbp: 'GBP',
  英镑: 'GBP',
  ringgit: 'MYR',
  myr: 'MYR',
  令吉: 'MYR',
  马币: 'MYR',
  pesos: 'PHP',
  peso: 'PHP',
  php: 'PHP',
  比索: 'PHP',
  sgd: 'SGD',
  新币: 'SGD',
  hkd: 'HKD',
  港币: 'HKD',
  港元: 'HKD',
  台币: 'TWD',
  baht: 'THB',
  泰铢: 'THB',
  rupees: 'INR',
  dong: 'VND',
  '₫': 'VND',
};

/** ISO 4217 currencies written without minor units in practice. */
const ZERO_DECIMAL_CURRENCIES = new Set(['JPY', 'KRW', 'VND', 'IDR']);

/** Latin suffix words must end a word: "5 pounds", not "5 poundcake". */
function suffixAlternation(words: readonly string[]): string {
  return [...words]
    .sort((a, b) => b.length - a.length)
    .map((w) => (/^\p{Script=Latin}/u.test(w) ? `${escapeRegExp(w)}(?!\\p{L})` : escapeRegExp(w)))
    .join('|');
}

const MULTIPLIER = String.raw`(?:([kK])(?!\p{L})|([千万]))?`;

const PREFIX_PRICE = new RegExp(
  String.raw`(?:(?<![\p{L}\p{N}])(${alternation(Object.keys(PREFIX_CODES))})(?!\p{L})|(${alternation(Object.keys(PREFIX_SYMBOLS))}))` +
    String.raw`\s?(${NUMBER})${MULTIPLIER}(?!\d)`,
  'giu',
);

/**
 * "P499" for Philippine pesos: upper-case P glued to the number, two digits or a decimal at least, and not a
 * model or code ("P2", "P30 Pro", "P500X").
 */
const PESO_PRICE =
  /(?<![\p{L}\p{N}])P(\d{2,}(?:[.,]\d+)*|\d(?:[.,]\d+)+)(?![\p{L}\p{N}])(?!\s?(?:[Pp]ro|[Ll]ite|[Mm]ax|[Pp]lus|[Uu]ltra|[Ss]mart)\b)/gu;

const SUFFIX_PRICE = new RegExp(
  String.raw`(?:${NUMBER_START}(${NUMBER})${MULTIPLIER}|(${CN_NUMBER}))\s?(${suffixAlternation(Object.keys(SUFFIX_WORDS))})`,
  'giu',
);

/**
 * "29 dollars 99" and "29 dollars and 99 cents": how ASR (or a TTS voice read back by ASR) says $29.99. Two
 * digits after "dollars", or one or two with "cents"; not when a count follows ("5 dollars 10 items").
 */
const DOLLARS_AND_CENTS = new RegExp(
  String.raw`${NUMBER_START}(\d+)\s?(?:dollars?|bucks)\s+(?:and\s+)?(?:(\d{1,2})\s?cents?(?!\p{L})|(\d{2})(?![\d.,%])(?!\s?(?:percent|off|items?|pcs|pieces|units|left|sold|people|orders?|minutes?|mins?|seconds?|hours?|days?)\b))`,
  'giu',
);

/** "99 cents" alone: 0.99 USD. */
const CENTS_ONLY = new RegExp(String.raw`${NUMBER_START}(\d{1,2})\s?cents?(?!\p{L})`, 'giu');

/** After 块 a digit counts dimes (九块九 = 9.9, 9块99 = 9.99, 九块九毛九 = 9.99); after 元 only with 角/毛. */
const CHINESE_DIGIT = '[0-9零一二两三四五六七八九]';
const JIAO_TAIL = new RegExp(`(${CHINESE_DIGIT})([毛角])?(?:(${CHINESE_DIGIT})分?)?`, 'uy');
/** A count after the dimes digit means it was not dimes: 10块3件 is "3 items for 10", 9块9包邮 is 9.9. */
const COUNT_AFTER = /^(?:[件个只支条條双雙套份盒瓶袋斤箱单次天位台部]|包(?!邮)|\d)/u;

/**
 * 块 is also the measure word for pieces: 三块蛋糕 (three pieces of cake), 一块去 (go together). A Han
 * character right after 块 means that sense, except the ones that follow a price: 99块一件, 39块包邮, 十块左右.
 */
const PIECE_AFTER = /^(?![一两每个起左右多包])\p{Script=Han}/u;

function chineseDigitValue(c: string): number {
  return /\d/.test(c) ? Number(c) : (chineseNumeralValue(c) ?? 0);
}

function price(raw: string, index: number, amount: number, currency: string): PriceExtraction {
  const rounded = round(amount, 2);
  const digits = ZERO_DECIMAL_CURRENCIES.has(currency) ? 0 : 2;
  return {
    type: 'price',
    raw,
    index,
    value: `${rounded.toFixed(digits)} ${currency}`,
    amount: rounded,
    currency,
  };
}

function multiplierOf(k: string | undefined, cjk: string | undefined): number {
  if (k !== undefined) return 1_000;
  if (cjk === '千') return 1_000;
  if (cjk === '万') return 10_000;
  return 1;
}

function prefixPrices(s: string): PriceExtraction[] {
  const out: PriceExtraction[] = [];
  for (const m of matchesOf(PREFIX_PRICE, s)) {
    const [raw, code, symbol, digits, k, cjk] = m;
    const currency =
      code !== undefined ? PREFIX_CODES[code.toUpperCase()] : PREFIX_SYMBOLS[symbol!.toUpperCase()];
    const amount = parseAmount(digits!);
    if (currency === undefined || amount === undefined) continue;
    out.push(price(raw, m.index, amount * multiplierOf(k, cjk), currency));
  }
  for (const m of matchesOf(PESO_PRICE, s)) {
    const amount = parseAmount(m[1]!);
    if (amount !== undefined) out.push(price(m[0], m.index, amount, 'PHP'));
  }
  return out;
}

function suffixPrices(s: string): PriceExtraction[] {
  const out: PriceExtraction[] = [];
  for (const m of matchesOf(SUFFIX_PRICE, s)) {
    const [raw, digits, k, cjk, chinese, word] = m;
    const currency = SUFFIX_WORDS[word!.toLowerCase()];
    const base = digits !== undefined ? parseAmount(digits) : chineseNumeralValue(chinese!);
    if (currency === undefined || base === undefined) continue;
    const amount = base * multiplierOf(k, cjk);
    const end = m.index + raw.length;
    const dimes = currency === 'CNY' ? dimesAt(s, end, word!) : undefined;
    if (dimes === undefined && word === '块' && PIECE_AFTER.test(s.slice(end, end + 1))) continue;
    if (dimes === undefined) out.push(price(raw, m.index, amount, currency));
    else out.push(price(s.slice(m.index, dimes.end), m.index, amount + dimes.amount, currency));
  }
  for (const m of matchesOf(DOLLARS_AND_CENTS, s)) {
    const cents = Number(m[2] ?? m[3]);
    out.push(price(m[0], m.index, Number(m[1]) + cents / 100, 'USD'));
  }
  for (const m of matchesOf(CENTS_ONLY, s)) out.push(price(m[0], m.index, Number(m[1]) / 100, 'USD'));
  return out;
}

/** The 角/分 after "九块" or "9元": "九" → 0.9, "九毛九" → 0.99; undefined when none or when it is a count. */
function dimesAt(s: string, at: number, unit: string): { amount: number; end: number } | undefined {
  JIAO_TAIL.lastIndex = at;
  const m = JIAO_TAIL.exec(s);
  if (m === null) return undefined;
  const [raw, jiao, mark, fen] = m;
  if (!unit.startsWith('块') && mark === undefined) return undefined;
  const end = at + raw.length;
  // Only the first digit was read as dimes when no mark says so: "9块99" is 9.99, "10块3件" is 10.
  if (COUNT_AFTER.test(s.slice(mark === undefined && fen === undefined ? at + jiao!.length : end))) {
    return undefined;
  }
  const amount = chineseDigitValue(jiao!) / 10 + (fen === undefined ? 0 : chineseDigitValue(fen) / 100);
  return { amount, end };
}

/**
 * Prices in raw transcript or OCR text, in text order.
 *
 * Handles: `$29.99`, `US$30` (also HK$, NT$, S$, A$, C$), `29.99 dollars`, `29 dollars 99` and
 * `29 dollars and 99 cents` (how ASR writes a spoken $29.99), `99 cents`, `$5k`; `¥199`, `199元`, `199块`,
 * `九块九` (9.9), `九块九毛九` (9.99), `三十九元`, `RMB 88`, `5万元`; `€15,50`, `15,50 €`, `€1.299,00`
 * (European decimal comma, see parseAmount); `RM 49.90`, `RM49`, `49 ringgit` (MYR); `₱499`, `PHP 499`,
 * `P499` (PHP; the bare P needs two digits or a decimal); `£5`, `5 pounds`; `1000円`, `1000 yen` (JPY).
 *
 * Known limits: `¥` is read as CNY (JPY only with 円/yen/JP¥); "5 pounds" is GBP even when it is a weight;
 * English number words ("twenty dollars") are not read; a digit-by-digit Chinese number glued to a previous
 * digit is read as one number (买一送一九块九 gives 19.9). Numbers without a currency (a year, "iPhone 15",
 * "top 10", a phone number) are never prices.
 *
 * @example extractPrices('now only RM 49.90!') // [{ type: 'price', amount: 49.9, currency: 'MYR', value: '49.90 MYR', raw: 'RM 49.90', index: 9 }]
 */
export function extractPrices(text: string): PriceExtraction[] {
  const s = text.normalize('NFKC');
  return dropOverlapping([...prefixPrices(s), ...suffixPrices(s)]);
}

// ---------------------------------------------------------------------------------------------------------
// Percentages

const PERCENT = new RegExp(
  String.raw`${NUMBER_START}(\d+(?:[.,]\d+)?)\s?(?:%|percent(?!\p{L})|per\s?cent(?!\p{L})|pct(?!\p{L}))(\s?off(?!\p{L}))?`,
  'giu',
);
const CHINESE_PERCENT = new RegExp(`百分之(\\d+(?:\\.\\d+)?|${CN_NUMBER})`, 'gu');
/** 折: the share of the price paid, in tenths (八折 = 80%, 8.5折 and 八五折 = 85%); not 折叠 (folding). */
const ZHE =
  /(?:打\s?)?((?<![\d.])\d+(?:\.\d+)?|(?<![零一二两三四五六七八九])[零一二两三四五六七八九]+(?:点[零一二三四五六七八九])?)\s?折(?![叠疊])/gu;
const HALF_PRICE = /半价|半價|(?<!\p{L})half[\s-]?(?:price|off)(?!\p{L})/giu;

function percent(raw: string, index: number, value: number, discount: boolean): PercentExtraction {
  const p = round(value, 2);
  return { type: 'percent', raw, index, value: `${p}%`, percent: p, discount };
}

/** The tenths paid for a 折 number: "8.5" → 8.5, "85" → 8.5, "八五" → 8.5, "七点五" → 7.5, "五" → 5. */
function zheTenths(written: string): number | undefined {
  let value: number | undefined;
  if (/^\d/.test(written)) value = Number(written);
  else {
    const [whole, fraction] = written.split('点');
    const w = chineseNumeralValue(whole!);
    const f = fraction === undefined ? 0 : chineseNumeralValue(fraction);
    value = w === undefined || f === undefined ? undefined : w + f / 10;
  }
  if (value === undefined) return undefined;
  // Two digits without a point are tenths and hundredths: 85折 = 8.5折, 95折 = 9.5折 (never 10折 or 50折).
  if (value >= 10 && !written.includes('.') && !written.includes('点') && written.length === 2) {
    if (written.endsWith('0') || written.endsWith('零')) return undefined;
    value /= 10;
  }
  return value > 0 && value < 10 ? value : undefined;
}

/**
 * Percentages and discounts in raw text, in text order: `50%`, `50 %`, `50 percent`, `50% off`,
 * `百分之五十`, and Chinese discount notation. `value` is "<percent>%".
 *
 * 折 notation names the share of the price that is PAID, in tenths; the extraction reports the DISCOUNT, the
 * percent taken off, so that "50% off" and 五折 compare equal: 五折 / 打5折 → 50 (50% off), 八折 → 20,
 * 八五折 / 85折 / 8.5折 → 15, 九五折 → 5. `半价` and "half price" → 50. These have `discount: true`, as does
 * "N% off"; a bare "50%" has `discount: false` (it may be a fabric blend or a battery level).
 *
 * @example extractPercentages('全场八折') // [{ type: 'percent', percent: 20, discount: true, value: '20%', raw: '八折', index: 2 }]
 */
export function extractPercentages(text: string): PercentExtraction[] {
  const s = text.normalize('NFKC');
  const out: PercentExtraction[] = [];
  for (const m of matchesOf(PERCENT, s)) {
    const value = Number(m[1]!.replace(',', '.'));
    out.push(percent(m[0], m.index, value, m[2] !== undefined));
  }
  for (const m of matchesOf(CHINESE_PERCENT, s)) {
    const value = /^\d/.test(m[1]!) ? Number(m[1]) : chineseNumeralValue(m[1]!);
    if (value !== undefined) out.push(percent(m[0], m.index, value, false));
  }
  for (const m of matchesOf(ZHE, s)) {
    const tenths = zheTenths(m[1]!);
    if (tenths !== undefined) out.push(percent(m[0], m.index, 100 - tenths * 10, true));
  }
  for (const m of matchesOf(HALF_PRICE, s)) out.push(percent(m[0], m.index, 50, true));
  return dropOverlapping(out);
}

// ---------------------------------------------------------------------------------------------------------
// Promo codes

const PROMO_CUES = [
  'promo code',
  'discount code',
  'coupon code',
  'voucher code',
  'use code',
  'code',
  'coupon',
  'voucher',
  '优惠码',
  '优惠券码',
  '折扣码',
  '口令',
  '券码',
  '兑换码',
];
/** Codes that are not promo codes: "QR code", "zip code", "verification code"... */
const NOT_PROMO_BEFORE =
  /(?:qr|zip|postal|area|country|bar|source|dress|colou?r|error|verification|otp|access|security|pin)\s*$/i;
const PROMO_CUE = new RegExp(`(?:${cueAlternation(PROMO_CUES)})`, 'giu');

/**
 * Words that follow "code" in ordinary speech and are never the code ("the code is on the screen", "code
 * below", "coupon for you"). Kept small on purpose: a real code may be a word (FREESHIP).
 */
const PROMO_STOPWORDS = new Set(
  (
    'is on in the a an at below above here there and for to of will can you your my our this that it with ' +
    'from now only when if or are was be by as so not no we i me us again too'
  ).split(' '),
);

/** What may stand between a cue and its code: "code: X", "code is X", "优惠码是X", quotes. */
const PROMO_CONNECTOR = /^(?:\s*(?:[:=\-–—"'“”‘’「」『』]|is(?![\p{L}\p{N}])|是|为|為))*\s*/iu;
/** One code token: letters and digits, hyphens inside ("SAVE-20"). */
const CODE_TOKEN = /^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*/;
/** A number that describes the offer rather than ending the code: "code SALE 50% off", "code SAVE 20 dollars". */
const OFFER_AFTER_NUMBER = /^\s?(?:%|percent|off|dollars?|bucks|元|块|折)/i;

interface CodeTokens {
  readonly tokens: readonly string[];
  /** The offset just past the last token used. */
  readonly end: number;
}

/** Reads up to `limit` code tokens separated by single spaces from `at`. */
function codeTokensAt(s: string, at: number, limit: number): { text: string; start: number; end: number }[] {
  const tokens: { text: string; start: number; end: number }[] = [];
  let pos = at;
  while (tokens.length < limit) {
    const m = CODE_TOKEN.exec(s.slice(pos));
    if (m === null) break;
    tokens.push({ text: m[0], start: pos, end: pos + m[0].length });
    pos += m[0].length;
    if (!/^ [A-Za-z0-9]/.test(s.slice(pos, pos + 2))) break;
    pos += 1;
  }
  return tokens;
}

/** The code after a cue: one token, a spoken "save 20", or spelled letters "S A V E 20". */
function codeAfterCue(s: string, at: number): CodeTokens | undefined {
  const connector = PROMO_CONNECTOR.exec(s.slice(at));
  const start = at + (connector?.[0].length ?? 0);
  const tokens = codeTokensAt(s, start, 12);
  const first = tokens[0];
  if (first === undefined || PROMO_STOPWORDS.has(first.text.toLowerCase())) return undefined;
  const isNumber = (t: { text: string } | undefined) => t !== undefined && /^\d{1,4}$/.test(t.text);
  const describesOffer = (t: { end: number }) => OFFER_AFTER_NUMBER.test(s.slice(t.end));
  if (first.text.length === 1) {
    // Spelled out letter by letter: collect single characters, then one number group.
    let used = tokens.findIndex((t) => t.text.length !== 1);
    if (used === -1) used = tokens.length;
    const next = tokens[used];
    if (isNumber(next) && !describesOffer(next!)) used += 1;
    const spelled = tokens.slice(0, used);
    return { tokens: spelled.map((t) => t.text), end: spelled[spelled.length - 1]!.end };
  }
  const second = tokens[1];
  // Spoken: "use code save 20" is SAVE20; the short number is part of the code unless it describes the offer.
  if (/^[A-Za-z]+$/.test(first.text) && isNumber(second) && !describesOffer(second!)) {
    return { tokens: [first.text, second!.text], end: second!.end };
  }
  return { tokens: [first.text], end: first.end };
}

/**
 * Promo codes announced after a cue, in text order. Cues: `code`, `promo code`, `discount code`,
 * `coupon (code)`, `voucher (code)`, `use code`, `优惠码`, `折扣码`, `口令`, `券码`, `兑换码`, optionally
 * followed by `:`, `is`, `是` or quotes. The code is 3–20 letters and digits, upper-cased, hyphens dropped.
 * ASR forms: "use code save 20" → SAVE20 (a word and a short number are joined, unless the number describes
 * the offer: "code SALE 50% off" → SALE), "code S A V E 20" → SAVE20 (spelled letters).
 *
 * Not extracted: a common word after the cue ("code is on the screen", "code below"), and codes that are not
 * promo codes ("QR code", "zip code", "verification code"). Known limit: a code read with number words
 * ("save twenty") is taken as SAVE.
 *
 * @example extractPromoCodes('use code save 20 at checkout') // [{ type: 'promo_code', code: 'SAVE20', value: 'SAVE20', raw: 'use code save 20', index: 0 }]
 */
export function extractPromoCodes(text: string): PromoCodeExtraction[] {
  const s = text.normalize('NFKC');
  const out: PromoCodeExtraction[] = [];
  for (const m of matchesOf(PROMO_CUE, s)) {
    if (NOT_PROMO_BEFORE.test(s.slice(Math.max(0, m.index - 16), m.index))) continue;
    const found = codeAfterCue(s, m.index + m[0].length);
    if (found === undefined) continue;
    const code = found.tokens.join('').replaceAll('-', '').toUpperCase();
    if (!/^[A-Z0-9]{3,20}$/.test(code)) continue;
    out.push({ type: 'promo_code', raw: s.slice(m.index, found.end), index: m.index, value: code, code });
  }
  return dropOverlapping(out);
}

// ---------------------------------------------------------------------------------------------------------
// URLs

/** TLDs accepted on a bare domain ("shop.com", "bit.ly/x"). */
const STRONG_TLDS = new Set(
  (
    'com net org info biz io ly ee gg app shop store online site xyz link live top club vip cc tv ph sg hk ' +
    'tw cn jp kr th vn uk ca au de fr es nl ru br mx page eu asia gl ws la fm tk ml nz'
  ).split(' '),
);
/**
 * TLDs that are also common words or abbreviations ("log.in", "out.In", "it.is"): accepted only with a path
 * ("link.in/bio", "wa.me/123"), under a second-level label ("shopee.com.my"), or on a known short host.
 */
const WEAK_TLDS = new Set('co me in my us it to be id ai at is ch sh bio'.split(' '));
const SECOND_LEVEL = new Set(['com', 'co', 'net', 'org', 'gov', 'edu']);
const KNOWN_SHORT_HOSTS = new Set(['t.me', 'wa.me', 'fb.me', 'm.me', 'youtu.be', 'lin.ee', 'amzn.to']);

const URL_CHARS = String.raw`[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]`;
const PATH_CHARS = String.raw`[A-Za-z0-9\-._~/?#%&=+@!*,;:]`;
const SCHEME_URL = new RegExp(`(?<![A-Za-z0-9])https?://${URL_CHARS}+`, 'gi');
const DOMAIN_URL = new RegExp(
  String.raw`(?<![A-Za-z0-9.@\-_/])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,12})(?![A-Za-z0-9\-@])((?:/|\?|#)${PATH_CHARS}*)?`,
  'gi',
);
/** "shop dot com", "www dot shop dot com slash sale": how ASR writes a spoken address. */
const SPOKEN_URL =
  /(?<![A-Za-z0-9])([a-z0-9][a-z0-9-]*(?:\s+dot\s+[a-z0-9-]+)+)((?:\s+slash\s+[a-z0-9_-]+)*)(?![A-Za-z0-9])/gi;
/** Punctuation that ends a sentence rather than a URL. */
const URL_TRAILING = /[.,;:!?'")\]}]+$/;

function url(raw: string, index: number, hostAndPath: string): UrlExtraction {
  const lower = hostAndPath.toLowerCase().replace(/^www\./, '');
  const slash = lower.search(/[/?#]/);
  const host = slash === -1 ? lower : lower.slice(0, slash);
  const path = (slash === -1 ? '' : lower.slice(slash)).replace(/\/+$/, '');
  return { type: 'url', raw, index, value: host + path, host, path };
}

function isAcceptedHost(host: string, hasPath: boolean, spoken: boolean): boolean {
  const labels = host.toLowerCase().split('.');
  const tld = labels[labels.length - 1]!;
  if (STRONG_TLDS.has(tld)) return true;
  if (!WEAK_TLDS.has(tld)) return false;
  const secondLevel = labels.length > 2 && SECOND_LEVEL.has(labels[labels.length - 2]!);
  return spoken || hasPath || secondLevel || KNOWN_SHORT_HOSTS.has(host.toLowerCase());
}

function schemeUrls(s: string): UrlExtraction[] {
  const out: UrlExtraction[] = [];
  for (const m of matchesOf(SCHEME_URL, s)) {
    const raw = m[0].replace(URL_TRAILING, '');
    const rest = raw.replace(/^https?:\/\//i, '');
    if (/^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*/.test(rest) && rest !== '') out.push(url(raw, m.index, rest));
  }
  return out;
}

function domainUrls(s: string): UrlExtraction[] {
  const out: UrlExtraction[] = [];
  for (const m of matchesOf(DOMAIN_URL, s)) {
    const raw = m[0].replace(URL_TRAILING, '');
    const host = m[1]!;
    const hasPath = raw.length > host.length + 1;
    if (isAcceptedHost(host, hasPath, false)) out.push(url(raw, m.index, raw));
  }
  return out;
}

function spokenUrls(s: string): UrlExtraction[] {
  const out: UrlExtraction[] = [];
  for (const m of matchesOf(SPOKEN_URL, s)) {
    const host = m[1]!.split(/\s+dot\s+/i).join('.');
    const path = (m[2] ?? '')
      .split(/\s+slash\s+/i)
      .filter((p) => p !== '')
      .map((p) => `/${p}`)
      .join('');
    if (isAcceptedHost(host, path !== '', true)) out.push(url(m[0], m.index, host + path));
  }
  return out;
}

/**
 * Links in raw text, in text order: `http(s)://…`, `www.x.com`, bare domains with a known TLD
 * (`shop.example.com/abc`, `bit.ly/xyz`, `wa.me/123456`, `t.me/name`, `linktr.ee/name`, `shopee.com.my`),
 * and spoken forms (`shop dot com` → shop.com, `link dot in slash bio` → link.in/bio). `value` is lower-case
 * host + path without scheme, `www.` or trailing slash, so the written and spoken forms compare equal.
 *
 * Not extracted: e-mail addresses, decimals ("12.99"), file names ("photo.jpg"), and words glued by a missing
 * space whose "TLD" is a common word ("log.in", "out.In") unless a path follows. Known limit: paths are
 * lower-cased, so two shortener links differing only in case compare equal; `raw` keeps the original.
 *
 * @example extractUrls('link in bio: linktr.ee/ShopName!') // [{ type: 'url', value: 'linktr.ee/shopname', host: 'linktr.ee', path: '/shopname', raw: 'linktr.ee/ShopName', index: 13 }]
 */
export function extractUrls(text: string): UrlExtraction[] {
  const s = text.normalize('NFKC');
  return dropOverlapping([...schemeUrls(s), ...domainUrls(s), ...spokenUrls(s)]);
}

// ---------------------------------------------------------------------------------------------------------
// Phones

/**
 * Phone candidates, tried in order at each position: international (+CC and groups), "(555) 123-4567",
 * groups separated by one space, hyphen or dot ("555-123-4567", "138 0013 8000", "012-345 6789"), and
 * unseparated digits. Not glued to a Latin word or number (codes like SAVE20240101), nor after "x/" or "x-".
 */
const PHONE = new RegExp(
  String.raw`(?<![\p{Script=Latin}\p{N}.,+])(?<![\p{Script=Latin}\p{N}][\-/])` +
    String.raw`(\+\s?\d{1,4}(?:[ .\-]?\(?\d{1,5}\)?){1,6}|\(\d{2,4}\)\s?\d{3,4}[ .\-]?\d{4}|\d{2,5}(?:[ .\-]\d{2,5}){1,4}|\d{8,15})` +
    String.raw`(?![\p{Script=Latin}\p{N}])`,
  'gu',
);
/** A currency just before: "$1299 1599" is not a phone. */
const CURRENCY_BEFORE = /(?:[$€£¥₱₹฿₩₫]|\b(?:RM|RMB|PHP|USD|EUR|Rp|Rs))\s?$/i;
/** A unit or currency just after: "13800138000元", "12345678 %". */
const UNIT_AFTER = /^\s?(?:%|元|块|円|dollars?|bucks|ringgit|pesos?|percent|pcs|items?|[kK]?g\b|cm\b|mm\b)/i;
const YEAR = /^(?:19|20)\d\d$/;

interface PhoneCandidate {
  readonly raw: string;
  /** Where `raw` starts in the regular expression's match (leading groups may be dropped). */
  readonly offset: number;
  readonly digits: string;
  readonly international: boolean;
}

/**
 * Checks a candidate's shape. A run of groups may have swallowed a neighbour ("99 555-123-4567",
 * "555-123-4567 2024", "in 2024 138 0013 8000"): then the first valid part is taken, dropping leading groups
 * (local numbers only: a "+" number starts where its "+" is) and then trailing ones, and preferring a part
 * that neither starts nor ends with a year set off by a space.
 */
function validPhone(match: string): PhoneCandidate | undefined {
  const international = match.startsWith('+');
  const parts = match.split(/(?=[ .\-(])/);
  const valid: PhoneCandidate[] = [];
  let offset = 0;
  for (let first = 0; first < (international ? 1 : parts.length); first++) {
    for (let last = parts.length; last > first; last--) {
      const joined = parts.slice(first, last).join('');
      const raw = joined.replace(/^[ .-]+/, '').replace(/[ .\-(]+$/, '');
      if (isPhoneShape(raw, international)) {
        const start = offset + (joined.length - joined.replace(/^[ .-]+/, '').length);
        valid.push({ raw, offset: start, digits: raw.replace(/\D/g, ''), international });
      }
    }
    offset += parts[first]!.length;
  }
  return valid.find((c) => international || !hasYearEdge(c.raw)) ?? valid[0];
}

/** "2024 555-123-4567", "555-1234 2024": a year and a phone side by side, as OCR lines run them together. */
function hasYearEdge(raw: string): boolean {
  return /^(?:19|20)\d\d (?=\d)/.test(raw) || /(?<=\d) (?:19|20)\d\d$/.test(raw);
}

function isPhoneShape(raw: string, international: boolean): boolean {
  if ((raw.match(/\(/g) ?? []).length !== (raw.match(/\)/g) ?? []).length) return false;
  const digits = raw.replace(/\D/g, '');
  if (international) return digits.length >= 8 && digits.length <= 15;
  if (digits.length < 8 || digits.length > 12) return false;
  const groups = raw.split(/[^\d]+/).filter((g) => g !== '');
  if (groups.length === 1) return /^1[3-9]\d{9}$/.test(digits) || /^0\d{8,10}$/.test(digits);
  if (groups.every((g) => YEAR.test(g))) return false; // "2023 2024"
  if (isDateLike(groups)) return false;
  // A dot separator is a decimal point unless every group is long: "1299.00 1599.00" is two prices.
  if (raw.includes('.') && groups.some((g, i) => i > 0 && g.length < 3)) return false;
  // A local number starts with an area code of three digits or more, a trunk 0 or a bracket: "99 555…" does
  // not. One group has four digits or more ("100 200 300" is a list).
  const first = groups[0]!;
  if (first.length < 3 && !first.startsWith('0') && !raw.startsWith('(')) return false;
  return groups[groups.length - 1]!.length >= 3 && groups.some((g) => g.length >= 4);
}

function isDateLike(groups: readonly string[]): boolean {
  if (groups.length !== 3) return false;
  const [a, b, c] = groups as [string, string, string];
  const small = (g: string) => g.length <= 2 && Number(g) <= 31;
  return (YEAR.test(a) && small(b) && small(c)) || (YEAR.test(c) && small(a) && small(b));
}

function phone(candidate: PhoneCandidate, index: number): PhoneExtraction {
  const value = (candidate.international ? '+' : '') + candidate.digits;
  return { type: 'phone', raw: candidate.raw, index, value, international: candidate.international };
}

function phonesIn(s: string): PhoneExtraction[] {
  const out: PhoneExtraction[] = [];
  const re = new RegExp(PHONE.source, 'gu');
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const candidate = validPhone(m[0]);
    if (candidate === undefined) continue;
    const index = m.index + candidate.offset;
    const end = index + candidate.raw.length;
    if (CURRENCY_BEFORE.test(s.slice(Math.max(0, index - 4), index))) continue;
    if (UNIT_AFTER.test(s.slice(end))) continue;
    // A shorter valid part leaves the rest of the run to be scanned again ("555-123-4567 2024").
    re.lastIndex = end;
    out.push(phone(candidate, index));
  }
  return out;
}

/**
 * Phone numbers in raw text, in text order: international (`+60 12-345 6789`, `+86 138 0013 8000`,
 * `+1 (555) 123-4567`), local grouped (`(555) 123-4567`, `555-123-4567`, `012-345 6789`, `138 0013 8000`),
 * and unseparated runs that are a Chinese mobile (`13800138000`: 11 digits, 1[3-9]…) or start with a trunk 0
 * (`0123456789`). 8–15 digits (12 without "+"). `value` is the digits, with "+" when written.
 *
 * Not phones: years and year ranges, dates (2024-01-15), decimals, numbers glued to letters (codes, model
 * numbers), numbers after a currency or before a unit, other unseparated runs (order ids). Known limit: a
 * list of grouped numbers ("1299 1599 1999") can read as one phone.
 *
 * @example extractPhones('WhatsApp +60 12-345 6789 now') // [{ type: 'phone', value: '+60123456789', international: true, raw: '+60 12-345 6789', index: 9 }]
 */
export function extractPhones(text: string): PhoneExtraction[] {
  return phonesIn(text.normalize('NFKC'));
}

// ---------------------------------------------------------------------------------------------------------
// Handles

/** Platform names and nicknames as they are said or written before an account. */
const PLATFORM_CUES: Readonly<Record<string, Exclude<HandlePlatform, 'unknown'>>> = {
  instagram: 'instagram',
  insta: 'instagram',
  ig: 'instagram',
  telegram: 'telegram',
  tg: 'telegram',
  电报: 'telegram',
  whatsapp: 'whatsapp',
  'whats app': 'whatsapp',
  whatapp: 'whatsapp',
  watsapp: 'whatsapp',
  wasap: 'whatsapp',
  wa: 'whatsapp',
  wechat: 'wechat',
  'we chat': 'wechat',
  weixin: 'wechat',
  wx: 'wechat',
  vx: 'wechat',
  v信: 'wechat',
  微信号: 'wechat',
  微信: 'wechat',
  薇信: 'wechat',
  威信: 'wechat',
  加v: 'wechat',
  加微信: 'wechat',
  加微: 'wechat',
  tiktok: 'tiktok',
  'tik tok': 'tiktok',
  douyin: 'tiktok',
  抖音号: 'tiktok',
  抖音: 'tiktok',
  facebook: 'facebook',
  fb: 'facebook',
  脸书: 'facebook',
  'line id': 'line',
  line: 'line',
};
/** Platforms whose accounts are phone numbers: only a phone is taken after their cue. */
const PHONE_ONLY = new Set<HandlePlatform>(['whatsapp']);

const HANDLE_CUE = new RegExp(`(${cueAlternation(Object.keys(PLATFORM_CUES))})`, 'giu');
/** Between the platform and the account: "IG: x", "whatsapp me at +60…", "微信号是abc123", "TG - x". */
const HANDLE_FILLER =
  /^(?:\s*(?:[:=\-–—]|(?:me|us|at|on|via|is|id|no\.?|number|num|name|handle|account|acc|username)(?![\p{L}\p{N}])|是|号|號)\s*)*/iu;
/** Only the punctuation between platform and account, for when the "filler" word was the account itself. */
const HANDLE_SEPARATOR = /^(?:\s*[:=\-–—]\s*)*\s*/u;
const HANDLE_NAME = /^@?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,28}[A-Za-z0-9_])?(?![A-Za-z0-9_@])/;
const BARE_HANDLE =
  /(?<![\p{Script=Latin}\p{N}_.@+-])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)(?![A-Za-z0-9_@])/gu;

/** Words that follow a platform name in speech and are not an account ("follow us on IG for more"). */
const HANDLE_STOPWORDS = new Set([
  ...PROMO_STOPWORDS,
  ...'group channel page live link please pls dm message chat follow call contact'.split(' '),
]);

/** A name that is really a domain ("IG: shop.com") is left to extractUrls. */
function looksLikeDomain(name: string): boolean {
  const labels = name.toLowerCase().split('.');
  return labels.length > 1 && (STRONG_TLDS.has(labels.at(-1)!) || WEAK_TLDS.has(labels.at(-1)!));
}

function handleAfterCue(s: string, cue: RegExpExecArray): HandleExtraction | undefined {
  const alias = cue[1]!.toLowerCase().replace(/\s+/g, ' ');
  const platform = PLATFORM_CUES[alias];
  if (platform === undefined) return undefined;
  const afterCue = cue.index + cue[0].length;
  const rest = s.slice(afterCue);
  // "line" is an ordinary word: only "LINE: x" (an explicit colon) names the app.
  if (alias === 'line' && !/^\s*:/.test(rest)) return undefined;
  const handle = (at: number, value: string, length: number): HandleExtraction => ({
    type: 'handle',
    platform,
    raw: s.slice(cue.index, at + length),
    index: cue.index,
    value,
  });
  // Fillers first ("IG name: shopxyz", "whatsapp me at +60…"); then without them, for when the would-be
  // filler is the account ("insta name").
  for (const skip of [HANDLE_FILLER, HANDLE_SEPARATOR]) {
    const at = afterCue + (skip.exec(rest)?.[0].length ?? 0);
    const phone = phoneAt(s, at);
    if (phone !== undefined) return handle(at, phone.value, phone.raw.length);
    if (PHONE_ONLY.has(platform)) continue;
    const name = accountNameAt(s, at);
    if (name !== undefined) return handle(at, name, name.length);
  }
  return undefined;
}

/** An account id at `at` ("@name", "abc123", "shop_name"), unless it is a common word or a domain. */
function accountNameAt(s: string, at: number): string | undefined {
  const name = HANDLE_NAME.exec(s.slice(at))?.[0];
  if (name === undefined) return undefined;
  const bare = name.replace(/^@/, '');
  if (bare.length < 2 || HANDLE_STOPWORDS.has(bare.toLowerCase()) || looksLikeDomain(bare)) return undefined;
  return name;
}

/** The phone number starting exactly at `at`, if there is one. */
function phoneAt(s: string, at: number): PhoneExtraction | undefined {
  const re = new RegExp(PHONE.source, 'uy');
  re.lastIndex = at;
  const m = re.exec(s);
  const candidate = m === null ? undefined : validPhone(m[0]);
  return candidate === undefined || candidate.offset !== 0 ? undefined : phone(candidate, at);
}

/**
 * Social accounts in raw text, in text order: a bare `@name` (platform `unknown`), and an account after a
 * platform name or nickname: `IG: name`, `insta name`, `TG: @name`, `telegram name`, `wechat: abc123`,
 * `vx abc123`, `微信号 abc123`, `v信 abc123`, `加V: abc123`, `tiktok @name`, `FB: name`, `LINE: name`,
 * `whatsapp +60 12-345 6789` (WhatsApp takes only a phone, and its `value` is the phone's value, as
 * extractPhones gives it; WeChat, Telegram and LINE take a phone or an id). Fillers such as "me at", "is",
 * `是`, `号` may stand between ("whatsapp me at +60…").
 *
 * Not handles: e-mail addresses (`a@b.com`), a domain after a platform name ("IG: shop.com" is a URL), and
 * common words after one ("follow us on IG for more"). Known limit: only Latin ids are read (a Chinese
 * nickname after 抖音 is not).
 *
 * @example extractHandles('微信号 abc123') // [{ type: 'handle', platform: 'wechat', value: 'abc123', raw: '微信号 abc123', index: 0 }]
 */
export function extractHandles(text: string): HandleExtraction[] {
  const s = text.normalize('NFKC');
  const out: HandleExtraction[] = [];
  for (const m of matchesOf(HANDLE_CUE, s)) {
    const handle = handleAfterCue(s, m);
    if (handle !== undefined) out.push(handle);
  }
  for (const m of matchesOf(BARE_HANDLE, s)) {
    if (looksLikeDomain(m[1]!)) continue;
    out.push({ type: 'handle', platform: 'unknown', raw: m[0], index: m.index, value: m[0] });
  }
  return dropOverlapping(out);
}

// ---------------------------------------------------------------------------------------------------------
// All together

/**
 * Which extraction keeps a contested span: a URL owns the digits and "@" inside it, a promo code owns the
 * number after its cue ("code 8888"), a price owns its number (it is not also a phone), a percentage owns a
 * number before "%".
 */
const PRIORITY: Readonly<Record<Extraction['type'], number>> = {
  url: 0,
  promo_code: 1,
  price: 2,
  percent: 3,
  phone: 4,
  handle: 5,
};

/** A handle given as a phone number ("whatsapp +60 12…") and that phone are two facts: both are kept. */
function mayOverlap(a: Extraction, b: Extraction): boolean {
  const pair = new Set([a.type, b.type]);
  return pair.has('handle') && pair.has('phone') && a.value === b.value;
}

/**
 * Every extraction in raw text, sorted by index (ties: URL, promo code, price, percent, phone, handle).
 * Overlaps are resolved by priority, then length: a phone or handle inside a URL belongs to the URL; a price
 * is not also a phone; a promo code's number is not also a phone or price. The one overlap kept is a handle
 * whose value is the phone it contains ("whatsapp +60 12-345 6789" gives a handle and a phone).
 *
 * @example extractAll('wa.me/60123456789 RM49').map((e) => e.type) // ['url', 'price']
 */
export function extractAll(text: string): Extraction[] {
  const candidates: Extraction[] = [
    ...extractUrls(text),
    ...extractPromoCodes(text),
    ...extractPrices(text),
    ...extractPercentages(text),
    ...extractPhones(text),
    ...extractHandles(text),
  ];
  const byPriority = [...candidates].sort(
    (a, b) => PRIORITY[a.type] - PRIORITY[b.type] || b.raw.length - a.raw.length || a.index - b.index,
  );
  const kept: Extraction[] = [];
  for (const c of byPriority) {
    const conflict = kept.some((k) => overlaps(spanOf(k), spanOf(c)) && !mayOverlap(k, c));
    if (!conflict) kept.push(c);
  }
  return kept.sort((a, b) => a.index - b.index || PRIORITY[a.type] - PRIORITY[b.type]);
}
