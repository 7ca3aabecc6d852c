import type {
  RecordChange,
  RecordDeleteOptions,
  RecordKey,
  RecordListOptions,
  RecordPage,
  RecordRead,
  RecordStore,
  RecordWriteOptions,
} from "@persist-kit/core";

/**
 * A record store in front of another that holds calls back, to play a paused process or a server
 * that keeps a command and applies it late: after `hold()` no call reaches the inner store until
 * `resume()`; `holdNext(namespace)` holds only the next write or delete of that namespace.
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

  constructor(inner: RecordStore) {
    this.inner = inner;
  }
  get name(): string {
    return this.inner.name;
  }
  get capabilities(): RecordStore["capabilities"] {
    return this.inner.capabilities;
  }
  /** Holds every later call. */
  hold(): void {
    this.#holdAll = true;
  }
  /** Holds the next write or delete of `namespace`. */
  holdNext(namespace: string): void {
    this.#holdNext = namespace;
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
    return new Promise<void>((go) => this.#held.push(go)).then(run);
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
