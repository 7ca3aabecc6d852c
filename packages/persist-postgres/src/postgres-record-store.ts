import {
  assertExclusiveOptions,
  BaseRecordStore,
  InvalidOptionError,
  type ListRequest,
  PersistError,
  type PersistErrorContext,
  type RecordChange,
  type RecordCondition,
  type RecordEntry,
  type RecordKey,
  type RecordPage,
  type RecordRead,
  type RecordStoreCapabilities,
  RetryingOnce,
  recordKeyId,
  wholeNumberOption,
} from "@persist-kit/core";
import pg, { type Pool, type PoolClient, type PoolConfig, type QueryConfig, type QueryResult } from "pg";
import { isQueryTimeout, isUnavailableError, TablePreparationError, wrapPostgresError } from "./errors.js";
import {
  assertIdentifier,
  deleteValues,
  listBounds,
  type NamedStatement,
  RECORD_FORMAT,
  type RecordTableSql,
  readValues,
  recordLocation,
  recordTableSql,
  SCHEMA_VERSION,
  schemaVersionOf,
  writeValues,
} from "./record-table.js";

const BACKEND = "postgres";
const DEFAULT_SCHEMA = "public";
const DEFAULT_TABLE = "persist_records";
const DEFAULT_CONNECTION_TIMEOUT_MILLIS = 5_000;
const DEFAULT_QUERY_TIMEOUT_MILLIS = 15_000;

/** Options of {@link PostgresRecordStore}. */
export interface PostgresRecordStoreOptions {
  /** PostgreSQL URL, such as `postgres://user:password@host:5432/db`. Default: pg's defaults (`PG*` environment variables). Not with `pool`. */
  connectionString?: string;
  /** An existing pool to use instead of creating one; `close()` never ends it. Its own timeouts then apply, except `queryTimeoutMillis`. */
  pool?: Pool;
  /** Further settings (ssl, max, ...) for the pool this store creates; the timeout options below take precedence. Ignored with `pool`. */
  poolConfig?: PoolConfig;
  /** Schema of the tables, created when missing: letters, digits and `_`, at most 63. Default: `"public"`. */
  schema?: string;
  /** Name of the record table, created on first use with `<table>_floors` and the view `<table>_signals`: letters, digits and `_`, at most 55. Default: `"persist_records"`. */
  table?: string;
  /** How long to wait for a connection (connect, or a free pooled one) before failing. Default: `5000`. */
  connectionTimeoutMillis?: number;
  /** Server-side `statement_timeout` of the connections this store opens, below `queryTimeoutMillis`. Default: two thirds of `queryTimeoutMillis` (`10000`). */
  statementTimeoutMillis?: number;
  /** Server-side `lock_timeout` of the connections this store opens, at most `statementTimeoutMillis`. Default: half of `statementTimeoutMillis` (`5000`). */
  lockTimeoutMillis?: number;
  /** Client-side limit on each statement's round trip, also with an existing `pool`; past it the server process is terminated. Default: `15000`. */
  queryTimeoutMillis?: number;
}

/** pg honours `query_timeout` per statement, but its QueryConfig type does not declare it. */
interface TimedQueryConfig extends QueryConfig {
  query_timeout: number;
}

/** pg knows the process id of the server process behind each connection, but its types do not declare it. */
interface ServedClient extends PoolClient {
  processID?: number;
}

/**
 * Records in one PostgreSQL table for all namespaces, primary key `(namespace, key)` with the key
 * parts as a `text[]`, the value as `json` (kept as written), a `revision`, a `format` and an optional `expires_at`
 * by the server's clock; revision floors per group in `<table>_floors`. Every write and delete is
 * one call of a PL/pgSQL function created with the tables, which decides the condition under the
 * record's row lock and its group's floor lock (see recordTableSql); a delete removes the record
 * and raises its group's floor. Each commits on its own, so with the server's default
 * `synchronous_commit = on` an acknowledged change survives a crash of the server.
 *
 * Every statement of a pool this store opens runs under a server-side `statement_timeout` and
 * `lock_timeout` below `queryTimeoutMillis`, given when the connection opens (no round trip per
 * operation): the server cancels a statement stuck on a lock or running long, and its change
 * rolls back (`outcome: "not-applied"`). When the client gives up first (the server process is
 * stopped, or starved), the server process is terminated from another connection and the
 * connection is destroyed, never reused, so the statement cannot commit after a later change.
 *
 * Tables and functions are created on the first operation, under an advisory lock so several processes can
 * start at once. Give it a URL (it then owns its pool and `close()` ends it) or an existing
 * `pg.Pool` (never ended here).
 *
 * @example
 * const store = new PostgresRecordStore({ connectionString: process.env.DATABASE_URL });
 * const { revision } = await store.write({ namespace: "risk", parts: ["momentum"] }, "{}");
 * await store.write({ namespace: "risk", parts: ["momentum"] }, "{}", { condition: { revision } });
 */
export class PostgresRecordStore extends BaseRecordStore {
  readonly name = BACKEND;
  readonly capabilities: RecordStoreCapabilities = {
    writeMany: "atomic",
    ttl: true,
    ttlResetsRevision: false,
    durable: true,
  };
  /** Schema of the tables, as given (unquoted). */
  readonly schema: string;
  /** Name of the record table, as given (unquoted). */
  readonly table: string;
  /** The SQL this store runs, for review or for running it by hand. */
  readonly sql: RecordTableSql;
  readonly #queryTimeoutMillis: number;
  readonly #connectionTimeoutMillis: number;
  readonly #poolConfig: PoolConfig | undefined;
  readonly #ownsPool: boolean;
  #pool: Pool | undefined;
  readonly #tables = new RetryingOnce(() => this.#prepareTables());

  constructor(options: PostgresRecordStoreOptions = {}) {
    super();
    this.schema = assertIdentifier("schema", options.schema ?? DEFAULT_SCHEMA);
    this.table = assertIdentifier("table", options.table ?? DEFAULT_TABLE);
    this.sql = recordTableSql(this.schema, this.table);
    this.#queryTimeoutMillis = millisOption(
      "queryTimeoutMillis",
      options.queryTimeoutMillis,
      DEFAULT_QUERY_TIMEOUT_MILLIS,
    );
    this.#connectionTimeoutMillis = millisOption(
      "connectionTimeoutMillis",
      options.connectionTimeoutMillis,
      DEFAULT_CONNECTION_TIMEOUT_MILLIS,
    );
    assertExclusive(options);
    this.#ownsPool = options.pool === undefined;
    this.#poolConfig = this.#ownsPool ? this.#ownPoolConfig(options) : undefined;
    this.#pool = options.pool;
    this.#pool?.on("error", ignoreIdleClientError);
  }

  /** The quoted `"schema"."table"` that holds the records, ready to use in SQL. */
  get tableName(): string {
    return this.sql.qualifiedName;
  }

  /**
   * Deletes the records whose TTL has passed and returns how many, raising their groups' floors
   * so their revisions are kept. Optional housekeeping: expired records already read absent.
   */
  async deleteExpired(): Promise<number> {
    const context: PersistErrorContext = { backend: BACKEND, operation: "delete" };
    return this.lifecycle.run(context, async () => {
      try {
        const result = await this.#query(this.sql.deleteExpired, []);
        return result.rows[0]?.deleted ?? 0;
      } catch (error) {
        throw this.wrapError(error, context);
      }
    });
  }

  protected async readRecord(key: RecordKey, context: PersistErrorContext): Promise<RecordRead> {
    const { rows } = await this.#query(this.sql.read, readValues(recordLocation(key)));
    const row = rows[0];
    const revision = Number(row.revision);
    if (typeof row.json !== "string") return { found: false, revision };
    if (row.format !== RECORD_FORMAT) {
      throw new PersistError(
        `the record is stored in format ${row.format}, which this version of @persist-kit/persist-postgres does not know (it writes ${RECORD_FORMAT}); upgrade the package`,
        { ...context, outcome: "not-applied" },
      );
    }
    return { found: true, json: row.json, revision };
  }

  protected async writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
  ): Promise<RecordChange> {
    const { rows } = await this.#query(this.sql.write, writeValues(recordLocation(key), json, options));
    const { written, current } = rows[0];
    if (written === null) return { applied: false, revision: Number(current) };
    return { applied: true, revision: Number(written) };
  }

  protected async deleteRecord(key: RecordKey, condition: RecordCondition | undefined): Promise<RecordChange> {
    const { rows } = await this.#query(this.sql.delete, deleteValues(recordLocation(key), condition));
    const { raised, current, live } = rows[0];
    if (raised !== null) return { applied: true, revision: Number(raised) };
    // An unconditional delete of an absent or expired key applies and changes nothing.
    return { applied: condition === undefined && !live, revision: Number(current) };
  }

  protected async listRecords(
    namespace: string,
    request: ListRequest,
    context: PersistErrorContext,
  ): Promise<RecordPage> {
    const { lower, upper } = listBounds(request.prefix);
    const after = request.cursor === undefined ? null : decodeCursor(request.cursor, context);
    // One row more than the page tells whether another page follows.
    const values = [namespace, lower, upper, after, request.limit + 1];
    const { rows } = await this.#query(this.sql.list, values);
    const page = rows.slice(0, request.limit).map((row) => ({
      parts: JSON.parse(row.parts) as string[],
      revision: Number(row.revision),
    }));
    const last = page.at(-1);
    return {
      records: page,
      cursor: rows.length > request.limit && last !== undefined ? JSON.stringify(last.parts) : undefined,
    };
  }

  /**
   * Writes every entry in one transaction: all of them are stored, or none. The missing floors of
   * its groups are created first, on their own (a floor of 0 is no floor), so the transaction
   * share-locks all of them, in key order, before it writes any record, in key order: the order
   * deletes take them in too (floor, then record), so two batches, or a batch and a delete,
   * touching the same keys in any order wait for each other instead of deadlocking.
   */
  protected override async writeManyRecords(entries: readonly RecordEntry[], ttlMs: number | undefined): Promise<void> {
    const ordered = [...entries].sort((a, b) => compareIds(recordKeyId(a.key), recordKeyId(b.key)));
    const groups = [ordered.map(({ key }) => key.namespace), ordered.map(({ key }) => key.parts[0] as string)];
    await this.#query(this.sql.createFloors, groups);
    await this.#transaction(async (client) => {
      await this.#query(this.sql.lockFloors, groups, client);
      for (const { key, json } of ordered) {
        await this.#query(this.sql.write, writeValues(recordLocation(key), json, { ttlMs }), client);
      }
    });
  }

  protected async pingStore(): Promise<void> {
    await this.#query("SELECT 1", []);
  }

  protected async closeStore(): Promise<void> {
    const pool = this.#pool;
    if (pool === undefined) return;
    pool.removeListener("error", ignoreIdleClientError);
    if (this.#ownsPool) await pool.end();
  }

  protected wrapError(error: unknown, context: PersistErrorContext): PersistError {
    return wrapPostgresError(error, context);
  }

  // Every statement waits for the tables; once they are known, it starts at once.
  async #query(statement: NamedStatement | string, values: unknown[], client?: PoolClient): Promise<QueryResult> {
    if (!this.#tables.done) await this.#readyTables();
    const config = this.#statement(statement, values);
    return client === undefined ? this.#run(config) : this.#send(client, config);
  }

  // Like pool.query, which hides the connection: a connection that failed is destroyed.
  async #run(config: TimedQueryConfig): Promise<QueryResult> {
    const client = await this.#usePool().connect();
    // A checked-out client has no pool listener: a connection dropped during the statement would
    // be an unhandled 'error' event. The statement reports it instead.
    client.on("error", ignoreIdleClientError);
    let failure: unknown;
    try {
      return await this.#send(client, config);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      client.removeListener("error", ignoreIdleClientError);
      client.release(failure as Error | undefined);
    }
  }

  async #send(client: PoolClient, config: TimedQueryConfig): Promise<QueryResult> {
    try {
      return await client.query(config);
    } catch (error) {
      if (isQueryTimeout(error)) await this.#terminateServerProcess(client);
      throw error;
    }
  }

  // The statement still runs on the server (or waits there to be read) after pg gave up on it. A
  // cancel does not reach it: a server process ignores a cancel while it reads a command, so one
  // that was stopped or starved before it read this statement runs it once it resumes, and commits.
  // A terminated process ends at its next interrupt check instead, before it commits anything
  // more; one that already holds the key's locks makes every later change of the key wait. The
  // caller learns of the failure only once the signal is sent; the connection is destroyed.
  async #terminateServerProcess(client: ServedClient): Promise<void> {
    if (client.processID === undefined) return;
    // What the pool gives every connection it opens: the same server, user and settings.
    const other = new pg.Client({ ...this.#usePool().options, connectionTimeoutMillis: this.#connectionTimeoutMillis });
    other.on("error", ignoreIdleClientError);
    try {
      await other.connect();
      await other.query(this.#statement("SELECT pg_terminate_backend($1)", [client.processID]));
    } catch {
      // Unreachable as well: the outcome stays unknown, which the caller is told anyway.
    } finally {
      await other.end().catch(ignoreIdleClientError);
    }
  }

  async #readyTables(): Promise<void> {
    try {
      await this.#tables.get();
    } catch (error) {
      if (error instanceof PersistError) throw error;
      throw new TablePreparationError(this.tableName, error);
    }
  }

  async #prepareTables(): Promise<void> {
    // Most starts find the tables: no DDL then, so a role without CREATE rights works too.
    if (await this.#tablesExist()) return;
    await this.#transaction(async (client) => {
      await this.#send(client, this.#statement(this.sql.lockSchema, [this.schema]));
      if (await this.#tablesExist(client)) return;
      const schema = await this.#send(client, this.#statement(this.sql.schemaExists, [this.schema]));
      if (schema.rowCount === 0) await this.#send(client, this.#statement(this.sql.createSchema));
      for (const statement of this.sql.setup) await this.#send(client, this.#statement(statement));
    });
  }

  async #tablesExist(client?: PoolClient): Promise<boolean> {
    const names = [this.sql.qualifiedName, this.sql.floorTableName, this.sql.writeFunction, this.sql.deleteFunction];
    const describe = this.#statement(this.sql.describeTable, names);
    const result = await (client === undefined ? this.#run(describe) : this.#send(client, describe));
    const { present, comment } = result.rows[0] as { present: boolean; comment: string | null };
    if (!present) return false;
    const version = schemaVersionOf(comment);
    if (version > SCHEMA_VERSION) {
      throw new PersistError(
        `table ${this.tableName} has schema version ${version}, newer than the ${SCHEMA_VERSION} this version of @persist-kit/persist-postgres knows; upgrade the package`,
        { backend: BACKEND, operation: "init", outcome: "not-applied" },
      );
    }
    return true;
  }

  async #transaction<T>(body: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#usePool().connect();
    // A checked-out client has no pool listener: a connection dropped between two statements
    // would be an unhandled 'error' event. The next statement reports it instead.
    client.on("error", ignoreIdleClientError);
    let broken: unknown;
    try {
      await this.#send(client, this.#statement("BEGIN"));
      const result = await body(client);
      await this.#send(client, this.#statement("COMMIT"));
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
      await this.#send(client, this.#statement("ROLLBACK"));
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

  // The server's timeouts come in the startup message: no round trip, not even once per connection.
  #ownPoolConfig(options: PostgresRecordStoreOptions): PoolConfig {
    const { statementTimeoutMillis, lockTimeoutMillis } = serverTimeouts(options, this.#queryTimeoutMillis);
    return {
      application_name: "persist-kit",
      ...options.poolConfig,
      ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
      connectionTimeoutMillis: this.#connectionTimeoutMillis,
      statement_timeout: statementTimeoutMillis,
      lock_timeout: lockTimeoutMillis,
    };
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

function millisOption(option: string, value: number | undefined, fallback: number): number {
  return wholeNumberOption(BACKEND, option, value, { default: fallback, min: 1 });
}

function assertExclusive(options: PostgresRecordStoreOptions): void {
  assertExclusiveOptions(BACKEND, { pool: options.pool, connectionString: options.connectionString });
}

// The server's timeouts: the statement's below the client's, so that the server's cancel (which
// rolls the change back) arrives before the client gives up; a lock wait at most the statement's.
function serverTimeouts(
  options: PostgresRecordStoreOptions,
  queryTimeoutMillis: number,
): { statementTimeoutMillis: number; lockTimeoutMillis: number } {
  const statementTimeoutMillis = wholeNumberOption(BACKEND, "statementTimeoutMillis", options.statementTimeoutMillis, {
    default: Math.max(1, Math.floor((queryTimeoutMillis * 2) / 3)),
    min: 1,
    max: queryTimeoutMillis - 1,
  });
  const lockTimeoutMillis = wholeNumberOption(BACKEND, "lockTimeoutMillis", options.lockTimeoutMillis, {
    default: Math.max(1, Math.floor(statementTimeoutMillis / 2)),
    min: 1,
    max: statementTimeoutMillis,
  });
  return { statementTimeoutMillis, lockTimeoutMillis };
}

// Key ids are compared as plain strings: any total order serves, as long as every process uses it.
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The key parts a cursor of {@link PostgresRecordStore.list} carries: the last key of the previous page. */
function decodeCursor(cursor: string, context: PersistErrorContext): string[] {
  let parts: unknown;
  try {
    parts = JSON.parse(cursor);
  } catch {
    parts = undefined;
  }
  if (Array.isArray(parts) && parts.length > 0 && parts.every((part) => typeof part === "string")) return parts;
  throw new InvalidOptionError("cursor must be the cursor of an earlier page", context);
}
