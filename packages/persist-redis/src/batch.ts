import {
  assertSignalKey,
  assertSignalRow,
  type ISignalRow,
  type PersistBase,
  PersistError,
  type PersistErrorContext,
  parseSignalRow,
  serializeSignalRow,
} from "@persist-kit/core";
import { readSignal, type SignalWrite, sendWrites } from "./commands.js";
import type { RedisConnection } from "./connection.js";
import { signalRedisKey } from "./redis-keys.js";

const BACKEND = "redis";

/** Options of `PersistRedis.createBatchWriter()`. */
export interface PersistRedisBatchOptions {
  /** Queued changes (distinct keys) that start sending a pipeline in the background. Default: `1000`. */
  maxBatchSize?: number;
}

interface QueuedChange extends SignalWrite {
  strategyName: string;
}

/**
 * The backtest writer made by `PersistRedis.createBatchWriter()`: writes and deletes resolve at
 * once and are kept in memory, only the last change of each key; they are sent as pipelines of
 * SET/DEL when `maxBatchSize` keys are queued and on `flush()`. Reads see queued changes.
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
  readonly #connection: RedisConnection;
  readonly #prefix: string;
  readonly #ttlMs: number | undefined;
  readonly #maxBatchSize: number;
  #queued = new Map<string, QueuedChange>();
  #sending: Promise<void> = Promise.resolve();
  #failure: unknown;
  #closed = false;

  /** Made by `PersistRedis.createBatchWriter()`. */
  constructor(
    connection: RedisConnection,
    keys: { prefix: string; ttlMs: number | undefined },
    options: PersistRedisBatchOptions = {},
  ) {
    this.#connection = connection;
    this.#prefix = keys.prefix;
    this.#ttlMs = keys.ttlMs;
    const maxBatchSize = options.maxBatchSize ?? 1_000;
    if (!Number.isSafeInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new PersistError(`maxBatchSize must be a whole number >= 1, got ${maxBatchSize}`, {
        backend: BACKEND,
        operation: "create",
      });
    }
    this.#maxBatchSize = maxBatchSize;
  }

  /** Queues the row; resolves at once. It is stored by the next pipeline sent. */
  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    this.#queue(context, strategyName, symbol, serializeSignalRow(row));
  }

  /** Queues the delete; resolves at once. */
  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    this.#queue(context, strategyName, symbol, null);
  }

  /** The queued row of the key if there is one, else what the server holds. */
  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const redisKey = signalRedisKey(this.#prefix, strategyName, symbol);
    const queued = this.#queued.get(redisKey);
    if (queued !== undefined) return queued.text === null ? null : parseSignalRow(queued.text, context);
    // A pipeline on its way may hold this key: read after it.
    await this.#sending;
    return readSignal(this.#connection, context, redisKey);
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

  #queue(context: PersistErrorContext, strategyName: string, symbol: string, text: string | null): void {
    if (this.#closed) throw new PersistError("the batch writer is closed", context);
    const redisKey = signalRedisKey(this.#prefix, strategyName, symbol);
    this.#queued.set(redisKey, { redisKey, text, strategyName });
    if (this.#queued.size >= this.#maxBatchSize) this.#sendQueued();
  }

  // Pipelines go one after another, so a later change of a key is never overtaken by an earlier one.
  #sendQueued(): void {
    if (this.#queued.size === 0) return;
    const changes = [...this.#queued.values()];
    this.#queued = new Map();
    this.#sending = this.#sending
      .then(() => this.#send(changes))
      .catch((error: unknown) => {
        this.#failure ??= error;
      });
  }

  // A cluster pipeline must stay within one hash slot, that is one strategy.
  async #send(changes: QueuedChange[]): Promise<void> {
    const context = { backend: BACKEND, operation: "writeMany" } as const;
    const groups = this.#connection.isCluster ? groupByStrategy(changes) : [changes];
    await Promise.all(
      groups.map((group) =>
        this.#connection.run(context, (client) =>
          sendWrites(client, group, { ttlMs: this.#ttlMs, atomic: false, wait: undefined }, context),
        ),
      ),
    );
  }
}

function groupByStrategy(changes: QueuedChange[]): QueuedChange[][] {
  const groups = new Map<string, QueuedChange[]>();
  for (const change of changes) {
    const group = groups.get(change.strategyName);
    if (group === undefined) groups.set(change.strategyName, [change]);
    else group.push(change);
  }
  return [...groups.values()];
}
