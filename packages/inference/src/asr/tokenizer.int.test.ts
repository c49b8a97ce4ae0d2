import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { findModel, loadManifest } from '../manifest.js';
import { defaultCacheDir, resolveModel } from '../resolve.js';
import { WhisperTokenizer } from './tokenizer.js';

const cacheDir = defaultCacheDir({
  LIVELENS_HOME: new URL('../../../../.livelens', import.meta.url).pathname,
});

/** What asr_reference.py `tokenizer` wrote for one model (test/golden/asr-tokenizer.json). */
interface TokenizerGolden {
  vocabulary_size: number;
  multilingual: boolean;
  special: Record<
    | 'eot'
    | 'sot'
    | 'sot_prev'
    | 'sot_lm'
    | 'translate'
    | 'transcribe'
    | 'no_speech'
    | 'no_timestamps'
    | 'timestamp_begin',
    number
  >;
  languages: Record<string, number>;
  faster_whisper_codes_missing: string[];
  sot_sequences: Record<string, number[]>;
  non_speech_tokens: number[];
  suppressed_tokens: number[];
  config_suppress_ids: number[];
  config_suppress_ids_begin: number[];
  encode_space: number[];
  encode: { text: string; ids: number[]; decode: string; decode_each: string[]; decode_prefixes: string[] }[];
  decode_with_timestamps: { ids: number[]; text: string; decode: string }[];
  split_to_word_tokens: { language: string; ids: number[]; words: string[]; tokens: number[][] }[];
}

const MODELS = {
  'whisper-base': { tokenizer: 'whisper-base-ct2-tokenizer', vocabulary: 'whisper-base-ct2-vocabulary' },
  'whisper-tiny-en': {
    tokenizer: 'whisper-tiny-en-ct2-tokenizer',
    vocabulary: 'whisper-tiny-en-ct2-vocabulary',
  },
} as const;
type ModelName = keyof typeof MODELS;

/** The CT2 vocabulary's length: vocabulary.json (a JSON array) or vocabulary.txt (one token a line). */
async function vocabularySize(path: string): Promise<number> {
  const text = await readFile(path, 'utf8');
  if (path.endsWith('.json')) return (JSON.parse(text) as string[]).length;
  return text.split('\n').filter((line, i, all) => i < all.length - 1 || line !== '').length;
}

describe('Whisper tokenizer against the reference (tokenizers 0.23.3 + faster-whisper 1.2.1; test/golden/asr-tokenizer.json)', () => {
  const tokenizers = new Map<ModelName, WhisperTokenizer>();
  let golden: Record<ModelName, TokenizerGolden>;

  beforeAll(async () => {
    golden = (
      JSON.parse(
        await readFile(new URL('../../test/golden/asr-tokenizer.json', import.meta.url), 'utf8'),
      ) as { tokenizers: Record<ModelName, TokenizerGolden> }
    ).tokenizers;
    const manifest = await loadManifest();
    for (const [name, ids] of Object.entries(MODELS) as [ModelName, (typeof MODELS)[ModelName]][]) {
      const resolve = (id: string) => resolveModel(findModel(manifest, id), { cacheDir, fetch: true });
      const size = await vocabularySize(await resolve(ids.vocabulary));
      tokenizers.set(
        name,
        await WhisperTokenizer.fromFile(await resolve(ids.tokenizer), { vocabularySize: size }),
      );
    }
  }, 600_000);

  const each = (fn: (name: ModelName, tokenizer: WhisperTokenizer, g: TokenizerGolden) => void) => () => {
    for (const name of Object.keys(MODELS) as ModelName[])
      fn(name, tokenizers.get(name) as WhisperTokenizer, golden[name]);
  };

  it(
    'finds the same special token ids in the multilingual (base) and English-only (tiny.en) vocabularies',
    each((name, tokenizer, g) => {
      const s = tokenizer.special;
      expect(
        {
          eot: s.eot,
          sot: s.sot,
          sot_prev: s.sotPrev,
          sot_lm: s.sotLm,
          translate: s.translate,
          transcribe: s.transcribe,
          no_speech: s.noSpeech,
          no_timestamps: s.noTimestamps,
          timestamp_begin: s.timestampBegin,
        },
        name,
      ).toEqual(g.special);
      expect(s.timestampEnd, name).toBe(g.vocabulary_size);
      expect(tokenizer.multilingual, name).toBe(g.multilingual);
      // Every <|xx|> token between sot and translate, in id order (tiny.en's says iw where base's says he).
      expect(Object.fromEntries(tokenizer.languages), name).toEqual(g.languages);
      expect([...tokenizer.languages.values()], name).toEqual(
        Object.values(g.languages).sort((a, b) => a - b),
      );
      for (const code of g.faster_whisper_codes_missing)
        expect(tokenizer.languages.has(code), code).toBe(false);
      for (const [key, sequence] of Object.entries(g.sot_sequences)) {
        const [language, task] = key.split('/') as [string, 'transcribe' | 'translate'];
        expect(tokenizer.sotSequence({ language, task }), `${name} ${key}`).toEqual(sequence);
      }
    }),
  );

  it(
    'pins the ids that differ by one between .en and multilingual',
    each((name, tokenizer) => {
      const offset = name === 'whisper-base' ? 1 : 0;
      expect(tokenizer.special.eot).toBe(50256 + offset);
      expect(tokenizer.special.sot).toBe(50257 + offset);
      expect(tokenizer.special.noTimestamps).toBe(50362 + offset);
      expect(tokenizer.special.timestampBegin).toBe(50363 + offset);
      expect(tokenizer.languageToken('en')).toBe(50258 + offset);
    }),
  );

  it(
    'computes the non-speech and suppress lists as faster-whisper does, equal to CT2 config.json’s',
    each((name, tokenizer, g) => {
      expect(tokenizer.nonSpeechTokens(), name).toEqual(g.non_speech_tokens);
      expect(tokenizer.suppressTokens(), name).toEqual(g.suppressed_tokens);
      // The converter's precomputed list (HF generation_config.suppress_tokens) is the same set.
      expect(tokenizer.suppressTokens(), name).toEqual(g.config_suppress_ids);
      expect(tokenizer.suppressTokens(g.config_suppress_ids), name).toEqual(g.config_suppress_ids);
      expect(tokenizer.beginSuppressTokens(), name).toEqual(g.config_suppress_ids_begin);
      expect(tokenizer.encode(' '), name).toEqual(g.encode_space);
    }),
  );

  it(
    'encodes every case string to the same ids, and decodes ids, single ids and every prefix to the same text',
    each((name, tokenizer, g) => {
      for (const c of g.encode) {
        const where = `${name} ${JSON.stringify(c.text)}`;
        expect(tokenizer.encode(c.text), where).toEqual(c.ids);
        expect(tokenizer.decodeRaw(c.ids), where).toBe(c.decode);
        expect(
          c.ids.map((id) => tokenizer.decodeRaw([id])),
          `${where} one id at a time`,
        ).toEqual(c.decode_each);
        expect(
          c.ids.map((_, n) => tokenizer.decodeRaw(c.ids.slice(0, n + 1))),
          `${where} prefixes`,
        ).toEqual(c.decode_prefixes);
      }
      // The cases include characters split inside their UTF-8 bytes: the golden shows U+FFFD for them.
      expect(g.encode.some((c) => c.decode_each.some((t) => t.includes('\ufffd')))).toBe(true);
    }),
  );

  it(
    'round-trips text through encode and decode',
    each((name, tokenizer, g) => {
      for (const c of g.encode) {
        if (c.text.includes('<|')) continue; // special tokens are dropped by decode
        expect(tokenizer.decodeRaw(tokenizer.encode(c.text)), `${name} ${JSON.stringify(c.text)}`).toBe(
          c.text,
        );
      }
    }),
  );

  it(
    'decodes timestamp tokens numerically (tiny.en’s tokenizer.json does not list them)',
    each((name, tokenizer, g) => {
      for (const c of g.decode_with_timestamps) {
        expect(tokenizer.decodeWithTimestamps(c.ids), name).toBe(c.text);
        expect(tokenizer.decode(c.ids), name).toBe(c.decode);
      }
    }),
  );

  it(
    'groups tokens into words as split_to_word_tokens does (spaces for en, per character for zh, ja, th)',
    each((name, tokenizer, g) => {
      for (const c of g.split_to_word_tokens) {
        const { words, tokens } = tokenizer.splitToWordTokens(c.ids, c.language);
        expect(words, `${name} ${c.language} ${JSON.stringify(c.words)}`).toEqual(c.words);
        expect(tokens, `${name} ${c.language}`).toEqual(c.tokens);
      }
    }),
  );
});
