import type { Command } from "ioredis";
import { CommandTimeoutError } from "./errors.js";

// Commands that already have their timer: one timer per command, the first one armed wins (a
// command sent again, after a redirection say, keeps the deadline it was first issued with).
const ARMED = new WeakSet<Command>();

/**
 * Rejects `command` with a {@link CommandTimeoutError} once `timeoutMs` have passed without an
 * answer, or at once when `timeoutMs` is not above 0: then it returns `false`, and the command
 * must not be sent. The timer is cleared when the command settles. Clients this backend makes arm
 * every command this way instead of through ioredis' `commandTimeout`, whose error only its text
 * tells apart.
 */
export function armCommandTimeout(command: Command, timeoutMs: number): boolean {
  if (ARMED.has(command)) return true;
  ARMED.add(command);
  if (timeoutMs <= 0) {
    command.reject(new CommandTimeoutError(0));
    return false;
  }
  const timer = setTimeout(() => command.reject(new CommandTimeoutError(timeoutMs)), timeoutMs);
  const clear = () => clearTimeout(timer);
  command.promise.then(clear, clear);
  return true;
}

/** A client whose commands time out at `deadline` while it is set (see {@link issueBefore}). */
export interface DeadlineClient {
  /** The deadline (`performance.now()` ms) of the commands issued right now, if any. */
  deadline: number | undefined;
}

/**
 * Calls `send`; on a client this backend made ({@link DeadlineClient}), every command it issues
 * synchronously times out at `deadline`, so ioredis gives up on it (and, on a cluster, never
 * redirects it) exactly when the operation does.
 */
export function issueBefore<T>(client: object, deadline: number, send: () => T): T {
  if (!isDeadlineClient(client)) return send();
  const outer = client.deadline;
  client.deadline = deadline;
  try {
    return send();
  } finally {
    client.deadline = outer;
  }
}

/** Milliseconds left until `deadline`, or `fallbackMs` when there is none. */
export function remainingMs(deadline: number | undefined, fallbackMs: number): number {
  return deadline === undefined ? fallbackMs : deadline - performance.now();
}

const DEADLINE_CLIENT = Symbol.for("persist-kit.redis.deadline-client");

/** Marks `client` as one whose commands honour {@link DeadlineClient.deadline}. */
export function markDeadlineClient(client: DeadlineClient): void {
  Object.defineProperty(client, DEADLINE_CLIENT, { value: true });
}

function isDeadlineClient(client: object): client is DeadlineClient {
  return (client as { [DEADLINE_CLIENT]?: boolean })[DEADLINE_CLIENT] === true;
}
