import { InvalidOptionError, type PersistOptions, RecordSignalStore, type SignalEntry } from "@persist-kit/core";
import { PersistRedisBatch, type PersistRedisBatchOptions } from "./batch.js";
import type { RedisDurabilityReport } from "./durability.js";
import { DEFAULT_PREFIX } from "./redis-keys.js";
import { RedisRecordStore, type RedisRecordStoreOptions } from "./redis-record-store.js";

/** Options of {@link PersistRedis}: where to connect ({@link RedisRecordStoreOptions}) and `ttlMs`. */
export interface PersistRedisOptions extends RedisRecordStoreOptions, PersistOptions {}

/**
 * Stores each open signal under its own Redis key, `{prefix}signal:{strategy}:{symbol}` (names
 * escaped, the strategy as the cluster hash tag), holding `{"v":1,"revision":R,"value":<row>}`.
 * A write or delete is one server-side script call (with `PX` when `ttlMs` is set), a read one
 * GET, so a crashed writer leaves the old row or the new one. The record store below,
 * {@link RedisRecordStore}, is `records`: revisions, conditional writes, other namespaces.
 *
 * Works with a single server or a Redis Cluster. Given a URL or cluster nodes it makes its own
 * client, connects on the first operation and closes it in `close()`; given a `client`, it uses
 * it and never closes it. Every operation settles within `timeoutMs`; while the server is down
 * it rejects with `BackendUnavailableError`, and the client reconnects in the background.
 *
 * Redis keeps data in memory: run the server with `appendonly yes` and `appendfsync always` (see
 * {@link PersistRedis.describeDurability}), or acknowledged writes can be lost in a crash.
 *
 * @example
 * const persist = new PersistRedis({ url: "redis://127.0.0.1:6379", prefix: "bot:" });
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistRedis extends RecordSignalStore<RedisRecordStore> {
  /** The prefix of every key this backend reads and writes. */
  readonly prefix: string;
  /**
   * Writes every entry or none (one script call over every key). On a single server the entries
   * may belong to any strategies. On Redis Cluster a script cannot span hash slots, and each
   * strategy is its own slot: entries of more than one strategy are refused before anything is
   * written; write each strategy's entries with its own call.
   */
  declare readonly writeMany: (entries: readonly SignalEntry[]) => Promise<void>;
  readonly #ttlMs: number | undefined;

  constructor(options: PersistRedisOptions = {}) {
    const records = new RedisRecordStore(options);
    super(records, options);
    this.prefix = records.prefix;
    this.#ttlMs = options.ttlMs;
  }

  /**
   * What the server does to keep acknowledged writes: append-only file, fsync policy, snapshots
   * and replicas, for the server or every master of a cluster, with `crashSafe` and warnings.
   * Reads `INFO`, and `CONFIG GET` where the server allows it.
   * @example
   * const report = await persist.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  describeDurability(): Promise<RedisDurabilityReport> {
    return this.records.describeDurability();
  }

  /**
   * A writer for backtests: writes and deletes are kept in memory and sent in pipelines of script
   * calls, many at a time, sharing this backend's connection. Not crash-safe: what is not flushed
   * yet is lost with the process. Call `flush()` (or `close()`) on it before closing this backend.
   * @example
   * const batch = persist.createBatchWriter();
   * await batch.writeSignalData("BTC/USDT", "momentum", row); // queued
   * await batch.flush(); // stored
   */
  createBatchWriter(options: PersistRedisBatchOptions = {}): PersistRedisBatch {
    return new PersistRedisBatch(this, this.#ttlMs, options);
  }
}

/**
 * Builds a {@link PersistRedis} from a `redis://` or `rediss://` URL, for `createPersist` in
 * `@persist-kit/core`.
 * @example const persist = fromUrl("redis://127.0.0.1:6379/0", { ttlMs: 60_000 });
 */
export function fromUrl(url: string, options: PersistRedisOptions & { scope?: string } = {}): PersistRedis {
  if (!/^rediss?:\/\//i.test(url)) {
    // Only the scheme is shown: the rest of a URL may hold a password.
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
    throw new InvalidOptionError(
      `expected a redis:// or rediss:// URL, got ${scheme === undefined ? "something else" : `a ${scheme}:// URL`}`,
      { backend: "redis", operation: "create" },
    );
  }
  const { scope, ...rest } = options;
  // A scope is one more segment of the key prefix: `persist-kit:` becomes `persist-kit:@name:`.
  // The "@" keeps it apart from every key of the unscoped store, `persist-kit:<namespace>:...`
  // and `persist-kit:floor:...`: no namespace starts with it, so a scope named "signal" or
  // "floor" is never read as one of them.
  const prefix = scope === undefined ? rest.prefix : `${rest.prefix ?? DEFAULT_PREFIX}@${scope}:`;
  return new PersistRedis({ ...rest, ...(prefix === undefined ? {} : { prefix }), url });
}
