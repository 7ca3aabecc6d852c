import { type PersistOptions, RecordSignalStore, type SignalEntry } from "@persist-kit/core";
import type { PostgresDurabilityReport } from "./durability.js";
import { DEFAULT_TABLE, PostgresRecordStore, type PostgresRecordStoreOptions } from "./postgres-record-store.js";

/** Options of {@link PersistPostgres}: the record store's, plus `ttlMs` for every signal written. */
export interface PersistPostgresOptions extends PersistOptions, PostgresRecordStoreOptions {}

/**
 * Stores each open signal as one row of the PostgreSQL record table (namespace `'signal'`, key
 * `{strategyName, symbol}`), through {@link PostgresRecordStore}, reachable as `records`. Signal
 * and key checks, TTL and error context come from core's `RecordSignalStore`.
 *
 * Open signals in SQL: `SELECT key[1] AS strategy_name, key[2] AS symbol, value FROM
 * persist_records WHERE namespace = 'signal' AND (expires_at IS NULL OR expires_at > now())`,
 * or the view `persist_records_signals`.
 *
 * @example
 * const persist = new PersistPostgres({ connectionString: process.env.DATABASE_URL });
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistPostgres extends RecordSignalStore<PostgresRecordStore> {
  /** Writes every entry in one transaction: all of them are stored, or none. */
  declare readonly writeMany: (entries: readonly SignalEntry[]) => Promise<void>;

  constructor(options: PersistPostgresOptions = {}) {
    const { ttlMs, ...storeOptions } = options;
    super(new PostgresRecordStore(storeOptions), { ttlMs });
  }

  /** Schema of the tables, as given (unquoted). */
  get schema(): string {
    return this.records.schema;
  }

  /** Name of the record table, as given (unquoted). */
  get table(): string {
    return this.records.table;
  }

  /** The quoted `"schema"."table"` that holds the records, ready to use in SQL. */
  get tableName(): string {
    return this.records.tableName;
  }

  /**
   * What the server does to keep acknowledged writes, as the backend's connections see it:
   * `synchronous_commit` (with the role's and database's settings), `synchronous_standby_names`,
   * `fsync` and `full_page_writes`, with `crashSafe` and warnings. The same settings are checked
   * on each new connection and reported through core's `listenWarning` (or refused with
   * `requireDurable`).
   * @example
   * const report = await persist.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  describeDurability(): Promise<PostgresDurabilityReport> {
    return this.records.describeDurability();
  }

  /**
   * Deletes the rows whose TTL has passed and returns how many. Optional housekeeping: expired
   * rows already read as null, this only reclaims their space.
   */
  deleteExpired(): Promise<number> {
    return this.records.deleteExpired();
  }
}

/**
 * Builds a {@link PersistPostgres} from a `postgres://` or `postgresql://` URL; used by core's
 * `createPersist(url)`. The backend owns its pool and ends it on `close()`.
 *
 * @example
 * const persist = fromUrl("postgres://postgres@127.0.0.1:5432/postgres", { ttlMs: 60_000 });
 */
export function fromUrl(url: string, options: PersistOptions & { scope?: string } = {}): PersistPostgres {
  const { scope, ...rest } = options;
  // A scope is a table of its own: `persist_records` becomes `persist_records_name`.
  return new PersistPostgres({
    ...rest,
    ...(scope === undefined ? {} : { table: `${(rest as { table?: string }).table ?? DEFAULT_TABLE}_${scope}` }),
    connectionString: url,
  });
}
