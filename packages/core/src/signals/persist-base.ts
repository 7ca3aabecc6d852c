import type { SignalKey } from "./key.js";
import type { ISignalRow } from "./row.js";

/** One entry of an atomic batch write. */
export interface SignalEntry extends SignalKey {
  row: ISignalRow;
}

/**
 * A signal store: the seed's three methods plus optional capabilities.
 *
 * What every bundled backend guarantees (each is a `RecordSignalStore` over its record store, and
 * `@persist-kit/contract` checks each promise): keys and rows are checked before any I/O; a write
 * is atomic (the old row or the new one, never a mix) and durable once it resolves; a read returns
 * exactly what was written, every number bit-identical, `null` only when nothing is stored, and a
 * `CorruptDataError` for stored data that does not parse or validate; every error is a
 * `PersistError` with the backend, operation, key and outcome.
 *
 * What `PersistSignalAdapter` adds on top: operations on one key in call order, a deadline
 * counted from each call, every failure reported to `listenError`, and, on a record store (every
 * bundled backend), fenced writes and optional single-writer ownership (`exclusive`). A backend
 * that implements only these three methods is not fenced: a write its client retries or its
 * server applies late can land after a later acknowledged one, and `exclusive` is refused.
 *
 * Implement these three methods (plus any optional capability) to add a backend;
 * `@persist-kit/contract` proves an implementation keeps the promises.
 *
 * @example
 * const persist: PersistBase = new PersistMemory();
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null when none is stored
 * await persist.deleteSignalData("BTC/USDT", "momentum"); // idempotent
 */
export interface PersistBase {
  /** Short backend name used in errors, for example `"redis"`. */
  readonly name?: string;
  /**
   * When `writeSignalData` resolves: `"stored"` (the default) once the row is stored under the
   * backend's durable settings; `"queued"` as soon as it is queued for a later flush (a batch
   * writer for backtests). `PersistSignalAdapter` refuses a `"queued"` backend unless told
   * `acceptQueuedWrites: true`: a live bot would lose acknowledged positions in a crash.
   */
  readonly acknowledges?: "stored" | "queued";
  /** Stores `row`, replacing any row stored under the key. Resolves once it is durable. */
  writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void>;
  /** The stored row, or `null` when none is stored (never `undefined`). */
  readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null>;
  /** Removes the row; deleting a missing key succeeds. */
  deleteSignalData(symbol: string, strategyName: string): Promise<void>;
  /** Every stored key, in no particular order. */
  keys?(): AsyncIterable<SignalKey>;
  /** Releases connections, handles and timers the backend opened, so the process can exit. */
  close?(): Promise<void>;
  /** Resolves when the store answers; rejects with a backend error otherwise. */
  ping?(): Promise<void>;
  /**
   * Writes every entry: all or none on the bundled backends whose record store declares
   * `writeMany: "atomic"` (memory, redis, postgres), in order on those that declare `"ordered"`
   * (mongo); absent where the store has none (file).
   */
  writeMany?(entries: readonly SignalEntry[]): Promise<void>;
}

/** Options every bundled backend accepts. */
export interface PersistOptions {
  /**
   * Rows expire this many milliseconds after they were written and read as `null` at once.
   * Off by default: expiring a live position hides it from the bot, so use it for backtests only.
   */
  ttlMs?: number;
}
