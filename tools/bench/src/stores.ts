import {
  type ISignalRow,
  type PersistBase,
  PersistSignalAdapter,
  type RecordChange,
  type RecordCondition,
  type SignalAdapterOptions,
  type SignalRecord,
} from "@persist-kit/core";
import type { Keyv } from "keyv";
import type { Storage } from "unstorage";
import type { BenchKey, SignalStore } from "./model.js";

/** Thrown when a family or contender cannot run here; the report prints it as "not available". */
export class NotAvailableError extends Error {}

/** A persist-kit backend as a contender's store. */
export function persistStore(persist: PersistBase, close = () => persist.close?.() ?? Promise.resolve()): SignalStore {
  return {
    write: (key: BenchKey, row) => persist.writeSignalData(key.symbol, key.strategyName, row),
    read: (key: BenchKey) => persist.readSignalData(key.symbol, key.strategyName),
    delete: (key: BenchKey) => persist.deleteSignalData(key.symbol, key.strategyName),
    close,
  };
}

/**
 * A `PersistSignalAdapter` over `persist` as a contender's store: `setPendingSignal`,
 * `waitForInit` and `deletePendingSignal`. Closing releases the adapter's leases, then the backend.
 */
export function adapterStore(persist: PersistBase, options: SignalAdapterOptions = {}): SignalStore {
  const adapter = new PersistSignalAdapter(persist, options);
  return {
    write: (key, row) => adapter.setPendingSignal(key.symbol, key.strategyName, row),
    read: (key) => adapter.waitForInit(key.symbol, key.strategyName),
    delete: (key) => adapter.deletePendingSignal(key.symbol, key.strategyName),
    close: async () => {
      await adapter.close();
      await persist.close?.();
    },
  };
}

/** What every bundled backend (a `RecordSignalStore`) adds to `PersistBase`: the calls the adapter fences with. */
interface RevisionedBackend extends PersistBase {
  readSignalRecord(symbol: string, strategyName: string): Promise<SignalRecord>;
  writeSignalIf(
    symbol: string,
    strategyName: string,
    row: ISignalRow,
    condition: RecordCondition,
  ): Promise<RecordChange>;
  deleteSignalIf(symbol: string, strategyName: string, condition: RecordCondition): Promise<RecordChange>;
}

function isRevisioned(persist: PersistBase): persist is RevisionedBackend {
  const backend = persist as Partial<RevisionedBackend>;
  return typeof backend.readSignalRecord === "function" && typeof backend.writeSignalIf === "function";
}

/**
 * The backend's own conditional write without the adapter: `writeSignalIf` (`deleteSignalIf`)
 * with `{ below: R + 1 }` above the revision R it last saw of the key, as the adapter fences, so
 * the gap to the plain write is what the condition costs in the store and the gap to the adapter
 * is what the adapter adds in JavaScript.
 */
export function conditionalStore(persist: PersistBase): SignalStore {
  if (!isRevisioned(persist)) throw new NotAvailableError(`${persist.name ?? "the backend"} has no writeSignalIf`);
  const revisions = new Map<string, number>();
  const fenced = async (key: BenchKey, change: (condition: RecordCondition) => Promise<RecordChange>) => {
    let revision = revisions.get(key.id) ?? (await persist.readSignalRecord(key.symbol, key.strategyName)).revision;
    // A delete of another key of the strategy can raise the group's floor above what was seen: fence again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await change({ below: revision + 1 });
      revision = result.revision;
      revisions.set(key.id, revision);
      if (result.applied) return;
    }
    throw new Error(`the conditional change of ${key.id} did not apply three times in a row`);
  };
  return {
    write: (key, row) =>
      fenced(key, (condition) => persist.writeSignalIf(key.symbol, key.strategyName, row, condition)),
    read: (key) => persist.readSignalData(key.symbol, key.strategyName),
    delete: (key) => fenced(key, (condition) => persist.deleteSignalIf(key.symbol, key.strategyName, condition)),
    close: () => persist.close?.() ?? Promise.resolve(),
  };
}

/**
 * Imports a workspace package at run time. The backend packages are built by other tasks and may
 * be missing or half-built; typing them locally (see each family module) and importing them here
 * turns that into a "not available" line in the report instead of a crash of the whole run.
 */
export async function loadPackage<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    const message = error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error);
    throw new NotAvailableError(`${name} could not be loaded (is it built?): ${message}`);
  }
}

/** The value of a server URL variable, which `pnpm bench` sets from the test servers' env file. */
export function serverUrl(variable: "REDIS_URL" | "DATABASE_URL" | "MONGO_URL"): string {
  const value = process.env[variable];
  if (value === undefined || value === "") {
    throw new NotAvailableError(`${variable} is not set (run through pnpm bench, which starts the servers)`);
  }
  return value;
}

/**
 * `derive` of each bench key, worked out on first use and kept: the raw contenders build a key's
 * Redis key or file path with the backend's own function, but once per key, as hand-written code
 * keeps its key strings, so a timed operation is the I/O alone.
 */
export function cachedPerKey<T>(derive: (key: BenchKey) => T): (key: BenchKey) => T {
  const cache = new WeakMap<BenchKey, T>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = derive(key);
      cache.set(key, value);
    }
    return value;
  };
}

/** A name unique to this run, so contenders never see each other's or an earlier run's data. */
export function runTag(): string {
  return `${process.pid.toString(36)}${Date.now().toString(36)}`;
}

/** A keyv instance (any store) as a contender's store, keyed by the bench key's id. */
export function keyvStore(keyv: Keyv): SignalStore {
  return {
    write: async (key, row) => {
      await keyv.set(key.id, row);
    },
    read: (key) => keyv.get(key.id),
    delete: async (key) => {
      await keyv.delete(key.id);
    },
    close: () => keyv.disconnect(),
  };
}

/** An unstorage instance (any driver) as a contender's store; `itemKey` names each bench key. */
export function unstorageStore(storage: Storage, itemKey: (key: BenchKey) => string = (key) => key.id): SignalStore {
  return {
    write: (key, row) => storage.setItem(itemKey(key), row),
    read: (key) => storage.getItem<ISignalRow>(itemKey(key)),
    delete: (key) => storage.removeItem(itemKey(key)),
    close: () => storage.dispose(),
  };
}
