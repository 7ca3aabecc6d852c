import {
  assertSignalKey,
  assertSignalRow,
  assertTtl,
  BackendUnavailableError,
  InvalidKeyError,
  type ISignalRow,
  keyProblem,
  type PersistBase,
  PersistError,
  type PersistErrorContext,
  type PersistOptions,
  type SignalEntry,
  type SignalKey,
  serializeSignalRow,
} from "@persist-kit/core";
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis";
import { PersistRedisBatch, type PersistRedisBatchOptions } from "./batch.js";
import { readSignal, type SignalWrite, sendWrite, sendWrites } from "./commands.js";
import { type RedisClient, RedisConnection } from "./connection.js";
import {
  type DurabilityWaits,
  dataServers,
  describeServers,
  planWait,
  type RedisDurabilityReport,
  type RedisServerDurability,
  readServerDurability,
} from "./durability.js";
import { assertPrefix, DEFAULT_PREFIX, parseSignalRedisKey, signalKeyPattern, signalRedisKey } from "./redis-keys.js";

const BACKEND = "redis";
const DEFAULT_URL = "redis://127.0.0.1:6379";
// Keys asked for per SCAN call: large enough for few round trips, small enough not to block the server.
const SCAN_COUNT = 500;

/** Options of {@link PersistRedis}. */
export interface PersistRedisOptions extends PersistOptions {
  /** Server URL (`redis://` or `rediss://`, with user, password and database). Default: `"redis://127.0.0.1:6379"`. */
  url?: string;
  /** Start nodes of a Redis Cluster; when given, a cluster client is made instead of a single-server one. Default: none. */
  clusterNodes?: ClusterNode[];
  /** An ioredis `Redis` or `Cluster` of the application; used as it is and never closed by this backend. Default: none. */
  client?: Redis | Cluster;
  /** Further ioredis options for the client this backend makes (password, tls, db...); the failure settings below win. Default: `{}`. */
  redisOptions?: RedisOptions;
  /** Further ioredis `Cluster` options for the cluster client this backend makes. Default: `{}`. */
  clusterOptions?: ClusterOptions;
  /** Put before every key; must not contain `{` or `}`. Default: `"persist-kit:"`. */
  prefix?: string;
  /** Longest time, in ms, an operation takes (waiting for a connection included) before it rejects with `BackendUnavailableError`. Default: `5000`. */
  timeoutMs?: number;
  /** Longest pause, in ms, between reconnection attempts while the server is down. Default: `2000`. */
  maxReconnectDelayMs?: number;
  /** Replicas that must hold each write or delete before it resolves (`WAIT`). Default: `0`. */
  waitForReplicas?: number;
  /** Resolve a write or delete only once it is fsynced to the append-only file (`WAITAOF`, Redis >= 7.2; older servers only with `appendfsync always`). Default: `false`. */
  waitForAof?: boolean;
  /** Longest time, in ms, to wait for replicas or the fsync, on top of `timeoutMs`. Default: `1000`. */
  waitTimeoutMs?: number;
}

/**
 * Stores each open signal under its own Redis key, `{prefix}signal:{strategy}:{symbol}` (names
 * escaped, the strategy as the cluster hash tag). A write is one SET (with PX when `ttlMs` is
 * set), a read one GET, a delete one DEL, so a crashed writer leaves the old row or the new one.
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
export class PersistRedis implements PersistBase {
  readonly name = BACKEND;
  /** The prefix of every key this backend reads and writes. */
  readonly prefix: string;
  readonly #connection: RedisConnection;
  readonly #ttlMs: number | undefined;
  readonly #waits: DurabilityWaits;
  #servers: Promise<RedisServerDurability[]> | undefined;

  constructor(options: PersistRedisOptions = {}) {
    this.#ttlMs = assertTtl(options.ttlMs, BACKEND);
    this.prefix = assertPrefix(options.prefix ?? DEFAULT_PREFIX, BACKEND);
    if (options.client !== undefined && (options.url !== undefined || options.clusterNodes !== undefined)) {
      throw new PersistError("give either client, or url / clusterNodes, not both", {
        backend: BACKEND,
        operation: "create",
      });
    }
    this.#waits = {
      replicas: assertWholeNumber("waitForReplicas", options.waitForReplicas ?? 0, 0),
      aof: options.waitForAof ?? false,
      timeoutMs: assertWholeNumber("waitTimeoutMs", options.waitTimeoutMs ?? 1_000, 1),
    };
    this.#connection = new RedisConnection({
      backend: BACKEND,
      client: options.client,
      url: options.url ?? DEFAULT_URL,
      clusterNodes: options.clusterNodes,
      redisOptions: options.redisOptions ?? {},
      clusterOptions: options.clusterOptions ?? {},
      timeoutMs: assertWholeNumber("timeoutMs", options.timeoutMs ?? 5_000, 1),
      waitTimeoutMs: this.#waits.replicas > 0 || this.#waits.aof ? this.#waits.timeoutMs : 0,
      maxReconnectDelayMs: assertWholeNumber("maxReconnectDelayMs", options.maxReconnectDelayMs ?? 2_000, 1),
    });
  }

  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    const write = { redisKey: signalRedisKey(this.prefix, strategyName, symbol), text: serializeSignalRow(row) };
    await this.#change(context, [write], false);
  }

  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    return readSignal(this.#connection, context, signalRedisKey(this.prefix, strategyName, symbol));
  }

  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    await this.#change(context, [{ redisKey: signalRedisKey(this.prefix, strategyName, symbol), text: null }], false);
  }

  /**
   * Writes every entry or none (MULTI/EXEC). On a single server the entries may belong to any
   * strategies. On Redis Cluster MULTI cannot span hash slots, and each strategy is its own slot:
   * entries of more than one strategy are refused before anything is written; write each
   * strategy's entries with its own call.
   */
  async writeMany(entries: readonly SignalEntry[]): Promise<void> {
    const context = { backend: BACKEND, operation: "writeMany" } as const;
    for (const { symbol, strategyName, row } of entries) {
      assertSignalKey(symbol, strategyName, context);
      assertSignalRow(row, { ...context, symbol, strategyName });
    }
    const strategies = new Set(entries.map((entry) => entry.strategyName));
    if (this.#connection.isCluster && strategies.size > 1) {
      const names = [...strategies].map((name) => JSON.stringify(name)).join(", ");
      throw new PersistError(
        `on Redis Cluster writeMany is atomic within one strategy only (one hash slot), got ${strategies.size} strategies: ${names}; nothing was written`,
        context,
      );
    }
    if (entries.length === 0) return;
    const writes = entries.map(({ symbol, strategyName, row }) => ({
      redisKey: signalRedisKey(this.prefix, strategyName, symbol),
      text: serializeSignalRow(row),
    }));
    await this.#change(context, writes, true);
  }

  /**
   * Every stored key under this prefix (SCAN on the server, or on every master of a cluster),
   * decoded back to names; keys of other applications under the prefix are skipped. With
   * `strategyName`, only that strategy's keys.
   */
  async *keys(options: { strategyName?: string } = {}): AsyncIterable<SignalKey> {
    const context = { backend: BACKEND, operation: "keys", strategyName: options.strategyName } as const;
    if (options.strategyName !== undefined) {
      const problem = keyProblem(options.strategyName);
      if (problem !== undefined) throw new InvalidKeyError(`strategyName ${problem}`, context);
    }
    const pattern = signalKeyPattern(this.prefix, options.strategyName);
    const servers = await this.#connection.run(context, async (client) => dataServers(client));
    const seen = new Set<string>();
    for (const server of servers) {
      let cursor = "0";
      do {
        const [next, redisKeys] = await this.#connection.run(context, () =>
          server.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT),
        );
        cursor = next;
        for (const redisKey of redisKeys) {
          // SCAN may return a key twice.
          if (seen.has(redisKey)) continue;
          seen.add(redisKey);
          const key = parseSignalRedisKey(this.prefix, redisKey);
          if (key !== undefined) yield key;
        }
      } while (cursor !== "0");
    }
  }

  /** Resolves when the server (every master, for a cluster) answers PING. */
  async ping(): Promise<void> {
    const context = { backend: BACKEND, operation: "ping" } as const;
    await this.#connection.run(context, async (client) => {
      await Promise.all(dataServers(client).map((server) => server.ping()));
    });
  }

  /**
   * What the server does to keep acknowledged writes: append-only file, fsync policy, snapshots
   * and replicas, for the server or every master of a cluster, with `crashSafe` and warnings.
   * Reads `INFO`, and `CONFIG GET` where the server allows it.
   * @example
   * const report = await persist.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  async describeDurability(): Promise<RedisDurabilityReport> {
    const context = { backend: BACKEND, operation: "describe" } as const;
    const servers = await this.#connection.run(context, (client) =>
      Promise.all(dataServers(client).map(readServerDurability)),
    );
    return describeServers(servers, this.#waits);
  }

  /**
   * A writer for backtests: writes and deletes are kept in memory and sent in pipelines, many at a
   * time, sharing this backend's connection. Not crash-safe: what is not flushed yet is lost with
   * the process. Call `flush()` (or `close()`) on it before closing this backend.
   * @example
   * const batch = persist.createBatchWriter();
   * await batch.writeSignalData("BTC/USDT", "momentum", row); // queued
   * await batch.flush(); // stored
   */
  createBatchWriter(options: PersistRedisBatchOptions = {}): PersistRedisBatch {
    return new PersistRedisBatch(this.#connection, { prefix: this.prefix, ttlMs: this.#ttlMs }, options);
  }

  /**
   * Waits for running operations, then closes the client this backend made (a `client` passed
   * in stays open). Later operations reject; closing twice is harmless.
   */
  close(): Promise<void> {
    return this.#connection.close();
  }

  async #change(context: PersistErrorContext, writes: SignalWrite[], atomic: boolean): Promise<void> {
    const waits = this.#waits.replicas > 0 || this.#waits.aof;
    const [only] = writes;
    if (!waits && !atomic && writes.length === 1 && only !== undefined) {
      // The common case, one SET or DEL and nothing to wait for, goes straight to its command.
      await this.#connection.run(context, (client) => sendWrite(client, only, this.#ttlMs), {
        redisKey: only.redisKey,
      });
      return;
    }
    try {
      await this.#connection.run(
        context,
        async (client) => {
          const wait = waits ? planWait(await this.#serverSettings(client), this.#waits, context) : undefined;
          await sendWrites(client, writes, { ttlMs: this.#ttlMs, atomic, wait }, context);
        },
        { waits },
      );
    } catch (error) {
      // The server may come back changed (restarted, reconfigured, upgraded): ask again.
      if (error instanceof BackendUnavailableError) this.#servers = undefined;
      throw error;
    }
  }

  // Read at the first write that waits, before anything is written, and shared by later ones.
  #serverSettings(client: RedisClient): Promise<RedisServerDurability[]> {
    if (this.#servers === undefined) {
      const servers = Promise.all(dataServers(client).map(readServerDurability));
      this.#servers = servers;
      servers.catch(() => {
        if (this.#servers === servers) this.#servers = undefined;
      });
    }
    return this.#servers;
  }
}

/**
 * Builds a {@link PersistRedis} from a `redis://` or `rediss://` URL, for `createPersist` in
 * `@persist-kit/core`.
 * @example const persist = fromUrl("redis://127.0.0.1:6379/0", { ttlMs: 60_000 });
 */
export function fromUrl(url: string, options: PersistRedisOptions = {}): PersistRedis {
  if (!/^rediss?:\/\//i.test(url)) {
    throw new PersistError(`expected a redis:// or rediss:// URL, got ${JSON.stringify(url)}`, {
      backend: BACKEND,
      operation: "create",
    });
  }
  return new PersistRedis({ ...options, url });
}

function assertWholeNumber(option: string, value: number, min: number): number {
  if (Number.isSafeInteger(value) && value >= min) return value;
  throw new PersistError(`${option} must be a whole number >= ${min}, got ${value}`, {
    backend: BACKEND,
    operation: "create",
  });
}
