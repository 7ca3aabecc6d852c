import {
  BackendUnavailableError,
  errorMessage,
  PersistError,
  type PersistErrorContext,
  type PersistOutcome,
} from "../errors.js";

/**
 * Node socket error codes that mean the store could not be reached or the connection broke. Drivers
 * let some through unwrapped (a pooled connection whose server was killed fails with EPIPE).
 */
export const UNAVAILABLE_SOCKET_CODES: ReadonlySet<string> = new Set([
  "EPIPE",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** True when `error` (or its `code`) is one of {@link UNAVAILABLE_SOCKET_CODES}. */
export function isSocketError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNAVAILABLE_SOCKET_CODES.has(code);
}

/** How one backend classifies the errors of its driver: its table, used by {@link wrapDriverError}. */
export interface DriverErrorRules {
  /** True when the error means the store could not be reached or did not answer. */
  isUnavailable(error: unknown): boolean;
  /**
   * Whether a change that failed with `error` may have landed. Default: `"unknown"` for changes,
   * `"not-applied"` for reads, listings and pings (they change nothing).
   */
  outcome?(error: unknown, context: PersistErrorContext): PersistOutcome | undefined;
  /** Text added to the message (where the data lives, what the outcome means). Default: none. */
  describe?(error: unknown, context: PersistErrorContext): string;
}

const READ_ONLY_OPERATIONS = new Set(["read", "keys", "list", "ping", "describe", "init"]);

/**
 * Wraps a driver error in a {@link PersistError} with the backend, operation, key and outcome:
 * unreachable or unanswering stores become {@link BackendUnavailableError}. A PersistError passes
 * unchanged.
 */
export function wrapDriverError(error: unknown, context: PersistErrorContext, rules: DriverErrorRules): PersistError {
  if (error instanceof PersistError) return error;
  const outcome: PersistOutcome = READ_ONLY_OPERATIONS.has(context.operation)
    ? "not-applied"
    : (rules.outcome?.(error, context) ?? "unknown");
  const message = `${errorMessage(error)}${rules.describe?.(error, context) ?? ""}${outcomeText(context, outcome)}`;
  const withCause = { ...context, outcome, cause: error };
  if (rules.isUnavailable(error)) return new BackendUnavailableError(message, withCause);
  return new PersistError(message, withCause);
}

function outcomeText(context: PersistErrorContext, outcome: PersistOutcome): string {
  if (READ_ONLY_OPERATIONS.has(context.operation)) return "";
  return outcome === "not-applied" ? "; nothing was changed" : "; the change may have been applied";
}
