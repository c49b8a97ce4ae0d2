import { describe, expect, it } from 'vitest';
import { KeyedLock } from './keyed-lock.js';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('KeyedLock', () => {
  it('runs the calls of one key one at a time in call order, other keys alongside, and survives a throw', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (key: string, name: string, ms: number, fail = false) =>
      lock.run(key, async () => {
        log.push(`${name} start`);
        await tick(ms);
        log.push(`${name} end`);
        if (fail) throw new Error(name);
        return name;
      });
    const a1 = job('a', 'a1', 20, true);
    const a2 = job('a', 'a2', 1);
    const b1 = job('b', 'b1', 5);
    await tick(1);
    expect(lock.waiting('a')).toBe(1); // a1 runs, a2 waits
    await expect(a1).rejects.toThrow('a1');
    expect(await a2).toBe('a2');
    expect(await b1).toBe('b1');
    // b1 ran while a1 held "a"; a2 started only after a1 ended.
    expect(log.indexOf('b1 end')).toBeLessThan(log.indexOf('a1 end'));
    expect(log.indexOf('a2 start')).toBeGreaterThan(log.indexOf('a1 end'));
    expect(lock.waiting('a')).toBe(0);
  });
});
