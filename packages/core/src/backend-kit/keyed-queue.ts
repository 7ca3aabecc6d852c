/**
 * Runs operations on one key one at a time, in call order, whatever order the store would
 * complete them in; different keys run in parallel. Holds nothing for a key with nothing pending.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `operation` after every earlier operation on `id` has settled. */
  run<T>(id: string, operation: () => Promise<T>): Promise<T> {
    return this.runAll([id], operation);
  }

  /** Runs `operation` after every earlier operation on each of `ids` has settled. */
  runAll<T>(ids: readonly string[], operation: () => Promise<T>): Promise<T> {
    const earlier: Promise<unknown>[] = [];
    for (const id of ids) {
      const tail = this.#tails.get(id);
      if (tail !== undefined) earlier.push(tail);
    }
    // Nothing pending: start at once, with no promise in between.
    const result = earlier.length === 0 ? startNow(operation) : Promise.allSettled(earlier).then(operation);
    const settled = result.then(
      () => {},
      () => {},
    );
    for (const id of ids) this.#tails.set(id, settled);
    settled.then(() => {
      for (const id of ids) if (this.#tails.get(id) === settled) this.#tails.delete(id);
    });
    return result;
  }

  /** Resolves once every operation queued so far has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#tails.values()]);
  }
}

function startNow<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return operation();
  } catch (error) {
    return Promise.reject(error);
  }
}
