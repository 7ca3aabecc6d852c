import {
  assertExclusiveOptions,
  BaseRecordStore,
  CorruptDataError,
  connectionSecrets,
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
  recordKeyProblem,
  reportWarning,
  wholeNumberOption,
} from "@persist-kit/core";
import pg, { type Pool, type PoolClient, type PoolConfig, type QueryConfig, type QueryResult } from "pg";
import {
  DURABILITY_SETTINGS_SQL,
  describeServers,
  durabilityProblems,
  type PostgresDurabilityReport,
  type PostgresServerDurability,
  serverAddress,
  serverDurability,
} from "./durability.js";
import {
  isQueryTimeout,
  isTransactionConflict,
  isUnavailableError,
  NotDurableServerError,
  TablePreparationError,
  wrapPostgresError,
} from "./errors.js";
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
  writeManyValues,
  writeValues,
} from "./record-table.js";

const BACKEND = "postgres";
const DEFAULT_SCHEMA = "public";
export const DEFAULT_TABLE = "persist_records";
const DEFAULT_CONNECTION_TIMEOUT_MILLIS = 5_000;
const DEFAULT_QUERY_TIMEOUT_MILLIS = 15_000;
// The longest pause before a statement rolled back by a deadlock or serialization failure runs
// again: the pauses double from 1 ms, each a random part of the bound.
const MAX_RETRY_PAUSE_MILLIS = 100;

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
  /** Refuse connections whose settings can lose acknowledged writes (see `describeDurability()`): every operation then rejects with `NotDurableError`, nothing sent. Default: `false` (a warning through `listenWarning`). */
  requireDurable?: boolean;
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
 * Each new connection's settings are checked before its first statement: `synchronous_commit =
 * off` (or `local` with synchronous standbys), `fsync = off` or `full_page_writes = off` can lose
 * acknowledged writes, and each is reported once through core's `listenWarning`, or refused
 * with `requireDurable`. A deadlock or serialization failure rolled the statement back and is
 * retried, until `queryTimeoutMillis` after the first attempt.
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
  readonly #requireDurable: boolean;
  // Every password the store was given: redacted in every error it reports.
  readonly #secrets: readonly string[];
  // Connections whose settings were checked: found durable, or reported without requireDurable.
  readonly #checkedConnections = new WeakSet<PoolClient>();
  readonly #reportedWarnings = new Set<string>();
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
    assertNoFieldsTheUrlOverrides(options);
    // A URL a driver could read two ways is refused here, before pg parses it: pg would take
    // part of the password for a host name and show it in a connection error.
    this.#secrets = connectionSecrets(BACKEND, {
      urls: [options.connectionString, options.poolConfig?.connectionString, options.pool?.options.connectionString],
      passwords: [options.poolConfig?.password, options.pool?.options.password],
    });
    this.#requireDurable = booleanOption("requireDurable", options.requireDurable);
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
   * What the server does to keep acknowledged writes, as a connection of this store sees it:
   * `synchronous_commit` (with the role's and database's settings), `synchronous_standby_names`,
   * `fsync`, `full_page_writes`, with `crashSafe` and warnings. Answers with `requireDurable` too.
   * @example
   * const report = await store.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  async describeDurability(): Promise<PostgresDurabilityReport> {
    const context: PersistErrorContext = { backend: BACKEND, operation: "describe" };
    return this.lifecycle.run(context, async () => {
      try {
        const client = await this.#checkOut({ refuse: false });
        let failure: unknown;
        try {
          return describeServers([await this.#readServerDurability(client)]);
        } catch (error) {
          failure = error;
          throw error;
        } finally {
          this.#checkIn(client, failure);
        }
      } catch (error) {
        throw this.wrapError(error, context);
      }
    });
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
    if (!row.stored)
      return { found: false, revision: this.#storedRevision(row.revision, context, "the revision floor of its group") };
    const revision = this.#storedRevision(row.revision, context);
    if (!row.live) return { found: false, revision };
    if (row.format === null) throw this.#corrupt("its format is SQL NULL", context);
    if (row.format !== RECORD_FORMAT) {
      throw new PersistError(
        `the record is stored in format ${row.format}, which this version of @persist-kit/persist-postgres does not know (it writes ${RECORD_FORMAT}); upgrade the package`,
        { ...context, outcome: "not-applied" },
      );
    }
    // SQL NULL, not the JSON text null (which reads as "null"): no value at all.
    if (row.json === null) throw this.#corrupt("its value is SQL NULL, not JSON", context);
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
    const page = rows.slice(0, request.limit).map((row) => this.#listedRecord(namespace, row, context));
    const last = page.at(-1);
    return {
      records: page,
      cursor: rows.length > request.limit && last !== undefined ? JSON.stringify(last.parts) : undefined,
    };
  }

  /**
   * Writes every entry in one statement, so in one transaction: all of them are stored, or none.
   * The missing floors of its groups are created first, on their own (a floor of 0 is no floor);
   * the statement then share-locks all of them before it writes any record, both in key order,
   * sorted on the server whatever order the entries come in: the order deletes take them in too
   * (floor, then record), so two batches, or a batch and a delete, touching the same keys in any
   * order wait for each other instead of deadlocking.
   */
  protected override async writeManyRecords(entries: readonly RecordEntry[], ttlMs: number | undefined): Promise<void> {
    const values = writeManyValues(
      entries.map(({ key, json }) => ({ location: recordLocation(key), json })),
      ttlMs,
    );
    await this.#query(this.sql.createFloors, values.slice(0, 2));
    await this.#query(this.sql.writeMany, values);
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
    return wrapPostgresError(error, { ...context, secrets: this.#secrets });
  }

  // Every statement waits for the tables; once they are known, it starts at once.
  async #query(statement: NamedStatement | string, values: unknown[]): Promise<QueryResult> {
    if (!this.#tables.done) await this.#readyTables();
    return this.#runRetrying(this.#statement(statement, values));
  }

  // Each statement is its own transaction, and a deadlock (40P01) or serialization failure
  // (40001) rolled all of it back: it runs again after a random pause (so that two transactions
  // that met do not meet again in step), until queryTimeoutMillis after the first attempt.
  async #runRetrying(config: TimedQueryConfig): Promise<QueryResult> {
    const deadline = performance.now() + this.#queryTimeoutMillis;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#run(config);
      } catch (error) {
        const pause = Math.random() * Math.min(MAX_RETRY_PAUSE_MILLIS, 2 ** attempt);
        if (!isTransactionConflict(error) || performance.now() + pause >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  // Like pool.query, which hides the connection: a connection that failed is destroyed.
  async #run(config: TimedQueryConfig): Promise<QueryResult> {
    const client = await this.#checkOut();
    let failure: unknown;
    try {
      return await this.#send(client, config);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      this.#checkIn(client, failure);
    }
  }

  // A pooled connection, its settings checked on its first use: a role's, a database's or the
  // session's own synchronous_commit can differ between connections of one pool, and a new
  // connection after a restart may reach a server configured differently. One round trip per
  // new connection, none per operation.
  async #checkOut({ refuse = this.#requireDurable } = {}): Promise<PoolClient> {
    const client = await this.#usePool().connect();
    // A checked-out client has no pool listener: a connection dropped during a statement would
    // be an unhandled 'error' event. The statement reports it instead.
    client.on("error", ignoreIdleClientError);
    if (this.#checkedConnections.has(client)) return client;
    let problems: string[];
    try {
      problems = durabilityProblems(await this.#readServerDurability(client)).map(({ message, ...details }) => {
        this.#warnOnce(message, details);
        return message;
      });
    } catch (error) {
      this.#checkIn(client, error);
      throw error;
    }
    if (problems.length === 0 || !this.#requireDurable) {
      this.#checkedConnections.add(client);
      return client;
    }
    // Not marked as checked: describeDurability() only reads from it, and the next use checks again.
    if (!refuse) return client;
    const refused = new NotDurableServerError(problems);
    // Destroyed, not pooled: once the settings are fixed, the next connection finds them fixed.
    this.#checkIn(client, refused);
    throw refused;
  }

  // Releasing with an error destroys the connection instead of reusing a broken one.
  #checkIn(client: PoolClient, failure?: unknown): void {
    client.removeListener("error", ignoreIdleClientError);
    client.release(failure as Error | undefined);
  }

  async #readServerDurability(client: ServedClient): Promise<PostgresServerDurability> {
    const { rows } = await this.#send(client, this.#statement(DURABILITY_SETTINGS_SQL));
    return serverDurability(serverAddress(client.host, client.port), rows[0]);
  }

  #warnOnce(message: string, details: Record<string, unknown>): void {
    if (this.#reportedWarnings.has(message)) return;
    this.#reportedWarnings.add(message);
    reportWarning({ backend: BACKEND, kind: "durability", message, details });
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
      if (error instanceof PersistError || error instanceof NotDurableServerError) throw error;
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
    const { qualifiedName, floorTableName, writeFunction, deleteFunction, batchFunction } = this.sql;
    const names = [qualifiedName, floorTableName, writeFunction, deleteFunction, batchFunction];
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
    const client = await this.#checkOut();
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
      this.#checkIn(client, broken);
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

  /** A stored row's revision; a row without one (SQL NULL) or beyond a double's exact range is corrupt. */
  #storedRevision(stored: string | null, context: PersistErrorContext, what = "its revision"): number {
    const revision = Number(stored);
    if (stored !== null && /^\d+$/.test(stored) && Number.isSafeInteger(revision)) return revision;
    throw this.#corrupt(`${what} is ${stored === null ? "SQL NULL" : stored}, not a revision`, context);
  }

  // A listed row must be one a read can reach: a key core accepts, and a revision.
  #listedRecord(namespace: string, row: { parts: string; revision: string | null }, context: PersistErrorContext) {
    const parts: unknown = JSON.parse(row.parts);
    const problem = recordKeyProblem({ namespace, parts });
    if (problem !== undefined) {
      throw this.#corrupt(
        `the stored key ${row.parts} of namespace ${JSON.stringify(namespace)} is not a key (${problem})`,
        context,
      );
    }
    const key = parts as string[];
    return {
      parts: key,
      revision: this.#storedRevision(row.revision, { ...context, record: { namespace, parts: key } }),
    };
  }

  #corrupt(problem: string, context: PersistErrorContext): CorruptDataError {
    return new CorruptDataError(`the row in ${this.tableName} is not a record: ${problem}; it was left in place`, {
      ...context,
      outcome: "not-applied",
    });
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

// pg reads a connection string over the pool's own settings: a password, user, host, port or
// database beside one would be dropped without a word (an empty password from the URL wins).
function assertNoFieldsTheUrlOverrides(options: PostgresRecordStoreOptions): void {
  const url = options.connectionString ?? options.poolConfig?.connectionString;
  if (url === undefined || options.poolConfig === undefined) return;
  const given = URL_FIELDS.filter((field) => options.poolConfig?.[field] !== undefined);
  if (given.length === 0) return;
  throw new InvalidOptionError(
    `poolConfig.${given.join(", poolConfig.")} would be ignored: pg takes these from the connection string. ` +
      "Put them in the URL (a password percent-encoded), or give them in poolConfig without a connection string",
    { backend: BACKEND, operation: "create" },
  );
}

const URL_FIELDS = ["user", "password", "host", "port", "database"] as const;

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

function booleanOption(option: string, value: unknown): boolean {
  if (value === undefined || typeof value === "boolean") return value === true;
  throw new InvalidOptionError(`${option} must be true or false, got ${JSON.stringify(value)}`, {
    backend: BACKEND,
    operation: "create",
  });
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
