import { describe, expect, it } from 'vitest';
import { WhisperTokenizer } from './tokenizer.js';

// The real tokenizer.json files are checked against the reference in tokenizer.int.test.ts; this builds a
// small byte-level BPE of the same format, so the mechanics are tested without any model file.

/** GPT-2's bytes_to_unicode, written out independently of tokenizer.ts. */
function byteChars(): string[] {
  const keep = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : next++));
}
const BYTE = byteChars();
const bytesOf = (text: string) => [...new TextEncoder().encode(text)];

function tinyTokenizerJson(options: { noSpeech?: string; merges?: 'strings' | 'pairs' } = {}) {
  const vocab: Record<string, number> = Object.fromEntries([
    ...BYTE.map((c, id) => [c, id] as const),
    ['Ġt', 256],
    ['he', 257],
    ['Ġthe', 258],
  ]);
  const merges = [
    ['Ġ', 't'],
    ['h', 'e'],
    ['Ġt', 'he'],
  ];
  const specials = [
    '<|endoftext|>',
    '<|startoftranscript|>',
    '<|en|>',
    '<|zh|>',
    '<|translate|>',
    '<|transcribe|>',
    '<|startoflm|>',
    '<|startofprev|>',
    options.noSpeech ?? '<|nocaptions|>',
    '<|notimestamps|>',
  ];
  return {
    version: '1.0',
    added_tokens: specials.map((content, i) => ({ id: 259 + i, content, special: true })),
    model: {
      type: 'BPE',
      vocab,
      merges: options.merges === 'pairs' ? merges : merges.map((m) => m.join(' ')),
    },
  };
}

const tokenizer = WhisperTokenizer.fromJson(tinyTokenizerJson());
const ids = (text: string) => bytesOf(text).map((b) => BYTE.indexOf(BYTE[b] as string));

describe('Whisper tokenizer mechanics (tokenizer.ts, on a small byte-level BPE)', () => {
  it('finds the special tokens by their strings, and the timestamps after <|notimestamps|>', () => {
    expect(tokenizer.special).toEqual({
      eot: 259,
      sot: 260,
      translate: 263,
      transcribe: 264,
      sotLm: 265,
      sotPrev: 266,
      noSpeech: 267, // <|nocaptions|>: the older name of <|nospeech|>
      noTimestamps: 268,
      timestampBegin: 269,
      timestampEnd: 269 + 1501,
    });
    expect(WhisperTokenizer.fromJson(tinyTokenizerJson({ noSpeech: '<|nospeech|>' })).special.noSpeech).toBe(
      267,
    );
    expect([...tokenizer.languages]).toEqual([
      ['en', 261],
      ['zh', 262],
    ]);
    expect(tokenizer.multilingual).toBe(false);
    expect(tokenizer.sotSequence()).toEqual([260]);
    expect(tokenizer.isTimestamp(269)).toBe(true);
    expect(tokenizer.isTimestamp(268)).toBe(false);
    expect(tokenizer.isTimestamp(269 + 1501)).toBe(false);
    expect(tokenizer.timestampSeconds(269 + 57)).toBeCloseTo(1.14, 10);
    expect(tokenizer.idToTokenString(269 + 1500)).toBe('<|30.00|>');
    expect(tokenizer.idToTokenString(258)).toBe('Ġthe');
    expect(tokenizer.languageCode(262)).toBe('zh');
  });

  it('reads merges written as "a b" strings and as [a, b] pairs alike', () => {
    const pairs = WhisperTokenizer.fromJson(tinyTokenizerJson({ merges: 'pairs' }));
    expect(pairs.encode(' the then')).toEqual(tokenizer.encode(' the then'));
    expect(tokenizer.encode(' the then')).toEqual([258, 258, ids('n')[0]]);
  });

  it('decodes at the byte level: a character split across tokens is whole together, U+FFFD apart', () => {
    const huan = ids('欢'); // E6 AC A2
    expect(huan).toHaveLength(3);
    expect(tokenizer.decode(huan)).toBe('欢');
    expect(tokenizer.decode(huan.slice(0, 1))).toBe('\ufffd');
    // A truncated sequence is one maximal invalid subpart: one U+FFFD, not two.
    expect(tokenizer.decode(huan.slice(0, 2))).toBe('\ufffd');
    expect(tokenizer.decode(huan.slice(1))).toBe('\ufffd\ufffd');
    const fire = ids('🔥'); // F0 9F 94 A5
    expect(tokenizer.decode([...fire, ...huan])).toBe('🔥欢');
    expect(tokenizer.decode([...fire.slice(0, 3), ...huan])).toBe('\ufffd欢');
    expect([...tokenizer.decodeBytes(huan)]).toEqual([0xe6, 0xac, 0xa2]);
  });

  it('drops special tokens from text and writes timestamps in numerically', () => {
    const text = tokenizer.encode(' the end');
    const sequence = [260, 268, 269, ...text, 269 + 57, 259];
    expect(tokenizer.decode(sequence)).toBe(' the end');
    expect(tokenizer.decodeWithTimestamps(sequence)).toBe('<|0.00|> the end<|1.14|>');
    expect(tokenizer.decodeRaw([259, ...text])).toBe(' the end'); // special tokens are skipped
  });

  it('encodes any text so that it decodes back unchanged, added tokens included', () => {
    for (const text of [
      ' the then',
      '欢迎来到直播间 🔥🔥 naïve',
      '  spaces\tand\nnewlines  ',
      "it's we'll 29.99$",
      'a\u00a0b\u3000c',
      '',
    ]) {
      expect(tokenizer.decode(tokenizer.encode(text)), JSON.stringify(text)).toBe(text);
    }
    expect(tokenizer.encode('x<|endoftext|> the')).toEqual([...ids('x'), 259, 258]);
    expect(tokenizer.beginSuppressTokens()).toEqual([...ids(' '), 259]);
    expect(tokenizer.suppressTokens([5, 3])).toEqual([3, 5, 260, 263, 264, 265, 266, 267]);
    // Every non-speech symbol is one byte-level token here, so each is in the list (plus " -" and " '").
    expect(tokenizer.nonSpeechTokens()).toContain(ids('"')[0]);
    expect(tokenizer.nonSpeechTokens()).toContain(ids(' ')[0]);
    expect(tokenizer.suppressTokens()).toEqual(
      [...new Set([...tokenizer.nonSpeechTokens(), 260, 263, 264, 265, 266, 267])].sort((a, b) => a - b),
    );
  });

  it('splits tokens into words by spaces, and per character for languages without spaces', () => {
    const en = tokenizer.splitToWordTokens([...tokenizer.encode(' the then, ok'), 259], 'en');
    expect(en.words).toEqual([' the', ' then', ',', ' ok', '']);
    expect(en.tokens.at(-1)).toEqual([259]);
    const zh = tokenizer.splitToWordTokens([...tokenizer.encode('欢迎'), 259], 'zh');
    expect(zh.words).toEqual(['欢', '迎', '']);
    expect(zh.tokens.map((t) => t.length)).toEqual([3, 3, 1]);
  });

  it('refuses a tokenizer.json that is not Whisper’s', () => {
    const json = tinyTokenizerJson();
    expect(() =>
      WhisperTokenizer.fromJson({
        ...json,
        added_tokens: json.added_tokens.filter((t) => t.content !== '<|notimestamps|>'),
      }),
    ).toThrow(/notimestamps/);
    expect(() => WhisperTokenizer.fromJson(json, { vocabularySize: 269 + 1500 })).toThrow(/1501/);
    expect(() => WhisperTokenizer.fromJson({ model: { type: 'Unigram' } })).toThrow(/BPE/);
  });
});
