/** Where a command reads and writes: the process's streams by default, buffers in tests. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
  /** Whether stderr is a terminal: a progress bar there, plain lines otherwise. */
  readonly interactive: boolean;
}

/** Exit statuses: 0 all is well, 1 a finding or a difference, 2 a usage or connection error. */
export const EXIT = { ok: 0, finding: 1, error: 2 } as const;

/** A mistake in how the command was called: exit status 2, with the message and a pointer to `--help`. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function line(stream: NodeJS.WritableStream, text = ""): void {
  stream.write(`${text}\n`);
}
