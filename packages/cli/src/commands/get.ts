import { CorruptDataError, parseSignalRow, type RecordStore, signalRecordKey } from "@persist-kit/core";
import { owner } from "../format.js";
import { type CliIo, EXIT, line } from "../io.js";
import { ownerOf, withStore } from "../store.js";
import { resolveUrl } from "../url.js";

export const GET_HELP = `Usage: persist-kit get [url] <strategy> <symbol> [--json]

Prints one signal: its revision, its owner, and the stored JSON text exactly as stored (every
price as written). Exit status 1 when no signal is stored for the key, or the stored text is not
a valid signal (it is printed all the same, with what is wrong).
  --json  {"strategyName", "symbol", "revision", "owner", "json"} on one line`;

export interface KeyOptions {
  url: string | undefined;
  strategy: string;
  symbol: string;
  json: boolean;
}

/**
 * The stored signal of a key, its revision and owner; `found: false` with the key's revision when
 * none. A stored text that is not a valid signal is given with its `problem`, not thrown: an
 * operator needs to see it, and may delete it.
 */
export async function readSignal(records: RecordStore, strategy: string, symbol: string) {
  const read = await records.read(signalRecordKey(symbol, strategy));
  const holder = await ownerOf(records, strategy, symbol);
  return { read, owner: holder, problem: read.found ? signalProblem(records, read.json, strategy, symbol) : undefined };
}

/** Why `json` is not a valid signal row, or `undefined` when it is one. */
export function signalProblem(
  records: RecordStore,
  json: string,
  strategyName: string,
  symbol: string,
): string | undefined {
  try {
    parseSignalRow(json, { backend: records.name, operation: "read", strategyName, symbol });
    return undefined;
  } catch (error) {
    if (error instanceof CorruptDataError) return error.message;
    throw error;
  }
}

export async function get(options: KeyOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  return withStore(url, async ({ records }) => {
    const { read, owner: holder, problem } = await readSignal(records, options.strategy, options.symbol);
    if (options.json) {
      line(
        io.stdout,
        JSON.stringify({
          strategyName: options.strategy,
          symbol: options.symbol,
          revision: read.revision,
          owner: holder,
          json: read.found ? read.json : null,
          ...(problem === undefined ? {} : { problem }),
        }),
      );
    } else if (read.found) {
      line(io.stdout, `revision ${read.revision}, owner ${owner(holder)}`);
      line(io.stdout, read.json);
      if (problem !== undefined) line(io.stderr, `not a valid signal: ${problem}`);
    } else {
      line(io.stderr, `no signal stored for ${options.strategy} / ${options.symbol} (revision ${read.revision})`);
    }
    return read.found && problem === undefined ? EXIT.ok : EXIT.finding;
  });
}
