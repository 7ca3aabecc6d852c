import { createHash } from "node:crypto";
import { InvalidOptionError, type RecordCondition, type RecordKey, SIGNAL_NAMESPACE } from "@persist-kit/core";

/**
 * The table layout this package writes. Recorded in the record table's comment so a later version
 * can tell which migrations an existing table still needs. Version 1 is the first record layout;
 * nothing was published with the earlier `persist_signals` table, so there is no migration from it.
 */
export const SCHEMA_VERSION = 1;

/** The format of each stored value (column `format`); a later release can migrate rows on read. */
export const RECORD_FORMAT = 1;

const COMMENT_PREFIX = "persist-kit record table, schema version ";
const SCHEMA_VERSION_IN_COMMENT = /^persist-kit record table, schema version (\d+)$/;

// Unquoted PostgreSQL identifier syntax, so a name never needs escaping; it is still quoted, which
// keeps its case as written. Tables leave room for the suffixes of their companions (`_signals`),
// so no name exceeds 63 bytes (NAMEDATALEN - 1) and none is truncated.
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,54}$/;

/** A statement sent as a named prepared statement: `name` is unique per distinct `text`. */
export interface NamedStatement {
  name: string;
  text: string;
}

/** Where one record lives: the `namespace` column and the `key` column (the key parts, a `text[]`). */
export interface RecordLocation {
  namespace: string;
  key: string[];
}

/** Every SQL text this backend runs against one record table and its floor table. */
export interface RecordTableSql {
  /** `"schema"."table"`, quoted: the records. */
  qualifiedName: string;
  /** `"schema"."table_floors"`, quoted: the revision floor of each group (namespace, first key part). */
  floorTableName: string;
  /** `"schema"."table_signals"`, quoted: a view of the open signals. */
  signalViewName: string;
  /** Whether both tables exist, and the record table's comment (which carries the schema version). */
  describeTable: string;
  /** Takes a transaction-scoped advisory lock keyed by the schema name (parameter $1). */
  lockSchema: string;
  schemaExists: string;
  createSchema: string;
  createTable: string;
  createFloorTable: string;
  createSignalView: string;
  commentTable: string;
  /** The statements that create everything, in order (after `createSchema`): run them to prepare by hand. */
  setup: readonly string[];
  /** Parameters: {@link readValues}. Columns: `json` (text, null when absent), `revision`, `format`. */
  read: NamedStatement;
  /** Parameters: {@link writeValues}. Columns: `written` (the new revision, null when not applied), `current`. */
  write: NamedStatement;
  /** Parameters: {@link deleteValues}. Columns: `raised` (the new revision, null when not applied), `current`, `live`. */
  delete: NamedStatement;
  /** Parameters: namespace, lower bound, upper bound, cursor (all `text[]` or null), limit. Columns: `parts` (JSON text), `revision`. */
  list: NamedStatement;
  /** Share-locks the existing floors of groups $1 (namespaces) / $2 (first parts), in key order: the first statement of a batch. */
  lockFloors: NamedStatement;
  /** Deletes expired records, raising their groups' floors to keep their revisions. Column: `deleted`. */
  deleteExpired: NamedStatement;
}

/**
 * Throws {@link InvalidOptionError} unless `value` is a plain PostgreSQL identifier (letters,
 * digits, underscores, not starting with a digit): at most 63 characters for a schema, 55 for a
 * table (its floor table and signal view add a suffix). Returns it unchanged.
 */
export function assertIdentifier(option: "schema" | "table", value: unknown): string {
  const pattern = option === "schema" ? SCHEMA_NAME : TABLE_NAME;
  if (typeof value === "string" && pattern.test(value)) return value;
  throw new InvalidOptionError(
    `${option} must match ${pattern.source} (letters, digits and underscores), got ${JSON.stringify(value)}`,
    { backend: "postgres", operation: "create" },
  );
}

/** `name` as a quoted identifier; embedded double quotes are doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The schema version recorded in a table comment; a table without one is taken as version 1. */
export function schemaVersionOf(comment: string | null): number {
  const match = comment === null ? null : SCHEMA_VERSION_IN_COMMENT.exec(comment);
  return match?.[1] === undefined ? 1 : Number(match[1]);
}

/** The stored location of a record key: its namespace and its parts as the `key` array. */
export function recordLocation(key: RecordKey): RecordLocation {
  return { namespace: key.namespace, key: [...key.parts] };
}

/**
 * The stored location of one open signal: namespace `"signal"`, key `{strategyName, symbol}`, so
 * `key[1]` is the strategy and `key[2]` the symbol.
 * @example signalLocation("BTC/USDT", "momentum") // { namespace: "signal", key: ["momentum", "BTC/USDT"] }
 */
export function signalLocation(symbol: string, strategyName: string): RecordLocation {
  return { namespace: SIGNAL_NAMESPACE, key: [strategyName, symbol] };
}

/** The parameters of {@link RecordTableSql.read}. */
export function readValues(location: RecordLocation): unknown[] {
  return [location.namespace, location.key];
}

/** The parameters of {@link RecordTableSql.write}: unconditional and without TTL unless given. */
export function writeValues(
  location: RecordLocation,
  json: string,
  options: { condition?: RecordCondition | undefined; ttlMs?: number | undefined } = {},
): unknown[] {
  const { revision, below } = conditionValues(options.condition);
  return [location.namespace, location.key, json, options.ttlMs ?? null, revision, below];
}

/** The parameters of {@link RecordTableSql.delete}: unconditional unless given. */
export function deleteValues(location: RecordLocation, condition?: RecordCondition): unknown[] {
  const { revision, below } = conditionValues(condition);
  return [location.namespace, location.key, revision, below];
}

function conditionValues(condition: RecordCondition | undefined): { revision: number | null; below: number | null } {
  if (condition === undefined) return { revision: null, below: null };
  if ("below" in condition) return { revision: null, below: condition.below };
  return { revision: condition.revision, below: null };
}

// Prepared statements are cached per connection by name, and pg refuses one name for two texts.
// Hashing the text (which holds the schema and table) gives every table its own names, so
// several backends can share one pool.
function named(kind: string, text: string): NamedStatement {
  const digest = createHash("sha256").update(text).digest("hex").slice(0, 16);
  return { name: `persist_kit_${kind}_${digest}`, text };
}

// Whether a stored revision `c` meets the condition in parameters `at` ({ revision }) and `below`
// ({ below }); both NULL is unconditional. The same rule as core's decideCondition.
function meets(c: string, at: string, below: string): string {
  return `CASE WHEN ${at}::bigint IS NOT NULL THEN ${c} = ${at}::bigint WHEN ${below}::bigint IS NOT NULL THEN ${c} < ${below}::bigint ELSE true END`;
}

// The revision a change stores on top of `c`: R for { below: R }, else the next one.
function nextRevision(c: string, below: string): string {
  return `COALESCE(${below}::bigint, ${c} + 1)`;
}

/**
 * The SQL persist-postgres runs for the record table `schema.table` (both names must pass
 * {@link assertIdentifier}): to review it, create the tables ahead of time, or run the same
 * statements by hand with {@link readValues}, {@link writeValues} and {@link deleteValues}.
 * @example
 * const sql = recordTableSql("public", "persist_records");
 * await pool.query({ ...sql.write, values: writeValues(signalLocation("BTC/USDT", "momentum"), json) });
 */
export function recordTableSql(schema: string, table: string): RecordTableSql {
  const records = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  const floors = `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_floors`)}`;
  const signalView = `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_signals`)}`;
  const live = "(expires_at IS NULL OR expires_at > now())";
  // COLLATE "C": keys compare byte for byte, so two spellings of one accented letter stay two
  // keys whatever the database's default collation, and list order is the same everywhere.
  // value json, not jsonb: json keeps the text exactly as given (jsonb reorders keys, respaces,
  // prints numbers as numeric and refuses the escape \u0000), and still refuses text that is not JSON.
  const createTable = `CREATE TABLE IF NOT EXISTS ${records} (
  namespace text COLLATE "C" NOT NULL,
  key text[] COLLATE "C" NOT NULL,
  value json NOT NULL,
  revision bigint NOT NULL,
  format smallint NOT NULL DEFAULT ${RECORD_FORMAT},
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  PRIMARY KEY (namespace, key)
)`;
  const createFloorTable = `CREATE TABLE IF NOT EXISTS ${floors} (
  namespace text COLLATE "C" NOT NULL,
  group_key text COLLATE "C" NOT NULL,
  floor bigint NOT NULL,
  PRIMARY KEY (namespace, group_key)
)`;
  const createSignalView = `CREATE OR REPLACE VIEW ${signalView} AS
SELECT key[1] AS strategy_name, key[2] AS symbol, value AS signal, revision, created_at, updated_at, expires_at
FROM ${records} WHERE namespace = '${SIGNAL_NAMESPACE}' AND cardinality(key) = 2 AND ${live}`;
  const commentTable = `COMMENT ON TABLE ${records} IS '${COMMENT_PREFIX}${SCHEMA_VERSION}'`;
  return {
    qualifiedName: records,
    floorTableName: floors,
    signalViewName: signalView,
    describeTable: `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS present, obj_description(to_regclass($1), 'pg_class') AS comment`,
    // Two sessions running CREATE ... IF NOT EXISTS at once can both find the name free, and one
    // then fails on a unique index of the catalog; the lock makes them take turns.
    lockSchema: `SELECT pg_advisory_xact_lock(hashtextextended('persist-kit:' || $1, 0))`,
    schemaExists: "SELECT 1 FROM pg_namespace WHERE nspname = $1",
    createSchema: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`,
    createTable,
    createFloorTable,
    createSignalView,
    commentTable,
    setup: [createTable, createFloorTable, createSignalView, commentTable],
    // The value is read as text, exactly as written: pg's json parser can be replaced
    // process-wide (types.setTypeParser). An expired record reads absent with its own revision;
    // an absent one with its group's floor, looked up only then.
    read: named(
      "read",
      `SELECT CASE WHEN stored.live THEN stored.value::text END AS json, stored.format,
  COALESCE(stored.revision, (SELECT floor FROM ${floors} WHERE namespace = $1::text AND group_key = ($2::text[])[1]), 0) AS revision
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
  SELECT value, format, revision, ${live} AS live FROM ${records} WHERE namespace = $1::text AND key = $2::text[]
) AS stored ON true`,
    ),
    write: named("write", writeStatement(records, floors, live)),
    delete: named("delete", deleteStatement(records, floors, live)),
    // Keyset paging in primary-key order; $2/$3 bound the prefix range exactly (see listBounds).
    list: named(
      "list",
      `SELECT to_json(key)::text AS parts, revision FROM ${records}
WHERE namespace = $1::text AND ($2::text[] IS NULL OR key >= $2) AND ($3::text[] IS NULL OR key < $3)
  AND ($4::text[] IS NULL OR key > $4) AND ${live}
ORDER BY key LIMIT $5`,
    ),
    lockFloors: named(
      "lock_floors",
      `SELECT 1 FROM ${floors} WHERE (namespace, group_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY namespace, group_key FOR SHARE`,
    ),
    deleteExpired: named(
      "delete_expired",
      `WITH expired AS (
  DELETE FROM ${records} WHERE expires_at <= now() RETURNING namespace, key[1] AS group_key, revision
), kept AS (
  INSERT INTO ${floors} AS f (namespace, group_key, floor)
  SELECT namespace, group_key, max(revision) FROM expired GROUP BY namespace, group_key
  ON CONFLICT (namespace, group_key) DO UPDATE SET floor = GREATEST(f.floor, EXCLUDED.floor)
)
SELECT count(*)::int AS deleted FROM expired`,
    ),
  };
}

// One statement, $1 namespace, $2 key, $3 JSON, $4 TTL ms or NULL, $5 { revision } or NULL,
// $6 { below } or NULL. In READ COMMITTED every lock below re-reads the newest committed
// version of the row it locks, whatever the statement's snapshot saw:
// - a stored record (live or expired) is locked FOR UPDATE; its revision is the current one and
//   the ON CONFLICT path applies, deciding again on the newest version in its WHERE;
// - an absent key takes its group's floor under FOR SHARE (created at 0 by the group's first
//   write), so a delete raising the floor either waits for this write to commit or is seen by it:
//   a key never appears below a floor a reader already saw. Writers share the lock;
// - the same key inserted concurrently makes the INSERT conflict, and the WHERE decides again.
// CASE and COALESCE evaluate in order, so a stored record never takes the floor lock.
function writeStatement(records: string, floors: string, live: string): string {
  return `WITH stored AS MATERIALIZED (
  SELECT revision, ${live} AS live FROM ${records} WHERE namespace = $1::text AND key = $2::text[] FOR UPDATE
), locked_floor AS MATERIALIZED (
  SELECT floor FROM ${floors} WHERE namespace = $1::text AND group_key = ($2::text[])[1] FOR SHARE
), created_floor AS (
  INSERT INTO ${floors} AS f (namespace, group_key, floor)
  SELECT $1::text, ($2::text[])[1], 0
  WHERE CASE WHEN EXISTS (SELECT FROM stored) THEN false ELSE NOT EXISTS (SELECT FROM locked_floor) END
  ON CONFLICT (namespace, group_key) DO UPDATE SET floor = f.floor
  RETURNING floor
), current AS MATERIALIZED (
  SELECT EXISTS (SELECT FROM stored) AS present,
    COALESCE((SELECT revision FROM stored), (SELECT floor FROM locked_floor), (SELECT floor FROM created_floor)) AS revision
), written AS (
  INSERT INTO ${records} AS r (namespace, key, value, revision, format, created_at, updated_at, expires_at)
  SELECT $1::text, $2::text[], $3::json, ${nextRevision("current.revision", "$6")}, ${RECORD_FORMAT}, now(), now(),
    now() + $4::bigint * interval '1 millisecond'
  FROM current WHERE current.present OR ${meets("current.revision", "$5", "$6")}
  ON CONFLICT (namespace, key) DO UPDATE SET
    value = EXCLUDED.value,
    revision = ${nextRevision("r.revision", "$6")},
    format = EXCLUDED.format,
    created_at = CASE WHEN r.expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END,
    updated_at = EXCLUDED.updated_at,
    expires_at = EXCLUDED.expires_at
  WHERE ${meets("r.revision", "$5", "$6")}
  RETURNING revision
)
SELECT (SELECT revision FROM written) AS written, (SELECT revision FROM current) AS current`;
}

// One statement, $1 namespace, $2 key, $3 { revision } or NULL, $4 { below } or NULL. The group's
// floor is locked first (FOR UPDATE), then the record: the order every write transaction takes
// them in too, so the two cannot deadlock. The record goes and the floor rises to at least the
// new revision in the same statement, so no reader sees one without the other. An absent key's
// condition is decided again on the newest floor in the ON CONFLICT WHERE, so of racing deletes
// exactly one raises it. An unconditional delete of an absent or expired key changes nothing.
function deleteStatement(records: string, floors: string, live: string): string {
  return `WITH locked_floor AS MATERIALIZED (
  SELECT floor FROM ${floors} WHERE namespace = $1::text AND group_key = ($2::text[])[1] FOR UPDATE
), stored AS MATERIALIZED (
  SELECT revision, ${live} AS live FROM ${records}
  WHERE namespace = $1::text AND key = $2::text[] AND (SELECT count(*) FROM locked_floor) >= 0
  FOR UPDATE
), current AS MATERIALIZED (
  SELECT EXISTS (SELECT FROM stored) AS present, COALESCE((SELECT live FROM stored), false) AS live,
    COALESCE((SELECT revision FROM stored), (SELECT floor FROM locked_floor), 0) AS revision
), decided AS MATERIALIZED (
  SELECT present, ${nextRevision("revision", "$4")} AS next FROM current
  WHERE (live OR $3::bigint IS NOT NULL OR $4::bigint IS NOT NULL) AND ${meets("revision", "$3", "$4")}
), deleted AS (
  DELETE FROM ${records} WHERE namespace = $1::text AND key = $2::text[] AND EXISTS (SELECT FROM decided WHERE present)
), raised AS (
  INSERT INTO ${floors} AS f (namespace, group_key, floor)
  SELECT $1::text, ($2::text[])[1], next FROM decided
  ON CONFLICT (namespace, group_key) DO UPDATE SET floor = GREATEST(f.floor, EXCLUDED.floor)
  WHERE (SELECT present FROM decided) OR ${meets("f.floor", "$3", "$4")}
  RETURNING floor
)
SELECT (SELECT floor FROM raised) AS raised, current.revision AS current, current.live FROM current`;
}

/**
 * The exact range of keys that start with `prefix`, for the list statement: every such key is
 * at least `prefix` and below `prefix` with its last part followed by U+0001, the smallest
 * character a key part may hold after it (core refuses control characters, PostgreSQL U+0000).
 */
export function listBounds(prefix: readonly string[]): { lower: string[] | null; upper: string[] | null } {
  const last = prefix.at(-1);
  if (last === undefined) return { lower: null, upper: null };
  return { lower: [...prefix], upper: [...prefix.slice(0, -1), `${last}\u0001`] };
}
