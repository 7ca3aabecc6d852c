import { count } from "./format.js";
import type { CliIo } from "./io.js";

/**
 * Counts and rate on standard error: a bar redrawn in place on a terminal, a plain line every
 * `every` items (and at the end) otherwise, so a log shows how far a run got.
 */
export class Progress {
  readonly #io: CliIo;
  readonly #label: string;
  readonly #total: number;
  readonly #every: number;
  readonly #started = performance.now();
  #done = 0;
  #lastDrawn = 0;

  constructor(io: CliIo, label: string, total: number, every = 1000) {
    this.#io = io;
    this.#label = label;
    this.#total = total;
    this.#every = every;
  }

  step(): void {
    this.#done++;
    if (this.#io.interactive) {
      const now = performance.now();
      if (now - this.#lastDrawn > 100 || this.#done === this.#total) {
        this.#lastDrawn = now;
        this.#io.stderr.write(`\r${this.#text(true)}`);
      }
    } else if (this.#done % this.#every === 0) {
      this.#io.stderr.write(`${this.#text(false)}\n`);
    }
  }

  end(): void {
    if (this.#io.interactive) this.#io.stderr.write(`\r${this.#text(true)}\n`);
    else if (this.#done % this.#every !== 0 || this.#done === 0) this.#io.stderr.write(`${this.#text(false)}\n`);
  }

  #text(bar: boolean): string {
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? Math.round(this.#done / seconds) : 0;
    const counts = `${count(this.#done)}/${count(this.#total)} ${this.#label}, ${count(rate)}/s`;
    if (!bar) return counts;
    const width = 30;
    const filled = this.#total === 0 ? width : Math.round((this.#done / this.#total) * width);
    return `[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${counts}`;
  }
}
