// The taxonomy file's schema: what an author may write in `taxonomy/*.yaml`, checked strictly (unknown keys are
// errors), with defaults applied and conditions compiled into a small tagged AST the rule engine walks
// (`op: 'text' | 'regex' | ...`, regexes compiled once). Parse through `parseTaxonomy`/`loadTaxonomy`
// (load.ts), which turn the issues into precise `path: message` errors.
//
// # The rule language
//
// A rule's `when` is one condition, an object with exactly one of these keys:
//
// | condition | matches when | evidence |
// |---|---|---|
// | `text: { any: [phrases], modalities?, match?: phrase \| fuzzy, maxEdits? }` | one of the phrases occurs, as whole tokens, in the normalised text of a speech / screen_text observation | each matching observation |
// | `text: { regex, flags?, modalities?, ratio? }` | the JS regex matches the observation's *normalised* text (lower case, punctuation as spaces, apostrophes inside words dropped, Chinese numerals as digits); with `ratio: N`, only matches whose 1st capture group is >= N × the 2nd | each matching observation |
// | `cues: { modalities?, match?, maxEdits? }` | like `text.any`, with the tag's own cues (every language) as the phrases | each matching observation |
// | `extract: { type, modalities?, platform?, currency?, discount?, min?, max? }` | the text layer's extractor finds such an item (price, percent, promo_code, url, phone, handle) passing the filters (platform: handle; currency: price, ISO 4217; discount: percent; min/max: price amount or percent) | each observation with one |
// | `label: { name, min }` | an image_label observation with that name scores >= min | each such label |
// | `price_ratio: { min, within_ms?, modalities? }` | two prices in the same currency, one at least `min` times the other (a "was $199 now $19" claim), in one observation or within `within_ms` of each other | the observation(s) of the two prices |
// | `all: [conditions], within_ms?` | every member matches; with `within_ms`, one match of each member can be chosen so that all of them lie within that much media time of each other | the chosen matches |
// | `any: [conditions]` | at least one member matches | every member's matches |
// | `count: { of, min }` | `of` (a text/cues/extract/label condition or an `any` of them) matches in at least `min` distinct observations | those observations |
// | `not: condition` | (only as a member of `all`) the condition does not match; inside an `all` with `within_ms`, it must not match within `within_ms` of the chosen matches | none |
//
// `modalities` defaults to both text modalities (speech and screen_text).
//
// # Exceptions
//
// A tag's `exceptions: [{ id, description, when }]` name observations that explain a rule's evidence away. Before
// the tag's rules run, every exception is evaluated over the whole window; every observation in an exception's
// evidence is *excused* and becomes invisible to all of that tag's rules (positive and `not` conditions alike).
// So an exception cancels a rule's evidence exactly when it matches the same observation: "this game is fun"
// matches the exception `gambling.casual_game` (the word "game" with no stakes word in the same line), so the
// rule `gambling.game_for_money` cannot use it, while "game" said in another line still counts
// (engine.test.ts: "exceptions"). Exceptions never add evidence or score; they only take evidence away.
//
// # Scoring
//
// A matched rule contributes c_i = weight_i × confidence_i, where confidence_i is the rule's match confidence:
// an observation's recognition confidence (times 1 − distance/length for fuzzy phrase matches), the best
// (maximum) over the observations a condition matched, and the weakest (minimum) over the members of an `all`
// (a conjunction is only as sure as its least sure part). The tag's score is the noisy-or
// 1 − ∏(1 − c_i) over its matched rules: in [0, 1], and monotone (raising any c_i or adding a matched rule never
// lowers it). The tag fires at score >= thresholds.accept and is a review case at review <= score < accept.

import { z } from 'zod';

/** The text modalities a text-based condition can look at. */
export const TEXT_MODALITIES = ['speech', 'screen_text'] as const;
export type TextModality = (typeof TEXT_MODALITIES)[number];

/** What an `extract` condition can look for (the text layer's extractors). */
export const EXTRACT_TYPES = ['price', 'percent', 'promo_code', 'url', 'phone', 'handle'] as const;
export type ExtractType = (typeof EXTRACT_TYPES)[number];

export const TAG_KINDS = ['intent', 'risk'] as const;
export type TagKind = (typeof TAG_KINDS)[number];

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The keys that make an object a condition (exactly one per condition). */
export const CONDITION_KEYS = [
  'text',
  'cues',
  'extract',
  'label',
  'price_ratio',
  'all',
  'any',
  'count',
  'not',
] as const;

// ---- The compiled condition AST (what the engine walks) ----

/** `text: { any: [...] }`: one of the phrases as whole tokens. */
export interface TextCondition {
  readonly op: 'text';
  readonly phrases: readonly string[];
  readonly modalities: readonly TextModality[];
  readonly match: 'phrase' | 'fuzzy';
  /** Edits a fuzzy match may need (ignored for `phrase`). @default scoring.defaultMaxEdits */
  readonly maxEdits: number;
}

/** `text: { regex }`: a regex over the normalised text, compiled once at load. */
export interface RegexCondition {
  readonly op: 'regex';
  readonly source: string;
  readonly flags: string;
  readonly pattern: RegExp;
  readonly modalities: readonly TextModality[];
  /**
   * `ratio: N`: a match counts only when its first capture group, read as a number, is at least N times its
   * second ("原价999 现价99" with `原价 ?(\d+) ?现价 ?(\d+)`). `allMatches` is the same regex with the `g` flag,
   * to try every match of an observation.
   */
  readonly ratio?: { readonly min: number; readonly allMatches: RegExp };
}

/** `cues: {...}`: the tag's own cues (all languages) as the phrase list. */
export interface CuesCondition {
  readonly op: 'cues';
  readonly modalities: readonly TextModality[];
  readonly match: 'phrase' | 'fuzzy';
  readonly maxEdits: number;
}

/** `extract: {...}`: an extractor found an item passing the filters. */
export interface ExtractCondition {
  readonly op: 'extract';
  readonly type: ExtractType;
  readonly modalities: readonly TextModality[];
  /** handle only: platforms accepted (lower case). */
  readonly platform?: readonly string[];
  /** price only: ISO 4217 currencies accepted ("USD", "CNY"). */
  readonly currency?: readonly string[];
  /** percent only: true = only stated reductions ("50% off", 五折, 半价); false = only bare percentages. */
  readonly discount?: boolean;
  /** price: amount; percent: the percentage. */
  readonly min?: number;
  readonly max?: number;
}

/** `label: {...}`: an image label scoring at least `min`. */
export interface LabelCondition {
  readonly op: 'label';
  readonly name: string;
  readonly min: number;
}

/** `price_ratio: {...}`: two prices (same currency), the larger at least `min` times the smaller. */
export interface PriceRatioCondition {
  readonly op: 'price_ratio';
  readonly min: number;
  /** Both prices within this much media time; absent: anywhere in the window. */
  readonly withinMs?: number;
  readonly modalities: readonly TextModality[];
}

export interface AllCondition {
  readonly op: 'all';
  readonly of: readonly Condition[];
  readonly withinMs?: number;
}

export interface AnyCondition {
  readonly op: 'any';
  readonly of: readonly Condition[];
}

export interface CountCondition {
  readonly op: 'count';
  readonly of: Condition;
  readonly min: number;
}

/** Only ever a member of an `all` (checked at load). */
export interface NotCondition {
  readonly op: 'not';
  readonly of: Condition;
}

export type Condition =
  | TextCondition
  | RegexCondition
  | CuesCondition
  | ExtractCondition
  | LabelCondition
  | PriceRatioCondition
  | AllCondition
  | AnyCondition
  | CountCondition
  | NotCondition;

/** The conditions that look at single observations (and can be counted). */
export const LEAF_OPS: ReadonlySet<Condition['op']> = new Set([
  'text',
  'regex',
  'cues',
  'extract',
  'label',
  'price_ratio',
]);

// ---- The document's types (after defaults) ----

/** A rule: when its condition matches a window, it contributes weight × confidence to its tag's score. */
export interface Rule {
  /** Unique across the taxonomy, `<tag id>.<name>`, e.g. `promo_code.spoken_code`. */
  readonly id: string;
  /** The tag the rule belongs to (filled in at load). */
  readonly tagId: string;
  /** Plain words: what the rule looks for (used by retrieval). */
  readonly description: string;
  /** How much the rule alone can say, (0, 1]. */
  readonly weight: number;
  readonly when: Condition;
}

/** An exception: observations its condition matches are excused from the tag's rules (see the file header). */
export interface TagException {
  /** Unique across the taxonomy (shares the namespace of rule ids), `<tag id>.<name>`. */
  readonly id: string;
  readonly tagId: string;
  readonly description: string;
  readonly when: Condition;
}

/** Cue phrases per language: `en` and `zh` are required, others (BCP-47 codes) optional. */
export type Cues = { readonly en: readonly string[]; readonly zh: readonly string[] } & Readonly<
  Record<string, readonly string[]>
>;

export interface Thresholds {
  /** The tag fires at score >= accept. (0, 1]. */
  readonly accept: number;
  /** A review case at review <= score < accept. 0 < review < accept. */
  readonly review: number;
}

export interface Tag {
  /** snake_case, unique. */
  readonly id: string;
  readonly kind: TagKind;
  /** Human name, e.g. "Promo code" (used in rationales). */
  readonly name: string;
  readonly severity: Severity;
  /** Plain words (used by retrieval and rationale). */
  readonly description: string;
  readonly cues: Cues;
  readonly thresholds: Thresholds;
  /** An episode closes after this much media time without the tag firing. @default scoring.defaultQuietPeriodMs */
  readonly quietPeriodMs: number;
  readonly rules: readonly Rule[];
  /** @default [] */
  readonly exceptions: readonly TagException[];
}

/** How scores are combined, and the engine's defaults. */
export interface ScoringConfig {
  /** Only `noisy_or`: score = 1 − ∏(1 − c_i), c_i = weight_i × confidence_i. @default 'noisy_or' */
  readonly combine: 'noisy_or';
  /** Quiet period of tags that name none. @default 20000 */
  readonly defaultQuietPeriodMs: number;
  /** maxEdits of fuzzy conditions that name none. @default 1 */
  readonly defaultMaxEdits: number;
  /** Evidence items kept per matched rule (the most confident; the score uses them all). @default 8 */
  readonly maxEvidencePerRule: number;
  /** Tokens of context either side of a phrase match in evidence snippets. @default 4 */
  readonly snippetContextTokens: number;
}

export interface Taxonomy {
  /** Semver of the taxonomy file; recorded with every decision. */
  readonly version: string;
  readonly name: string;
  readonly description?: string;
  readonly scoring: ScoringConfig;
  readonly tags: readonly Tag[];
}

/** The formula `TagDecision.formula` records for a combine mode. */
export const FORMULAS: Readonly<Record<ScoringConfig['combine'], string>> = {
  noisy_or: '1 - prod(1 - w_i * c_i)',
};

// ---- The zod schema ----

const SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const RULE_ID = /^[a-z][a-z0-9]*(_[a-z0-9]+)*\.[a-z0-9]+(_[a-z0-9]+)*$/;
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

const nonEmptyString = z.string().trim().min(1, { error: 'expected a non-empty string' });
const phrase = nonEmptyString;
const phraseList = z.array(phrase).min(1, { error: 'expected at least one phrase' });
const unitInterval = z.number().min(0).max(1);

const modalities = z
  .array(z.enum(TEXT_MODALITIES))
  .min(1)
  .refine((list) => new Set(list).size === list.length, { error: 'modalities must not repeat' });

const matchMode = z.enum(['phrase', 'fuzzy']);
const maxEdits = z.int().min(1).max(3);
const withinMs = z.number().min(0);

/** Defaults the condition transforms need (the scoring section is parsed before the tags). */
interface ConditionDefaults {
  readonly defaultMaxEdits: number;
}

// The condition schema is built per context: `not` is accepted only as a member of `all`. A preprocess step
// finds the one condition key and injects it as `op`, so a discriminated union picks exactly one branch and
// its errors keep their precise paths (`when.all[0].extract.type`), instead of a union's "no branch matched".
// Schemas are cached per (defaults, context): the getters below run at parse time, at every nesting level.
const conditionSchemas = new Map<string, z.ZodType<Condition>>();

function conditionSchema(defaults: ConditionDefaults, allowNot: boolean): z.ZodType<Condition> {
  const key = `${defaults.defaultMaxEdits}:${allowNot}`;
  let schema = conditionSchemas.get(key);
  if (schema === undefined) {
    schema = buildConditionSchema(defaults, allowNot);
    conditionSchemas.set(key, schema);
  }
  return schema;
}

function buildConditionSchema(defaults: ConditionDefaults, allowNot: boolean): z.ZodType<Condition> {
  const plain = (): z.ZodType<Condition> => conditionSchema(defaults, false);
  const member = (): z.ZodType<Condition> => conditionSchema(defaults, true);

  const text = z.strictObject({
    op: z.literal('text'),
    text: z.strictObject({
      any: phraseList.optional(),
      regex: nonEmptyString.optional(),
      flags: z
        .string()
        .regex(/^(?!.*(.).*\1)[imsu]*$/, {
          error: 'expected distinct flags among i, m, s, u (g and y are stateful)',
        })
        .optional(),
      modalities: modalities.optional(),
      match: matchMode.optional(),
      maxEdits: maxEdits.optional(),
      ratio: z.number().gt(0).optional(),
    }),
  });
  const cues = z.strictObject({
    op: z.literal('cues'),
    cues: z.strictObject({
      modalities: modalities.optional(),
      match: matchMode.optional(),
      maxEdits: maxEdits.optional(),
    }),
  });
  const extract = z.strictObject({
    op: z.literal('extract'),
    extract: z.strictObject({
      type: z.enum(EXTRACT_TYPES),
      modalities: modalities.optional(),
      platform: z.array(nonEmptyString).min(1).optional(),
      currency: z.array(nonEmptyString).min(1).optional(),
      discount: z.boolean().optional(),
      min: z.number().optional(),
      max: z.number().optional(),
    }),
  });
  const label = z.strictObject({
    op: z.literal('label'),
    label: z.strictObject({ name: nonEmptyString, min: unitInterval }),
  });
  const priceRatio = z.strictObject({
    op: z.literal('price_ratio'),
    price_ratio: z.strictObject({
      min: z.number().gt(1),
      within_ms: withinMs.optional(),
      modalities: modalities.optional(),
    }),
  });
  const all = z.strictObject({
    op: z.literal('all'),
    get all() {
      return z.array(member()).min(1);
    },
    within_ms: withinMs.optional(),
  });
  const any = z.strictObject({
    op: z.literal('any'),
    get any() {
      return z.array(plain()).min(1);
    },
  });
  const count = z.strictObject({
    op: z.literal('count'),
    get count() {
      return z.strictObject({ of: plain(), min: z.int().min(1) });
    },
  });
  const not = z.strictObject({
    op: z.literal('not'),
    get not() {
      return plain();
    },
  });

  const branches = z.discriminatedUnion('op', [text, cues, extract, label, priceRatio, all, any, count, not]);

  return z
    .preprocess((input, ctx) => {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
      const keys = Object.keys(input);
      const present = keys.filter((key) => (CONDITION_KEYS as readonly string[]).includes(key));
      if (present.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          message:
            present.length === 0
              ? `expected a condition with exactly one of ${CONDITION_KEYS.join(', ')}; got ${keys.length === 0 ? 'an empty object' : `key(s) ${keys.join(', ')}`}`
              : `expected exactly one condition key, got ${present.join(', ')}`,
        });
        return z.NEVER;
      }
      if (keys.includes('op')) {
        ctx.addIssue({ code: 'custom', path: ['op'], message: 'unknown key' });
        return z.NEVER;
      }
      if (present[0] === 'not' && !allowNot) {
        ctx.addIssue({ code: 'custom', message: "'not' is only allowed as a member of 'all'" });
        return z.NEVER;
      }
      return { ...input, op: present[0] };
    }, branches)
    .transform((raw, ctx): Condition => {
      switch (raw.op) {
        case 'text': {
          const t = raw.text;
          if ((t.any === undefined) === (t.regex === undefined)) {
            ctx.addIssue({
              code: 'custom',
              path: ['text'],
              message: "expected exactly one of 'any' or 'regex'",
            });
            return z.NEVER;
          }
          if (t.regex !== undefined) {
            for (const key of ['match', 'maxEdits'] as const) {
              if (t[key] !== undefined) {
                ctx.addIssue({ code: 'custom', path: ['text', key], message: "only allowed with 'any'" });
              }
            }
            let pattern: RegExp;
            try {
              pattern = new RegExp(t.regex, t.flags ?? '');
            } catch (error) {
              ctx.addIssue({
                code: 'custom',
                path: ['text', 'regex'],
                message: `invalid regex: ${error instanceof Error ? error.message : String(error)}`,
              });
              return z.NEVER;
            }
            let ratio: RegexCondition['ratio'];
            if (t.ratio !== undefined) {
              // The number of capture groups: an empty alternative always matches, with every group undefined.
              const groups = (new RegExp(`${t.regex}|`, t.flags ?? '').exec('')?.length ?? 1) - 1;
              if (groups < 2) {
                ctx.addIssue({
                  code: 'custom',
                  path: ['text', 'ratio'],
                  message: `needs a regex with two capture groups (the larger and the smaller number), got ${groups}`,
                });
              }
              ratio = { min: t.ratio, allMatches: new RegExp(t.regex, `${t.flags ?? ''}g`) };
            }
            return {
              op: 'regex',
              source: t.regex,
              flags: t.flags ?? '',
              pattern,
              modalities: t.modalities ?? TEXT_MODALITIES,
              ...(ratio === undefined ? {} : { ratio }),
            };
          }
          for (const key of ['flags', 'ratio'] as const) {
            if (t[key] !== undefined) {
              ctx.addIssue({ code: 'custom', path: ['text', key], message: "only allowed with 'regex'" });
            }
          }
          if (t.maxEdits !== undefined && t.match !== 'fuzzy') {
            ctx.addIssue({
              code: 'custom',
              path: ['text', 'maxEdits'],
              message: "only allowed with match: 'fuzzy'",
            });
          }
          return {
            op: 'text',
            phrases: t.any ?? [],
            modalities: t.modalities ?? TEXT_MODALITIES,
            match: t.match ?? 'phrase',
            maxEdits: t.maxEdits ?? defaults.defaultMaxEdits,
          };
        }
        case 'cues': {
          const c = raw.cues;
          if (c.maxEdits !== undefined && c.match !== 'fuzzy') {
            ctx.addIssue({
              code: 'custom',
              path: ['cues', 'maxEdits'],
              message: "only allowed with match: 'fuzzy'",
            });
          }
          return {
            op: 'cues',
            modalities: c.modalities ?? TEXT_MODALITIES,
            match: c.match ?? 'phrase',
            maxEdits: c.maxEdits ?? defaults.defaultMaxEdits,
          };
        }
        case 'extract': {
          const e = raw.extract;
          if (e.platform !== undefined && e.type !== 'handle') {
            ctx.addIssue({
              code: 'custom',
              path: ['extract', 'platform'],
              message: 'only allowed with type: handle',
            });
          }
          if (e.discount !== undefined && e.type !== 'percent') {
            ctx.addIssue({
              code: 'custom',
              path: ['extract', 'discount'],
              message: 'only allowed with type: percent',
            });
          }
          if (e.currency !== undefined && e.type !== 'price') {
            ctx.addIssue({
              code: 'custom',
              path: ['extract', 'currency'],
              message: 'only allowed with type: price',
            });
          }
          for (const key of ['min', 'max'] as const) {
            if (e[key] !== undefined && e.type !== 'price' && e.type !== 'percent') {
              ctx.addIssue({
                code: 'custom',
                path: ['extract', key],
                message: 'only allowed with type: price or percent',
              });
            }
          }
          if (e.min !== undefined && e.max !== undefined && e.min > e.max) {
            ctx.addIssue({
              code: 'custom',
              path: ['extract', 'max'],
              message: `must be >= min (min ${e.min}, max ${e.max})`,
            });
          }
          return {
            op: 'extract',
            type: e.type,
            modalities: e.modalities ?? TEXT_MODALITIES,
            ...(e.platform === undefined ? {} : { platform: e.platform.map((p) => p.toLowerCase()) }),
            ...(e.currency === undefined ? {} : { currency: e.currency.map((c) => c.toUpperCase()) }),
            ...(e.discount === undefined ? {} : { discount: e.discount }),
            ...(e.min === undefined ? {} : { min: e.min }),
            ...(e.max === undefined ? {} : { max: e.max }),
          };
        }
        case 'label':
          return { op: 'label', name: raw.label.name, min: raw.label.min };
        case 'price_ratio':
          return {
            op: 'price_ratio',
            min: raw.price_ratio.min,
            modalities: raw.price_ratio.modalities ?? TEXT_MODALITIES,
            ...(raw.price_ratio.within_ms === undefined ? {} : { withinMs: raw.price_ratio.within_ms }),
          };
        case 'all':
          if (raw.all.every((c) => c.op === 'not')) {
            ctx.addIssue({
              code: 'custom',
              path: ['all'],
              message: "needs at least one member that is not a 'not' (a rule needs positive evidence)",
            });
          }
          return {
            op: 'all',
            of: raw.all,
            ...(raw.within_ms === undefined ? {} : { withinMs: raw.within_ms }),
          };
        case 'any':
          return { op: 'any', of: raw.any };
        case 'count': {
          const of = raw.count.of;
          const countable =
            LEAF_OPS.has(of.op) || (of.op === 'any' && of.of.every((c) => LEAF_OPS.has(c.op)));
          if (!countable || of.op === 'price_ratio') {
            ctx.addIssue({
              code: 'custom',
              path: ['count', 'of'],
              message: 'expected a text, cues, extract or label condition, or an any of them',
            });
          }
          return { op: 'count', of, min: raw.count.min };
        }
        case 'not':
          return { op: 'not', of: raw.not };
      }
    });
}

const scoringSchema = z.strictObject({
  combine: z.literal('noisy_or').default('noisy_or'),
  defaultQuietPeriodMs: z.int().min(0).default(20_000),
  defaultMaxEdits: maxEdits.default(1),
  maxEvidencePerRule: z.int().min(1).max(100).default(8),
  snippetContextTokens: z.int().min(0).max(20).default(4),
});

const cuesSchema = z
  .looseObject({ en: phraseList, zh: phraseList })
  .superRefine((cues, ctx) => {
    for (const [language, list] of Object.entries(cues)) {
      if (language === 'en' || language === 'zh') continue;
      if (!LANGUAGE.test(language)) {
        ctx.addIssue({
          code: 'custom',
          path: [language],
          message: 'unknown key (expected a language code like "es")',
        });
        continue;
      }
      const parsed = phraseList.safeParse(list, { reportInput: true });
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          ctx.addIssue({ code: 'custom', path: [language, ...issue.path], message: describeIssue(issue) });
        }
      }
    }
  })
  .transform((cues) => cues as Cues);

const thresholdsSchema = z
  .strictObject({ accept: z.number().gt(0).max(1), review: z.number().gt(0).max(1) })
  .superRefine((t, ctx) => {
    if (t.review >= t.accept) {
      ctx.addIssue({
        code: 'custom',
        path: ['review'],
        message: `must be less than accept (review ${t.review}, accept ${t.accept})`,
      });
    }
  });

const ruleId = z
  .string()
  .regex(RULE_ID, { error: 'expected <tag_id>.<snake_case_name>, e.g. "promo_code.spoken_code"' });

function tagSchema(scoring: ScoringConfig) {
  const when = conditionSchema(scoring, false);
  return z
    .strictObject({
      id: z.string().regex(SNAKE, { error: 'expected snake_case (a-z, 0-9, _), e.g. "promo_code"' }),
      kind: z.enum(TAG_KINDS),
      name: nonEmptyString,
      severity: z.enum(SEVERITIES),
      description: nonEmptyString,
      cues: cuesSchema,
      thresholds: thresholdsSchema,
      quietPeriodMs: z.int().min(0).optional(),
      rules: z
        .array(
          z.strictObject({
            id: ruleId,
            description: nonEmptyString,
            weight: z.number().gt(0).max(1),
            when,
          }),
        )
        .min(1, { error: 'expected at least one rule' }),
      exceptions: z.array(z.strictObject({ id: ruleId, description: nonEmptyString, when })).optional(),
    })
    .superRefine((tag, ctx) => {
      const check = (list: readonly { id: string }[], key: 'rules' | 'exceptions') => {
        list.forEach((item, index) => {
          if (!item.id.startsWith(`${tag.id}.`)) {
            ctx.addIssue({
              code: 'custom',
              path: [key, index, 'id'],
              message: `must start with the tag id ("${tag.id}.")`,
            });
          }
        });
      };
      check(tag.rules, 'rules');
      check(tag.exceptions ?? [], 'exceptions');
    })
    .transform(
      (tag): Tag => ({
        ...tag,
        quietPeriodMs: tag.quietPeriodMs ?? scoring.defaultQuietPeriodMs,
        rules: tag.rules.map((rule) => ({ ...rule, tagId: tag.id })),
        exceptions: (tag.exceptions ?? []).map((exception) => ({ ...exception, tagId: tag.id })),
      }),
    );
}

const headerSchema = z.strictObject({
  version: z.string().regex(SEMVER, { error: 'expected a semver string such as "1.0.0"' }),
  name: nonEmptyString,
  description: nonEmptyString.optional(),
  scoring: scoringSchema,
  tags: z.array(z.unknown()).min(1, { error: 'expected at least one tag' }),
});

/** One problem with a taxonomy document: where (a path into it) and what. */
export interface TaxonomyIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/**
 * Validates a taxonomy document (already parsed from YAML) and compiles it. Returns the issues instead of
 * throwing; `parseTaxonomy` (load.ts) turns them into one error with line numbers.
 *
 * The scoring section is parsed first so its defaults (maxEdits, quiet period) reach the tags; cross-tag checks
 * (duplicate tag, rule and exception ids) run when every tag parsed.
 */
export function validateTaxonomy(
  document: unknown,
): { ok: true; taxonomy: Taxonomy } | { ok: false; issues: TaxonomyIssue[] } {
  const issues: TaxonomyIssue[] = [];
  const collect = (error: z.ZodError, prefix: readonly PropertyKey[]) => {
    for (const issue of error.issues) {
      if (issue.code === 'unrecognized_keys') {
        // One issue per key, with the key in the path: `tags[0].rules[1].colour: unknown key`.
        for (const key of issue.keys)
          issues.push({ path: [...prefix, ...issue.path, key], message: 'unknown key' });
      } else {
        issues.push({ path: [...prefix, ...issue.path], message: describeIssue(issue) });
      }
    }
  };

  const header = headerSchema.safeParse(document, { reportInput: true });
  if (!header.success) {
    collect(header.error, []);
    // Tags can still be checked if the scoring section is sound: report as much as possible in one go.
    if (
      typeof document !== 'object' ||
      document === null ||
      !Array.isArray((document as { tags?: unknown }).tags)
    ) {
      return { ok: false, issues };
    }
  }
  const scoringInput = (document as { scoring?: unknown }).scoring;
  const scoringParsed = scoringSchema.safeParse(scoringInput ?? {});
  const scoring: ScoringConfig = scoringParsed.success ? scoringParsed.data : scoringSchema.parse({});
  const schema = tagSchema(scoring);

  const tags: Tag[] = [];
  const rawTags = (document as { tags: unknown[] }).tags;
  rawTags.forEach((raw, index) => {
    const parsed = schema.safeParse(raw, { reportInput: true });
    if (parsed.success) tags.push(parsed.data);
    else collect(parsed.error, ['tags', index]);
  });

  // Cross-tag checks: ids are how rules, traces and episodes refer to things, so they must be unique.
  const tagIds = new Map<string, number>();
  const itemIds = new Map<string, string>();
  rawTags.forEach((raw, index) => {
    const tag = raw as { id?: unknown; rules?: unknown; exceptions?: unknown };
    if (typeof tag?.id === 'string') {
      const first = tagIds.get(tag.id);
      if (first !== undefined) {
        issues.push({
          path: ['tags', index, 'id'],
          message: `duplicate tag id "${tag.id}" (first at tags[${first}])`,
        });
      } else {
        tagIds.set(tag.id, index);
      }
    }
    for (const key of ['rules', 'exceptions'] as const) {
      const list = tag?.[key];
      if (!Array.isArray(list)) continue;
      list.forEach((item: { id?: unknown } | null, itemIndex) => {
        if (typeof item?.id !== 'string') return;
        const here = `tags[${index}].${key}[${itemIndex}]`;
        const first = itemIds.get(item.id);
        if (first !== undefined) {
          issues.push({
            path: ['tags', index, key, itemIndex, 'id'],
            message: `duplicate ${key === 'rules' ? 'rule' : 'exception'} id "${item.id}" (first at ${first})`,
          });
        } else {
          itemIds.set(item.id, here);
        }
      });
    }
  });

  if (issues.length > 0 || !header.success) return { ok: false, issues };
  return {
    ok: true,
    taxonomy: {
      version: header.data.version,
      name: header.data.name,
      ...(header.data.description === undefined ? {} : { description: header.data.description }),
      scoring,
      tags,
    },
  };
}

/** `tags[3].rules[1].when.all[0].extract.type` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(document)' : out;
}

/** A zod issue in the words of a taxonomy author: what was expected and what was there. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `required (expected ${issue.expected})`;
      return `expected ${issue.expected}, got ${describeValue(input)}`;
    case 'invalid_value':
      if (input === undefined) {
        return `required (expected ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map(String).join(', ')})`;
      }
      return issue.values.length === 1
        ? `expected ${String(issue.values[0])}, got ${describeValue(input)}`
        : `expected one of ${issue.values.map(String).join(', ')}; got ${describeValue(input)}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'too_small': {
      if (issue.origin === 'array') return `expected at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === 'string') return 'expected a non-empty string';
      return `expected a number ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}, got ${describeValue(input)}`;
    }
    case 'too_big': {
      if (issue.origin === 'array') return `expected at most ${String(issue.maximum)} item(s)`;
      return `expected a number ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}, got ${describeValue(input)}`;
    }
    default:
      return issue.message;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}
