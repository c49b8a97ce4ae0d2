// Text normalisation for the rule engine: one canonical form for what was said (ASR) or read (OCR), so that a
// rule written once ("link in bio", "加微信", "$") matches full-width OCR output, shouting capitals and Chinese
// numerals alike. Rule phrases go through the same functions, so every choice made here only has to be
// consistent, not linguistically perfect. normalize.test.ts pins each behaviour, idempotence included.

/** Chinese digits (simplified, traditional and financial forms) and their values. */
const CHINESE_DIGITS: Readonly<Record<string, number>> = {
  零: 0,
  〇: 0,
  一: 1,
  壹: 1,
  二: 2,
  贰: 2,
  貳: 2,
  两: 2,
  兩: 2,
  三: 3,
  叁: 3,
  參: 3,
  四: 4,
  肆: 4,
  五: 5,
  伍: 5,
  六: 6,
  陆: 6,
  陸: 6,
  七: 7,
  柒: 7,
  八: 8,
  捌: 8,
  九: 9,
  玖: 9,
};

/** Units below 万: they multiply the digit before them and must appear in decreasing order. */
const CHINESE_SMALL_UNITS: Readonly<Record<string, number>> = {
  十: 10,
  拾: 10,
  百: 100,
  佰: 100,
  千: 1_000,
  仟: 1_000,
};

/** Units that close a group: everything before them is multiplied. */
const CHINESE_BIG_UNITS: Readonly<Record<string, number>> = { 万: 10_000, 萬: 10_000, 亿: 1e8, 億: 1e8 };

/**
 * Every character that can be part of a Chinese numeral (digits, 十百千万亿 and their financial and
 * traditional forms), for building character classes: `new RegExp(\`[${CHINESE_NUMERAL_CHARS}]+\`)`.
 *
 * @example CHINESE_NUMERAL_CHARS.includes('两') // true
 */
export const CHINESE_NUMERAL_CHARS: string = [
  ...Object.keys(CHINESE_DIGITS),
  ...Object.keys(CHINESE_SMALL_UNITS),
  ...Object.keys(CHINESE_BIG_UNITS),
].join('');

/** The longest numeral prefix tried when converting a run: bounds the work on pathological input. */
const MAX_NUMERAL_CHARS = 24;

/**
 * The value of a Chinese numeral string, or `undefined` when `s` is not (entirely) one.
 *
 * Why: live sellers say prices and discounts in Chinese numerals (三十九元, 九块九, 两千), and ASR writes them
 * as characters; rules and extractors need the number.
 *
 * Accepts the structured form (一百二十 = 120, 一百零五 = 105, 十五 = 15, 两千 = 2000, 三千万 = 30000000,
 * 一亿三千万 = 130000000), the colloquial elided form where a last digit after 百/千/万/亿 counts in the next
 * lower unit (一百二 = 120, 三千五 = 3500, 三万五 = 35000), and the digit-by-digit form used for years and
 * phone numbers (二零二四 = 2024). A numeral must start with a digit or 十 (千万 alone is the word "by all
 * means", not a number); units must decrease within a group and two digits may not follow each other in the
 * structured form (一二十 is not a numeral).
 *
 * @example chineseNumeralValue('三十九') // 39
 * @example chineseNumeralValue('壹佰贰拾') // 120
 * @example chineseNumeralValue('价格') // undefined
 */
export function chineseNumeralValue(s: string): number | undefined {
  const chars = Array.from(s);
  if (chars.length === 0) return undefined;
  if (!chars.every((c) => c in CHINESE_DIGITS || c in CHINESE_SMALL_UNITS || c in CHINESE_BIG_UNITS)) {
    return undefined;
  }
  if (chars.every((c) => c in CHINESE_DIGITS)) return Number(digitString(chars));
  const first = chars[0]!;
  if (!(first in CHINESE_DIGITS) && CHINESE_SMALL_UNITS[first] !== 10) return undefined;
  return structuredValue(chars);
}

/** The digit-by-digit reading of digit characters: 二零二四 → "2024" (leading zeros kept). */
function digitString(chars: readonly string[]): string {
  return chars.map((c) => String(CHINESE_DIGITS[c])).join('');
}

type NumeralToken = 'start' | 'digit' | 'zero' | 'small' | 'big';

/** Parses the structured form (see chineseNumeralValue); `undefined` when the characters break its grammar. */
function structuredValue(chars: readonly string[]): number | undefined {
  let total = 0; // closed 亿 groups
  let wanPart = 0; // the part of the current 亿 group closed by 万
  let section = 0; // the current group below 万
  let digit: number | undefined;
  let previous: NumeralToken = 'start';
  let lastSmall = Number.POSITIVE_INFINITY;
  let lastUnit = 1;
  let digitAfterUnit = false;
  let wanUsed = false;
  let yiUsed = false;
  for (const c of chars) {
    const d = CHINESE_DIGITS[c];
    const small = CHINESE_SMALL_UNITS[c];
    const big = CHINESE_BIG_UNITS[c];
    if (d !== undefined) {
      if (previous === 'digit') return undefined;
      if (d === 0) {
        previous = 'zero';
        continue;
      }
      digitAfterUnit = previous === 'small' || previous === 'big';
      digit = d;
      previous = 'digit';
    } else if (small !== undefined) {
      // 十 may stand without its digit (十五 = 15, 二百十 is tolerated); other units need one.
      if (digit === undefined && small !== 10) return undefined;
      if (small >= lastSmall) return undefined;
      section += (digit ?? 1) * small;
      digit = undefined;
      lastSmall = small;
      lastUnit = small;
      previous = 'small';
    } else if (big !== undefined) {
      const value = section + (digit ?? 0);
      if (value === 0) return undefined;
      if (big === 10_000) {
        if (wanUsed) return undefined;
        wanPart = value * 10_000;
        wanUsed = true;
      } else {
        if (yiUsed) return undefined;
        total = (wanPart + value) * 1e8;
        wanPart = 0;
        wanUsed = false;
        yiUsed = true;
      }
      section = 0;
      digit = undefined;
      lastSmall = Number.POSITIVE_INFINITY;
      lastUnit = big;
      previous = 'big';
    }
  }
  // Colloquial elision: 三千五 is 3500, not 3005; after 十 the digit is a unit anyway (十五 = 15).
  const tail = digit === undefined ? 0 : digitAfterUnit && lastUnit >= 100 ? (digit * lastUnit) / 10 : digit;
  return total + wanPart + section + tail;
}

function isNumeralStart(c: string): boolean {
  return c in CHINESE_DIGITS || CHINESE_SMALL_UNITS[c] === 10;
}

/**
 * Replaces each Chinese numeral inside a run of numeral characters by its Arabic digits. Greedy: at each
 * position the longest prefix that parses wins; characters that start no numeral (a leading 千 or 万, as in
 * 千万 or 万一) are kept. Two numbers converted side by side are separated by a space so that they do not
 * merge into one (二十一三 → "21 3").
 */
function convertChineseNumerals(text: string): string {
  const run = new RegExp(`[${CHINESE_NUMERAL_CHARS}]+`, 'gu');
  return text.replace(run, (match) => {
    const chars = Array.from(match);
    let out = '';
    let lastWasNumber = false;
    let i = 0;
    while (i < chars.length) {
      const converted = longestNumeralAt(chars, i);
      if (converted === undefined) {
        out += chars[i];
        lastWasNumber = false;
        i += 1;
        continue;
      }
      out += (lastWasNumber ? ' ' : '') + converted.text;
      lastWasNumber = true;
      i += converted.length;
    }
    return out;
  });
}

function longestNumeralAt(
  chars: readonly string[],
  start: number,
): { text: string; length: number } | undefined {
  if (!isNumeralStart(chars[start]!)) return undefined;
  const maxLength = Math.min(chars.length - start, MAX_NUMERAL_CHARS);
  for (let length = maxLength; length >= 1; length--) {
    const slice = chars.slice(start, start + length);
    if (slice.every((c) => c in CHINESE_DIGITS)) return { text: digitString(slice), length };
    const value = chineseNumeralValue(slice.join(''));
    if (value !== undefined) return { text: String(value), length };
  }
  return undefined;
}

/**
 * Multipliers written after Arabic digits: 3万 = 30000, 1.5千 = 1500, 2百万 = 2000000. Runs on the text
 * after punctuation is replaced (so "1,000万" is already "1000万"), and takes the whole run of unit
 * characters, converting only a valid one (one unit, 百万/千万/百亿/千亿, 万亿): a second pass then finds
 * nothing left to convert, which keeps normalizeText idempotent.
 */
const ARABIC_WITH_UNIT = /(?<![\p{Script=Latin}0-9.])([0-9]+(?:\.[0-9]+)?)([百佰千仟万萬亿億]+)(?![0-9])/gu;

/** Beyond this an Arabic-with-unit value is left alone (String() would switch to exponent notation). */
const MAX_SAFE_CONVERTED = 1e15;

function unitRunMultiplier(units: string): number | undefined {
  const values = Array.from(units).map((u) => CHINESE_SMALL_UNITS[u] ?? CHINESE_BIG_UNITS[u] ?? 0);
  const [first = 0, second = 0] = values;
  if (values.length === 1) return first;
  return values.length === 2 && first < second && second >= 10_000 ? first * second : undefined;
}

function convertArabicWithUnits(text: string): string {
  return text.replace(ARABIC_WITH_UNIT, (match, digits: string, units: string) => {
    const multiplier = unitRunMultiplier(units);
    if (multiplier === undefined) return match;
    const value = Math.round(Number(digits) * multiplier * 1e6) / 1e6;
    return value > MAX_SAFE_CONVERTED ? match : String(value);
  });
}

const CJK_SCRIPT = /[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}]/u;
const LETTER_OR_NUMBER = /[\p{L}\p{N}\p{M}]/u;
const CURRENCY_OR_PERCENT = /[\p{Sc}%]/u;
const LATIN_LETTER = /\p{Script=Latin}/u;
const ASCII_DIGIT = /[0-9]/;

/**
 * Whether `c` is one CJK token: a Han ideograph, kana or Hangul syllable (also 々 and the kana length mark,
 * which carry those scripts as extensions). Each such character is a token of its own in `tokenize`.
 *
 * @example isCjkChar('微') // true
 * @example isCjkChar('a') // false
 */
export function isCjkChar(c: string): boolean {
  return LETTER_OR_NUMBER.test(c) && CJK_SCRIPT.test(c);
}

/** A letter, digit or mark of a non-CJK script: what runs of one token are made of. */
function isWordChar(c: string | undefined): boolean {
  return c !== undefined && LETTER_OR_NUMBER.test(c) && !CJK_SCRIPT.test(c);
}

/** Characters kept only between two word characters: they hold URLs, handles, decimals and times together. */
const INNER_CHARS = new Set(['@', '.', '/', ':']);
const APOSTROPHES = new Set(["'", '’', 'ʼ']);

/**
 * Decides, character by character, what punctuation becomes. Looks at the neighbours in the text before this
 * step; since word characters are kept as they are, the same neighbours are there on a second pass, which is
 * what keeps normalizeText idempotent.
 */
function replacePunctuation(text: string): string {
  const chars = Array.from(text);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const before = chars[i - 1];
    const after = chars[i + 1];
    if (LETTER_OR_NUMBER.test(c) || CURRENCY_OR_PERCENT.test(c)) out += c;
    else if (INNER_CHARS.has(c)) out += isWordChar(before) && isWordChar(after) ? c : ' ';
    else if (c === ',') out += isThousandsComma(chars, i) ? '' : ' ';
    // "don't" and OCR's "dont" should match each other: an apostrophe inside a Latin word is dropped.
    else if (APOSTROPHES.has(c)) out += isLatin(before) && isLatin(after) ? '' : ' ';
    else out += ' ';
  }
  return out;
}

function isLatin(c: string | undefined): boolean {
  return c !== undefined && LATIN_LETTER.test(c);
}

/**
 * A comma that groups thousands (1,299.00 and 10,000): between digits and followed by exactly three digits.
 * It is dropped so that the number stays one token; any other comma (15,50, "a, b") separates.
 */
function isThousandsComma(chars: readonly string[], i: number): boolean {
  const isDigit = (k: number) => chars[k] !== undefined && ASCII_DIGIT.test(chars[k]!);
  return isDigit(i - 1) && isDigit(i + 1) && isDigit(i + 2) && isDigit(i + 3) && !isDigit(i + 4);
}

/** Invisible format characters (zero-width space, joiners, BOM): removed, never a word break. */
const FORMAT_CHARS = /\p{Cf}/gu;

/**
 * The canonical form of transcript or OCR text for matching. Steps, in order:
 * 1. Unicode NFKC: full-width letters, digits and symbols become their ASCII forms ("ＳＡＶＥ２０" → "SAVE20",
 *    "￥" → "¥"); invisible format characters are removed.
 * 2. Lower case.
 * 3. Chinese numerals become Arabic digits (三十九 → 39, 一百二十 → 120, 两千 → 2000, 九块九 → 9块9, 十 → 10,
 *    二零二四 → 2024); Arabic digits with a Chinese multiplier too (3万 → 30000). English number words are
 *    not converted.
 * 4. Punctuation and symbols become spaces, except: `@ . / :` between two (non-CJK) letters or digits are
 *    kept ("link.in/bio", "12.99", "wa.me/123", "12:30"; "bio." → "bio"); currency symbols (`$ ¥ € £ ₱` and
 *    every other Unicode currency sign) and `%` are kept; a thousands comma is dropped (1,299 → 1299); an
 *    apostrophe inside a Latin word is dropped (don't → dont).
 * 5. Whitespace runs collapse to one space; the ends are trimmed.
 *
 * Why: rules and BM25 compare tokens, and ASR/OCR write the same words in many shapes. Idempotent:
 * `normalizeText(normalizeText(x)) === normalizeText(x)`, so already-normalised rule phrases are safe.
 *
 * Note that conversion is context-free: 一起 becomes "1起" and 第一 "第1". Rule phrases are normalised the
 * same way, so they still match; 千万 ("by all means") stays as it is because a numeral must start with a
 * digit or 十.
 *
 * @example normalizeText('ＳＡＶＥ２０ today!') // "save20 today"
 * @example normalizeText('只要三十九元，链接在简介 Link.in/BIO.') // "只要39元 链接在简介 link.in/bio"
 */
export function normalizeText(input: string): string {
  let text = input.normalize('NFKC').replace(FORMAT_CHARS, '');
  text = text.toLowerCase().normalize('NFKC');
  text = convertChineseNumerals(text);
  text = convertArabicWithUnits(replacePunctuation(text));
  return text.replace(/\s+/gu, ' ').trim();
}

/**
 * Splits normalised text into tokens for phrase matching and BM25:
 * - a run of (non-CJK) letters and digits is one token, with the inner `. @ / :` that normalizeText kept
 *   ("link.in/bio", "12.99", "a@b.com");
 * - each CJK character (Han, Hiragana, Katakana, Hangul) is its own token, since Chinese has no spaces and a
 *   character is the unit ASR and OCR get right or wrong;
 * - each currency symbol and `%` is its own token ("50%" → ["50", "%"]);
 * - anything else separates tokens (it is only there when the input was not normalised).
 *
 * @example tokenize(normalizeText('私信我加微信，链接在简介 Link in BIO!'))
 * // ["私","信","我","加","微","信","链","接","在","简","介","link","in","bio"]
 */
export function tokenize(normalized: string): string[] {
  const chars = Array.from(normalized);
  const tokens: string[] = [];
  let word = '';
  const flush = () => {
    if (word !== '') tokens.push(word);
    word = '';
  };
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (isWordChar(c)) {
      word += c;
    } else if (INNER_CHARS.has(c) && word !== '' && isWordChar(chars[i + 1])) {
      word += c;
    } else {
      flush();
      if (isCjkChar(c) || CURRENCY_OR_PERCENT.test(c)) tokens.push(c);
    }
  }
  flush();
  return tokens;
}
