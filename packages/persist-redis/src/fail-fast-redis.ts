import { type Command, Redis, type RedisOptions } from "ioredis";
import { armCommandTimeout, type DeadlineClient, markDeadlineClient, remainingMs } from "./command-deadline.js";

/**
 * The single-server client this backend makes: every command it sends times out by this
 * backend's own timer, with a {@link CommandTimeoutError} (at the operation's deadline when one
 * is set through `issueBefore`, else after `commandTimeoutMs`), never by ioredis' text-only
 * `commandTimeout`. The options should say `lazyConnect: true` (commands are sent only from
 * operations).
 */
export class FailFastRedis extends Redis implements DeadlineClient {
  deadline: number | undefined;
  readonly #commandTimeoutMs: number;

  constructor(options: RedisOptions, commandTimeoutMs: number) {
    super({ ...options, commandTimeout: undefined });
    this.#commandTimeoutMs = commandTimeoutMs;
    markDeadlineClient(this);
  }

  override sendCommand(command: Command, stream?: Parameters<Redis["sendCommand"]>[1]): unknown {
    if (!armCommandTimeout(command, remainingMs(this.deadline, this.#commandTimeoutMs))) return command.promise;
    return super.sendCommand(command, stream);
  }
}
