import {
  assertSignalKey,
  assertSignalRow,
  BackendClosedError,
  type ISignalRow,
  type PersistBase,
  type PersistError,
  type PersistErrorContext,
  parseSignalRow,
  serializeSignalRow,
  signalKeyId,
  signalRecordKey,
  wholeNumberOption,
} from "@persist-kit/core";
import type { BatchChange, BatchResult, RedisRecordStore } from "./redis-record-store.js";

const BACKEND = "redis";

/** Options of `PersistRedis.createBatchWriter()`. */
export interface PersistRedisBatchOptions {
  /** Queued changes (distinct keys) that start sending a pipeline in the background. Default: `1000`. */
  maxBatchSize?: number;
}

/** What the batch writer uses of its `PersistRedis`: the record store and the signal read. */
interface BatchTarget {
  readonly records: RedisRecordStore;
  readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null>;
}

/**
 * The backtest writer made by `PersistRedis.createBatchWriter()`: writes and deletes resolve at
 * once and are kept in memory, only the last change of each key; they are sent as pipelines of
 * the same script calls `PersistRedis` makes (so every row carries its revision and reads back
 * through `PersistRedis`) when `maxBatchSize` keys are queued and on `flush()`. Reads see queued
 * changes, also those on their way and those whose pipeline failed; a queued row with a TTL
 * expires when the TTL runs out from the write call, sent or not.
 *
 * Not crash-safe, and it says so (`acknowledges: "queued"`, which `PersistSignalAdapter` refuses
 * unless given `acceptQueuedWrites: true`): queued changes are lost with the process, and a
 * pipeline is not atomic (a failed one may have stored part of it). A change whose pipeline
 * failed stays queued and is sent again with the next pipeline; `flush()` rejects until every
 * change queued before it is stored.
 *
 * @example
 * const batch = persist.createBatchWriter({ maxBatchSize: 500 });
 * for (const row of rows) await batch.writeSignalData("BTC/USDT", "backtest", row);
 * await batch.flush(); // every queued change is stored
 */
export class PersistRedisBatch implements PersistBase {
  readonly name = BACKEND;
  /** Writes resolve once queued, before they are stored. */
  readonly acknowledges = "queued";
  readonly #target: BatchTarget;
  readonly #ttlMs: number | undefined;
  readonly #maxBatchSize: number;
  // Changes not handed to a pipeline yet, by key; the last change of each key only.
  #queued = new Map<string, BatchChange>();
  // The last change of each key handed to a pipeline that has not answered yet.
  readonly #sent = new Map<string, BatchChange>();
  // Keys whose last change failed (it is queued again), with the error.
  readonly #failed = new Map<string, PersistError>();
  #sending: Promise<void> = Promise.resolve();
  #closed = false;

  /** Made by `PersistRedis.createBatchWriter()`. */
  constructor(target: BatchTarget, ttlMs: number | undefined, options: PersistRedisBatchOptions = {}) {
    this.#target = target;
    this.#ttlMs = ttlMs;
    this.#maxBatchSize = wholeNumberOption(BACKEND, "maxBatchSize", options.maxBatchSize, { default: 1_000, min: 1 });
  }

  /** Queues the row; resolves at once. It is stored by the next pipeline sent. */
  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    // The TTL runs from the write call, however long the row waits to be sent.
    const expiresAt = this.#ttlMs === undefined ? undefined : performance.now() + this.#ttlMs;
    this.#queue(context, symbol, strategyName, serializeSignalRow(row), expiresAt);
  }

  /** Queues the delete; resolves at once. */
  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    this.#queue(context, symbol, strategyName, null, undefined);
  }

  /** The last change of the key not yet known stored, if there is one, else what the server holds. */
  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const id = signalKeyId(symbol, strategyName);
    const change = this.#queued.get(id) ?? this.#sent.get(id);
    if (change === undefined) return this.#target.readSignalData(symbol, strategyName);
    if (change.json === null || isExpired(change)) return null;
    return parseSignalRow(change.json, context);
  }

  /**
   * Sends every queued change and resolves once all are stored; while any is not, rejects with
   * the error of one that failed (it stays queued, and the next `flush()` sends it again).
   */
  async flush(): Promise<void> {
    this.#sendQueued();
    await this.#sending;
    const [failure] = this.#failed.values();
    if (failure !== undefined) throw failure;
  }

  /** Flushes, then refuses further changes. The backend's connection stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
  }

  #queue(
    context: PersistErrorContext,
    symbol: string,
    strategyName: string,
    json: string | null,
    expiresAt: number | undefined,
  ): void {
    if (this.#closed) throw new BackendClosedError("the batch writer is closed", context);
    const id = signalKeyId(symbol, strategyName);
    this.#queued.set(id, { key: signalRecordKey(symbol, strategyName), json, expiresAt });
    // A newer change replaces the one that failed: it is what the next pipeline must store.
    this.#failed.delete(id);
    if (this.#queued.size >= this.#maxBatchSize) this.#sendQueued();
  }

  // Pipelines go one after another, so a later change of a key is never overtaken by an earlier one.
  #sendQueued(): void {
    if (this.#queued.size === 0) return;
    const batch = [...this.#queued];
    this.#queued = new Map();
    for (const [id, change] of batch) this.#sent.set(id, change);
    const changes = batch.map(([, change]) => change);
    this.#sending = this.#sending
      .then(() => this.#target.records.sendBatch(changes))
      .then(
        (results) => this.#settle(batch, results),
        (error: unknown) =>
          this.#settle(
            batch,
            batch.map(() => error as PersistError),
          ),
      );
  }

  // A change that failed is queued again, unless a newer change of its key came meanwhile.
  #settle(batch: readonly [string, BatchChange][], results: BatchResult): void {
    for (const [index, [id, change]] of batch.entries()) {
      const newest = this.#sent.get(id) === change;
      if (newest) this.#sent.delete(id);
      const error = results[index];
      if (!newest || this.#queued.has(id)) continue;
      if (error === undefined) {
        this.#failed.delete(id);
      } else {
        this.#queued.set(id, change);
        this.#failed.set(id, error);
      }
    }
  }
}

function isExpired(change: BatchChange): boolean {
  return change.expiresAt !== undefined && performance.now() >= change.expiresAt;
}
