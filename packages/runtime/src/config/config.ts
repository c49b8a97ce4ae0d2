import { z } from 'zod';
import { LiveLensError } from '../errors.js';

/**
 * One configuration field: the environment variable it comes from, how to parse it, its default and what
 * it is for. Services declare their config as a record of these, so the table in each README and the
 * validation can never disagree (see `describeConfig`).
 */
export interface ConfigField<T> {
  readonly env: string;
  /** Parses the raw string (already defaulted). */
  readonly schema: z.ZodType<T>;
  /** The default, as the string a user would write in the variable. Absent = required. */
  readonly default?: string;
  readonly doc: string;
}

export type ConfigFields = Record<string, ConfigField<unknown>>;
export type ConfigOf<F extends ConfigFields> = {
  readonly [K in keyof F]: F[K] extends ConfigField<infer T> ? T : never;
};

/** Declares a field; the type of the value follows from `schema`. */
export function field<T>(
  env: string,
  schema: z.ZodType<T>,
  doc: string,
  defaultValue?: string,
): ConfigField<T> {
  return defaultValue === undefined ? { env, schema, doc } : { env, schema, doc, default: defaultValue };
}

/** Field parsers for environment strings. Each states what it expects, for the error message. */
export const env = {
  string: () => z.string().min(1, 'expected a non-empty string'),
  int: (min: number, max: number) =>
    z
      .string()
      .regex(/^-?\d+$/, `expected an integer ${min}..${max}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .int()
          .min(min, `expected an integer ${min}..${max}`)
          .max(max, `expected an integer ${min}..${max}`),
      ),
  number: (min: number, max: number) =>
    z
      .string()
      .regex(/^-?\d+(\.\d+)?$/, `expected a number ${min}..${max}`)
      .transform(Number)
      .pipe(
        z.number().min(min, `expected a number ${min}..${max}`).max(max, `expected a number ${min}..${max}`),
      ),
  bool: () =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  oneOf: <const T extends readonly [string, ...string[]]>(values: T) =>
    z.enum(values, { message: `expected one of ${values.join(', ')}` }),
  /** Comma-separated list, blanks dropped. */
  list: () =>
    z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string()).min(1, 'expected a comma-separated list with at least one item')),
  /** host:port[,host:port...] */
  hostPorts: () =>
    z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .pipe(
        z
          .array(z.string().regex(/^[^\s:,]+:\d{1,5}$/, 'expected host:port[,host:port...]'))
          .min(1, 'expected host:port[,host:port...]'),
      ),
  url: (protocols: readonly string[]) =>
    z.string().refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol.replace(/:$/, ''));
        } catch {
          return false;
        }
      },
      `expected a ${protocols.join(' or ')} URL`,
    ),
} as const;

/**
 * Reads and validates every field from `source` (default `process.env`). Fails fast with one error that
 * names each bad variable, what was expected and what was found, so a misconfigured deployment says why.
 */
export function loadConfig<F extends ConfigFields>(
  fields: F,
  source: Readonly<Record<string, string | undefined>> = process.env,
): ConfigOf<F> {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(fields)) {
    const raw = source[spec.env];
    const value = raw === undefined || raw === '' ? spec.default : raw;
    if (value === undefined) {
      problems.push(`${spec.env} is required (${spec.doc})`);
      continue;
    }
    const parsed = spec.schema.safeParse(value);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      const expected = parsed.error.issues.map((i) => i.message).join('; ');
      problems.push(`${spec.env}: ${expected}, got ${JSON.stringify(redact(value))}`);
    }
  }
  if (problems.length > 0) {
    throw new LiveLensError(`invalid configuration:\n  ${problems.join('\n  ')}`, {
      code: 'invalid_config',
      retriable: false,
    });
  }
  return Object.freeze(out) as ConfigOf<F>;
}

/** Hides the credentials of a URL-like value (`redis://user:secret@host` → `redis://***@host`) in errors. */
function redact(value: string): string {
  return value.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1***@');
}

/** The rows of a service's configuration table: variable, default, description (for READMEs and --help). */
export function describeConfig(fields: ConfigFields): { env: string; default: string; doc: string }[] {
  return Object.values(fields).map((f) => ({
    env: f.env,
    default: f.default === undefined ? '(required)' : f.default === '' ? '(empty)' : f.default,
    doc: f.doc,
  }));
}

/** Renders `describeConfig` as a Markdown table. */
export function configTableMarkdown(fields: ConfigFields): string {
  const rows = describeConfig(fields).map((r) => `| \`${r.env}\` | \`${r.default}\` | ${r.doc} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/**
 * The rows of a README's configuration table whose variable starts with `prefix`, as cell texts joined by
 * ` | ` whatever the column padding: compare them with `configTableRows(fields)` so the README cannot drift
 * from the code.
 */
export function readmeConfigRows(markdown: string, prefix: string): string[] {
  return tableRows(markdown).filter((row) => row.startsWith(`\`${prefix}`));
}

/** The rows `configTableMarkdown` would write for `fields`, in the form `readmeConfigRows` reads. */
export function configTableRows(fields: ConfigFields): string[] {
  return tableRows(configTableMarkdown(fields));
}

function tableRows(markdown: string): string[] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim())
        .join(' | '),
    );
}
