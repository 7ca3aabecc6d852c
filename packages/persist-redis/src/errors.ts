import {
  BackendUnavailableError,
  CorruptDataError,
  errorMessage,
  PersistError,
  type PersistErrorContext,
} from "@persist-kit/core";

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

interface ReplyErrorLike extends Error {
  previousErrors?: Error[];
}

/**
 * Wraps an ioredis error in the persist-kit error that says what it means. A reply from the server
 * that it cannot work now, and every failure that is not a reply at all (connection refused or
 * reset, closed, timed out, cluster not ready), is a {@link BackendUnavailableError}; a value of
 * the wrong type where a signal should be is a {@link CorruptDataError}; anything else (no
 * permission, wrong password) is a plain {@link PersistError}.
 */
export function redisError(error: unknown, context: PersistErrorContext, redisKey?: string): PersistError {
  if (error instanceof PersistError) return error;
  const reply = replyOf(error);
  const message = errorMessage(reply ?? error);
  if (reply === undefined) return new BackendUnavailableError(message, { ...context, cause: error });
  const code = message.split(" ", 1)[0] ?? "";
  if (UNAVAILABLE_REPLIES.has(code)) return new BackendUnavailableError(message, { ...context, cause: error });
  if (code === "WRONGTYPE" && redisKey !== undefined) {
    return new CorruptDataError(`redis key ${redisKey} holds another type than a string; it was left in place`, {
      ...context,
      cause: error,
    });
  }
  return new PersistError(message, { ...context, cause: error });
}

// The server's own reply error, looking through EXECABORT to the command that made it abort.
function replyOf(error: unknown): Error | undefined {
  if (!(error instanceof Error) || error.name !== "ReplyError") return undefined;
  const first = (error as ReplyErrorLike).previousErrors?.[0];
  return error.message.startsWith("EXECABORT") && first !== undefined ? first : error;
}
