import { CHECKED_DELETE, CHECKED_READ, CHECKED_WRITE } from "../backend-kit/base-record-store.js";
import { CorruptDataError, errorMessage, PersistError, type PersistErrorContext } from "../errors.js";
import { assertSignalKey, type SignalKey } from "../signals/key.js";
import type { PersistBase, PersistOptions, SignalEntry } from "../signals/persist-base.js";
import { type ISignalRow, parseSignalRow, signalRowText } from "../signals/row.js";
import { assertTtl } from "../ttl.js";
import { assertRecordCondition } from "./record-key.js";
import type { RecordChange, RecordCondition, RecordKey, RecordRead, RecordStore } from "./record-store.js";

/**
 * The conditional write of JSON text `PersistSignalAdapter` has already checked with
 * `signalRowText`: the same path as `writeSignalIf` without checking the row twice.
 * @internal
 */
export const WRITE_CHECKED_SIGNAL: unique symbol = Symbol.for("persist-kit.signal-store.write-checked") as never;

/** The namespace of open signals in every record store. */
export const SIGNAL_NAMESPACE = "signal";

/** The record key of one open signal: namespace `"signal"`, parts `[strategyName, symbol]`. */
export function signalRecordKey(symbol: string, strategyName: string): RecordKey {
  return { namespace: SIGNAL_NAMESPACE, parts: [strategyName, symbol] };
}

/**
 * The seed's signal API ({@link PersistBase}) on any {@link RecordStore}, once for every backend:
 * keys and rows are checked before any I/O, rows are stored as JSON text in the `"signal"`
 * namespace and checked again when read (a row that fails is a `CorruptDataError` naming the key,
 * never a silent `null`), and `ttlMs` applies to every write. Every bundled backend class
 * (`PersistFile`, `PersistRedis`, ...) is one of these over its own record store, reachable as
 * `records`.
 *
 * @example
 * const persist = new RecordSignalStore(new MemoryRecordStore());
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 */
export class RecordSignalStore<S extends RecordStore = RecordStore> implements PersistBase {
  readonly name: string;
  /** The record store below: revisions, conditions, other namespaces. */
  readonly records: S;
  /**
   * Writes every entry as the record store declares (`records.capabilities.writeMany`): all or
   * none when `"atomic"`, in order when `"ordered"`; `undefined` when the store has no writeMany.
   */
  readonly writeMany: ((entries: readonly SignalEntry[]) => Promise<void>) | undefined;
  readonly #ttlMs: number | undefined;
  readonly #checked: CheckedRecordStore | undefined;

  constructor(records: S, options: PersistOptions = {}) {
    this.records = records;
    this.#checked = isCheckedRecordStore(records) ? records : undefined;
    this.name = records.name;
    this.#ttlMs = assertTtl(options.ttlMs, records.name);
    this.writeMany = records.capabilities.writeMany === "none" ? undefined : (entries) => this.#writeMany(entries);
  }

  writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = this.#context("write", symbol, strategyName);
    let json: string;
    try {
      assertSignalKey(symbol, strategyName, context);
      json = signalRowText(row, context);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#write(symbol, strategyName, json, undefined, context).then(nothing);
  }

  readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = this.#context("read", symbol, strategyName);
    try {
      assertSignalKey(symbol, strategyName, context);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#read(symbol, strategyName, context).then((stored) =>
      stored.found ? parseSignalRow(stored.json, context) : null,
    );
  }

  deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = this.#context("delete", symbol, strategyName);
    try {
      assertSignalKey(symbol, strategyName, context);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#delete(symbol, strategyName, undefined, context).then(nothing);
  }

  /** The `ttlMs` every write takes, if any. */
  get ttlMs(): number | undefined {
    return this.#ttlMs;
  }

  /** The stored row (or `null`) with the key's revision: what `PersistSignalAdapter` fences on. */
  readSignalRecord(symbol: string, strategyName: string): Promise<SignalRecord> {
    const context = this.#context("read", symbol, strategyName);
    try {
      assertSignalKey(symbol, strategyName, context);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#read(symbol, strategyName, context).then((stored) => ({
      row: stored.found ? parseSignalRow(stored.json, context) : null,
      revision: stored.revision,
    }));
  }

  /** Stores `row` only under `condition` (see {@link RecordCondition}); answers what the store did. */
  writeSignalIf(
    symbol: string,
    strategyName: string,
    row: ISignalRow,
    condition: RecordCondition,
  ): Promise<RecordChange> {
    const context = this.#context("write", symbol, strategyName);
    let json: string;
    try {
      assertSignalKey(symbol, strategyName, context);
      assertRecordCondition(condition, context);
      json = signalRowText(row, context);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#write(symbol, strategyName, json, condition, context);
  }

  /** @internal */
  [WRITE_CHECKED_SIGNAL](
    symbol: string,
    strategyName: string,
    json: string,
    condition: RecordCondition,
  ): Promise<RecordChange> {
    return this.#write(symbol, strategyName, json, condition, this.#context("write", symbol, strategyName));
  }

  // A bundled store takes the key checked here without checking it again.
  #read(symbol: string, strategyName: string, context: PersistErrorContext): Promise<RecordRead> {
    const key = signalRecordKey(symbol, strategyName);
    const read = this.#checked === undefined ? this.records.read(key) : this.#checked[CHECKED_READ](key, context);
    return read.catch(foreignError(context));
  }

  #delete(
    symbol: string,
    strategyName: string,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    const key = signalRecordKey(symbol, strategyName);
    const change =
      this.#checked === undefined
        ? this.records.delete(key, condition === undefined ? {} : { condition })
        : this.#checked[CHECKED_DELETE](key, context, condition);
    return change.catch(foreignError(context));
  }

  // A bundled store takes the key and text checked here without checking them again.
  #write(
    symbol: string,
    strategyName: string,
    json: string,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    const key = signalRecordKey(symbol, strategyName);
    const change =
      this.#checked === undefined
        ? this.records.write(
            key,
            json,
            condition === undefined ? this.#writeOptions() : { ...this.#writeOptions(), condition },
          )
        : this.#checked[CHECKED_WRITE](key, json, this.#ttlMs, context, condition);
    return change.catch(foreignError(context));
  }

  /** Removes the row only under `condition`; answers what the store did. */
  deleteSignalIf(symbol: string, strategyName: string, condition: RecordCondition): Promise<RecordChange> {
    const context = this.#context("delete", symbol, strategyName);
    try {
      assertSignalKey(symbol, strategyName, context);
      assertRecordCondition(condition, context);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#delete(symbol, strategyName, condition, context);
  }

  /** Every stored signal key, page by page; with `strategyName`, only that strategy's. */
  async *keys(options: { strategyName?: string } = {}): AsyncIterable<SignalKey> {
    const context: PersistErrorContext = { backend: this.name, operation: "keys", strategyName: options.strategyName };
    if (options.strategyName !== undefined) assertSignalKey("-", options.strategyName, context);
    const prefix = options.strategyName === undefined ? [] : [options.strategyName];
    let cursor: string | undefined;
    do {
      const page = await this.#call(context, () => this.records.list(SIGNAL_NAMESPACE, { prefix, cursor }));
      for (const { parts } of page.records) {
        const [strategyName, symbol] = parts;
        if (parts.length !== 2 || strategyName === undefined || symbol === undefined) {
          throw new CorruptDataError(
            `a signal record has ${parts.length} key parts, not 2: ${JSON.stringify(parts)}`,
            context,
          );
        }
        yield { strategyName, symbol };
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  /** Resolves when the store answers; rejects with a backend error otherwise. */
  async ping(): Promise<void> {
    await this.#call({ backend: this.name, operation: "ping" }, () => this.records.ping());
  }

  /** Waits for running operations, then releases what the store opened; later calls reject. */
  async close(): Promise<void> {
    await this.#call({ backend: this.name, operation: "close" }, () => this.records.close());
  }

  async #writeMany(entries: readonly SignalEntry[]): Promise<void> {
    const context: PersistErrorContext = { backend: this.name, operation: "writeMany" };
    const records = entries.map(({ symbol, strategyName, row }) => {
      const entryContext = { ...context, symbol, strategyName };
      assertSignalKey(symbol, strategyName, entryContext);
      return { key: signalRecordKey(symbol, strategyName), json: signalRowText(row, entryContext) };
    });
    const writeMany = this.records.writeMany;
    if (writeMany === undefined) throw new PersistError("the record store has no writeMany", context);
    await this.#call(context, () => writeMany.call(this.records, records, this.#writeOptions()));
  }

  #writeOptions(): { ttlMs?: number } {
    return this.#ttlMs === undefined ? {} : { ttlMs: this.#ttlMs };
  }

  #context(operation: PersistErrorContext["operation"], symbol: string, strategyName: string): PersistErrorContext {
    return { backend: this.name, operation, symbol, strategyName };
  }

  // A bundled store throws PersistErrors already; a third-party one may not, and is named anyway.
  async #call<T>(context: PersistErrorContext, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw foreignError(context)(error);
    }
  }
}

/** A stored signal and the revision of its key; `row` is `null` when none is stored. */
export interface SignalRecord {
  readonly row: ISignalRow | null;
  readonly revision: number;
}

/** The checked entry points of a `BaseRecordStore`, from this copy of core or another. */
interface CheckedRecordStore {
  [CHECKED_READ](key: RecordKey, context: PersistErrorContext): Promise<RecordRead>;
  [CHECKED_WRITE](
    key: RecordKey,
    json: string,
    ttlMs: number | undefined,
    context: PersistErrorContext,
    condition?: RecordCondition,
  ): Promise<RecordChange>;
  [CHECKED_DELETE](key: RecordKey, context: PersistErrorContext, condition?: RecordCondition): Promise<RecordChange>;
}

function isCheckedRecordStore(records: unknown): records is CheckedRecordStore {
  const store = records as Partial<Record<symbol, unknown>>;
  return (
    typeof store[CHECKED_READ] === "function" &&
    typeof store[CHECKED_WRITE] === "function" &&
    typeof store[CHECKED_DELETE] === "function"
  );
}

function nothing(): void {}

// A PersistError passes as it is; anything else is wrapped, named after the backend.
function foreignError(context: PersistErrorContext): (error: unknown) => never {
  return (error) => {
    if (error instanceof PersistError) throw error;
    throw new PersistError(errorMessage(error), { ...context, cause: error });
  };
}
