import type {
  RecordChange,
  RecordDeleteOptions,
  RecordKey,
  RecordListOptions,
  RecordPage,
  RecordRead,
  RecordStore,
  RecordWriteOptions,
} from "./record-store.js";

/**
 * For tests of what a backend does under faults. A record store in front of another that holds calls back, to play a paused process or a server
 * that keeps a command and applies it late: after `hold()` no call reaches the inner store until
 * `resume()`; `holdNext(namespace)` holds only the next write or delete of that namespace. With
 * `failAfterMs` a held call also rejects after that long, the way a driver's timeout gives up on a
 * command the server still applies later (at `resume()`).
 *
 * @example
 * const held = new HoldingRecordStore(persist.records);
 * const adapter = new PersistSignalAdapter(new RecordSignalStore(held), { timeoutMs: 100 });
 * held.holdNext("signal"); // the next change is kept back until held.resume()
 */
export class HoldingRecordStore implements RecordStore {
  readonly inner: RecordStore;
  #held: Array<() => void> = [];
  #holdAll = false;
  #holdNext: string | undefined;
  #failAfterMs: number | undefined;

  constructor(inner: RecordStore) {
    this.inner = inner;
  }
  get name(): string {
    return this.inner.name;
  }
  get capabilities(): RecordStore["capabilities"] {
    return this.inner.capabilities;
  }
  /** Holds every later call; with `failAfterMs`, each also rejects after that long. */
  hold(options: { failAfterMs?: number } = {}): void {
    this.#holdAll = true;
    this.#failAfterMs = options.failAfterMs;
  }
  /** Holds the next write or delete of `namespace`; with `failAfterMs`, it also rejects after that long. */
  holdNext(namespace: string, options: { failAfterMs?: number } = {}): void {
    this.#holdNext = namespace;
    this.#failAfterMs = options.failAfterMs;
  }
  /** Lets every held call through, in the order they were made, and stops holding. */
  resume(): void {
    this.#holdAll = false;
    for (const go of this.#held.splice(0)) go();
  }
  /** How many calls are held now. */
  get heldCount(): number {
    return this.#held.length;
  }

  #gate<T>(namespace: string, change: boolean, run: () => Promise<T>): Promise<T> {
    const holdNext = change && this.#holdNext === namespace;
    if (holdNext) this.#holdNext = undefined;
    if (!this.#holdAll && !holdNext) return run();
    const applied = new Promise<void>((go) => this.#held.push(go)).then(run);
    const failAfterMs = this.#failAfterMs;
    if (failAfterMs === undefined) return applied;
    // The caller hears of a timeout; the call itself still lands at resume().
    applied.catch(() => {});
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`held call timed out after ${failAfterMs} ms`)), failAfterMs);
      applied.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
  read(key: RecordKey): Promise<RecordRead> {
    return this.#gate(key.namespace, false, () => this.inner.read(key));
  }
  write(key: RecordKey, json: string, options?: RecordWriteOptions): Promise<RecordChange> {
    return this.#gate(key.namespace, true, () => this.inner.write(key, json, options));
  }
  delete(key: RecordKey, options?: RecordDeleteOptions): Promise<RecordChange> {
    return this.#gate(key.namespace, true, () => this.inner.delete(key, options));
  }
  list(namespace: string, options?: RecordListOptions): Promise<RecordPage> {
    return this.#gate(namespace, false, () => this.inner.list(namespace, options));
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  /** Closing the view leaves the inner store open: it belongs to whoever made it. */
  async close(): Promise<void> {}
}
