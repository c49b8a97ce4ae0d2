// Progress for long steps (broker install, model download and conversion, clip generation): a bar redrawn in
// place on a terminal; on a pipe or in CI, a plain line per change and one every 15 s, so logs stay readable.

export interface ProgressOptions {
  readonly stream?: NodeJS.WriteStream;
  /** Steps in all; undefined = an indeterminate step (elapsed time and a detail instead of a bar). */
  readonly total?: number;
  readonly width?: number;
}

export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #total: number | undefined;
  readonly #width: number;
  readonly #label: string;
  readonly #started = Date.now();
  #done = 0;
  #detail = '';
  #timer: NodeJS.Timeout | undefined;
  #lastPlain = 0;
  #finished = false;

  constructor(label: string, options: ProgressOptions = {}) {
    this.#label = label;
    this.#stream = options.stream ?? process.stderr;
    this.#tty = Boolean(this.#stream.isTTY) && process.env.CI !== 'true';
    this.#total = options.total;
    this.#width = options.width ?? 24;
    // The elapsed time moves even when no step completes (a long conversion).
    this.#timer = setInterval(() => this.#render(false), this.#tty ? 250 : 15_000);
    this.#timer.unref();
    this.#render(true);
  }

  /** Sets what is happening now, e.g. the model being fetched. */
  detail(text: string): void {
    this.#detail = text;
    this.#render(true);
  }

  /** One step done (or set the count). */
  tick(done = this.#done + 1, detail?: string): void {
    this.#done = done;
    if (detail !== undefined) this.#detail = detail;
    this.#render(true);
  }

  /** Ends the bar with a final line. */
  finish(message: string): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    const line = `${this.#label}: ${message} (${this.#elapsed()})`;
    this.#stream.write(this.#tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  #elapsed(): string {
    return `${((Date.now() - this.#started) / 1000).toFixed(0)} s`;
  }

  #line(): string {
    const elapsed = this.#elapsed();
    if (this.#total === undefined) {
      const spinner = '|/-\\'[Math.floor((Date.now() - this.#started) / 250) % 4];
      return `${this.#label} ${this.#tty ? spinner : ''} ${elapsed}${this.#detail ? `  ${this.#detail}` : ''}`;
    }
    const fraction = this.#total === 0 ? 1 : Math.min(1, this.#done / this.#total);
    const filled = Math.round(fraction * this.#width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(this.#width - filled)}]`;
    return `${this.#label} ${bar} ${this.#done}/${this.#total}  ${elapsed}${this.#detail ? `  ${this.#detail}` : ''}`;
  }

  #render(changed: boolean): void {
    if (this.#finished) return;
    if (this.#tty) {
      const columns = this.#stream.columns ?? 100;
      this.#stream.write(`\r\x1b[2K${this.#line().slice(0, columns - 1)}`);
      return;
    }
    if (changed || Date.now() - this.#lastPlain >= 15_000) {
      this.#lastPlain = Date.now();
      this.#stream.write(`${this.#line()}\n`);
    }
  }
}
