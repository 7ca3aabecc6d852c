/** What the failing call was doing. */
export type PersistOperation =
  | "read"
  | "write"
  | "delete"
  | "writeMany"
  | "keys"
  | "ping"
  | "describe"
  | "close"
  | "init"
  | "connect"
  | "create";

/** Where an error happened: the backend, the operation and, when there is one, the key. */
export interface PersistErrorContext {
  /** Backend name, for example `"file"` or `"redis"`. */
  backend: string;
  operation: PersistOperation;
  strategyName?: string;
  symbol?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^@/\s?#]*@/gi;

/**
 * Replaces the user-info part of every URL in `text` with `***`, so passwords in connection
 * strings never reach a log.
 * @example redactCredentials("redis://:secret@host:6379") // "redis://***@host:6379"
 */
export function redactCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, "$1***@");
}

function describeKey(context: PersistErrorContext): string {
  if (context.strategyName === undefined && context.symbol === undefined) return "";
  return ` ${JSON.stringify(context.strategyName ?? "")}/${JSON.stringify(context.symbol ?? "")}`;
}

/**
 * Base class of every error persist-kit throws. The message reads
 * `[backend] operation "strategy"/"symbol": what went wrong`, with credentials redacted.
 */
export class PersistError extends Error {
  readonly backend: string;
  readonly operation: PersistOperation;
  readonly strategyName: string | undefined;
  readonly symbol: string | undefined;

  constructor(message: string, context: PersistErrorContext) {
    const text = `[${context.backend}] ${context.operation}${describeKey(context)}: ${message}`;
    super(redactCredentials(text), context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.backend = context.backend;
    this.operation = context.operation;
    this.strategyName = context.strategyName;
    this.symbol = context.symbol;
  }
}

/** A strategy name or symbol that cannot be stored: empty, too long, control characters. */
export class InvalidKeyError extends PersistError {}

/** A signal row that fails validation (NaN or non-positive price, empty id, ...). Nothing was written. */
export class InvalidSignalError extends PersistError {}

/** Stored data that does not parse or validate. The stored data is left untouched. */
export class CorruptDataError extends PersistError {}

/** The store cannot be reached or did not answer in time. */
export class BackendUnavailableError extends PersistError {}

/** The message of any thrown value, for wrapping foreign errors. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
