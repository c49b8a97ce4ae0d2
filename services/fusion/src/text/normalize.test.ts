import { describe, expect, it } from 'vitest';
import {
  CHINESE_NUMERAL_CHARS,
  chineseNumeralValue,
  isCjkChar,
  normalizeText,
  tokenize,
} from './normalize.js';

describe('chineseNumeralValue', () => {
  it.each([
    ['零', 0],
    ['一', 1],
    ['两', 2],
    ['十', 10],
    ['十五', 15],
    ['二十', 20],
    ['三十九', 39],
    ['一百', 100],
    ['一百零五', 105],
    ['一百二十', 120],
    ['两千', 2000],
    ['一千零一', 1001],
    ['一万', 10_000],
    ['十万', 100_000],
    ['三万五千', 35_000],
    ['三千万', 30_000_000],
    ['一亿', 100_000_000],
    ['一亿三千万', 130_000_000],
    ['壹佰贰拾', 120],
    ['玖拾玖', 99],
    ['兩萬', 20_000],
  ])('reads the structured numeral %s as %d', (s, value) => {
    expect(chineseNumeralValue(s)).toBe(value);
  });

  it.each([
    ['一百二', 120],
    ['三千五', 3500],
    ['三万五', 35_000],
    ['两万五', 25_000],
  ])(
    'reads the colloquial elided form %s as %d (the last digit counts in the next lower unit)',
    (s, value) => {
      expect(chineseNumeralValue(s)).toBe(value);
    },
  );

  it('reads digits without units one by one, as years and phone numbers are said', () => {
    expect(chineseNumeralValue('二零二四')).toBe(2024);
    expect(chineseNumeralValue('二〇二四')).toBe(2024);
    expect(chineseNumeralValue('九九')).toBe(99);
  });

  it.each([
    [''],
    ['价格'],
    ['三十九元'],
    ['万'],
    ['千万'],
    ['百'],
    ['一二十'],
    ['五十三十'],
    ['一万二万'],
    ['一百千'],
    ['39'],
  ])('is undefined for %j, which is not (only) a numeral', (s) => {
    expect(chineseNumeralValue(s)).toBeUndefined();
  });

  it('exposes every numeral character for building patterns', () => {
    for (const c of '零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟') {
      expect(CHINESE_NUMERAL_CHARS).toContain(c);
    }
    expect(CHINESE_NUMERAL_CHARS).not.toContain('元');
  });
});

describe('normalizeText', () => {
  it('folds full-width characters to ASCII (NFKC) and lower-cases', () => {
    expect(normalizeText('ＳＡＶＥ２０')).toBe('save20');
    expect(normalizeText('Ｌｉｎｋ　ｉｎ　ＢＩＯ')).toBe('link in bio');
    expect(normalizeText('＄２９.９９')).toBe('$29.99');
    expect(normalizeText('￥１９９')).toBe('¥199');
    expect(normalizeText('５０％')).toBe('50%');
  });

  it('converts Chinese numerals to Arabic digits where they form a number', () => {
    expect(normalizeText('只要三十九元')).toBe('只要39元');
    expect(normalizeText('一百二十块')).toBe('120块');
    expect(normalizeText('两千')).toBe('2000');
    expect(normalizeText('九块九')).toBe('9块9');
    expect(normalizeText('十')).toBe('10');
    expect(normalizeText('十五')).toBe('15');
    expect(normalizeText('一百零五')).toBe('105');
    expect(normalizeText('三万')).toBe('30000');
    expect(normalizeText('二零二四年')).toBe('2024年');
    expect(normalizeText('零')).toBe('0');
  });

  it('keeps unit characters that start no number (千万 means "by all means")', () => {
    expect(normalizeText('千万不要错过')).toBe('千万不要错过');
    expect(normalizeText('万一')).toBe('万1');
  });

  it('keeps two numbers spoken side by side apart', () => {
    // 二十一 then 三: one number cannot continue with a digit after a digit.
    expect(normalizeText('二十一三')).toBe('21 3');
  });

  it('applies a Chinese multiplier written after Arabic digits', () => {
    expect(normalizeText('3万')).toBe('30000');
    expect(normalizeText('1.5万粉丝')).toBe('15000粉丝');
    expect(normalizeText('2百万')).toBe('2000000');
    expect(normalizeText('1,000万')).toBe('10000000');
    expect(normalizeText('3万4千')).toBe('3万4000');
  });

  it('does not convert English number words', () => {
    expect(normalizeText('Twenty Dollars')).toBe('twenty dollars');
  });

  it('turns punctuation into spaces but keeps . @ / : between letters and digits', () => {
    expect(normalizeText('Link.in/BIO')).toBe('link.in/bio');
    expect(normalizeText('only 12.99!')).toBe('only 12.99');
    expect(normalizeText('wa.me/123')).toBe('wa.me/123');
    expect(normalizeText('at 12:30')).toBe('at 12:30');
    expect(normalizeText('mail a@b.com')).toBe('mail a@b.com');
    expect(normalizeText('link in bio.')).toBe('link in bio');
    expect(normalizeText('@name')).toBe('name');
    expect(normalizeText('code: SAVE20')).toBe('code save20');
    expect(normalizeText('https://shop.com/a')).toBe('https shop.com/a');
    expect(normalizeText('e-commerce & more...')).toBe('e commerce more');
    expect(normalizeText('"quoted" (text) [x]')).toBe('quoted text x');
  });

  it('does not keep . : between a Latin character and a CJK one', () => {
    expect(normalizeText('价格:99')).toBe('价格 99');
    expect(normalizeText('微信.abc')).toBe('微信 abc');
  });

  it('keeps currency signs and % as they are', () => {
    expect(normalizeText('Only $29.99 (50% off)')).toBe('only $29.99 50% off');
    expect(normalizeText('€15 £5 ₱499 ¥199')).toBe('€15 £5 ₱499 ¥199');
  });

  it('drops thousands commas and apostrophes inside words; other commas separate', () => {
    expect(normalizeText('1,299.00')).toBe('1299.00');
    expect(normalizeText('10,000,000')).toBe('10000000');
    expect(normalizeText('15,50')).toBe('15 50');
    expect(normalizeText('red, blue')).toBe('red blue');
    expect(normalizeText("Don't miss it")).toBe('dont miss it');
    expect(normalizeText('it’s here')).toBe('its here');
  });

  it('handles mixed Chinese and English, with Chinese punctuation', () => {
    expect(normalizeText('私信我加微信，链接在简介 Link in BIO!')).toBe(
      '私信我加微信 链接在简介 link in bio',
    );
    expect(normalizeText('【限时】只要九块九！！')).toBe('限时 只要9块9');
  });

  it('removes invisible format characters and collapses whitespace', () => {
    expect(normalizeText('what\u200bsapp')).toBe('whatsapp');
    expect(normalizeText('  a \t\n b\u00a0\u3000c  ')).toBe('a b c');
    expect(normalizeText('')).toBe('');
    expect(normalizeText('!!! ...')).toBe('');
  });

  it('is idempotent on representative inputs', () => {
    const inputs = [
      'ＳＡＶＥ２０ today!',
      '只要三十九元，链接在简介 Link.in/BIO.',
      '九块九包邮 两千 一百二十 千万 万一',
      '€1.299,00 and 1,299.00 and 15,50 €',
      "Don't DM me @ shop... a@b.com wa.me/123 12:30",
      '1,000万 3万4千 2百万 1.5万',
      '二十一三 零零七',
      'İstanbul ß ñ é',
    ];
    for (const input of inputs) {
      const once = normalizeText(input);
      expect(normalizeText(once)).toBe(once);
    }
  });

  it('is idempotent on random mixtures of the characters it treats specially', () => {
    const pool = Array.from(
      "09aZ.,:/@%$¥€£₱ ，。！一二三十百千万亿零两壹拾萬块元微ＸＹ１２\u200b\u00a0'’-+_#&ñé한ア々ー½²",
    );
    // A fixed linear congruential generator: the same inputs on every run.
    let seed = 12_345;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    for (let n = 0; n < 5_000; n++) {
      let input = '';
      const length = 1 + (next() % 14);
      for (let i = 0; i < length; i++) input += pool[next() % pool.length];
      const once = normalizeText(input);
      expect(normalizeText(once), JSON.stringify(input)).toBe(once);
    }
  });
});

describe('tokenize', () => {
  it('splits CJK into one token per character and keeps Latin words whole', () => {
    expect(tokenize(normalizeText('私信我加微信，链接在简介 Link in BIO!'))).toEqual([
      '私',
      '信',
      '我',
      '加',
      '微',
      '信',
      '链',
      '接',
      '在',
      '简',
      '介',
      'link',
      'in',
      'bio',
    ]);
  });

  it('keeps the inner . @ / : of a word in its token', () => {
    expect(tokenize(normalizeText('see link.in/bio or a@b.com at 12:30, $12.99'))).toEqual([
      'see',
      'link.in/bio',
      'or',
      'a@b.com',
      'at',
      '12:30',
      '$',
      '12.99',
    ]);
  });

  it('makes currency signs and % their own tokens', () => {
    expect(tokenize(normalizeText('50% off ¥199 €15'))).toEqual(['50', '%', 'off', '¥', '199', '€', '15']);
  });

  it('separates Latin words and digits glued to CJK characters', () => {
    expect(tokenize(normalizeText('加微信abc123'))).toEqual(['加', '微', '信', 'abc123']);
    expect(tokenize(normalizeText('九块九包邮'))).toEqual(['9', '块', '9', '包', '邮']);
  });

  it('treats kana and Hangul like Han', () => {
    expect(tokenize(normalizeText('セール 세일'))).toEqual(['セ', 'ー', 'ル', '세', '일']);
  });

  it('treats other alphabets as words', () => {
    expect(tokenize(normalizeText('Скидка 50%'))).toEqual(['скидка', '50', '%']);
  });

  it('ignores characters that normalisation would have removed', () => {
    expect(tokenize('a, b! .c d.')).toEqual(['a', 'b', 'c', 'd']);
    expect(tokenize('')).toEqual([]);
  });
});

describe('isCjkChar', () => {
  it('is true for Han, kana and Hangul letters only', () => {
    expect(['微', '々', 'ア', 'ー', 'あ', '한'].every(isCjkChar)).toBe(true);
    expect(['a', '1', '。', '，', '%', 'é'].some(isCjkChar)).toBe(false);
  });
});
