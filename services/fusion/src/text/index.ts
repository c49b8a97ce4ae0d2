// The text layer of the fusion service's rule engine: normalisation and tokens (normalize.ts), extractors of
// prices, discounts, promo codes, links, phones and handles (extract.ts), and matchers that say where a phrase
// or pattern matched (match.ts). Pure functions, no I/O.
export {
  type Extraction,
  extractAll,
  extractHandles,
  extractPercentages,
  extractPhones,
  extractPrices,
  extractPromoCodes,
  extractUrls,
  type HandleExtraction,
  type HandlePlatform,
  type PercentExtraction,
  type PhoneExtraction,
  type PriceExtraction,
  type PromoCodeExtraction,
  parseAmount,
  type UrlExtraction,
} from './extract.js';
export {
  damerauLevenshtein,
  type FuzzyOptions,
  joinTokens,
  MAX_SNIPPET_CHARS,
  MIN_FUZZY_PHRASE_CHARS,
  matchAllPhrase,
  matchFuzzy,
  matchPhrase,
  matchRegex,
  snippetAround,
  type TokenMatch,
} from './match.js';
export {
  CHINESE_NUMERAL_CHARS,
  chineseNumeralValue,
  isCjkChar,
  normalizeText,
  tokenize,
} from './normalize.js';
