import { type DriverErrorRules, errorMessage } from "@persist-kit/core";

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
const NOT_SENT = [/^Stream isn't writeable/, /^Cluster isn't ready/, /^None of startup nodes/];

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

interface ReplyErrorLike extends Error {
  previousErrors?: Error[];
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
