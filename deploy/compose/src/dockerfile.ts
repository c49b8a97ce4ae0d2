// A Dockerfile reader for the checks in compose.test.ts: instructions (continuations and comments handled),
// stages, ARG defaults and the COPY, CMD, USER and EXPOSE arguments. No heredocs (the service Dockerfiles use
// none, and `parseDockerfile` refuses them rather than misreading them).

/** One instruction: its keyword in upper case, its arguments as written, the line it starts on (1-based). */
export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** One build stage: `FROM <from> [AS <name>]` and the instructions after it. */
export interface Stage {
  readonly index: number;
  readonly name: string | undefined;
  /** The image or stage it starts from, with build arguments substituted (their defaults). */
  readonly from: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults (usable in FROM lines). */
  readonly globalArgs: ReadonlyMap<string, string | undefined>;
  readonly stages: readonly Stage[];
}

/** A COPY (or ADD) instruction's flags, sources and destination. */
export interface Copy {
  readonly from: string | undefined;
  readonly chmod: string | undefined;
  readonly chown: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
  readonly line: number;
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions = readInstructions(text);
  const globalArgs = new Map<string, string | undefined>();
  const stages: { index: number; name: string | undefined; from: string; instructions: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (/<<-?["']?\w/.test(ins.args) && (ins.keyword === 'RUN' || ins.keyword === 'COPY')) {
      throw new Error(`line ${ins.line}: heredocs are not supported by this reader`);
    }
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args.trim());
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({
        index: stages.length,
        name: m[2]?.toLowerCase(),
        from: substitute(m[1] as string, globalArgs),
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
      const [name, value] = splitArg(ins.args);
      globalArgs.set(name, value);
    } else (stages.at(-1) as { instructions: Instruction[] }).instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** The stage a name or index refers to. */
export function stageOf(file: Dockerfile, ref: string): Stage | undefined {
  return file.stages.find((s) => s.name === ref.toLowerCase() || String(s.index) === ref);
}

/** The ARG defaults a stage declares (`ARG NAME=value`). */
export function stageArgs(stage: Stage): Map<string, string | undefined> {
  const args = new Map<string, string | undefined>();
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ARG')) {
    const [name, value] = splitArg(ins.args);
    args.set(name, value);
  }
  return args;
}

/** Reads `COPY [--from=x] [--chmod=m] [--chown=u] src... dest` (also the JSON array form). */
export function parseCopy(ins: Instruction): Copy {
  let rest = ins.args.trim();
  const flags = new Map<string, string>();
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest);
    if (!m) break;
    flags.set(m[1] as string, m[2] ?? 'true');
    rest = rest.slice(m[0].length);
  }
  const known = new Set(['from', 'chmod', 'chown', 'link', 'parents', 'exclude']);
  for (const flag of flags.keys()) {
    if (!known.has(flag)) throw new Error(`line ${ins.line}: unknown COPY flag --${flag}`);
  }
  const words = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  if (words.length < 2) throw new Error(`line ${ins.line}: COPY needs a source and a destination`);
  return {
    from: flags.get('from'),
    chmod: flags.get('chmod'),
    chown: flags.get('chown'),
    sources: words.slice(0, -1),
    dest: words.at(-1) as string,
    line: ins.line,
  };
}

/** The exec (JSON array) form of CMD, ENTRYPOINT or HEALTHCHECK CMD; undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  const text = args.trim();
  if (!text.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) return undefined;
  return parsed;
}

/** The last instruction of a keyword in a stage. */
export function last(stage: Stage, keyword: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1);
}

/** Replaces `${NAME}` and `$NAME` by the ARG values given (undefined: left as written). */
export function substitute(text: string, args: ReadonlyMap<string, string | undefined>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const value = args.get((a ?? b) as string);
    return value ?? whole;
  });
}

function splitArg(args: string): [string, string | undefined] {
  const text = args.trim();
  const eq = text.indexOf('=');
  if (eq < 0) return [text, undefined];
  return [text.slice(0, eq), text.slice(eq + 1).replace(/^"(.*)"$/, '$1')];
}

function readInstructions(text: string): Instruction[] {
  const lines = text.split('\n');
  const out: Instruction[] = [];
  let current: { line: number; parts: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '');
    // Comment lines are dropped, also inside a continued instruction (Docker does the same).
    if (/^\s*#/.test(line)) continue;
    // Blank lines are skipped, also inside a continued instruction (Docker warns, and goes on).
    if (line.trim() === '') continue;
    const continued = /\\\s*$/.test(line);
    const body = continued ? line.replace(/\\\s*$/, '') : line;
    if (current) current.parts.push(body.trim());
    else current = { line: i + 1, parts: [body.trim()] };
    if (!continued) {
      const full = current.parts.filter((p) => p !== '').join(' ');
      const m = /^(\w+)\s*(.*)$/s.exec(full);
      if (!m) throw new Error(`line ${current.line}: cannot read "${full}"`);
      out.push({ keyword: (m[1] as string).toUpperCase(), args: m[2] as string, line: current.line });
      current = undefined;
    }
  }
  if (current) throw new Error(`line ${current.line}: the file ends inside a continued instruction`);
  return out;
}
