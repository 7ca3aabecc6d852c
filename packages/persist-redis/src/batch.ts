import {
  assertSignalKey,
  assertSignalRow,
  BackendClosedError,
  type ISignalRow,
  type PersistBase,
  type PersistErrorContext,
  parseSignalRow,
  serializeSignalRow,
  signalKeyId,
  signalRecordKey,
  wholeNumberOption,
} from "@persist-kit/core";
import type { BatchChange, RedisRecordStore } from "./redis-record-store.js";

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
 * changes.
 *
 * Not crash-safe: queued changes are lost with the process, and a pipeline is not atomic (a
 * failed flush may have stored part of it). Its error is thrown by the next `flush()`.
 *
 * @example
 * const batch = persist.createBatchWriter({ maxBatchSize: 500 });
 * for (const row of rows) await batch.writeSignalData("BTC/USDT", "backtest", row);
 * await batch.flush(); // every queued change is stored
 */
export class PersistRedisBatch implements PersistBase {
  readonly name = BACKEND;
  readonly #target: BatchTarget;
  readonly #ttlMs: number | undefined;
  readonly #maxBatchSize: number;
  #queued = new Map<string, BatchChange>();
  #sending: Promise<void> = Promise.resolve();
  #failure: unknown;
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
    this.#queue(context, symbol, strategyName, serializeSignalRow(row));
  }

  /** Queues the delete; resolves at once. */
  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    this.#queue(context, symbol, strategyName, null);
  }

  /** The queued row of the key if there is one, else what the server holds. */
  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const queued = this.#queued.get(signalKeyId(symbol, strategyName));
    if (queued !== undefined) return queued.json === null ? null : parseSignalRow(queued.json, context);
    // A pipeline on its way may hold this key: read after it.
    await this.#sending;
    return this.#target.readSignalData(symbol, strategyName);
  }

  /**
   * Sends every queued change and resolves once all are stored; rejects with the error of any
   * pipeline that failed since the last `flush()`.
   */
  async flush(): Promise<void> {
    this.#sendQueued();
    await this.#sending;
    const failure = this.#failure;
    this.#failure = undefined;
    if (failure !== undefined) throw failure;
  }

  /** Flushes, then refuses further changes. The backend's connection stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
  }

  #queue(context: PersistErrorContext, symbol: string, strategyName: string, json: string | null): void {
    if (this.#closed) throw new BackendClosedError("the batch writer is closed", context);
    this.#queued.set(signalKeyId(symbol, strategyName), { key: signalRecordKey(symbol, strategyName), json });
    if (this.#queued.size >= this.#maxBatchSize) this.#sendQueued();
  }

  // Pipelines go one after another, so a later change of a key is never overtaken by an earlier one.
  #sendQueued(): void {
    if (this.#queued.size === 0) return;
    const changes = [...this.#queued.values()];
    this.#queued = new Map();
    this.#sending = this.#sending
      .then(() => this.#target.records.sendBatch(changes, this.#ttlMs))
      .catch((error: unknown) => {
        this.#failure ??= error;
      });
  }
}
