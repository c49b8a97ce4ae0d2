/**
 * Whisper's tokenizer, read from the model's `tokenizer.json` (Hugging Face tokenizers format: GPT-2
 * byte-level BPE plus added special tokens), behaving as faster-whisper's `Tokenizer` (which wraps the
 * `tokenizers` library) does. Pinned by `tokenizer.test.ts` against test/golden/asr-tokenizer.json, which
 * the reference wrote with `tokenizers` and faster-whisper themselves.
 *
 * - Decoding works on bytes: every token maps back to the bytes it stands for (GPT-2's bytes_to_unicode
 *   table), the bytes of all tokens are joined, and only then decoded as UTF-8, invalid sequences becoming
 *   U+FFFD one per maximal invalid subpart (Rust's `from_utf8_lossy` and WHATWG's TextDecoder agree). A
 *   Chinese character or an emoji split across tokens decodes whole when its tokens are together, and as
 *   U+FFFD when one of them is alone.
 * - Special tokens are looked up by their string, never by id: the ids differ by one between the `.en`
 *   and the multilingual vocabularies. `<|nospeech|>` is `<|nocaptions|>` in older tokenizer.json files.
 *   Timestamp tokens are the ids from `<|notimestamps|>` + 1 on (1501 of them, 0.00 to 30.00 s by 0.02 s);
 *   the tiny.en tokenizer.json does not list them, so they are decoded from the id.
 * - Encoding: added tokens (`<|...|>`) matched first, longest first; then the GPT-2 pre-tokenisation regex;
 *   each piece's UTF-8 bytes through the byte table; BPE by merge rank.
 */
import { readFile } from 'node:fs/promises';
import { LiveLensError } from '@livelens/runtime';

/** Timestamp tokens: <|0.00|> .. <|30.00|>, 0.02 s apart. */
export const WHISPER_TIMESTAMP_COUNT = 1501;
/** Seconds per timestamp step (input stride 2 × hop 160 / 16 kHz). */
export const WHISPER_TIMESTAMP_STEP_S = 0.02;

/** Languages without spaces between words: word timings split them per character (openai, faster-whisper). */
export const LANGUAGES_WITHOUT_SPACES: ReadonlySet<string> = new Set(['zh', 'ja', 'th', 'lo', 'my', 'yue']);

/** The ids of Whisper's special tokens, as found in one tokenizer.json. */
export interface WhisperSpecialTokens {
  /** `<|endoftext|>`: every id below it is text. */
  readonly eot: number;
  /** `<|startoftranscript|>` */
  readonly sot: number;
  /** `<|startofprev|>`: starts the previous-text prompt. */
  readonly sotPrev: number;
  /** `<|startoflm|>` */
  readonly sotLm: number;
  readonly translate: number;
  readonly transcribe: number;
  /** `<|nospeech|>` or, in older files, `<|nocaptions|>`: its probability at the sot position is no_speech_prob. */
  readonly noSpeech: number;
  readonly noTimestamps: number;
  /** `<|0.00|>`: `noTimestamps + 1`. */
  readonly timestampBegin: number;
  /** One past `<|30.00|>`: the model's vocabulary size. */
  readonly timestampEnd: number;
}

/** A decoded word for word timings: its text and the tokens it is made of. */
export interface WordTokens {
  readonly words: string[];
  readonly tokens: number[][];
}

export interface WhisperTokenizerOptions {
  /**
   * The model's vocabulary size (CT2 vocabulary file length, or the logits' last dimension), to check the
   * timestamp range against. @default timestampBegin + 1501
   */
  readonly vocabularySize?: number;
}

function tokenizerError(message: string, cause?: unknown): LiveLensError {
  return new LiveLensError(`whisper tokenizer: ${message}`, { code: 'invalid_argument', cause });
}

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
function byteTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const byteToChar = new Array<string>(256);
  const isPrintable = new Set(printable);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    byteToChar[b] = String.fromCodePoint(isPrintable.has(b) ? b : 256 + extra++);
  }
  const charToByte = new Map<string, number>();
  for (let b = 0; b < 256; b++) charToByte.set(byteToChar[b] as string, b);
  return { byteToChar, charToByte };
}

const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = byteTables();

/**
 * GPT-2's pre-tokenisation (the `tokenizers` ByteLevel pre-tokenizer with use_regex). `\s` is written as
 * `\p{White_Space}`: JavaScript's `\s` also matches U+FEFF and misses U+0085, the Unicode property is what
 * the Rust regex engine matches.
 */
const PRE_TOKENIZE =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** `string.punctuation` of Python: faster-whisper tests `subword.strip() in string.punctuation` (a substring test). */
const PY_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

const utf8 = new TextEncoder();

/** The tokenizer.json fields read here. */
interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
}

function parseTokenizerJson(value: unknown): TokenizerJson {
  const json = value as Partial<TokenizerJson> | null;
  const model = json?.model;
  if (model?.type !== 'BPE' || typeof model.vocab !== 'object' || !Array.isArray(model.merges)) {
    throw tokenizerError('tokenizer.json has no BPE model with vocab and merges');
  }
  if (!Array.isArray(json?.added_tokens)) throw tokenizerError('tokenizer.json has no added_tokens');
  return json as TokenizerJson;
}

/**
 * Whisper's tokenizer. Build it with `WhisperTokenizer.fromFile(path)` or `fromJson(parsed)`; it is
 * immutable apart from an internal BPE cache, so one instance serves every stream.
 */
export class WhisperTokenizer {
  readonly special: WhisperSpecialTokens;
  /** Language code → token id, in id order (`en` first), from the `<|xx|>` tokens between sot and translate. */
  readonly languages: ReadonlyMap<string, number>;
  /**
   * Whether the model is multilingual: vocabulary size ≥ 51865 (openai's rule; `.en` models have 51864).
   * An English-only model's tokenizer still lists language tokens, but its sot sequence is `[sot]` alone.
   */
  readonly multilingual: boolean;
  private readonly idToToken: (string | undefined)[];
  private readonly tokenToIdMap: Map<string, number>;
  private readonly addedTokens: Map<string, { id: number; special: boolean }>;
  private readonly addedById: Map<number, { content: string; special: boolean }>;
  private readonly addedPattern: RegExp | undefined;
  private readonly ranks: Map<string, number>;
  private readonly bpeCache = new Map<string, number[]>();
  private nonSpeech: number[] | undefined;

  private constructor(json: TokenizerJson, options: WhisperTokenizerOptions) {
    this.tokenToIdMap = new Map();
    this.idToToken = [];
    for (const [token, id] of Object.entries(json.model.vocab)) {
      this.tokenToIdMap.set(token, id);
      this.idToToken[id] = token;
    }
    this.addedTokens = new Map();
    this.addedById = new Map();
    for (const added of json.added_tokens) {
      this.addedTokens.set(added.content, { id: added.id, special: added.special });
      this.addedById.set(added.id, { content: added.content, special: added.special });
      this.tokenToIdMap.set(added.content, added.id);
    }
    const contents = [...this.addedTokens.keys()].sort((a, b) => b.length - a.length);
    this.addedPattern =
      contents.length > 0
        ? new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')
        : undefined;
    this.ranks = new Map();
    json.model.merges.forEach((merge, rank) => {
      const pair = typeof merge === 'string' ? merge : `${merge[0]} ${merge[1]}`;
      if (!this.ranks.has(pair)) this.ranks.set(pair, rank);
    });

    const need = (name: string): number => {
      const id = this.tokenToIdMap.get(name);
      if (id === undefined) throw tokenizerError(`tokenizer.json has no ${name} token`);
      return id;
    };
    const noTimestamps = need('<|notimestamps|>');
    const timestampBegin = noTimestamps + 1;
    const timestampEnd = options.vocabularySize ?? timestampBegin + WHISPER_TIMESTAMP_COUNT;
    if (timestampEnd !== timestampBegin + WHISPER_TIMESTAMP_COUNT) {
      throw tokenizerError(
        `vocabulary size ${timestampEnd} leaves ${timestampEnd - timestampBegin} timestamp tokens after ` +
          `<|notimestamps|> (${noTimestamps}); Whisper has ${WHISPER_TIMESTAMP_COUNT}`,
      );
    }
    const listedZero = this.tokenToIdMap.get('<|0.00|>');
    if (listedZero !== undefined && listedZero !== timestampBegin) {
      throw tokenizerError(`<|0.00|> is id ${listedZero}, expected <|notimestamps|> + 1 = ${timestampBegin}`);
    }
    const noSpeech = this.tokenToIdMap.get('<|nospeech|>') ?? this.tokenToIdMap.get('<|nocaptions|>');
    if (noSpeech === undefined)
      throw tokenizerError('tokenizer.json has neither <|nospeech|> nor <|nocaptions|>');
    this.special = {
      eot: need('<|endoftext|>'),
      sot: need('<|startoftranscript|>'),
      sotPrev: need('<|startofprev|>'),
      sotLm: need('<|startoflm|>'),
      translate: need('<|translate|>'),
      transcribe: need('<|transcribe|>'),
      noSpeech,
      noTimestamps,
      timestampBegin,
      timestampEnd,
    };
    const languages = new Map<string, number>();
    for (let id = this.special.sot + 1; id < this.special.translate; id++) {
      const content = this.addedById.get(id)?.content;
      const code = content && /^<\|([a-z]{2,3})\|>$/.exec(content)?.[1];
      if (!code) throw tokenizerError(`token ${id} between sot and translate is not a language (${content})`);
      languages.set(code, id);
    }
    this.languages = languages;
    this.multilingual = timestampEnd >= 51865;
  }

  /** From a parsed tokenizer.json. */
  static fromJson(json: unknown, options: WhisperTokenizerOptions = {}): WhisperTokenizer {
    return new WhisperTokenizer(parseTokenizerJson(json), options);
  }

  /** From a tokenizer.json file. */
  static async fromFile(path: string, options: WhisperTokenizerOptions = {}): Promise<WhisperTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw tokenizerError(`cannot read ${path}`, error);
    }
    return WhisperTokenizer.fromJson(json, options);
  }

  /** The id of a token string (vocabulary or added), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }

  /** The token string of an id (`<|1.24|>` for a timestamp even when tokenizer.json does not list it). */
  idToTokenString(id: number): string | undefined {
    if (this.isTimestamp(id)) return `<|${this.timestampSeconds(id).toFixed(2)}|>`;
    return this.addedById.get(id)?.content ?? this.idToToken[id];
  }

  /** The `<|xx|>` token of a language code; throws for a code the vocabulary lacks. */
  languageToken(code: string): number {
    const id = this.languages.get(code);
    if (id === undefined) throw tokenizerError(`no language token <|${code}|>`);
    return id;
  }

  /** The language code of a language token id, or undefined. */
  languageCode(id: number): string | undefined {
    for (const [code, tokenId] of this.languages) if (tokenId === id) return code;
    return undefined;
  }

  /**
   * The decoder prompt's start: `[sot]` for an English-only model, `[sot, <|lang|>, <|task|>]` for a
   * multilingual one (faster-whisper's `sot_sequence`). Add `noTimestamps` yourself when decoding without
   * timestamps.
   */
  sotSequence(options: { language?: string; task?: 'transcribe' | 'translate' } = {}): number[] {
    if (!this.multilingual) return [this.special.sot];
    const task = options.task ?? 'transcribe';
    return [
      this.special.sot,
      this.languageToken(options.language ?? 'en'),
      task === 'translate' ? this.special.translate : this.special.transcribe,
    ];
  }

  isTimestamp(id: number): boolean {
    return id >= this.special.timestampBegin && id < this.special.timestampEnd;
  }

  /** Seconds of a timestamp token (relative to its window). */
  timestampSeconds(id: number): number {
    return (id - this.special.timestampBegin) * WHISPER_TIMESTAMP_STEP_S;
  }

  // ---- decoding ------------------------------------------------------------------------------------

  /**
   * The bytes of tokens as the `tokenizers` ByteLevel decoder joins them: each token's characters through
   * the byte table (or, for a token with characters outside it, its UTF-8). Special added tokens are skipped
   * (`skip_special_tokens`, the default) and unknown ids ignored, as `Tokenizer.decode` does.
   */
  decodeBytes(ids: readonly number[]): Uint8Array {
    const out: number[] = [];
    for (const id of ids) {
      const added = this.addedById.get(id);
      if (added?.special) continue;
      const token = added?.content ?? this.idToToken[id];
      if (token === undefined) continue;
      const start = out.length;
      let mapped = true;
      for (const char of token) {
        const byte = CHAR_TO_BYTE.get(char);
        if (byte === undefined) {
          mapped = false;
          break;
        }
        out.push(byte);
      }
      if (!mapped) {
        out.length = start;
        for (const byte of utf8.encode(token)) out.push(byte);
      }
    }
    return Uint8Array.from(out);
  }

  /** `tokenizers`' `decode(ids)`: bytes of every token, then UTF-8 with U+FFFD for invalid sequences. */
  decodeRaw(ids: readonly number[]): string {
    return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(this.decodeBytes(ids));
  }

  /** The text of tokens, dropping every id ≥ eot (faster-whisper's `Tokenizer.decode`). */
  decode(ids: readonly number[]): string {
    return this.decodeRaw(ids.filter((id) => id < this.special.eot));
  }

  /** Text with timestamps written in, `<|1.08|>` (faster-whisper's `decode_with_timestamps`). */
  decodeWithTimestamps(ids: readonly number[]): string {
    let text = '';
    let run: number[] = [];
    for (const id of ids) {
      if (id >= this.special.timestampBegin) {
        text += this.decodeRaw(run);
        run = [];
        text += `<|${this.timestampSeconds(id).toFixed(2)}|>`;
      } else {
        run.push(id);
      }
    }
    return text + this.decodeRaw(run);
  }

  // ---- encoding ------------------------------------------------------------------------------------

  /** Token ids of `text` (`tokenizers`' `encode(text, add_special_tokens=False)`). */
  encode(text: string): number[] {
    const ids: number[] = [];
    let at = 0;
    if (this.addedPattern) {
      this.addedPattern.lastIndex = 0;
      for (const match of text.matchAll(this.addedPattern)) {
        this.encodeOrdinary(text.slice(at, match.index), ids);
        ids.push((this.addedTokens.get(match[0]) as { id: number }).id);
        at = match.index + match[0].length;
      }
    }
    this.encodeOrdinary(text.slice(at), ids);
    return ids;
  }

  private encodeOrdinary(text: string, ids: number[]): void {
    if (text === '') return;
    for (const match of text.matchAll(PRE_TOKENIZE)) {
      const piece = match[0];
      let cached = this.bpeCache.get(piece);
      if (!cached) {
        cached = this.bpe(piece);
        if (this.bpeCache.size < 50_000) this.bpeCache.set(piece, cached);
      }
      for (const id of cached) ids.push(id);
    }
  }

  /** BPE on one pre-token: its bytes as byte-table characters, merged lowest rank first, leftmost first. */
  private bpe(piece: string): number[] {
    const symbols: string[] = [];
    for (const byte of utf8.encode(piece)) symbols.push(BYTE_TO_CHAR[byte] as string);
    while (symbols.length > 1) {
      let best = Number.POSITIVE_INFINITY;
      let at = -1;
      for (let i = 0; i < symbols.length - 1; i++) {
        const rank = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < best) {
          best = rank;
          at = i;
        }
      }
      if (at < 0) break;
      // Merge every occurrence of that pair, left to right (what a lowest-rank, leftmost-first queue does).
      const left = symbols[at] as string;
      const right = symbols[at + 1] as string;
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(symbols[i] as string);
        }
      }
      symbols.splice(0, symbols.length, ...merged);
    }
    return symbols.map((symbol) => {
      const id = this.tokenToIdMap.get(symbol);
      if (id === undefined)
        throw tokenizerError(`BPE produced ${JSON.stringify(symbol)}, which is not in the vocabulary`);
      return id;
    });
  }

  // ---- suppression ---------------------------------------------------------------------------------

  /**
   * Tokens to suppress so that speaker tags and non-speech annotations (♪, [MUSIC], (laughs)) are not
   * sampled, keeping ordinary punctuation: openai's `non_speech_tokens`, computed from this vocabulary
   * as faster-whisper computes it. Sorted.
   */
  nonSpeechTokens(): number[] {
    if (this.nonSpeech) return [...this.nonSpeech];
    const symbols = [...'"#()*+/:;<=>@[\\]^_`{|}~「」『』'];
    symbols.push(...'<< >> <<< >>> -- --- -( -[ (\' (" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪'.split(' '));
    // U+2640..U+267F symbols: in 3-byte UTF-8 they share the first two bytes, so the first token of a
    // multi-token encoding is safe to suppress.
    const miscellaneous = new Set([...'♩♪♫♬♭♮♯']);
    // " -" and " '" are allowed between words, not at the start of one.
    const result = new Set<number>([this.encode(' -')[0] as number, this.encode(" '")[0] as number]);
    for (const symbol of [...symbols, ...miscellaneous]) {
      for (const tokens of [this.encode(symbol), this.encode(` ${symbol}`)]) {
        if (tokens.length === 1 || miscellaneous.has(symbol)) result.add(tokens[0] as number);
      }
    }
    this.nonSpeech = [...result].sort((a, b) => a - b);
    return [...this.nonSpeech];
  }

  /**
   * The suppress list for decoding (faster-whisper's `get_suppressed_tokens`): `base` with -1 standing for
   * `nonSpeechTokens()` (the default `[-1]`; CT2's config.json `suppress_ids` is the precomputed Hugging
   * Face list, which may be passed instead), plus transcribe, translate, sot, sotPrev, sotLm and noSpeech.
   * Sorted, unique.
   */
  suppressTokens(base: readonly number[] = [-1]): number[] {
    const out = new Set<number>(base.filter((id) => id >= 0));
    if (base.includes(-1)) for (const id of this.nonSpeechTokens()) out.add(id);
    const s = this.special;
    for (const id of [s.transcribe, s.translate, s.sot, s.sotPrev, s.sotLm, s.noSpeech]) out.add(id);
    return [...out].sort((a, b) => a - b);
  }

  /** Suppressed at the first sampled position (`suppress_blank`; CT2's `suppress_ids_begin`): " " and eot. */
  beginSuppressTokens(): number[] {
    return [...this.encode(' '), this.special.eot];
  }

  // ---- words ---------------------------------------------------------------------------------------

  /**
   * Tokens grouped into words for word timings (faster-whisper's `split_to_word_tokens`): per decodable
   * unicode unit for languages written without spaces (zh, ja, th, lo, my, yue), else by spaces, with
   * punctuation and special tokens as words of their own. `tokens` usually ends with eot.
   */
  splitToWordTokens(tokens: readonly number[], language: string): WordTokens {
    if (LANGUAGES_WITHOUT_SPACES.has(language)) return this.splitOnUnicode(tokens);
    return this.splitOnSpaces(tokens);
  }

  /** Splits wherever the tokens so far decode to whole characters (no U+FFFD that the full text lacks). */
  splitOnUnicode(tokens: readonly number[]): WordTokens {
    const full = this.decodeWithTimestamps(tokens);
    const words: string[] = [];
    const groups: number[][] = [];
    let current: number[] = [];
    let offset = 0;
    for (const token of tokens) {
      current.push(token);
      const decoded = this.decodeWithTimestamps(current);
      const replacement = decoded.indexOf('\ufffd');
      // Offsets are UTF-16 units on both sides (Python counts code points): consistent, so the test holds.
      if (replacement < 0 || full[replacement + offset] === '\ufffd') {
        words.push(decoded);
        groups.push(current);
        current = [];
        offset += decoded.length;
      }
    }
    return { words, tokens: groups };
  }

  /** Unicode units merged into words: a unit starts a word if it starts with a space, is punctuation or special. */
  splitOnSpaces(tokens: readonly number[]): WordTokens {
    const units = this.splitOnUnicode(tokens);
    const words: string[] = [];
    const groups: number[][] = [];
    units.words.forEach((unit, i) => {
      const unitTokens = units.tokens[i] as number[];
      const special = (unitTokens[0] as number) >= this.special.eot;
      const withSpace = unit.startsWith(' ');
      const punctuation = PY_PUNCTUATION.includes(pyStrip(unit));
      if (special || withSpace || punctuation || words.length === 0) {
        words.push(unit);
        groups.push([...unitTokens]);
      } else {
        words[words.length - 1] += unit;
        (groups[groups.length - 1] as number[]).push(...unitTokens);
      }
    });
    return { words, tokens: groups };
  }
}

/** Python's `str.strip()`: Unicode whitespace, which for Python includes U+001C..U+001F (unlike JavaScript's trim). */
function pyStrip(text: string): string {
  const chars = [...text];
  const space = (c: string) => /\p{White_Space}/u.test(c) || (c >= '\u001c' && c <= '\u001f');
  let start = 0;
  let end = chars.length;
  while (start < end && space(chars[start] as string)) start++;
  while (end > start && space(chars[end - 1] as string)) end--;
  return chars.slice(start, end).join('');
}
