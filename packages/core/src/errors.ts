/** What the failing call was doing. */
export type PersistOperation =
  | "read"
  | "write"
  | "delete"
  | "writeMany"
  | "keys"
  | "list"
  | "ping"
  | "describe"
  | "close"
  | "init"
  | "create"
  | "lease";

/**
 * Whether a failed operation changed the store: `"not-applied"` when it provably did not (a
 * refused input, a lost condition, a closed backend, a connection that never sent it),
 * `"unknown"` when it may have been applied (a timeout after the command was sent, a dropped
 * connection, a failed sync after the rename).
 */
export type PersistOutcome = "not-applied" | "unknown";

/** Where an error happened: the backend, the operation and, when there is one, the key. */
export interface PersistErrorContext {
  /** Backend name, for example `"file"` or `"redis"`. */
  backend: string;
  operation: PersistOperation;
  strategyName?: string;
  symbol?: string;
  /** The record key, for errors of the record-store layer: namespace and key parts. */
  record?: { namespace: string; parts: readonly string[] };
  /** Whether the operation may have changed the store. Default: the error class's own. */
  outcome?: PersistOutcome;
  /** The underlying error, if any. */
  cause?: unknown;
  /** Secrets (a password) that must not appear in the message or the cause; never stored. */
  secrets?: readonly string[];
}

// Up to the last "@" of the token: a password may hold an unencoded "/", "?", "#" or "@", and a
// multi-host URL more than one user-info part. Redacting too much is safe; too little is not.
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^\s<>]*@/gi;
const SECRET_PARAMETERS = /([?&;](?:password|passwd|pass|pwd|secret|token|authtoken)=)[^&#\s"'<>]*/gi;
// Shorter secrets are left to the URL rules: blind replacement would mangle every message.
const MIN_BLIND_SECRET = 4;

/**
 * Replaces the user-info part of every URL in `text`, password-like query parameters and every
 * occurrence of `secrets` (plain and percent-encoded) with `***`, so passwords never reach a log.
 * @example redactCredentials("redis://:secret@host:6379") // "redis://***@host:6379"
 */
export function redactCredentials(text: string, secrets: readonly string[] = []): string {
  let redacted = text.replace(URL_CREDENTIALS, "$1***@").replace(SECRET_PARAMETERS, "$1***");
  for (const secret of secrets) {
    if (secret.length < MIN_BLIND_SECRET) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) redacted = redacted.split(form).join("***");
  }
  return redacted;
}

/**
 * Redacts credentials in place in an error a driver threw and in its causes: the message, the
 * stack and every string (or array of strings, such as a command's arguments) among its own
 * properties, so neither a log line nor `util.inspect` shows a password. Identity is kept.
 */
export function scrubError(error: unknown, secrets: readonly string[] = [], depth = 0): void {
  if (typeof error !== "object" || error === null || depth > 5) return;
  for (const name of Reflect.ownKeys(error)) {
    if (typeof name !== "string") continue;
    const descriptor = Object.getOwnPropertyDescriptor(error, name);
    if (descriptor === undefined || !("value" in descriptor)) continue;
    const value = descriptor.value as unknown;
    let next: unknown = value;
    if (typeof value === "string") next = redactCredentials(value, secrets);
    else if (Array.isArray(value) && value.every((item) => typeof item === "string" || Buffer.isBuffer(item)))
      next = value.map((item) => (typeof item === "string" ? redactCredentials(item, secrets) : item));
    else if (name === "cause" || value instanceof Error) scrubError(value, secrets, depth + 1);
    else if (isPlainObject(value) && depth < 3) scrubError(value, secrets, depth + 1);
    if (next !== value) {
      try {
        Object.defineProperty(error, name, { ...descriptor, value: next });
      } catch {
        // A frozen error keeps its text; the PersistError around it is redacted all the same.
      }
    }
  }
}

function describeKey(context: PersistErrorContext): string {
  if (context.strategyName !== undefined || context.symbol !== undefined) {
    return ` ${JSON.stringify(context.strategyName ?? "")}/${JSON.stringify(context.symbol ?? "")}`;
  }
  if (context.record !== undefined) {
    return ` ${context.record.namespace}${context.record.parts.map((part) => `/${JSON.stringify(part)}`).join("")}`;
  }
  return "";
}

// Only plain data is rewritten: a driver's live objects (a connection, a pool) are left alone.
function isPlainObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Stable codes of persist-kit errors; they hold across copies of the package (ESM and CJS). */
export const PERSIST_ERROR_CODES = {
  PersistError: "PERSIST_ERROR",
  InvalidKeyError: "PERSIST_INVALID_KEY",
  InvalidSignalError: "PERSIST_INVALID_SIGNAL",
  InvalidOptionError: "PERSIST_INVALID_OPTION",
  CorruptDataError: "PERSIST_CORRUPT_DATA",
  BackendUnavailableError: "PERSIST_BACKEND_UNAVAILABLE",
  BackendClosedError: "PERSIST_BACKEND_CLOSED",
  OwnershipError: "PERSIST_OWNERSHIP",
  OwnershipLostError: "PERSIST_OWNERSHIP_LOST",
  NotDurableError: "PERSIST_NOT_DURABLE",
} as const;

/** One of {@link PERSIST_ERROR_CODES}. */
export type PersistErrorCode = (typeof PERSIST_ERROR_CODES)[keyof typeof PERSIST_ERROR_CODES];

const PERSIST_ERROR_MARK = Symbol.for("persist-kit.error");

/**
 * Base class of every error persist-kit throws. The message reads
 * `[backend] operation "strategy"/"symbol": what went wrong`, with credentials redacted.
 * `code` is stable and `outcome` says whether the store may have changed.
 */
export class PersistError extends Error {
  readonly code: PersistErrorCode;
  readonly backend: string;
  readonly operation: PersistOperation;
  readonly strategyName: string | undefined;
  readonly symbol: string | undefined;
  /** The record key of a record-store error: namespace and key parts. */
  readonly record: { namespace: string; parts: readonly string[] } | undefined;
  readonly outcome: PersistOutcome;

  constructor(message: string, context: PersistErrorContext) {
    const text = `[${context.backend}] ${context.operation}${describeKey(context)}: ${message}`;
    const secrets = context.secrets ?? [];
    scrubError(context.cause, secrets);
    super(redactCredentials(text, secrets), context.cause === undefined ? undefined : { cause: context.cause });
    if (this.stack !== undefined) this.stack = redactCredentials(this.stack, secrets);
    this.name = new.target.name;
    const lineage = errorLineage(new.target);
    this.code = (lineage[0] as PersistErrorCode | undefined) ?? PERSIST_ERROR_CODES.PersistError;
    this.backend = context.backend;
    this.operation = context.operation;
    this.strategyName = context.strategyName;
    this.symbol = context.symbol;
    this.record = context.record === undefined ? undefined : { ...context.record, parts: [...context.record.parts] };
    this.outcome = context.outcome ?? (new.target as { defaultOutcome?: PersistOutcome }).defaultOutcome ?? "unknown";
    // The codes of every class from this one up to PersistError: what `instanceof` checks
    // across copies of the package.
    Object.defineProperty(this, PERSIST_ERROR_MARK, { value: lineage });
  }

  /** True for an error of this class, also when it comes from another copy of persist-kit (ESM and CJS). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this` is the class on the right of `instanceof`: a subclass checks its own code.
    // biome-ignore lint/complexity/noThisInStatic: the subclass asked, not PersistError
    const code = codeOf(this);
    // biome-ignore lint/complexity/noThisInStatic: a foreign subclass falls back to the prototype chain
    if (code === undefined) return Function.prototype[Symbol.hasInstance].call(this, value);
    if (typeof value !== "object" || value === null) return false;
    const lineage = (value as { [PERSIST_ERROR_MARK]?: unknown })[PERSIST_ERROR_MARK];
    return Array.isArray(lineage) && lineage.includes(code);
  }
}

function codeOf(errorClass: unknown): string | undefined {
  const name = (errorClass as { name?: unknown }).name;
  return typeof name === "string" && Object.hasOwn(PERSIST_ERROR_CODES, name)
    ? PERSIST_ERROR_CODES[name as keyof typeof PERSIST_ERROR_CODES]
    : undefined;
}

function errorLineage(errorClass: unknown): string[] {
  const codes: string[] = [];
  for (let current = errorClass; typeof current === "function"; current = Object.getPrototypeOf(current)) {
    const code = codeOf(current);
    if (code !== undefined) codes.push(code);
    if (code === PERSIST_ERROR_CODES.PersistError) break;
  }
  return codes;
}

/** A strategy name, symbol or record key that cannot be stored: empty, too long, control characters. Nothing was written. */
export class InvalidKeyError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
}

/** A signal row that fails validation (NaN or non-positive price, empty id, ...). Nothing was written. */
export class InvalidSignalError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
}

/** An option that a backend or an operation cannot take. Nothing was written. */
export class InvalidOptionError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
}

/** Stored data that does not parse or validate. The stored data is left untouched. */
export class CorruptDataError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
}

/** The store cannot be reached or did not answer in time. `outcome` says whether a change may have landed. */
export class BackendUnavailableError extends PersistError {}

/** The backend was closed: nothing was sent. */
export class BackendClosedError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
}

/**
 * The server's settings can lose acknowledged writes and the backend was told to refuse them
 * (its `requireDurable` option): nothing was written.
 */
export class NotDurableError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
}

/** Who holds a key's lease: see `PersistSignalAdapter`'s `exclusive` option. */
export interface LeaseHolder {
  /** Host name of the owning process. */
  readonly host: string;
  /** Process id of the owner. */
  readonly pid: number;
  /** When the owner took the key, ISO 8601. */
  readonly since: string;
}

/**
 * Another live owner holds the key's lease (`exclusive` adapters): nothing was written. Reading
 * the key is allowed (`persist.readSignalData`, or an adapter without `exclusive`).
 */
export class OwnershipError extends PersistError {
  static readonly defaultOutcome: PersistOutcome = "not-applied";
  /** The owner holding the lease, when known. */
  readonly holder: LeaseHolder | undefined;

  constructor(message: string, context: PersistErrorContext, holder?: LeaseHolder) {
    super(message, context);
    this.holder = holder === undefined ? undefined : { ...holder };
  }
}

/**
 * This adapter owned the key but its lease ran out (the process was paused, the store was
 * unreachable) or another owner took the key. Every further write and delete of the key rejects
 * with this error, nothing written, until the application takes the key again with `waitForInit`.
 */
export class OwnershipLostError extends OwnershipError {}

/** The message of any thrown value, for wrapping foreign errors. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
