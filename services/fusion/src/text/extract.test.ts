import { describe, expect, it } from 'vitest';
import {
  type Extraction,
  extractAll,
  extractHandles,
  extractPercentages,
  extractPhones,
  extractPrices,
  extractPromoCodes,
  extractUrls,
  parseAmount,
} from './extract.js';

/** The one extraction an extractor finds in `text` (fails when it finds none or several). */
function only<T>(found: readonly T[]): T {
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('parseAmount', () => {
  it.each([
    ['29', 29],
    ['29.99', 29.99],
    ['9.9', 9.9],
    ['15,50', 15.5],
    ['1,299', 1299],
    ['1.299', 1299],
    ['1,299.00', 1299],
    ['1.299,00', 1299],
    ['1,299,000', 1_299_000],
    ['1.299.000', 1_299_000],
    ['1.299.000,50', 1_299_000.5],
  ])('reads %s as %d in either decimal convention', (s, value) => {
    expect(parseAmount(s)).toBe(value);
  });

  it.each([['1,29,99'], ['12.999.9'], ['1.2345'], ['1,299.00.00'], ['12345,678.90'], ['abc'], ['']])(
    'is undefined for the malformed %j',
    (s) => {
      expect(parseAmount(s)).toBeUndefined();
    },
  );
});

describe('extractPrices', () => {
  it.each([
    ['$29.99', 29.99, 'USD', '29.99 USD'],
    ['US$30', 30, 'USD', '30.00 USD'],
    ['$ 5', 5, 'USD', '5.00 USD'],
    ['29.99 dollars', 29.99, 'USD', '29.99 USD'],
    ['29 dollars 99', 29.99, 'USD', '29.99 USD'],
    ['29 dollars and 99 cents', 29.99, 'USD', '29.99 USD'],
    ['99 cents', 0.99, 'USD', '0.99 USD'],
    ['20 bucks', 20, 'USD', '20.00 USD'],
    ['$5k', 5000, 'USD', '5000.00 USD'],
    ['$1,299.00', 1299, 'USD', '1299.00 USD'],
    ['¥199', 199, 'CNY', '199.00 CNY'],
    ['199元', 199, 'CNY', '199.00 CNY'],
    ['199块', 199, 'CNY', '199.00 CNY'],
    ['99块钱', 99, 'CNY', '99.00 CNY'],
    ['九块九', 9.9, 'CNY', '9.90 CNY'],
    ['9块9', 9.9, 'CNY', '9.90 CNY'],
    ['9块99', 9.99, 'CNY', '9.99 CNY'],
    ['九块九毛九', 9.99, 'CNY', '9.99 CNY'],
    ['两块五', 2.5, 'CNY', '2.50 CNY'],
    ['三十九元', 39, 'CNY', '39.00 CNY'],
    ['一百二十块', 120, 'CNY', '120.00 CNY'],
    ['5万元', 50_000, 'CNY', '50000.00 CNY'],
    ['RMB 88', 88, 'CNY', '88.00 CNY'],
    ['88 rmb', 88, 'CNY', '88.00 CNY'],
    ['€15,50', 15.5, 'EUR', '15.50 EUR'],
    ['15,50 €', 15.5, 'EUR', '15.50 EUR'],
    ['€1.299,00', 1299, 'EUR', '1299.00 EUR'],
    ['12 euros', 12, 'EUR', '12.00 EUR'],
    ['RM 49.90', 49.9, 'MYR', '49.90 MYR'],
    ['RM49', 49, 'MYR', '49.00 MYR'],
    ['49 ringgit', 49, 'MYR', '49.00 MYR'],
    ['₱499', 499, 'PHP', '499.00 PHP'],
    ['₱1,499', 1499, 'PHP', '1499.00 PHP'],
    ['PHP 499', 499, 'PHP', '499.00 PHP'],
    ['P499', 499, 'PHP', '499.00 PHP'],
    ['P99.50', 99.5, 'PHP', '99.50 PHP'],
    ['£5', 5, 'GBP', '5.00 GBP'],
    ['5 pounds', 5, 'GBP', '5.00 GBP'],
    ['1000円', 1000, 'JPY', '1000 JPY'],
    ['1000 yen', 1000, 'JPY', '1000 JPY'],
    ['S$25', 25, 'SGD', '25.00 SGD'],
    ['HK$100', 100, 'HKD', '100.00 HKD'],
    ['Rp50.000', 50_000, 'IDR', '50000 IDR'],
  ])('reads %j as %d %s', (text, amount, currency, value) => {
    const p = only(extractPrices(text));
    expect(p).toMatchObject({ type: 'price', amount, currency, value, raw: text, index: 0 });
  });

  it('reports raw and index in the NFKC form of the input', () => {
    expect(extractPrices('现在只要＄２９.９９！')).toEqual([
      { type: 'price', amount: 29.99, currency: 'USD', value: '29.99 USD', raw: '$29.99', index: 4 },
    ]);
  });

  it('finds several prices in text order', () => {
    const found = extractPrices('was $59.99, now only $29.99 or RM 120');
    expect(found.map((p) => [p.value, p.index])).toEqual([
      ['59.99 USD', 4],
      ['29.99 USD', 21],
      ['120.00 MYR', 31],
    ]);
  });

  it('reads a price with a currency both before and after once', () => {
    expect(only(extractPrices('$29.99 dollars'))).toMatchObject({ raw: '$29.99', amount: 29.99 });
  });

  it('keeps "包邮" (free shipping) out of the price but reads the dimes before it', () => {
    expect(only(extractPrices('九块九包邮'))).toMatchObject({ raw: '九块九', amount: 9.9 });
  });

  it('does not read a count after 块 or 元 as dimes', () => {
    expect(only(extractPrices('10块3件'))).toMatchObject({ raw: '10块', amount: 10 });
    expect(only(extractPrices('199元5件'))).toMatchObject({ raw: '199元', amount: 199 });
    expect(only(extractPrices('99块一件'))).toMatchObject({ raw: '99块', amount: 99 });
  });

  it('does not read "29 dollars 10 items" as 29.10', () => {
    expect(only(extractPrices('29 dollars 10 items left'))).toMatchObject({ raw: '29 dollars', amount: 29 });
  });

  it.each([
    ['in 2024'],
    ['the new iPhone 15'],
    ['top 10 deals'],
    ['call 555-123-4567'],
    ['13800138000'],
    ['code SAVE20'],
    ['50% off'],
    ['P2 and P30 Pro'],
    ['P5'],
    ['三块蛋糕'],
    ['我们一块去'],
    ['千万不要错过'],
    ['price drop soon'],
  ])('finds no price in %j', (text) => {
    expect(extractPrices(text)).toEqual([]);
  });
});

describe('extractPercentages', () => {
  it.each([
    ['50%', 50, false],
    ['50 %', 50, false],
    ['50 percent', 50, false],
    ['12,5%', 12.5, false],
    ['50% off', 50, true],
    ['百分之五十', 50, false],
    ['半价', 50, true],
    ['half price', 50, true],
  ])('reads %j as %d%% (discount: %s)', (text, percent, discount) => {
    expect(only(extractPercentages(text))).toMatchObject({
      type: 'percent',
      percent,
      discount,
      value: `${percent}%`,
      raw: text,
      index: 0,
    });
  });

  it.each([
    ['五折', 50],
    ['打5折', 50],
    ['打 5 折', 50],
    ['八折', 20],
    ['八五折', 15],
    ['85折', 15],
    ['8.5折', 15],
    ['七点五折', 25],
    ['九五折', 5],
    ['一折', 90],
  ])('reads the 折 notation %j as %d%% off (the discount, not the share paid)', (text, off) => {
    expect(only(extractPercentages(text))).toMatchObject({
      percent: off,
      value: `${off}%`,
      discount: true,
      raw: text,
    });
  });

  it('finds percentages in mixed text, in order', () => {
    const found = extractPercentages('全场八折，部分商品 up to 70% off');
    expect(found.map((p) => [p.value, p.raw, p.index])).toEqual([
      ['20%', '八折', 2],
      ['70%', '70% off', 16],
    ]);
  });

  it.each([['三折叠手机'], ['打折'], ['50 items'], ['199折后价'], ['10折']])(
    'finds nothing in %j',
    (text) => {
      expect(extractPercentages(text)).toEqual([]);
    },
  );
});

describe('extractPromoCodes', () => {
  it.each([
    ['use code SAVE20', 'SAVE20', 'use code SAVE20'],
    ['promo code: FREESHIP', 'FREESHIP', 'promo code: FREESHIP'],
    ['discount code = vip10', 'VIP10', 'discount code = vip10'],
    ['coupon save-20!', 'SAVE20', 'coupon save-20'],
    ['voucher code "SUMMER24"', 'SUMMER24', 'voucher code "SUMMER24'],
    ['the code is SAVE20', 'SAVE20', 'code is SAVE20'],
    ['优惠码：ABC123', 'ABC123', '优惠码:ABC123'],
    ['用优惠码ABC123下单', 'ABC123', '优惠码ABC123'],
    ['折扣码是 vip888', 'VIP888', '折扣码是 vip888'],
    ['口令8888', '8888', '口令8888'],
    ['券码 XY12Z', 'XY12Z', '券码 XY12Z'],
  ])('reads %j as %s', (text, code, raw) => {
    const found = only(extractPromoCodes(text));
    expect(found).toMatchObject({ type: 'promo_code', code, value: code, raw });
    expect(text.normalize('NFKC').slice(found.index, found.index + found.raw.length)).toBe(raw);
  });

  it('joins a spoken word and number: "use code save 20" is SAVE20', () => {
    expect(only(extractPromoCodes('ok guys use code save 20 at checkout'))).toMatchObject({
      code: 'SAVE20',
      raw: 'use code save 20',
      index: 8,
    });
  });

  it('joins spelled-out letters: "code S A V E 20" and "code S A V E 2 0" are SAVE20', () => {
    expect(only(extractPromoCodes('code S A V E 20'))).toMatchObject({
      code: 'SAVE20',
      raw: 'code S A V E 20',
    });
    expect(only(extractPromoCodes('code S A V E 2 0 now'))).toMatchObject({ code: 'SAVE20' });
  });

  it('does not join a number that describes the offer', () => {
    expect(only(extractPromoCodes('code SALE 50% off'))).toMatchObject({ code: 'SALE', raw: 'code SALE' });
    expect(only(extractPromoCodes('use code SAVE 20 dollars off'))).toMatchObject({ code: 'SAVE' });
  });

  it('reads full-width codes', () => {
    expect(only(extractPromoCodes('优惠码：ＳＡＶＥ２０'))).toMatchObject({ code: 'SAVE20' });
  });

  it.each([
    ['code is on the screen'],
    ['the code below'],
    ['coupon for you'],
    ['use the code in the description'],
    ['scan the QR code SAVE20'],
    ['zip code 90210'],
    ['verification code 123456'],
    ['barcode 12345'],
    ['code 20'],
    ['just code'],
    ['优惠码在下面'],
  ])('finds no promo code in %j', (text) => {
    expect(extractPromoCodes(text)).toEqual([]);
  });
});

describe('extractUrls', () => {
  it.each([
    ['https://Shop.Example.com/abc?x=1', 'shop.example.com/abc?x=1', 'shop.example.com', '/abc?x=1'],
    ['http://www.shop.com/', 'shop.com', 'shop.com', ''],
    ['www.x.com', 'x.com', 'x.com', ''],
    ['shop.example.com/abc', 'shop.example.com/abc', 'shop.example.com', '/abc'],
    ['bit.ly/xyz', 'bit.ly/xyz', 'bit.ly', '/xyz'],
    ['wa.me/123456', 'wa.me/123456', 'wa.me', '/123456'],
    ['t.me/name', 't.me/name', 't.me', '/name'],
    ['linktr.ee/name', 'linktr.ee/name', 'linktr.ee', '/name'],
    ['link.in/bio', 'link.in/bio', 'link.in', '/bio'],
    ['shopee.com.my', 'shopee.com.my', 'shopee.com.my', ''],
    ['example.com', 'example.com', 'example.com', ''],
  ])('reads %j as %s', (text, value, host, path) => {
    expect(only(extractUrls(text))).toMatchObject({ type: 'url', value, host, path, raw: text, index: 0 });
  });

  it('reads spoken addresses: "shop dot com", "link dot in slash bio"', () => {
    expect(only(extractUrls('go to shop dot com now'))).toMatchObject({
      value: 'shop.com',
      raw: 'shop dot com',
      index: 6,
    });
    expect(only(extractUrls('link dot in slash bio'))).toMatchObject({ value: 'link.in/bio' });
    expect(only(extractUrls('WWW dot Shop dot COM'))).toMatchObject({ value: 'shop.com' });
  });

  it('drops sentence punctuation after a link and stops at CJK text', () => {
    expect(only(extractUrls('see (bit.ly/xyz).'))).toMatchObject({ raw: 'bit.ly/xyz' });
    expect(only(extractUrls('visit https://x.com/a, thanks'))).toMatchObject({ raw: 'https://x.com/a' });
    expect(only(extractUrls('链接www.shop.com点击购买'))).toMatchObject({ raw: 'www.shop.com', index: 2 });
  });

  it.each([
    ['mail a@b.com'],
    ['only 12.99'],
    ['photo.jpg'],
    ['log.in and check out.In the morning'],
    ['e.g. this'],
    ['polka dot dress'],
    ['v1.2.3'],
  ])('finds no link in %j', (text) => {
    expect(extractUrls(text)).toEqual([]);
  });
});

describe('extractPhones', () => {
  it.each([
    ['+60 12-345 6789', '+60123456789', true],
    ['+86 138 0013 8000', '+8613800138000', true],
    ['+1 (555) 123-4567', '+15551234567', true],
    ['+44 20 7946 0958', '+442079460958', true],
    ['(555) 123-4567', '5551234567', false],
    ['555-123-4567', '5551234567', false],
    ['555.123.4567', '5551234567', false],
    ['13800138000', '13800138000', false],
    ['138 0013 8000', '13800138000', false],
    ['012-345 6789', '0123456789', false],
    ['0123456789', '0123456789', false],
  ])('reads %j as %s', (text, value, international) => {
    expect(only(extractPhones(text))).toMatchObject({
      type: 'phone',
      value,
      international,
      raw: text,
      index: 0,
    });
  });

  it('finds a Chinese mobile glued to Chinese text', () => {
    expect(only(extractPhones('电话13800138000咨询'))).toMatchObject({ value: '13800138000', index: 2 });
  });

  it('does not swallow a neighbouring number', () => {
    expect(only(extractPhones('price 99 555-123-4567'))).toMatchObject({ raw: '555-123-4567', index: 9 });
    expect(only(extractPhones('call 555-123-4567 2024'))).toMatchObject({ raw: '555-123-4567', index: 5 });
    expect(only(extractPhones('2024 555-123-4567'))).toMatchObject({ raw: '555-123-4567', index: 5 });
    expect(only(extractPhones('top 10 2024 138 0013 8000'))).toMatchObject({
      raw: '138 0013 8000',
      index: 12,
    });
    expect(only(extractPhones('0123 4567 2024'))).toMatchObject({ raw: '0123 4567', value: '01234567' });
    // Without the year the rest would be too short: the whole run is the number.
    expect(only(extractPhones('138 0013 2024'))).toMatchObject({ value: '13800132024' });
  });

  it('finds two phones in one text', () => {
    expect(extractPhones('+60 12-345 6789 or 13800138000').map((p) => p.value)).toEqual([
      '+60123456789',
      '13800138000',
    ]);
  });

  it.each([
    ['in 2024'],
    ['2023 2024'],
    ['2024-01-15'],
    ['15.01.2024'],
    ['20240101'],
    ['order 12345678'],
    ['SAVE20240101'],
    ['iPhone 15 Pro 256GB'],
    ['$1299 1599'],
    ['13800138000元'],
    ['1299.00 1599.00'],
    ['100 200 300'],
    ['12.99'],
    ['1234567'],
  ])('finds no phone in %j', (text) => {
    expect(extractPhones(text)).toEqual([]);
  });
});

describe('extractHandles', () => {
  it.each([
    ['follow @shop_name!', 'unknown', '@shop_name', '@shop_name'],
    ['IG: shopname', 'instagram', 'shopname', 'IG: shopname'],
    ['insta name', 'instagram', 'name', 'insta name'],
    ['my IG name is shop.xyz_1', 'instagram', 'shop.xyz_1', 'IG name is shop.xyz_1'],
    ['TG: @name', 'telegram', '@name', 'TG: @name'],
    ['telegram name', 'telegram', 'name', 'telegram name'],
    ['wechat: abc123', 'wechat', 'abc123', 'wechat: abc123'],
    ['vx abc123', 'wechat', 'abc123', 'vx abc123'],
    ['微信号 abc123', 'wechat', 'abc123', '微信号 abc123'],
    ['微信号是abc_123', 'wechat', 'abc_123', '微信号是abc_123'],
    ['v信 abc123', 'wechat', 'abc123', 'v信 abc123'],
    ['加V: abc123', 'wechat', 'abc123', '加V: abc123'],
    ['加微信abc123', 'wechat', 'abc123', '加微信abc123'],
    ['tiktok @shop', 'tiktok', '@shop', 'tiktok @shop'],
    ['FB: shop.official', 'facebook', 'shop.official', 'FB: shop.official'],
    ['LINE: shop1', 'line', 'shop1', 'LINE: shop1'],
    ['line id shop1', 'line', 'shop1', 'line id shop1'],
  ])('reads %j as %s %s', (text, platform, value, raw) => {
    const found = only(extractHandles(text));
    expect(found).toMatchObject({ type: 'handle', platform, value, raw });
    expect(text.normalize('NFKC').slice(found.index, found.index + raw.length)).toBe(raw);
  });

  it('gives a phone number as the account when the platform is given one', () => {
    expect(only(extractHandles('whatsapp +60 12-345 6789'))).toMatchObject({
      platform: 'whatsapp',
      value: '+60123456789',
      raw: 'whatsapp +60 12-345 6789',
    });
    expect(only(extractHandles('WhatsApp me at +60 12-345 6789'))).toMatchObject({
      platform: 'whatsapp',
      value: '+60123456789',
    });
    expect(only(extractHandles('vx 13800138000'))).toMatchObject({
      platform: 'wechat',
      value: '13800138000',
    });
  });

  it('takes only a phone after WhatsApp', () => {
    expect(extractHandles('whatsapp shopname')).toEqual([]);
  });

  it.each([
    ['mail a@b.com'],
    ['IG: a@b.com'],
    ['follow us on IG for more'],
    ['in line with the rules'],
    ['加vip'],
    ['IG: shop.com'],
    ['wa.me/60123456789'],
    ['email @gmail.com'],
    ['加微信'],
  ])('finds no handle in %j', (text) => {
    expect(extractHandles(text)).toEqual([]);
  });
});

describe('extractAll', () => {
  const summary = (found: readonly Extraction[]) => found.map((e) => [e.type, e.value]);

  it('gives a phone inside a URL to the URL', () => {
    expect(summary(extractAll('chat wa.me/60123456789 or wa.me/+60123456789'))).toEqual([
      ['url', 'wa.me/60123456789'],
      ['url', 'wa.me/+60123456789'],
    ]);
  });

  it('does not also read a price as a phone', () => {
    expect(summary(extractAll('now ¥13800138000 wow'))).toEqual([['price', '13800138000.00 CNY']]);
  });

  it('keeps a handle given as a phone and the phone itself', () => {
    expect(summary(extractAll('whatsapp +60 12-345 6789'))).toEqual([
      ['handle', '+60123456789'],
      ['phone', '+60123456789'],
    ]);
  });

  it('sorts everything by index across extractors', () => {
    const text = 'RM 49.90 only! use code SAVE20 for 50% off, DM IG: shop.my_1 or bit.ly/abc';
    const found = extractAll(text);
    expect(summary(found)).toEqual([
      ['price', '49.90 MYR'],
      ['promo_code', 'SAVE20'],
      ['percent', '50%'],
      ['handle', 'shop.my_1'],
      ['url', 'bit.ly/abc'],
    ]);
    expect(found.map((e) => e.index)).toEqual([...found.map((e) => e.index)].sort((a, b) => a - b));
    for (const e of found) expect(text.slice(e.index, e.index + e.raw.length)).toBe(e.raw);
  });

  it('reads a Chinese live-commerce line', () => {
    expect(summary(extractAll('九块九包邮！优惠码ABC123，加微信abc123，全场八折'))).toEqual([
      ['price', '9.90 CNY'],
      ['promo_code', 'ABC123'],
      ['handle', 'abc123'],
      ['percent', '20%'],
    ]);
  });

  it('finds nothing in ordinary speech', () => {
    expect(extractAll('hello everyone, welcome back to the live, in 2024 we have the iPhone 15')).toEqual([]);
  });
});
