import { LiveLensError } from '@livelens/runtime';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BatchOutcome, MicroBatcher } from './batcher.js';

/** A batch function that records its batches and answers when told to (or at once). */
function recorder<O>(answer: (items: readonly number[]) => readonly BatchOutcome<O>[]) {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  let gated = false;
  return {
    batches,
    /** From now on each batch waits for `release()`. */
    gate() {
      gated = true;
    },
    release() {
      gates.shift()?.();
    },
    run: async (items: readonly number[]) => {
      batches.push([...items]);
      if (gated) await new Promise<void>((resolve) => gates.push(resolve));
      return answer(items);
    },
  };
}

/** The outcome of a submit, for assertions on successes and failures alike. */
const settle = async <T>(promise: Promise<T>): Promise<{ value?: T; error?: LiveLensError }> =>
  promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: error as LiveLensError }),
  );

describe('MicroBatcher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs a batch as soon as maxBatchSize items wait, without waiting for the timer', async () => {
    const fn = recorder((items) => items.map((i) => i * 10));
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 3, maxWaitMs: 1_000 });
    const results = [1, 2, 3].map((i) => batcher.submit(i));
    expect(fn.batches).toEqual([[1, 2, 3]]);
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
    expect(batcher.queueDepth).toBe(0);
  });

  it('runs a partial batch maxWaitMs after its first item was queued', async () => {
    const fn = recorder((items) => items.map((i) => `#${i}`));
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 8, maxWaitMs: 50 });
    const a = batcher.submit(1);
    await vi.advanceTimersByTimeAsync(30);
    const b = batcher.submit(2); // joins the batch: the deadline is the first item's
    await vi.advanceTimersByTimeAsync(19);
    expect(fn.batches).toEqual([]);
    expect(batcher.queueDepth).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(fn.batches).toEqual([[1, 2]]);
    expect(await Promise.all([a, b])).toEqual(['#1', '#2']);
  });

  it('runs one batch at a time; the next fills meanwhile and runs when the first is done', async () => {
    const fn = recorder((items) => items.map((i) => i));
    fn.gate();
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 2, maxWaitMs: 10 });
    const first = [1, 2].map((i) => batcher.submit(i));
    expect(batcher.running).toBe(2);
    const next = [3, 4, 5].map((i) => batcher.submit(i));
    await vi.advanceTimersByTimeAsync(100); // long past the wait: still one batch at a time
    expect(fn.batches).toEqual([[1, 2]]);
    expect(batcher.queueDepth).toBe(3);
    fn.release();
    expect(await Promise.all(first)).toEqual([1, 2]);
    // [3, 4] was full and overdue: it started right after the first batch, without a new wait.
    expect(fn.batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    fn.release();
    await vi.advanceTimersByTimeAsync(0);
    // 5 has waited longer than maxWaitMs already: it goes at once, alone.
    expect(fn.batches.at(-1)).toEqual([5]);
    fn.release();
    expect(await Promise.all(next)).toEqual([3, 4, 5]);
  });

  it('gives each caller its own output, in submission order, across batches of any size', async () => {
    // The batch function answers in its input order; callers must get theirs whatever the interleaving.
    const fn = recorder((items) => items.map((i) => ({ squared: i * i })));
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 4, maxWaitMs: 5 });
    const submitted = Array.from({ length: 11 }, (_, i) => i);
    const results = submitted.map((i) => batcher.submit(i));
    await vi.advanceTimersByTimeAsync(10);
    expect((await Promise.all(results)).map((r) => r.squared)).toEqual(submitted.map((i) => i * i));
    expect(fn.batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10],
    ]);
  });

  it('fails only the items whose outcome is an Error; the others get their outputs', async () => {
    const fn = recorder((items) =>
      items.map((i) =>
        i === 2 ? new LiveLensError(`item ${i} is bad`, { code: 'invalid_argument' }) : `ok ${i}`,
      ),
    );
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 3, maxWaitMs: 5 });
    const [a, b, c] = await Promise.all([1, 2, 3].map((i) => settle(batcher.submit(i))));
    expect(a).toEqual({ value: 'ok 1' });
    expect(b?.error).toBeInstanceOf(LiveLensError);
    expect(b?.error?.code).toBe('invalid_argument');
    expect(b?.error?.message).toBe('item 2 is bad');
    expect(c).toEqual({ value: 'ok 3' });
  });

  it('fails every item of a batch whose function throws, then goes on with the next batch', async () => {
    let calls = 0;
    const batcher = new MicroBatcher<number, number>({
      name: 'test',
      maxBatchSize: 2,
      maxWaitMs: 5,
      run: async (items) => {
        calls += 1;
        if (calls === 1) throw new LiveLensError('worker died', { code: 'unavailable' });
        return items.map((i) => i + 100);
      },
    });
    const failed = await Promise.all([1, 2].map((i) => settle(batcher.submit(i))));
    expect(failed.map((r) => r.error?.code)).toEqual(['unavailable', 'unavailable']);
    expect(failed.every((r) => r.error?.retriable)).toBe(true);
    expect(await Promise.all([3, 4].map((i) => batcher.submit(i)))).toEqual([103, 104]);
  });

  it('fails the batch when the function returns the wrong number of outcomes (a bug, not a result)', async () => {
    const batcher = new MicroBatcher<number, number>({
      name: 'test',
      maxBatchSize: 2,
      run: async () => [1],
    });
    const results = await Promise.all([1, 2].map((i) => settle(batcher.submit(i))));
    expect(results.map((r) => r.error?.code)).toEqual(['internal', 'internal']);
    expect(results[0]?.error?.message).toMatch(/1 outcomes for 2 items/);
  });

  it('bounds the queue: past maxQueued waiting items, submit rejects with retriable resource_exhausted', async () => {
    const fn = recorder((items) => items.map((i) => i));
    fn.gate();
    const batcher = new MicroBatcher({
      name: 'frames',
      run: fn.run,
      maxBatchSize: 2,
      maxWaitMs: 5,
      maxQueued: 3,
    });
    const running = [1, 2].map((i) => batcher.submit(i)); // the running batch does not count
    const waiting = [3, 4, 5].map((i) => batcher.submit(i));
    expect(batcher.queueDepth).toBe(3);
    const refused = await settle(batcher.submit(6));
    expect(refused.error).toBeInstanceOf(LiveLensError);
    expect(refused.error?.code).toBe('resource_exhausted');
    expect(refused.error?.retriable).toBe(true);
    expect(refused.error?.message).toMatch(/^frames: 3 items already wait/);
    fn.release();
    await Promise.all(running);
    // Room again once a batch has left the queue.
    expect(batcher.queueDepth).toBe(1);
    const accepted = batcher.submit(7);
    fn.release();
    fn.release();
    await vi.advanceTimersByTimeAsync(10);
    fn.release();
    expect(await Promise.all([...waiting, accepted])).toEqual([3, 4, 5, 7]);
  });

  it('close() rejects the waiting items (cancelled, retriable), lets the running batch finish, refuses new ones', async () => {
    const fn = recorder((items) => items.map((i) => i));
    fn.gate();
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 2, maxWaitMs: 5 });
    const running = [1, 2].map((i) => settle(batcher.submit(i)));
    const waiting = [3].map((i) => settle(batcher.submit(i)));
    const closed = batcher.close();
    const [three] = await Promise.all(waiting);
    expect(three?.error?.code).toBe('cancelled');
    expect(three?.error?.retriable).toBe(true);
    let closedYet = false;
    void closed.then(() => {
      closedYet = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(closedYet).toBe(false); // the running batch is not done
    fn.release();
    await closed;
    expect(await Promise.all(running)).toEqual([{ value: 1 }, { value: 2 }]);
    const late = await settle(batcher.submit(4));
    expect(late.error?.code).toBe('cancelled');
    expect(fn.batches).toEqual([[1, 2]]);
  });

  it('with maxWaitMs 0, an item submitted while idle runs alone at once', async () => {
    const fn = recorder((items) => items.map((i) => i));
    const batcher = new MicroBatcher({ name: 'test', run: fn.run, maxBatchSize: 8, maxWaitMs: 0 });
    const result = batcher.submit(1);
    expect(fn.batches).toEqual([[1]]);
    expect(await result).toBe(1);
  });

  it('refuses settings that cannot work', () => {
    const run = async () => [];
    expect(() => new MicroBatcher({ name: 'x', run, maxBatchSize: 0 })).toThrow(/maxBatchSize/);
    expect(() => new MicroBatcher({ name: 'x', run, maxQueued: 1.5 })).toThrow(/maxQueued/);
    expect(() => new MicroBatcher({ name: 'x', run, maxWaitMs: -1 })).toThrow(/maxWaitMs/);
  });
});

describe('MicroBatcher on the real clock', () => {
  it('flushes a partial batch after about maxWaitMs', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      name: 'test',
      maxBatchSize: 100,
      maxWaitMs: 30,
      run: async (items) => {
        batches.push([...items]);
        return items;
      },
    });
    const started = performance.now();
    const results = await Promise.all([1, 2, 3].map((i) => batcher.submit(i)));
    const waited = performance.now() - started;
    expect(results).toEqual([1, 2, 3]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(waited).toBeGreaterThanOrEqual(28);
    expect(waited).toBeLessThan(500);
  });
});
