import {
  BackendUnavailableError,
  errorMessage,
  InvalidSignalError,
  PersistError,
  type PersistErrorContext,
} from "@persist-kit/core";

// Socket-level failures: nothing answered, or the connection broke.
const UNAVAILABLE_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

// SQLSTATEs that say the server is going away, starting, overloaded or not taking writes.
const UNAVAILABLE_SQLSTATES = new Set([
  "57014", // query_canceled: statement_timeout expired
  "53300", // too_many_connections
  "25006", // read_only_sql_transaction: connected to a standby, for example after a failover
]);

// pg reports its own timeouts and dropped connections as plain Errors without a code.
const UNAVAILABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|query read timeout|connection error and is not queryable/i;

// jsonb cannot hold the character U+0000 (22P05) nor a lone surrogate (22P02, invalid JSON for
// jsonb); on a write nothing else can produce these codes.
const UNSTORABLE_JSON_SQLSTATES = new Set(["22P05", "22P02"]);

interface DriverError {
  code?: unknown;
  errors?: unknown;
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

/**
 * True when `error` means the server cannot be reached or did not answer in time: refused or
 * broken connections, timeouts, SQLSTATE class 08 (connection exception), 57P01-57P05 (shutdown,
 * crash, starting up), statement timeouts and too many connections.
 */
export function isUnavailableError(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined) {
    if (UNAVAILABLE_SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code)) return true;
    if (code.startsWith("08") || code.startsWith("57P")) return true;
  }
  if (UNAVAILABLE_MESSAGES.test(errorMessage(error))) return true;
  return membersOf(error).some(isUnavailableError);
}

function describeError(error: unknown): string {
  const message = errorMessage(error) || membersOf(error).map(errorMessage).join("; ") || "unknown error";
  const code = codeOf(error);
  if (code === undefined || message.includes(code)) return message;
  return /^[0-9A-Z]{5}$/.test(code) ? `${message} (SQLSTATE ${code})` : `${message} (${code})`;
}

/**
 * Wraps a driver error in the matching {@link PersistError} subclass, with the backend, operation
 * and key of `context`. PersistErrors pass through unchanged. `activity` names what was being
 * done when it is not the operation itself (for example preparing the table).
 */
export function toPersistError(error: unknown, context: PersistErrorContext, activity?: string): PersistError {
  if (error instanceof PersistError) return error;
  const prefix = activity === undefined ? "" : `${activity}: `;
  const withCause = { ...context, cause: error };
  if (isUnavailableError(error)) {
    return new BackendUnavailableError(`${prefix}PostgreSQL is unavailable: ${describeError(error)}`, withCause);
  }
  const writing = context.operation === "write" || context.operation === "writeMany";
  const code = codeOf(error);
  if (writing && code !== undefined && UNSTORABLE_JSON_SQLSTATES.has(code)) {
    return new InvalidSignalError(
      `PostgreSQL jsonb cannot store this row (strings must not contain U+0000 or lone surrogates): ${describeError(error)}; nothing was written`,
      withCause,
    );
  }
  return new PersistError(`${prefix}${describeError(error)}`, withCause);
}
