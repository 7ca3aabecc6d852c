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

/**
 * The SQLSTATE the write and delete functions raise for a stored record without a revision (a
 * table made by hand without the NOT NULL constraints): the change is refused, the row left.
 */
export const CORRUPT_RECORD_SQLSTATE = "PK001";

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
  /** `"schema"."table_write"(...)`: the signature of the function behind {@link RecordTableSql.write}, for `to_regprocedure`. */
  writeFunction: string;
  /** `"schema"."table_delete"(...)`: the signature of the function behind {@link RecordTableSql.delete}, for `to_regprocedure`. */
  deleteFunction: string;
  /** `"schema"."table_batch"(...)`: the signature of the function behind {@link RecordTableSql.writeMany}, for `to_regprocedure`. */
  batchFunction: string;
  /** Whether both tables and the three functions exist (parameters: their names), and the record table's comment (which carries the schema version). */
  describeTable: string;
  /** Takes a transaction-scoped advisory lock keyed by the schema name (parameter $1). */
  lockSchema: string;
  schemaExists: string;
  createSchema: string;
  createTable: string;
  createFloorTable: string;
  createWriteFunction: string;
  createDeleteFunction: string;
  createBatchFunction: string;
  createSignalView: string;
  commentTable: string;
  /** The statements that create everything, in order (after `createSchema`): run them to prepare by hand. */
  setup: readonly string[];
  /**
   * Parameters: {@link readValues}. Columns: `stored` (whether the key has a row), `live` (not
   * expired), `json` (the value as text; null when absent or expired, and for a value that is SQL
   * NULL), `revision` (the row's, or its group's floor when there is no row), `format`.
   */
  read: NamedStatement;
  /** Parameters: {@link writeValues}. Columns: `written` (the new revision, null when not applied), `current`. */
  write: NamedStatement;
  /** Parameters: {@link deleteValues}. Columns: `raised` (the new revision, null when not applied), `current`, `live`. */
  delete: NamedStatement;
  /** Parameters: namespace, lower bound, upper bound, cursor (all `text[]` or null), limit. Columns: `parts` (JSON text), `revision`. */
  list: NamedStatement;
  /** Creates the missing floors (at 0) of the groups of a batch, in key order; parameters: the first two of {@link writeManyValues}. Run on its own before {@link RecordTableSql.writeMany}. */
  createFloors: NamedStatement;
  /**
   * Parameters: {@link writeManyValues}. Writes every entry in one statement, so in one
   * transaction: share-locks the batch's floors, then writes the records, both in key order.
   * Column: `written` (how many entries).
   */
  writeMany: NamedStatement;
  /** Deletes expired records, locking their groups' floors first and raising them to keep their revisions. Column: `deleted`. */
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

/**
 * The parameters of {@link RecordTableSql.writeMany}: the namespaces, the keys (each a JSON array
 * of its parts), the JSON texts and the TTL, entry by entry in the order given; the last entry of
 * a key given twice wins.
 */
export function writeManyValues(
  entries: readonly { location: RecordLocation; json: string }[],
  ttlMs?: number | undefined,
): unknown[] {
  return [
    entries.map(({ location }) => location.namespace),
    entries.map(({ location }) => JSON.stringify(location.key)),
    entries.map(({ json }) => json),
    ttlMs ?? null,
  ];
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
  const writeFn = `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_write`)}`;
  const deleteFn = `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_delete`)}`;
  const batchFn = `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_batch`)}`;
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
  const createWriteFunction = writeFunction(writeFn, records, floors);
  const createDeleteFunction = deleteFunction(deleteFn, records, floors);
  const createBatchFunction = batchFunction(batchFn, writeFn, floors);
  const commentTable = `COMMENT ON TABLE ${records} IS '${COMMENT_PREFIX}${SCHEMA_VERSION}'`;
  return {
    qualifiedName: records,
    floorTableName: floors,
    signalViewName: signalView,
    writeFunction: `${writeFn}(text,text[],json,bigint,bigint,bigint)`,
    deleteFunction: `${deleteFn}(text,text[],bigint,bigint)`,
    batchFunction: `${batchFn}(text[],text[],json[],bigint)`,
    describeTable: `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL
  AND to_regprocedure($3) IS NOT NULL AND to_regprocedure($4) IS NOT NULL AND to_regprocedure($5) IS NOT NULL AS present,
  obj_description(to_regclass($1), 'pg_class') AS comment`,
    // Two sessions running CREATE ... IF NOT EXISTS at once can both find the name free, and one
    // then fails on a unique index of the catalog; the lock makes them take turns.
    lockSchema: `SELECT pg_advisory_xact_lock(hashtextextended('persist-kit:' || $1, 0))`,
    schemaExists: "SELECT 1 FROM pg_namespace WHERE nspname = $1",
    createSchema: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`,
    createTable,
    createFloorTable,
    createWriteFunction,
    createDeleteFunction,
    createBatchFunction,
    createSignalView,
    commentTable,
    setup: [
      createTable,
      createFloorTable,
      createWriteFunction,
      createDeleteFunction,
      createBatchFunction,
      createSignalView,
      commentTable,
    ],
    // The value is read as text, exactly as written: pg's json parser can be replaced
    // process-wide (types.setTypeParser), and the JSON text null stays apart from SQL NULL. An
    // expired record reads absent with its own revision; an absent one with its group's floor,
    // looked up only then. One snapshot sees both, and a delete removes the record and raises
    // the floor in one transaction. `live` is never NULL for a row, so its absence marks no row.
    read: named(
      "read",
      `SELECT stored.live IS NOT NULL AS stored, stored.live, CASE WHEN stored.live THEN stored.value::text END AS json, stored.format,
  CASE WHEN stored.live IS NULL
    THEN COALESCE((SELECT COALESCE(floor::text, 'SQL NULL') FROM ${floors} WHERE namespace = $1::text AND group_key = ($2::text[])[1]), '0')
    ELSE stored.revision::text END AS revision
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
  SELECT value, format, revision, ${live} AS live FROM ${records} WHERE namespace = $1::text AND key = $2::text[]
) AS stored ON true`,
    ),
    write: named(
      "write",
      `SELECT written, current_revision AS current FROM ${writeFn}($1::text, $2::text[], $3::json, $4::bigint, $5::bigint, $6::bigint)`,
    ),
    delete: named(
      "delete",
      `SELECT raised, current_revision AS current, live FROM ${deleteFn}($1::text, $2::text[], $3::bigint, $4::bigint)`,
    ),
    // Keyset paging in primary-key order; $2/$3 bound the prefix range exactly (see listBounds).
    list: named(
      "list",
      `SELECT to_json(key)::text AS parts, revision FROM ${records}
WHERE namespace = $1::text AND ($2::text[] IS NULL OR key >= $2) AND ($3::text[] IS NULL OR key < $3)
  AND ($4::text[] IS NULL OR key > $4) AND ${live}
ORDER BY key LIMIT $5`,
    ),
    createFloors: named(
      "create_floors",
      `INSERT INTO ${floors} (namespace, group_key, floor)
SELECT DISTINCT e.namespace COLLATE "C", (e.key::json ->> 0) COLLATE "C", 0::bigint
FROM unnest($1::text[], $2::text[]) AS e(namespace, key) ORDER BY 1, 2
ON CONFLICT (namespace, group_key) DO NOTHING`,
    ),
    writeMany: named("write_many", `SELECT written FROM ${batchFn}($1::text[], $2::text[], $3::json[], $4::bigint)`),
    // Floors first, in key order, then the records: the order every delete and batch takes them in.
    // A record rewritten meanwhile is checked again on its newest version and kept.
    deleteExpired: named(
      "delete_expired",
      `WITH locked AS MATERIALIZED (
  SELECT f.namespace, f.group_key FROM ${floors} AS f
  WHERE (f.namespace, f.group_key) IN (SELECT r.namespace, r.key[1] FROM ${records} AS r WHERE r.expires_at <= now())
  ORDER BY f.namespace, f.group_key FOR UPDATE
), expired AS (
  DELETE FROM ${records} AS r USING locked
  WHERE r.namespace = locked.namespace AND r.key[1] = locked.group_key AND r.expires_at <= now()
  RETURNING r.namespace, r.key[1] AS group_key, r.revision
), kept AS (
  UPDATE ${floors} AS f SET floor = GREATEST(f.floor, top.revision)
  FROM (SELECT namespace, group_key, max(revision) AS revision FROM expired GROUP BY namespace, group_key) AS top
  WHERE f.namespace = top.namespace AND f.group_key = top.group_key
)
SELECT count(*)::int AS deleted FROM expired`,
    ),
  };
}

// Why functions: in READ COMMITTED a statement sees the database as of its start. A row lock
// re-reads the newest version of the row it locks, but a row that another transaction inserted
// after that start stays invisible to the whole statement, even once it waited for that
// transaction. So one statement cannot lock a group's floor and then see the record a first
// write of the key committed while it waited. A plpgsql function (VOLATILE) takes a fresh
// snapshot for each statement it runs: after it has a lock, its next statement sees everything
// committed before the lock was granted. Each change is still one round trip and one transaction.
//
// The locks, always in this order, so nothing deadlocks:
// - the group's floor row (namespace, first key part): FOR SHARE by writes of absent keys (and
//   by batches, for all their groups, in key order, before any record), FOR UPDATE by deletes
//   and deleteExpired. A delete therefore waits for every uncommitted first write of its group
//   and sees it, and a first write waits for every uncommitted floor raise and writes above it;
// - then the record row, FOR UPDATE, by writes and deletes alike. A write of a stored record
//   locks only that row and never waits for a floor after it.
// A group's first write creates its floor row at 0 (a floor of 0 is no floor); a delete raises
// the floor to at least the revision it stores, in the same transaction as it removes the record.

// Right after a record's row is locked: a row without a revision cannot decide a condition, and
// writing over it would hide the damage. Raised as its own SQLSTATE, which the client reports as
// corrupt data; the statement rolls back and the row stays as it is.
const refuseWithoutRevision = `IF FOUND AND stored IS NULL THEN
    RAISE EXCEPTION 'the stored record has no revision (SQL NULL)' USING ERRCODE = '${CORRUPT_RECORD_SQLSTATE}';
  END IF;`;

// Right after a group's floor row is read: a floor without a value (possible only where the
// table's NOT NULL constraint was dropped) cannot decide a condition either.
const refuseWithoutFloor = `IF FOUND AND current_revision IS NULL THEN
      RAISE EXCEPTION 'the revision floor of the key''s group is SQL NULL' USING ERRCODE = '${CORRUPT_RECORD_SQLSTATE}';
    END IF;`;

// $1 namespace, $2 key, $3 JSON, $4 TTL ms or NULL, $5 { revision } or NULL, $6 { below } or
// NULL. Columns: written (the new revision, NULL when not applied), current_revision (the
// revision the condition was decided on, which is the one stored when not applied).
function writeFunction(name: string, records: string, floors: string): string {
  const at = "p_at";
  const below = "p_below";
  const keyIs = "r.namespace = p_namespace AND r.key = p_key";
  const groupIs = "f.namespace = p_namespace AND f.group_key = p_key[1]";
  const expiresAt = "now() + p_ttl_ms * interval '1 millisecond'";
  return `CREATE OR REPLACE FUNCTION ${name}(p_namespace text, p_key text[], p_value json, p_ttl_ms bigint,
  p_at bigint, p_below bigint, OUT written bigint, OUT current_revision bigint)
LANGUAGE plpgsql VOLATILE AS $persist_kit$
DECLARE
  stored bigint;
BEGIN
  -- A stored record, live or expired: its revision decides, under its row lock.
  SELECT r.revision INTO stored FROM ${records} AS r WHERE ${keyIs} FOR UPDATE;
  ${refuseWithoutRevision}
  IF NOT FOUND THEN
    -- An absent key: its group's floor decides, shared with other writers, exclusive of deletes.
    SELECT f.floor INTO current_revision FROM ${floors} AS f WHERE ${groupIs} FOR SHARE;
    ${refuseWithoutFloor}
    IF NOT FOUND THEN
      INSERT INTO ${floors} (namespace, group_key, floor) VALUES (p_namespace, p_key[1], 0)
      ON CONFLICT (namespace, group_key) DO NOTHING;
      SELECT f.floor INTO STRICT current_revision FROM ${floors} AS f WHERE ${groupIs} FOR SHARE;
    ${refuseWithoutFloor}
    END IF;
    -- A fresh snapshot, taken with the floor locked: a first write of this key that committed
    -- meanwhile is seen here.
    SELECT r.revision INTO stored FROM ${records} AS r WHERE ${keyIs} FOR UPDATE;
    ${refuseWithoutRevision}
  END IF;
  IF stored IS NOT NULL THEN
    current_revision := stored;
    IF (${meets("stored", at, below)}) THEN
      UPDATE ${records} AS r SET value = p_value, revision = ${nextRevision("stored", below)}, format = ${RECORD_FORMAT},
        created_at = CASE WHEN r.expires_at <= now() THEN now() ELSE r.created_at END,
        updated_at = now(), expires_at = ${expiresAt}
      WHERE ${keyIs} RETURNING r.revision INTO written;
    END IF;
    RETURN;
  END IF;
  IF NOT (${meets("current_revision", at, below)}) THEN
    RETURN;
  END IF;
  -- A writer of the same key that holds the floor too and inserts first makes this conflict:
  -- the WHERE then decides again on its row, newest version, locked.
  INSERT INTO ${records} AS r (namespace, key, value, revision, format, created_at, updated_at, expires_at)
  VALUES (p_namespace, p_key, p_value, ${nextRevision("current_revision", below)}, ${RECORD_FORMAT}, now(), now(), ${expiresAt})
  ON CONFLICT (namespace, key) DO UPDATE SET
    value = EXCLUDED.value,
    revision = ${nextRevision("r.revision", below)},
    format = EXCLUDED.format,
    created_at = CASE WHEN r.expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END,
    updated_at = EXCLUDED.updated_at,
    expires_at = EXCLUDED.expires_at
  WHERE ${meets("r.revision", at, below)}
  RETURNING r.revision INTO written;
  IF written IS NULL THEN
    -- Not applied on that writer's row, which this statement locked: report its revision.
    SELECT COALESCE((SELECT r.revision FROM ${records} AS r WHERE ${keyIs}), current_revision) INTO current_revision;
  END IF;
END
$persist_kit$`;
}

// $1 namespace, $2 key, $3 { revision } or NULL, $4 { below } or NULL. Columns: raised (the
// floor after the delete, NULL when not applied), current_revision (the revision the condition
// was decided on), live (whether a live record was there). The record goes and the floor rises to
// at least the new revision in the same transaction, so no reader sees one without the other. An
// unconditional delete of an absent or expired key changes nothing.
function deleteFunction(name: string, records: string, floors: string): string {
  const at = "p_at";
  const below = "p_below";
  const keyIs = "r.namespace = p_namespace AND r.key = p_key";
  const groupIs = "f.namespace = p_namespace AND f.group_key = p_key[1]";
  return `CREATE OR REPLACE FUNCTION ${name}(p_namespace text, p_key text[], p_at bigint, p_below bigint,
  OUT raised bigint, OUT current_revision bigint, OUT live boolean)
LANGUAGE plpgsql VOLATILE AS $persist_kit$
DECLARE
  stored bigint;
  conditional boolean := p_at IS NOT NULL OR p_below IS NOT NULL;
BEGIN
  live := false;
  SELECT f.floor INTO current_revision FROM ${floors} AS f WHERE ${groupIs} FOR UPDATE;
    ${refuseWithoutFloor}
  IF NOT FOUND THEN
    -- No floor row, so no record of the group either (its first write creates both): revision 0.
    current_revision := 0;
    IF NOT conditional OR NOT (${meets("0", at, below)}) THEN
      RETURN;
    END IF;
    INSERT INTO ${floors} (namespace, group_key, floor) VALUES (p_namespace, p_key[1], ${nextRevision("0", below)})
    ON CONFLICT (namespace, group_key) DO NOTHING RETURNING floor INTO raised;
    IF FOUND THEN
      RETURN;
    END IF;
    -- Created meanwhile, by a first write or another delete: lock it and decide below.
    SELECT f.floor INTO STRICT current_revision FROM ${floors} AS f WHERE ${groupIs} FOR UPDATE;
    ${refuseWithoutFloor}
  END IF;
  -- A fresh snapshot, taken with the floor locked: every first write of the group has committed
  -- or waits for this delete.
  SELECT r.revision, (r.expires_at IS NULL OR r.expires_at > now()) INTO stored, live
  FROM ${records} AS r WHERE ${keyIs} FOR UPDATE;
  ${refuseWithoutRevision}
  IF stored IS NULL THEN
    live := false;
  ELSE
    current_revision := stored;
  END IF;
  IF NOT (live OR conditional) OR NOT (${meets("current_revision", at, below)}) THEN
    RETURN;
  END IF;
  IF stored IS NOT NULL THEN
    DELETE FROM ${records} AS r WHERE ${keyIs};
  END IF;
  UPDATE ${floors} AS f SET floor = GREATEST(f.floor, ${nextRevision("current_revision", below)})
  WHERE ${groupIs} RETURNING f.floor INTO raised;
END
$persist_kit$`;
}

// $1 namespaces, $2 keys (each a JSON array of its parts), $3 values, $4 TTL ms or NULL: the
// entries of one batch. One statement, so one transaction: all of them or none. The floors of
// its groups (created beforehand, on their own, so their creation never makes other writers
// wait) are share-locked first, then the records are written through the write function, both in
// key order (byte order, as the primary keys sort), whatever order the caller gave: two batches
// on the same keys, and a batch and a delete (floor, then record), always lock in the same order.
// An entry given twice is written twice, in the order given, so the last one wins.
function batchFunction(name: string, writeFn: string, floors: string): string {
  const entries = "unnest(p_namespaces, p_keys, p_values) WITH ORDINALITY AS e(namespace, key, value, position)";
  return `CREATE OR REPLACE FUNCTION ${name}(p_namespaces text[], p_keys text[], p_values json[], p_ttl_ms bigint,
  OUT written integer)
LANGUAGE plpgsql VOLATILE AS $persist_kit$
DECLARE
  entry record;
BEGIN
  PERFORM 1 FROM ${floors} AS f
  WHERE (f.namespace, f.group_key) IN (SELECT e.namespace, e.key::json ->> 0 FROM ${entries})
  ORDER BY f.namespace, f.group_key FOR SHARE;
  written := 0;
  FOR entry IN
    SELECT sorted.namespace, sorted.key, sorted.value FROM (
      SELECT e.namespace COLLATE "C" AS namespace, e.value, e.position,
        ARRAY(SELECT p.part FROM json_array_elements_text(e.key::json) WITH ORDINALITY AS p(part, n) ORDER BY p.n) COLLATE "C" AS key
      FROM ${entries}
    ) AS sorted
    ORDER BY sorted.namespace, sorted.key, sorted.position
  LOOP
    PERFORM ${writeFn}(entry.namespace, entry.key, entry.value, p_ttl_ms, NULL, NULL);
    written := written + 1;
  END LOOP;
END
$persist_kit$`;
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
