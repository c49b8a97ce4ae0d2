// Scanning TypeScript source as text, for the deploy checks that hold manifests, dashboards and alert rules to
// what the services declare (metric names, config fields, consumer groups): brackets, strings and comments.

/** Each opening bracket's closing one. */
export const BRACKETS: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}' };

/** Skips a string or template literal starting at `i` (its opening quote); returns the index after it. */
export function skipString(src: string, i: number): number {
  const quote = src[i];
  let j = i + 1;
  while (j < src.length) {
    const c = src[j];
    if (c === '\\') j += 2;
    else if (c === quote) return j + 1;
    else if (quote === '`' && c === '$' && src[j + 1] === '{') j = skipBalanced(src, j + 1);
    else j += 1;
  }
  throw new Error(`unterminated string at offset ${i}`);
}

/** Skips a comment starting at `i` when there is one; returns the index after it (or `i`). */
export function skipComment(src: string, i: number): number {
  if (src[i] !== '/') return i;
  if (src[i + 1] === '/') {
    const end = src.indexOf('\n', i);
    return end < 0 ? src.length : end + 1;
  }
  if (src[i + 1] === '*') {
    const end = src.indexOf('*/', i + 2);
    if (end < 0) throw new Error(`unterminated comment at offset ${i}`);
    return end + 2;
  }
  return i;
}

/** From an opening bracket at `i`, the index after its matching closing bracket (strings and comments skipped). */
export function skipBalanced(src: string, i: number): number {
  const stack: string[] = [];
  let j = i;
  while (j < src.length) {
    const c = src[j] as string;
    if (c === "'" || c === '"' || c === '`') {
      j = skipString(src, j);
      continue;
    }
    const afterComment = skipComment(src, j);
    if (afterComment !== j) {
      j = afterComment;
      continue;
    }
    if (BRACKETS[c]) stack.push(BRACKETS[c]);
    else if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== c) throw new Error(`unbalanced '${c}' at offset ${j}`);
      if (stack.length === 0) return j + 1;
    }
    j += 1;
  }
  throw new Error(`unclosed bracket at offset ${i}`);
}
