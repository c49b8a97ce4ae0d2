// Loads a taxonomy file: YAML → document → schema (schema.ts) → compiled Taxonomy. Every problem is reported at
// once, each as `path: message (line L, col C)`, in one LiveLensError with code `invalid_config`.

import { readFile } from 'node:fs/promises';
import { LiveLensError } from '@livelens/runtime';
import { type Document, isNode, LineCounter, parseDocument } from 'yaml';
import { normalizeText, tokenize } from '../text/index.js';
import { formatPath, type Taxonomy, type TaxonomyIssue, validateTaxonomy } from './schema.js';

/**
 * The taxonomy shipped with the service: `services/fusion/taxonomy/livecommerce.yaml`, found relative to this
 * module (src/taxonomy/load.ts and dist/taxonomy/load.js are both two levels below the package root).
 */
export const DEFAULT_TAXONOMY_PATH: URL = new URL('../../taxonomy/livecommerce.yaml', import.meta.url);

/** Issues listed in one error message; the rest are counted. */
const MAX_LISTED_ISSUES = 25;

/** Reads and parses a taxonomy file. Throws LiveLensError `invalid_config` if it cannot be read or is invalid. */
export async function loadTaxonomy(path: string | URL = DEFAULT_TAXONOMY_PATH): Promise<Taxonomy> {
  const source = path instanceof URL ? path.pathname : path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new LiveLensError(`cannot read taxonomy ${source}: ${(error as Error).message}`, {
      code: 'invalid_config',
      cause: error,
      context: { source },
    });
  }
  return parseTaxonomy(text, source);
}

/**
 * Parses taxonomy YAML. `source` names the text in errors (a file path). YAML syntax errors are reported with
 * line and column; schema problems with their path into the document and their line.
 */
export function parseTaxonomy(yamlText: string, source = '<taxonomy>'): Taxonomy {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((error) => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return `YAML syntax error at line ${line}, col ${col}: ${firstLine(error.message)}`;
    });
    throw invalid(source, lines);
  }

  const document: unknown = doc.toJS({ maxAliasCount: 100 });
  const result = validateTaxonomy(document);
  const issues = result.ok ? [] : [...result.issues];
  // Phrases are matched as token sequences, so one that normalises to no tokens ("!!!") would match nothing
  // (or, worse, everywhere); the schema cannot see that, the text layer can.
  issues.push(...emptyPhraseIssues(document));
  if (issues.length > 0 || !result.ok) {
    throw invalid(
      source,
      issues.map(
        (issue) => `${formatPath(issue.path)}: ${issue.message}${where(doc, lineCounter, issue.path)}`,
      ),
    );
  }
  return result.taxonomy;
}

function invalid(source: string, lines: readonly string[]): LiveLensError {
  const listed = lines.slice(0, MAX_LISTED_ISSUES);
  const more = lines.length > listed.length ? `\n  … and ${lines.length - listed.length} more` : '';
  const message =
    lines.length === 1
      ? `invalid taxonomy ${source}: ${lines[0]}`
      : `invalid taxonomy ${source}: ${lines.length} problems:\n  ${listed.join('\n  ')}${more}`;
  return new LiveLensError(message, { code: 'invalid_config', context: { source, problems: lines.length } });
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/** ` (line L, col C)` of the deepest node on `path` that exists in the document, or ''. */
function where(doc: Document, lineCounter: LineCounter, path: readonly PropertyKey[]): string {
  for (let length = path.length; length > 0; length--) {
    const node = doc.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) {
      const { line, col } = lineCounter.linePos(node.range[0]);
      return ` (line ${line}, col ${col})`;
    }
  }
  return '';
}

/** Phrases (cues and `text.any`) that normalise to no tokens, wherever they are in the raw document. */
function emptyPhraseIssues(document: unknown): TaxonomyIssue[] {
  const issues: TaxonomyIssue[] = [];
  const check = (value: unknown, path: PropertyKey[]) => {
    if (typeof value === 'string' && value.trim() !== '' && tokenize(normalizeText(value)).length === 0) {
      issues.push({ path, message: `phrase ${JSON.stringify(value)} has no words once normalised` });
    }
  };
  const walk = (node: unknown, path: PropertyKey[]) => {
    if (Array.isArray(node)) {
      node.forEach((item, index) => {
        walk(item, [...path, index]);
      });
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      const here = [...path, key];
      const isPhraseList =
        (key === 'any' && path.at(-1) === 'text') ||
        (path.length === 3 && path[2] === 'cues' && path[0] === 'tags');
      if (isPhraseList && Array.isArray(value)) {
        value.forEach((item, index) => {
          check(item, [...here, index]);
        });
      } else {
        walk(value, here);
      }
    }
  };
  walk(document, []);
  return issues;
}
