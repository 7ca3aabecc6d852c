/**
 * The record store: what every bundled backend implements natively, and what core builds the
 * signal API (and every later domain) on.
 *
 * A record is a namespace plus key parts mapped to JSON text and a revision. The revision of a key
 * is a whole number that only grows: every applied write or delete raises it, a delete included,
 * and it survives process and server restarts (under the backend's durable settings). An absent
 * key reports the last revision it had, or the revision floor of its group (the namespace and the
 * first key part), which a delete raises in the same atomic step as it removes the record, so
 * deleted keys leave nothing behind. A backend whose TTL expiry forgets a key's revision declares
 * `ttlResetsRevision`.
 */

/** Identifies one record. Checked by core before any backend call (see `assertRecordKey`). */
export interface RecordKey {
  /** Lower-case letters, digits and `-`, starting with a letter, at most 32 characters: `"signal"`. */
  readonly namespace: string;
  /**
   * One to eight names, each a valid key name (non-empty, at most 255 UTF-8 bytes, no control
   * characters): `[strategyName, symbol]` for signals. The first part groups keys: one Redis
   * Cluster slot, one directory, one revision floor.
   */
  readonly parts: readonly string[];
}

/**
 * When a write or delete applies: `{ revision: R }` only while the stored revision is exactly R
 * (an absent key that never existed has revision 0); `{ below: R }` only while the stored revision is lower
 * than R, and then R becomes the stored revision (the fence of `PersistSignalAdapter`).
 */
export type RecordCondition = { readonly revision: number } | { readonly below: number };

/** Options of {@link RecordStore.write}. */
export interface RecordWriteOptions {
  /** Apply only under this condition. Default: unconditional (the store takes the next revision). */
  readonly condition?: RecordCondition;
  /** The record expires this many milliseconds after the write, by the server's clock. Default: never. */
  readonly ttlMs?: number;
}

/** Options of {@link RecordStore.delete}. */
export interface RecordDeleteOptions {
  /** Apply only under this condition. Default: unconditional. */
  readonly condition?: RecordCondition;
}

/** What a read found: the stored JSON text and its revision, or nothing and the key's last revision. */
export type RecordRead =
  | { readonly found: true; readonly json: string; readonly revision: number }
  | { readonly found: false; readonly revision: number };

/**
 * What a write or delete did. `applied: false` means the condition did not hold and nothing
 * changed; `revision` is the revision stored now (the new one when applied). An unconditional
 * delete of an absent key applies and leaves the revision as it was.
 */
export interface RecordChange {
  readonly applied: boolean;
  readonly revision: number;
}

/** One live key found by {@link RecordStore.list}. */
export interface ListedRecord {
  readonly parts: readonly string[];
  readonly revision: number;
}

/** Options of {@link RecordStore.list}. */
export interface RecordListOptions {
  /** Only keys whose parts start with these. Default: every key of the namespace. */
  readonly prefix?: readonly string[];
  /** The `cursor` of the previous page. Default: the first page. */
  readonly cursor?: string;
  /** At most this many keys in the page (a backend may return fewer). Default: 1000. */
  readonly limit?: number;
}

/** One page of a listing; `cursor` is `undefined` on the last page. Every live key comes exactly once over all pages. */
export interface RecordPage {
  readonly records: readonly ListedRecord[];
  readonly cursor: string | undefined;
}

/** One entry of {@link RecordStore.writeMany}. */
export interface RecordEntry {
  readonly key: RecordKey;
  readonly json: string;
}

/** What a backend promises beyond the interface; the contract suite checks each. */
export interface RecordStoreCapabilities {
  /**
   * `"atomic"`: every entry or none; `"ordered"`: entries land in order, a failure leaves a prefix
   * written; `"none"`: no `writeMany`.
   */
  readonly writeMany: "atomic" | "ordered" | "none";
  /** Records can expire (`ttlMs`). */
  readonly ttl: boolean;
  /** An expired record forgets its revision (the key starts again from its group's floor). */
  readonly ttlResetsRevision: boolean;
  /** An acknowledged change survives the process (memory: false). */
  readonly durable: boolean;
}

/**
 * A durable store of records with revisions. Bundled backends implement it on top of core's
 * `BaseRecordStore`, which validates keys, values and options before any I/O, tracks operations
 * for `close()` and wraps driver errors, so a backend only moves bytes and answers conditions.
 */
export interface RecordStore {
  /** Short backend name used in errors, for example `"redis"`. */
  readonly name: string;
  readonly capabilities: RecordStoreCapabilities;
  read(key: RecordKey): Promise<RecordRead>;
  write(key: RecordKey, json: string, options?: RecordWriteOptions): Promise<RecordChange>;
  delete(key: RecordKey, options?: RecordDeleteOptions): Promise<RecordChange>;
  list(namespace: string, options?: RecordListOptions): Promise<RecordPage>;
  /** Writes the entries unconditionally, as `capabilities.writeMany` declares; absent when it is `"none"`. */
  writeMany?(entries: readonly RecordEntry[], options?: { readonly ttlMs?: number }): Promise<void>;
  /** Resolves when the store answers; rejects with a backend error otherwise. */
  ping(): Promise<void>;
  /** Waits for running operations, then releases what the store opened; later calls reject with `BackendClosedError`. */
  close(): Promise<void>;
}

/**
 * The highest R a condition takes (2^52). Each change adds one to a revision, so stored revisions
 * stay far below 2^53 and every store, JavaScript and SQL alike, keeps them exact.
 */
export const MAX_REVISION = 2 ** 52;

/**
 * Whether `condition` holds for a key whose revision is `current`, and the revision a change
 * stores when it does: the next one, or R for `{ below: R }`.
 * Used by backends that decide conditions in JavaScript (memory, file); server-side ones apply the
 * same rule in their own language.
 */
export function decideCondition(
  current: number,
  condition: RecordCondition | undefined,
): { applies: boolean; next: number } {
  if (condition === undefined) return { applies: true, next: current + 1 };
  if ("below" in condition) return { applies: current < condition.below, next: condition.below };
  return { applies: current === condition.revision, next: current + 1 };
}
