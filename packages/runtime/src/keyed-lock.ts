/**
 * Runs `fn`s one at a time per key, in call order: per-stream work that must not interleave (a consumer
 * record and a timer's flush of the same stream, or two records of a stream from different topics).
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #waiting = new Map<string, number>();

  /** Calls waiting for `key` (not counting the one running). */
  waiting(key: string): number {
    return this.#waiting.get(key) ?? 0;
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    this.#waiting.set(key, this.waiting(key) + 1);
    try {
      await previous;
    } finally {
      const left = this.waiting(key) - 1;
      if (left > 0) this.#waiting.set(key, left);
      else this.#waiting.delete(key);
    }
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
