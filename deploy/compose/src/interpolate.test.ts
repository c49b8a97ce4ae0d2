// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are Compose's ${VAR} syntax, not templates
import { describe, expect, it } from 'vitest';
import { interpolate, interpolateString, variablesOf } from './interpolate.js';

describe('compose interpolation', () => {
  it('substitutes $VAR and ${VAR}, with defaults for unset (-) or unset-or-empty (:-) variables', () => {
    const env = { A: 'a', EMPTY: '' };
    expect(interpolateString('$A-${A}', env)).toBe('a-a');
    expect(interpolateString('${B:-dflt}', env)).toBe('dflt');
    expect(interpolateString('${EMPTY:-dflt}', env)).toBe('dflt');
    expect(interpolateString('${EMPTY-dflt}', env)).toBe('');
    expect(interpolateString('${B:-${A}x}', env)).toBe('ax');
    expect(interpolateString('${A:+set}${B:+set}', env)).toBe('set');
    expect(interpolateString('cost $$5', env)).toBe('cost $5');
  });

  it('fails on a required variable that is missing, and on a bare $ before a non-name', () => {
    expect(() => interpolateString('${B:?give B}', {})).toThrow('required variable B is missing: give B');
    expect(() => interpolateString('50$ off', {})).toThrow(/use \$\$ for a literal \$/);
  });

  it('interpolates values, not keys, through maps and lists; lists the variables used', () => {
    const doc = { $A: ['${A}', { k: '${B:-b}' }], n: 1 };
    expect(interpolate(doc, { A: 'x' })).toEqual({ $A: ['x', { k: 'b' }], n: 1 });
    expect([...variablesOf(doc)].sort()).toEqual(['A', 'B']);
  });
});
