import { type DriverErrorRules, errorMessage } from "@persist-kit/core";

/** Stable code of {@link CommandTimeoutError}. */
export const COMMAND_TIMEOUT_CODE = "PERSIST_REDIS_COMMAND_TIMEOUT";

// Replies that mean "the server cannot take this now": loading its data, busy with a script,
// failing over, out of memory, unable to persist, not enough replicas. Retrying later can work.
const UNAVAILABLE_REPLIES = new Set([
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "CLUSTERDOWN",
  "TRYAGAIN",
  "READONLY",
  "NOREPLICAS",
  "MISCONF",
  "OOM",
]);

// Replies a server gives instead of running the command at all: refused by an ACL or a missing
// login, redirected, not ready. The scripts raise the floor before they delete, so an OOM refusal
// of their first write leaves everything as it was.
const REFUSED_REPLIES = new Set([
  ...UNAVAILABLE_REPLIES,
  "NOPERM",
  "NOAUTH",
  "WRONGPASS",
  "NOSCRIPT",
  "MOVED",
  "ASK",
  "CROSSSLOT",
  "EXECABORT",
]);

// ioredis' own errors for a command it never wrote to a socket (no offline queue, no connection).
// ("Connection is closed." is not one: ioredis also rejects commands already sent with it.)
// ioredis gives them neither a class nor a code; a test checks that the installed ioredis still
// raises each of these texts, so an upgrade that changes one fails there, not in production.
export const NOT_SENT = [/^Stream isn't writeable/, /^Cluster isn't ready/, /^None of startup nodes/];

/**
 * An operation that got no answer from the server: its deadline passed, or the connection ended
 * or could not be made. `sent` says whether it had started, so its commands may have reached the
 * server (`"unknown"`), or not (`"not-applied"`: nothing is handed to a client before it is
 * connected).
 */
export class UnansweredError extends Error {
  readonly sent: boolean;

  constructor(message: string, sent: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "UnansweredError";
    this.sent = sent;
  }
}

/**
 * A command of a client this backend made that outlived its deadline: rejected by this backend's
 * own timer (ioredis' `commandTimeout` gives a plain `Error` that only its text tells apart).
 */
export class CommandTimeoutError extends Error {
  readonly code = COMMAND_TIMEOUT_CODE;

  constructor(timeoutMs: number) {
    super(`the command was not answered within ${Math.max(0, Math.round(timeoutMs))} ms`);
    this.name = "CommandTimeoutError";
  }
}

/** True for a {@link CommandTimeoutError}, by its code (also from another copy of this package). */
export function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === COMMAND_TIMEOUT_CODE;
}

interface ReplyErrorLike extends Error {
  previousErrors?: Error[];
}

// Replies that mean the server refused who we said we are: a wrong password or user name, or none
// given to a server that wants one. Reconnecting cannot help.
const CREDENTIAL_REPLIES = new Set(["WRONGPASS", "NOAUTH"]);

/**
 * The server's refusal of the credentials in `error` (`WRONGPASS`, `NOAUTH`), also when it is the
 * last node error of a cluster that could not load its slots; `undefined` for any other error.
 */
export function credentialRefusal(error: unknown): Error | undefined {
  const code = replyCode(error);
  if (code !== undefined) return CREDENTIAL_REPLIES.has(code) ? (replyOf(error) as Error) : undefined;
  const lastNodeError = (error as { lastNodeError?: unknown } | null)?.lastNodeError;
  return lastNodeError === undefined ? undefined : credentialRefusal(lastNodeError);
}

// Commands whose arguments hold a password: every argument of AUTH, and the two after the AUTH
// token of HELLO (`HELLO 3 AUTH user password`).
const REDACTED = "(redacted)";

/**
 * Removes passwords from an ioredis error in place, and from every error it holds (`cause`,
 * `previousErrors`, `lastNodeError`, `errors`): ioredis puts the failed command on a reply error,
 * `{ name: "auth", args: [password] }`, where `util.inspect` and loggers show it. Returns `error`.
 */
export function redactCommandArguments<T>(error: T, seen = new Set<unknown>()): T {
  if (typeof error !== "object" || error === null || seen.has(error)) return error;
  seen.add(error);
  const holder = error as {
    command?: { name?: unknown; args?: unknown };
    cause?: unknown;
    previousErrors?: unknown;
    lastNodeError?: unknown;
    errors?: unknown;
  };
  const command = holder.command;
  if (command !== null && typeof command === "object" && Array.isArray(command.args)) {
    const redacted = redactedArguments(String(command.name ?? ""), command.args);
    if (redacted !== command.args) holder.command = { ...command, args: redacted };
  }
  for (const inner of [holder.cause, holder.lastNodeError]) redactCommandArguments(inner, seen);
  for (const list of [holder.previousErrors, holder.errors]) {
    if (Array.isArray(list)) for (const inner of list) redactCommandArguments(inner, seen);
  }
  return error;
}

function redactedArguments(name: string, args: readonly unknown[]): readonly unknown[] {
  switch (name.toLowerCase()) {
    case "auth":
      return args.map(() => REDACTED);
    case "hello": {
      const at = args.findIndex((arg) => String(arg).toUpperCase() === "AUTH");
      return at < 0 ? args : args.map((arg, index) => (index > at && index <= at + 2 ? REDACTED : arg));
    }
    default:
      return args;
  }
}

/**
 * How persist-redis classifies ioredis errors for core's `wrapDriverError`: a reply that the
 * server cannot work now, and every failure that is not a reply at all (connection refused or
 * reset, closed, timed out, cluster not ready), means the server is unavailable; a command that
 * was never sent, or that the server refused before running it (CLUSTERDOWN, TRYAGAIN, MOVED
 * until the redirections ran out), changed nothing.
 */
export const REDIS_ERROR_RULES: DriverErrorRules = {
  isUnavailable(error) {
    const code = replyCode(error);
    return code === undefined ? !isProgrammingError(error) : UNAVAILABLE_REPLIES.has(code);
  },
  outcome(error) {
    if (error instanceof UnansweredError) return error.sent ? "unknown" : "not-applied";
    const code = replyCode(error);
    if (code !== undefined) return REFUSED_REPLIES.has(code) ? "not-applied" : "unknown";
    return NOT_SENT.some((pattern) => pattern.test(errorMessage(error))) ? "not-applied" : "unknown";
  },
};

/** The code of a server reply error (`"WRONGTYPE"`, `"NOPERM"`...), looking through EXECABORT; `undefined` for other errors. */
export function replyCode(error: unknown): string | undefined {
  const reply = replyOf(error);
  return reply === undefined ? undefined : (reply.message.split(" ", 1)[0] ?? "");
}

// The server's own reply error, looking through EXECABORT to the command that made it abort.
function replyOf(error: unknown): Error | undefined {
  if (!(error instanceof Error) || error.name !== "ReplyError") return undefined;
  const first = (error as ReplyErrorLike).previousErrors?.[0];
  return error.message.startsWith("EXECABORT") && first !== undefined ? first : error;
}

// A bug (a TypeError, say) is not an outage; everything else ioredis throws that is not a reply is.
function isProgrammingError(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError;
}
