/**
 * A value made once on first use and shared by every caller (a connection, a created table, a
 * swept directory). A failed attempt is forgotten, so the next caller tries again.
 */
export class RetryingOnce<T> {
  readonly #make: () => Promise<T>;
  #pending: Promise<T> | undefined;
  #done = false;
  #value: T | undefined;

  constructor(make: () => Promise<T>) {
    this.#make = make;
  }

  /** True once an attempt succeeded (until {@link RetryingOnce.reset}). */
  get done(): boolean {
    return this.#done;
  }

  /** The value of the attempt that succeeded, if one did. */
  get value(): T | undefined {
    return this.#value;
  }

  /** The shared attempt, started when none is running or succeeded. */
  get(): Promise<T> {
    if (this.#pending === undefined) {
      const pending = Promise.resolve().then(this.#make);
      this.#pending = pending;
      pending.then(
        (value) => {
          if (this.#pending !== pending) return;
          this.#done = true;
          this.#value = value;
        },
        () => {
          if (this.#pending === pending) this.#pending = undefined;
        },
      );
    }
    return this.#pending;
  }

  /** Forgets the value, so the next `get()` makes it again (the server came back changed, say). */
  reset(): void {
    this.#pending = undefined;
    this.#done = false;
    this.#value = undefined;
  }
}
