import { redactCredentials } from "@persist-kit/core";
import { type CliIo, line, UsageError } from "./io.js";

/**
 * The store URL of a command: the argument as given, `env:NAME` for the environment variable
 * NAME, or `PERSIST_URL` when the argument is left out. A password belongs in the environment:
 * an argument is seen by every user in the process list and kept in the shell's history.
 */
export function resolveUrl(given: string | undefined, io: CliIo): string {
  if (given === undefined) {
    const url = io.env.PERSIST_URL;
    if (url === undefined || url === "") {
      throw new UsageError("no store URL: pass one, env:NAME for an environment variable, or set PERSIST_URL");
    }
    return url;
  }
  const named = /^env:(.*)$/.exec(given);
  if (named !== null) {
    const name = named[1] as string;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new UsageError(`env:${name} does not name an environment variable`);
    const url = io.env[name];
    if (url === undefined || url === "") throw new UsageError(`the environment variable ${name} is not set`);
    return url;
  }
  if (redactCredentials(given) !== given) {
    line(
      io.stderr,
      "warning: this URL holds a password, which the process list and the shell history show; put it in an environment variable and pass env:NAME",
    );
  }
  return given;
}

/** The URL as it may be printed: credentials replaced by `***`. */
export function shownUrl(url: string): string {
  return redactCredentials(url);
}
