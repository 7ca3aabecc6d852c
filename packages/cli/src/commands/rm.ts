import { createInterface } from "node:readline/promises";
import { signalRecordKey } from "@persist-kit/core";
import { owner } from "../format.js";
import { type CliIo, EXIT, line, UsageError } from "../io.js";
import { withStore } from "../store.js";
import { resolveUrl } from "../url.js";
import { type KeyOptions, readSignal } from "./get.js";

export const RM_HELP = `Usage: persist-kit rm [url] <strategy> <symbol> [--yes] [--force] [--json]

Deletes one signal, fenced: only the revision that was shown is deleted; if the signal changed
in between, nothing is deleted (exit status 1). Asks first, unless --yes.
  --yes    do not ask (needed when standard input is not a terminal)
  --force  delete even while a running process owns the key (it still believes it holds the
           position)
  --json   {"deleted", "revision"} on one line`;

export interface RmOptions extends KeyOptions {
  yes: boolean;
  force: boolean;
}

export async function rm(options: RmOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  const interactiveInput = (io.stdin as { isTTY?: boolean }).isTTY === true;
  if (!options.yes && !interactiveInput) {
    throw new UsageError("standard input is not a terminal, so rm cannot ask: pass --yes to delete without asking");
  }
  return withStore(url, async ({ records }) => {
    const { read, owner: holder, problem } = await readSignal(records, options.strategy, options.symbol);
    const report = (deleted: boolean, text: string) => {
      if (options.json) line(io.stdout, JSON.stringify({ deleted, revision: read.revision }));
      else line(deleted ? io.stdout : io.stderr, text);
    };
    if (!read.found) {
      report(false, `no signal stored for ${options.strategy} / ${options.symbol}; nothing deleted`);
      return EXIT.finding;
    }
    if (holder !== null && !options.force) {
      report(
        false,
        `${owner(holder)} owns ${options.strategy} / ${options.symbol} since ${holder.since}; nothing deleted (--force deletes anyway)`,
      );
      return EXIT.finding;
    }
    if (!options.yes) {
      line(io.stderr, `revision ${read.revision}: ${read.json}`);
      if (problem !== undefined) line(io.stderr, `(not a valid signal: ${problem})`);
      const prompt = createInterface({ input: io.stdin, output: io.stderr });
      // End of input (Ctrl-D) is a no: the question alone would never settle.
      const closed = new Promise<string>((resolve) => prompt.once("close", () => resolve("")));
      const answer = await Promise.race([
        prompt.question(`Delete the signal of ${options.strategy} / ${options.symbol}? [y/N] `),
        closed,
      ]);
      prompt.close();
      if (!/^y(es)?$/i.test(answer.trim())) {
        report(false, "nothing deleted");
        return EXIT.finding;
      }
    }
    const change = await records.delete(signalRecordKey(options.symbol, options.strategy), {
      condition: { revision: read.revision },
    });
    if (!change.applied) {
      report(false, `the signal changed since it was read (now revision ${change.revision}); nothing deleted`);
      return EXIT.finding;
    }
    report(true, `deleted ${options.strategy} / ${options.symbol} (revision ${read.revision})`);
    return EXIT.ok;
  });
}
