import {
  CorruptDataError,
  type DriverErrorRules,
  errorMessage,
  InvalidOptionError,
  InvalidSignalError,
  isSocketError,
  NotDurableError,
  type PersistError,
  type PersistErrorContext,
  type PersistOutcome,
  wrapDriverError,
} from "@persist-kit/core";
import { CORRUPT_RECORD_SQLSTATE } from "./record-table.js";

// SQLSTATEs that say the server is going away, starting, overloaded or not taking writes.
const UNAVAILABLE_SQLSTATES = new Set([
  "57014", // query_canceled: statement_timeout expired, or a cancel request
  "55P03", // lock_not_available: lock_timeout expired
  "53300", // too_many_connections
  "25006", // read_only_sql_transaction: connected to a standby, for example after a failover
]);

// pg reports its own timeouts and dropped connections as plain Errors without a code.
const UNAVAILABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|query read timeout|connection error and is not queryable/i;

// Failures that prove the statement never reached the server: it cannot have changed anything.
const NEVER_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);
const NEVER_SENT_MESSAGES = /timeout exceeded when trying to connect|connection error and is not queryable/i;

// The server refused the value as JSON: not JSON text (22P02), or an escape it cannot convert
// (22P05); on a write nothing else can produce these codes.
const UNSTORABLE_JSON_SQLSTATES = new Set(["22P05", "22P02"]);

// A serialization failure (a session whose transactions default to REPEATABLE READ or
// SERIALIZABLE) or a deadlock: the server rolled the whole transaction back.
const TRANSACTION_CONFLICT_SQLSTATES = new Set(["40001", "40P01"]);

const SQLSTATE = /^[0-9A-Z]{5}$/;

interface DriverError {
  code?: unknown;
  errors?: unknown;
}

/**
 * A failure while checking or creating the tables before an operation: the operation itself was
 * never sent. Carries the driver's `code` so it is classified like the driver error it wraps.
 */
export class TablePreparationError extends Error {
  readonly code: unknown;

  constructor(table: string, cause: unknown) {
    super(`preparing table ${table}: ${describeCause(cause)}`, { cause });
    this.name = "TablePreparationError";
    this.code = (cause as DriverError | null)?.code;
  }
}

/**
 * A new connection's settings can lose acknowledged writes and the store was told to refuse
 * them (`requireDurable`): the operation's statement was never sent.
 */
export class NotDurableServerError extends Error {
  /** What can lose acknowledged writes, one sentence each. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`the server's settings can lose acknowledged writes: ${problems.join("; ")}`);
    this.name = "NotDurableServerError";
    this.problems = [...problems];
  }
}

/** True when the server rolled a transaction back as a deadlock victim (40P01) or a serialization failure (40001): running it again is safe. */
export function isTransactionConflict(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && TRANSACTION_CONFLICT_SQLSTATES.has(code);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as DriverError | null)?.code;
  return typeof code === "string" ? code : undefined;
}

// Node reports a failed connect to a host with several addresses ("localhost") as an
// AggregateError whose own message may be empty; its members say what happened.
function membersOf(error: unknown): unknown[] {
  const errors = (error as DriverError | null)?.errors;
  return Array.isArray(errors) ? errors : [];
}

function causeOf(error: unknown): unknown {
  return error instanceof TablePreparationError ? error.cause : undefined;
}

/** True when `error` is pg's own `query_timeout`: the statement was sent and pg stopped waiting for its answer. */
export function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && codeOf(error) === undefined && error.message === "Query read timeout";
}

/**
 * True when `error` means the server cannot be reached or did not answer in time: refused or
 * broken connections, timeouts, SQLSTATE class 08 (connection exception), 57P01-57P05 (shutdown,
 * crash, starting up), statement and lock timeouts, too many connections, a read-only standby.
 */
export function isUnavailableError(error: unknown): boolean {
  const code = codeOf(error);
  if (isSocketError(error) || (code !== undefined && UNAVAILABLE_SQLSTATES.has(code))) return true;
  if (code?.startsWith("08") || code?.startsWith("57P")) return true;
  if (UNAVAILABLE_MESSAGES.test(errorMessage(error))) return true;
  const cause = causeOf(error);
  if (cause !== undefined && isUnavailableError(cause)) return true;
  return membersOf(error).some(isUnavailableError);
}

/**
 * Whether a failed change may have landed: `"not-applied"` when the statement never reached the
 * server (refused connection, no free connection, tables not ready) or the server answered it
 * with an error (the statement, and its transaction, rolled back: also a statement the server
 * cancelled by `statement_timeout` or `lock_timeout`, 57014 or 55P03); `"unknown"` when the
 * connection broke or timed out while the statement was out.
 */
export function postgresOutcome(error: unknown): PersistOutcome {
  if (error instanceof TablePreparationError) return "not-applied";
  const code = codeOf(error);
  if (code !== undefined && NEVER_SENT_CODES.has(code)) return "not-applied";
  if (NEVER_SENT_MESSAGES.test(errorMessage(error))) return "not-applied";
  if (code === "57P03" || code === "53300") return "not-applied";
  const answered = code !== undefined && SQLSTATE.test(code) && !code.startsWith("08") && !code.startsWith("57P");
  if (answered) return "not-applied";
  const members = membersOf(error);
  return members.length > 0 && members.every((member) => postgresOutcome(member) === "not-applied")
    ? "not-applied"
    : "unknown";
}

function describeCause(error: unknown): string {
  const message = errorMessage(error) || membersOf(error).map(errorMessage).join("; ") || "unknown error";
  return `${message}${codeSuffix(error, message)}`;
}

function codeSuffix(error: unknown, message: string): string {
  const code = codeOf(error);
  if (code === undefined || message.includes(code)) return "";
  return SQLSTATE.test(code) ? ` (SQLSTATE ${code})` : ` (${code})`;
}

/** How persist-postgres classifies pg's errors, for core's `wrapDriverError`. */
export const POSTGRES_ERROR_RULES: DriverErrorRules = {
  isUnavailable: isUnavailableError,
  outcome: postgresOutcome,
  describe(error) {
    const own = errorMessage(error);
    const members = own === "" ? membersOf(error).map(errorMessage).join("; ") : "";
    return `${members}${codeSuffix(error, own || members)}${isUnavailableError(error) ? " (PostgreSQL is unavailable)" : ""}`;
  },
};

/**
 * Wraps a pg error in the matching PersistError with the backend, operation, key and outcome. A
 * value the server refuses as JSON is refused with nothing written: an `InvalidSignalError` for
 * signal keys, an `InvalidOptionError` for other records and batches. A stored record the write
 * and delete functions refuse is a `CorruptDataError`; settings refused by `requireDurable` are a
 * `NotDurableError`; refused credentials an `InvalidOptionError`.
 */
export function wrapPostgresError(error: unknown, context: PersistErrorContext): PersistError {
  if (error instanceof NotDurableServerError) {
    return new NotDurableError(`${error.message} (requireDurable is set); nothing was sent`, {
      ...context,
      outcome: "not-applied",
      cause: error,
    });
  }
  const writing = context.operation === "write" || context.operation === "writeMany";
  const code = codeOf(error);
  if (code === CORRUPT_RECORD_SQLSTATE) {
    return new CorruptDataError(`${errorMessage(error)}; it was left in place and nothing was changed`, {
      ...context,
      outcome: "not-applied",
      cause: error,
    });
  }
  if (writing && code !== undefined && UNSTORABLE_JSON_SQLSTATES.has(code)) {
    const unstorable = context.strategyName === undefined ? InvalidOptionError : InvalidSignalError;
    return new unstorable(`PostgreSQL refused the value as JSON: ${describeCause(error)}; nothing was written`, {
      ...context,
      outcome: "not-applied",
      cause: error,
    });
  }
  // Class 28 (invalid authorization): the server refused the credentials while connecting, before
  // any statement; a configuration error, not a server that is down.
  if (code?.startsWith("28") === true) {
    return new InvalidOptionError(
      `the server refused the credentials: ${describeCause(error)}; check the user name and password (in the URL or poolConfig); nothing was sent`,
      { ...context, outcome: "not-applied", cause: error },
    );
  }
  return wrapDriverError(error, context, POSTGRES_ERROR_RULES);
}
