// Compose variable interpolation (the Compose Specification's "Interpolation"): `${VAR}`, `$VAR`,
// `${VAR:-default}` / `${VAR-default}`, `${VAR:?error}` / `${VAR?error}`, `${VAR:+alt}` / `${VAR+alt}`, nested
// in defaults, and `$$` for a literal `$`. Values only, never keys, as compose-go does before it validates
// a file against the schema.

/** Interpolates every string value of a parsed compose document with `env`. */
export function interpolate(value: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  if (typeof value === 'string') return interpolateString(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  }
  return value;
}

/** The variable names a document refers to (in any value). */
export function variablesOf(value: unknown): Set<string> {
  const names = new Set<string>();
  const visit = (v: unknown) => {
    if (typeof v === 'string') {
      for (const m of v.replace(/\$\$/g, '').matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g))
        names.add(m[1] as string);
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(value);
  return names;
}

export function interpolateString(text: string, env: Readonly<Record<string, string | undefined>>): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      out += expand(text.slice(i + 2, end), env);
      i = end + 1;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
      if (!m) throw new Error(`invalid interpolation at "${text.slice(i)}": use $$ for a literal $`);
      out += env[m[0]] ?? '';
      i += 1 + m[0].length;
    }
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '{') {
      depth += 1;
      j += 1;
    } else if (text[j] === '}') {
      depth -= 1;
      if (depth === 0) return j;
    }
  }
  throw new Error(`unclosed \${ in "${text}"`);
}

function expand(body: string, env: Readonly<Record<string, string | undefined>>): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])(.*))?$/s.exec(body);
  if (!m) throw new Error(`invalid interpolation \${${body}}`);
  const [, name, colon, op, rest] = m as unknown as [
    string,
    string,
    string | undefined,
    string | undefined,
    string,
  ];
  const value = env[name];
  const unset = colon === ':' ? value === undefined || value === '' : value === undefined;
  switch (op) {
    case undefined:
      return value ?? '';
    case '-':
      return unset ? interpolateString(rest, env) : (value as string);
    case '+':
      return unset ? '' : interpolateString(rest, env);
    default:
      if (unset) throw new Error(`required variable ${name} is missing: ${interpolateString(rest, env)}`);
      return value as string;
  }
}
