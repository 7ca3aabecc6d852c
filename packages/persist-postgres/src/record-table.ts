import { createHash } from "node:crypto";
import { PersistError } from "@persist-kit/core";

/**
 * The table layout this package writes. Recorded in the table's comment so a later version can
 * tell which migrations an existing table still needs.
 */
export const SCHEMA_VERSION = 1;

const COMMENT_PREFIX = "persist-kit signal table, schema version ";
const SCHEMA_VERSION_IN_COMMENT = /^persist-kit signal table, schema version (\d+)$/;

// Unquoted PostgreSQL identifier syntax, at most 63 bytes (NAMEDATALEN - 1), so the name is never
// truncated and never needs escaping; it is still quoted, which keeps its case as written.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A statement sent as a named prepared statement: `name` is unique per distinct `text`. */
export interface NamedStatement {
  name: string;
  text: string;
}

/** Every SQL text this backend runs against one table. */
export interface SignalTableSql {
  /** `"schema"."table"`, quoted. */
  qualifiedName: string;
  /** Whether the table exists, and its comment (which carries the schema version). */
  describeTable: string;
  /** Takes a transaction-scoped advisory lock keyed by the schema name (parameter $1). */
  lockSchema: string;
  schemaExists: string;
  createSchema: string;
  createTable: string;
  commentTable: string;
  read: NamedStatement;
  write: NamedStatement;
  delete: NamedStatement;
  firstKeys: NamedStatement;
  nextKeys: NamedStatement;
  deleteExpired: NamedStatement;
}

/**
 * Throws unless `value` is a plain PostgreSQL identifier (letters, digits, underscores, not
 * starting with a digit, at most 63 characters). Returns it unchanged.
 */
export function assertIdentifier(option: "schema" | "table", value: unknown): string {
  if (typeof value === "string" && IDENTIFIER.test(value)) return value;
  throw new PersistError(
    `${option} must match ${IDENTIFIER.source} (letters, digits and underscores), got ${JSON.stringify(value)}`,
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

// Prepared statements are cached per connection by name, and pg refuses one name for two texts.
// Hashing the text (which holds the schema and table) gives every table its own names, so
// several backends can share one pool.
function named(kind: string, text: string): NamedStatement {
  const digest = createHash("sha256").update(text).digest("hex").slice(0, 16);
  return { name: `persist_kit_${kind}_${digest}`, text };
}

/**
 * The SQL persist-postgres runs for the signal table `schema.table` (both names must pass
 * {@link assertIdentifier}): to review it, create the table ahead of time, or run the same
 * statements by hand.
 * @example signalTableSql("public", "persist_signals").createTable
 */
export function signalTableSql(schema: string, table: string): SignalTableSql {
  const qualifiedName = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  const live = "(expires_at IS NULL OR expires_at > now())";
  return {
    qualifiedName,
    describeTable: `SELECT to_regclass($1) IS NOT NULL AS present, obj_description(to_regclass($1), 'pg_class') AS comment`,
    // Two sessions running CREATE ... IF NOT EXISTS at once can both find the name free, and one
    // then fails on a unique index of the catalog; the lock makes them take turns.
    lockSchema: `SELECT pg_advisory_xact_lock(hashtextextended('persist-kit:' || $1, 0))`,
    schemaExists: "SELECT 1 FROM pg_namespace WHERE nspname = $1",
    createSchema: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`,
    // COLLATE "C": keys compare byte for byte, so two spellings of one accented letter stay two
    // keys whatever the database's default collation. The primary key is the only index needed.
    createTable: `CREATE TABLE IF NOT EXISTS ${qualifiedName} (
  strategy_name text COLLATE "C" NOT NULL,
  symbol text COLLATE "C" NOT NULL,
  signal_data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  PRIMARY KEY (strategy_name, symbol)
)`,
    commentTable: `COMMENT ON TABLE ${qualifiedName} IS '${COMMENT_PREFIX}${SCHEMA_VERSION}'`,
    // Read as text and parsed by the caller: pg's jsonb parser can be replaced process-wide
    // (types.setTypeParser), and the row must be checked the same way whatever it returns.
    read: named(
      "read",
      `SELECT signal_data::text AS signal_json FROM ${qualifiedName} WHERE strategy_name = $1 AND symbol = $2 AND ${live}`,
    ),
    // $4 is the TTL in milliseconds or NULL; expiry is computed and compared with the server's
    // clock only, so clock skew between processes cannot make a row expire early or late.
    // An expired row that is overwritten counts as a new row, so created_at starts again.
    write: named(
      "write",
      `INSERT INTO ${qualifiedName} AS stored (strategy_name, symbol, signal_data, created_at, updated_at, expires_at)
VALUES ($1, $2, $3::jsonb, now(), now(), now() + $4::bigint * interval '1 millisecond')
ON CONFLICT (strategy_name, symbol) DO UPDATE SET
  signal_data = EXCLUDED.signal_data,
  created_at = CASE WHEN stored.expires_at <= now() THEN EXCLUDED.created_at ELSE stored.created_at END,
  updated_at = EXCLUDED.updated_at,
  expires_at = EXCLUDED.expires_at`,
    ),
    delete: named("delete", `DELETE FROM ${qualifiedName} WHERE strategy_name = $1 AND symbol = $2`),
    // Keys are listed page by page in primary-key order, so a large table is never held in memory
    // and no connection stays checked out between pages.
    firstKeys: named(
      "first_keys",
      `SELECT strategy_name, symbol FROM ${qualifiedName} WHERE ${live} ORDER BY strategy_name, symbol LIMIT $1`,
    ),
    nextKeys: named(
      "next_keys",
      `SELECT strategy_name, symbol FROM ${qualifiedName} WHERE (strategy_name, symbol) > ($1, $2) AND ${live}
ORDER BY strategy_name, symbol LIMIT $3`,
    ),
    deleteExpired: named("delete_expired", `DELETE FROM ${qualifiedName} WHERE expires_at <= now()`),
  };
}
