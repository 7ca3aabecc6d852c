import {
  assertSignalKey,
  assertSignalRow,
  assertTtl,
  type ISignalRow,
  type PersistBase,
  PersistError,
  type PersistErrorContext,
  type PersistOptions,
  parseSignalRow,
  type SignalEntry,
  type SignalKey,
  serializeSignalRow,
  signalKeyId,
} from "@persist-kit/core";
import pg, {
  type Pool,
  type PoolClient,
  type PoolConfig,
  type QueryConfig,
  type QueryResult,
  type QueryResultRow,
} from "pg";
import { isUnavailableError, toPersistError } from "./errors.js";
import {
  assertIdentifier,
  type NamedStatement,
  SCHEMA_VERSION,
  type SignalTableSql,
  schemaVersionOf,
  signalTableSql,
} from "./signal-table.js";

const BACKEND = "postgres";
const DEFAULT_SCHEMA = "public";
const DEFAULT_TABLE = "persist_signals";
const DEFAULT_CONNECTION_TIMEOUT_MILLIS = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MILLIS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MILLIS = 15_000;
const KEYS_PAGE_SIZE = 1_000;

/** Options of {@link PersistPostgres}. */
export interface PersistPostgresOptions extends PersistOptions {
  /** PostgreSQL URL, such as `postgres://user:password@host:5432/db`. Default: pg's defaults (`PG*` environment variables). Not with `pool`. */
  connectionString?: string;
  /** An existing pool to use instead of creating one; `close()` never ends it. Its own timeouts then apply, except `queryTimeoutMillis`. */
  pool?: Pool;
  /** Further settings (ssl, max, ...) for the pool this backend creates; the timeout options below take precedence. Ignored with `pool`. */
  poolConfig?: PoolConfig;
  /** Schema of the signal table, created when missing: letters, digits and `_`, at most 63. Default: `"public"`. */
  schema?: string;
  /** Name of the signal table, created on first use: letters, digits and `_`, at most 63. Default: `"persist_signals"`. */
  table?: string;
  /** How long to wait for a connection (connect, or a free pooled one) before failing. Default: `5000`. */
  connectionTimeoutMillis?: number;
  /** Server-side `statement_timeout` of the connections this backend opens. Default: `10000`. */
  statementTimeoutMillis?: number;
  /** Client-side limit on each statement's round trip, also with an existing `pool`. Default: `15000`. */
  queryTimeoutMillis?: number;
}

/** pg honours `query_timeout` per statement, but its QueryConfig type does not declare it. */
interface TimedQueryConfig extends QueryConfig {
  query_timeout: number;
}

type KeyContext = PersistErrorContext & { strategyName: string; symbol: string };

/**
 * Stores each open signal as one row of a PostgreSQL table: primary key `(strategy_name,
 * symbol)`, the row as `jsonb`, written with one `INSERT ... ON CONFLICT DO UPDATE`. Every write
 * is a committed transaction, so with the server's default `synchronous_commit = on` an
 * acknowledged write survives a crash of the server.
 *
 * The table (and its schema) is created on the first operation, under an advisory lock so
 * several processes can start at once. Operations on one key run in call order within this
 * instance. Give it a URL (it then owns its pool and `close()` ends it) or an existing `pg.Pool`
 * (never ended here).
 *
 * @example
 * const persist = new PersistPostgres({ connectionString: process.env.DATABASE_URL });
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistPostgres implements PersistBase {
  readonly name = BACKEND;
  /** Schema of the signal table, as given (unquoted). */
  readonly schema: string;
  /** Name of the signal table, as given (unquoted). */
  readonly table: string;
  /** The quoted `"schema"."table"` that holds the signals, ready to use in SQL. */
  readonly tableName: string;
  readonly #sql: SignalTableSql;
  readonly #ttlMs: number | undefined;
  readonly #queryTimeoutMillis: number;
  readonly #poolConfig: PoolConfig | undefined;
  readonly #ownsPool: boolean;
  #pool: Pool | undefined;
  #tableReady: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  readonly #tails = new Map<string, Promise<unknown>>();
  #active = 0;
  #idle: (() => void) | undefined;
  #tableIsReady = false;

  constructor(options: PersistPostgresOptions = {}) {
    this.#ttlMs = assertTtl(options.ttlMs, BACKEND);
    this.schema = assertIdentifier("schema", options.schema ?? DEFAULT_SCHEMA);
    this.table = assertIdentifier("table", options.table ?? DEFAULT_TABLE);
    this.#sql = signalTableSql(this.schema, this.table);
    this.tableName = this.#sql.qualifiedName;
    this.#queryTimeoutMillis = assertMillis(
      "queryTimeoutMillis",
      options.queryTimeoutMillis,
      DEFAULT_QUERY_TIMEOUT_MILLIS,
    );
    if (options.pool !== undefined && options.connectionString !== undefined) {
      throw new PersistError("give either pool or connectionString, not both", {
        backend: BACKEND,
        operation: "create",
      });
    }
    this.#ownsPool = options.pool === undefined;
    this.#poolConfig = this.#ownsPool ? ownPoolConfig(options) : undefined;
    this.#pool = options.pool;
    this.#pool?.on("error", ignoreIdleClientError);
  }

  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    const values = [strategyName, symbol, serializeSignalRow(row), this.#ttlMs ?? null];
    await this.#keyed(context, () => this.#query(this.#sql.write, values));
  }

  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const result = await this.#keyed(context, () => this.#query(this.#sql.read, [strategyName, symbol]));
    const stored = result.rows[0]?.signal_json;
    return typeof stored === "string" ? parseSignalRow(stored, context, this.tableName) : null;
  }

  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    await this.#keyed(context, () => this.#query(this.#sql.delete, [strategyName, symbol]));
  }

  /** Writes every entry in one transaction: all of them are stored, or none. */
  async writeMany(entries: readonly SignalEntry[]): Promise<void> {
    const batch = entries.map(({ symbol, strategyName, row }) => {
      const context = { backend: BACKEND, operation: "writeMany", symbol, strategyName } as const;
      assertSignalKey(symbol, strategyName, context);
      assertSignalRow(row, context);
      return [strategyName, symbol, serializeSignalRow(row), this.#ttlMs ?? null];
    });
    if (batch.length === 0) return;
    const keyIds = entries.map(({ symbol, strategyName }) => signalKeyId(symbol, strategyName));
    await this.#operation({ backend: BACKEND, operation: "writeMany" }, keyIds, () =>
      this.#transaction(async (client) => {
        for (const values of batch) await this.#query(this.#sql.write, values, client);
      }),
    );
  }

  /** Every stored key whose row has not expired, read page by page in primary-key order. */
  async *keys(): AsyncIterable<SignalKey> {
    const context = { backend: BACKEND, operation: "keys" } as const;
    let after: QueryResultRow | undefined;
    for (;;) {
      const { rows: page } = await this.#operation(context, [], () =>
        after === undefined
          ? this.#query(this.#sql.firstKeys, [KEYS_PAGE_SIZE])
          : this.#query(this.#sql.nextKeys, [after.strategy_name, after.symbol, KEYS_PAGE_SIZE]),
      );
      for (const row of page) yield { strategyName: row.strategy_name, symbol: row.symbol };
      if (page.length < KEYS_PAGE_SIZE) return;
      after = page[page.length - 1];
    }
  }

  /**
   * Deletes the rows whose TTL has passed and returns how many. Optional housekeeping: expired
   * rows already read as null, this only reclaims their space.
   */
  async deleteExpired(): Promise<number> {
    const context = { backend: BACKEND, operation: "delete" } as const;
    const result = await this.#operation(context, [], () => this.#query(this.#sql.deleteExpired, []));
    return result.rowCount ?? 0;
  }

  /** Resolves when the server answers and the signal table is ready; rejects with a backend error otherwise. */
  async ping(): Promise<void> {
    await this.#operation({ backend: BACKEND, operation: "ping" }, [], () =>
      this.#usePool().query(this.#statement("SELECT 1")),
    );
  }

  /**
   * Waits for the operations already started, then ends the pool if this backend created it.
   * A pool given in the options is left open. Calling it again is harmless.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    const pool = this.#pool;
    if (pool === undefined) return;
    pool.removeListener("error", ignoreIdleClientError);
    if (!this.#ownsPool) return;
    try {
      await pool.end();
    } catch (error) {
      throw toPersistError(error, { backend: BACKEND, operation: "close" });
    }
  }

  /** Runs one operation on one key after the earlier operations on that key, in call order. */
  #keyed<T>(context: KeyContext, body: () => Promise<T>): Promise<T> {
    return this.#operation(context, [signalKeyId(context.symbol, context.strategyName)], body);
  }

  /**
   * Runs `body` once the table is ready and every earlier operation on `keyIds` has settled,
   * wrapping any failure in a PersistError with `context`.
   */
  #operation<T>(context: PersistErrorContext, keyIds: readonly string[], body: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new PersistError("the backend is closed", context));
    }
    const earlier: Promise<unknown>[] = [];
    for (const keyId of keyIds) {
      const tail = this.#tails.get(keyId);
      if (tail !== undefined) earlier.push(tail);
    }
    const wrap = (error: unknown): never => {
      throw toPersistError(error, context);
    };
    // The common case (table known, nothing pending on the key) starts the statement at once,
    // with no promise in between: each one costs a visible share of a local round trip.
    const result =
      earlier.length === 0 && this.#tableIsReady
        ? body().catch(wrap)
        : Promise.allSettled(earlier)
            .then(() => this.#ensureTable(context))
            .then(body)
            .catch(wrap);
    const finish = () => {
      this.#active--;
      if (this.#active === 0) this.#idle?.();
      for (const keyId of keyIds) if (this.#tails.get(keyId) === result) this.#tails.delete(keyId);
    };
    this.#active++;
    for (const keyId of keyIds) this.#tails.set(keyId, result);
    result.then(finish, finish);
    return result;
  }

  // Shared by concurrent callers; a failure is not remembered, so the next operation tries again.
  async #ensureTable(context: PersistErrorContext): Promise<void> {
    this.#tableReady ??= this.#prepareTable().then(
      () => {
        this.#tableIsReady = true;
      },
      (error: unknown) => {
        this.#tableReady = undefined;
        throw error;
      },
    );
    try {
      await this.#tableReady;
    } catch (error) {
      throw toPersistError(error, context, `preparing table ${this.tableName}`);
    }
  }

  async #prepareTable(): Promise<void> {
    // Most starts find the table: no DDL then, so a role without CREATE rights works too.
    if (await this.#tableExists(this.#usePool())) return;
    await this.#transaction(async (client) => {
      await client.query(this.#statement(this.#sql.lockSchema, [this.schema]));
      if (await this.#tableExists(client)) return;
      const schema = await client.query(this.#statement(this.#sql.schemaExists, [this.schema]));
      if (schema.rowCount === 0) await client.query(this.#statement(this.#sql.createSchema));
      await client.query(this.#statement(this.#sql.createTable));
      await client.query(this.#statement(this.#sql.commentTable));
    });
  }

  async #tableExists(queryable: Pool | PoolClient): Promise<boolean> {
    const result = await queryable.query(this.#statement(this.#sql.describeTable, [this.tableName]));
    const { present, comment } = result.rows[0] as { present: boolean; comment: string | null };
    if (!present) return false;
    const version = schemaVersionOf(comment);
    if (version > SCHEMA_VERSION) {
      throw new PersistError(
        `table ${this.tableName} has schema version ${version}, newer than the ${SCHEMA_VERSION} this version of @persist-kit/persist-postgres knows; upgrade the package`,
        { backend: BACKEND, operation: "init" },
      );
    }
    return true;
  }

  #query(statement: NamedStatement, values: unknown[], client?: PoolClient): Promise<QueryResult> {
    return (client ?? this.#usePool()).query(this.#statement(statement, values));
  }

  async #transaction<T>(body: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#usePool().connect();
    // A checked-out client has no pool listener: a connection dropped between two statements
    // would be an unhandled 'error' event. The next statement reports it instead.
    client.on("error", ignoreIdleClientError);
    let broken: unknown;
    try {
      await client.query(this.#statement("BEGIN"));
      const result = await body(client);
      await client.query(this.#statement("COMMIT"));
      return result;
    } catch (error) {
      broken = await this.#rollback(client, error);
      throw error;
    } finally {
      client.removeListener("error", ignoreIdleClientError);
      // Releasing with an error destroys the connection instead of reusing a broken one.
      client.release(broken as Error | undefined);
    }
  }

  /** Rolls back after `error`; returns the error when the connection must not be reused. */
  async #rollback(client: PoolClient, error: unknown): Promise<unknown> {
    if (isUnavailableError(error)) return error;
    try {
      await client.query(this.#statement("ROLLBACK"));
      return undefined;
    } catch (rollbackError) {
      return rollbackError;
    }
  }

  #statement(statement: NamedStatement | string, values?: unknown[]): TimedQueryConfig {
    // Built as a literal, not spread: pg copies the config per query, and a spread object makes
    // that copy measurably slower.
    const query_timeout = this.#queryTimeoutMillis;
    if (typeof statement === "string") return { text: statement, values, query_timeout };
    return { name: statement.name, text: statement.text, values, query_timeout };
  }

  #usePool(): Pool {
    if (this.#pool === undefined) {
      this.#pool = new pg.Pool(this.#poolConfig);
      this.#pool.on("error", ignoreIdleClientError);
    }
    return this.#pool;
  }
}

// An idle pooled connection that the server closes emits 'error' on the pool (or on a checked-out
// client between two statements); unhandled, it would end the process. pg drops that connection,
// the statement that needed it fails, and the next operation opens a new one.
function ignoreIdleClientError(): void {}

function ownPoolConfig(options: PersistPostgresOptions): PoolConfig {
  return {
    application_name: "persist-kit",
    ...options.poolConfig,
    ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
    connectionTimeoutMillis: assertMillis(
      "connectionTimeoutMillis",
      options.connectionTimeoutMillis,
      DEFAULT_CONNECTION_TIMEOUT_MILLIS,
    ),
    statement_timeout: assertMillis(
      "statementTimeoutMillis",
      options.statementTimeoutMillis,
      DEFAULT_STATEMENT_TIMEOUT_MILLIS,
    ),
  };
}

function assertMillis(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (Number.isSafeInteger(value) && value > 0) return value;
  throw new PersistError(`${option} must be a positive whole number of milliseconds, got ${value}`, {
    backend: BACKEND,
    operation: "create",
  });
}

/**
 * Builds a {@link PersistPostgres} from a `postgres://` or `postgresql://` URL; used by core's
 * `createPersist(url)`. The backend owns its pool and ends it on `close()`.
 *
 * @example
 * const persist = fromUrl("postgres://postgres@127.0.0.1:5432/postgres", { ttlMs: 60_000 });
 */
export function fromUrl(url: string, options: PersistOptions = {}): PersistPostgres {
  return new PersistPostgres({ ...options, connectionString: url });
}
