import { BackendUnavailableError, errorMessage, PersistError, type PersistErrorContext } from "@persist-kit/core";

// Driver errors meaning the server could not be reached or stopped answering. Matched by name, not
// instanceof, so a client made by another copy of the driver is classified too.
const UNAVAILABLE_ERROR_NAMES = new Set([
  "MongoServerSelectionError",
  "MongoNetworkError",
  "MongoNetworkTimeoutError",
  "MongoOperationTimeoutError",
  "MongoServerClosedError",
  "MongoTopologyClosedError",
  "MongoClientClosedError",
  "MongoNotConnectedError",
  "MongoPoolClosedError",
  "MongoPoolClearedError",
  "PoolClearedOnNetworkError",
  "MongoWaitQueueTimeoutError",
]);

// Server error codes of a node that cannot serve the write now: unreachable hosts, shutdown,
// step-down, or no majority to confirm the write concern in time.
const UNAVAILABLE_SERVER_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  64, // WriteConcernFailed (wtimeout)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

// Node socket errors. The driver lets some through unwrapped: a pooled connection whose server was
// killed fails the next operation with a plain EPIPE error.
const SOCKET_ERROR_CODES = new Set([
  "EPIPE",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

const DUPLICATE_KEY = 11000;
const INTERNAL_ERROR = 1;
const NOT_IMPLEMENTED = 238;
// The SQL layer's words for a unique violation, in FerretDB's InternalError (SQLite, PostgreSQL).
const SQL_UNIQUE_VIOLATION = /UNIQUE constraint failed|duplicate key value violates unique constraint/;

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "";
}

/**
 * True when a write lost an insert race on its `_id`. MongoDB answers E11000; FerretDB 1.x, whose
 * upsert is a query followed by an insert, answers E11000 too when the insert loses, but a unique
 * violation raised by its SQL layer during an update comes back as InternalError (code 1) with the
 * SQL message.
 */
export function isDuplicateKeyError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === DUPLICATE_KEY) return true;
  return code === INTERNAL_ERROR && SQL_UNIQUE_VIOLATION.test(errorMessage(error));
}

/** True when the server does not implement the request: FerretDB 1.x answers TTL indexes so (code 238). */
export function isNotImplementedError(error: unknown): boolean {
  return errorCode(error) === NOT_IMPLEMENTED;
}

// An ordered bulk write stopped by a driver error (rather than a write error) throws a
// MongoBulkWriteError with the stopping error's own fields copied onto it but its class lost: a
// failed server selection leaves `reason`, a MongoNetworkError `beforeHandshake`.
function isInterruptedBulkWrite(error: unknown): boolean {
  if (errorName(error) !== "MongoBulkWriteError") return false;
  const fields = error as { writeErrors?: unknown[] };
  if ((fields.writeErrors?.length ?? 0) > 0) return false;
  return "reason" in fields || "beforeHandshake" in fields;
}

/** True when `error` means the server is unreachable, gone, or not answering in time. */
export function isUnavailableError(error: unknown): boolean {
  if (UNAVAILABLE_ERROR_NAMES.has(errorName(error)) || isInterruptedBulkWrite(error)) return true;
  const code = errorCode(error);
  if (typeof code === "string") return SOCKET_ERROR_CODES.has(code);
  return typeof code === "number" && UNAVAILABLE_SERVER_CODES.has(code);
}

// What a failed write leaves behind, when the error tells.
function outcome(error: unknown, context: PersistErrorContext): string {
  if (errorName(error) === "MongoWriteConcernError") {
    return "; the primary applied the write, but its write concern was not confirmed";
  }
  if (context.operation === "writeMany") {
    return "; writeMany is not atomic: entries before the failing one may have been written";
  }
  return "";
}

/**
 * Wraps a driver error in a {@link PersistError} with the backend, operation and key: unreachable
 * or unanswering servers become {@link BackendUnavailableError}. A PersistError passes unchanged.
 */
export function mongoError(error: unknown, context: PersistErrorContext, location: string): PersistError {
  if (error instanceof PersistError) return error;
  const message = `${errorMessage(error)} (${location})${outcome(error, context)}`;
  const withCause = { ...context, cause: error };
  if (isUnavailableError(error)) return new BackendUnavailableError(message, withCause);
  return new PersistError(message, withCause);
}
