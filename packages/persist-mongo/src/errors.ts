import {
  type DriverErrorRules,
  errorMessage,
  InvalidOptionError,
  type PersistError,
  type PersistErrorContext,
  type PersistOutcome,
  UNAVAILABLE_SOCKET_CODES,
  wrapDriverError,
} from "@persist-kit/core";

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

// Server error codes of a node that cannot serve the request now: unreachable hosts, shutdown,
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

const DUPLICATE_KEY = 11000;
const INTERNAL_ERROR = 1;
// The SQL layer's words for a unique violation, in FerretDB's InternalError (SQLite, PostgreSQL).
const SQL_UNIQUE_VIOLATION = /UNIQUE constraint failed|duplicate key value violates unique constraint/;

/**
 * Marks a failure that provably left the store unchanged (the read that decides a change, the
 * removal of an insert nobody could see), so the error says nothing was changed.
 */
export class UnchangedError extends Error {
  constructor(cause: unknown) {
    super(errorMessage(cause), { cause });
    this.name = "UnchangedError";
  }
}

// AuthenticationFailed, and MechanismUnavailable (FerretDB without authentication, or a mechanism
// the server does not offer).
const CREDENTIAL_REFUSALS = new Set([18, 334]);

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "";
}

/**
 * True when an insert lost the race for its `_id`: E11000 on MongoDB and FerretDB, or, from
 * FerretDB's SQL layer, InternalError (code 1) carrying the SQL unique-violation message.
 */
export function isDuplicateKeyError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === DUPLICATE_KEY) return true;
  return code === INTERNAL_ERROR && SQL_UNIQUE_VIOLATION.test(errorMessage(error));
}

/** True when `error` means the server is unreachable, gone, or not answering in time. */
export function isUnavailableError(error: unknown): boolean {
  const cause = error instanceof UnchangedError ? error.cause : error;
  if (UNAVAILABLE_ERROR_NAMES.has(errorName(cause))) return true;
  const code = errorCode(cause);
  if (typeof code === "string") return UNAVAILABLE_SOCKET_CODES.has(code);
  return typeof code === "number" && UNAVAILABLE_SERVER_CODES.has(code);
}

function outcome(error: unknown): PersistOutcome | undefined {
  return error instanceof UnchangedError ? "not-applied" : undefined;
}

/** How this backend classifies its driver's errors, for core's `wrapDriverError`. */
export function mongoErrorRules(location: string): DriverErrorRules {
  return {
    isUnavailable: isUnavailableError,
    outcome,
    describe: (error) =>
      errorName(error) === "MongoWriteConcernError"
        ? ` (${location}); the server applied the change, but its write concern was not confirmed`
        : ` (${location})`,
  };
}

/**
 * Wraps a driver error with the backend, operation, key and outcome (see {@link mongoErrorRules});
 * credentials the server refused are an `InvalidOptionError`.
 */
export function wrapMongoError(error: unknown, context: PersistErrorContext, location: string): PersistError {
  const cause = error instanceof UnchangedError ? (error.cause ?? error) : error;
  // The handshake failed before any command: a configuration error, not a server that is down.
  if (CREDENTIAL_REFUSALS.has(Number(errorCode(cause)))) {
    return new InvalidOptionError(
      `the server refused the credentials: ${errorMessage(cause)}; check the user name, password and authMechanism (in the URL or clientOptions); nothing was sent`,
      { ...context, outcome: "not-applied", cause },
    );
  }
  const wrapped = wrapDriverError(error, context, mongoErrorRules(location));
  // The UnchangedError mark has done its work; the driver's error is the cause users inspect.
  if (cause !== error && wrapped.cause === error) Object.defineProperty(wrapped, "cause", { value: cause });
  return wrapped;
}
