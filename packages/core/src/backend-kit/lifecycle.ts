import { BackendClosedError, type PersistErrorContext } from "../errors.js";

/**
 * The life of a backend: operations run only while it is open, each counted until it settles, and
 * `close()` waits for every one of them before it releases anything. One instance per backend.
 */
export class Lifecycle {
  #active = 0;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Throws {@link BackendClosedError} once the backend is closed. */
  assertOpen(context: PersistErrorContext): void {
    if (this.#closing !== undefined) throw new BackendClosedError("the backend is closed", context);
  }

  /**
   * Runs `operation` unless the backend is closed (then rejects with {@link BackendClosedError},
   * nothing sent), and counts it until it settles.
   */
  run<T>(context: PersistErrorContext, operation: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new BackendClosedError("the backend is closed", context));
    }
    let started: Promise<T>;
    try {
      started = operation();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#active++;
    // One reaction for both outcomes: each extra promise is a visible share of a local round trip.
    return started.then(
      (value) => {
        this.#settled();
        return value;
      },
      (error: unknown) => {
        this.#settled();
        throw error;
      },
    );
  }

  /** Waits for running operations, then runs `release` once; later calls return the same promise. */
  close(release: () => Promise<void>): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      await release();
    })();
    return this.#closing;
  }

  #settled(): void {
    this.#active--;
    if (this.#active === 0) this.#idle?.();
  }
}
