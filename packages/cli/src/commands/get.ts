import { parseSignalRow, type RecordStore, signalRecordKey } from "@persist-kit/core";
import { owner } from "../format.js";
import { type CliIo, EXIT, line } from "../io.js";
import { ownerOf, withStore } from "../store.js";
import { resolveUrl } from "../url.js";

export const GET_HELP = `Usage: persist-kit get [url] <strategy> <symbol> [--json]

Prints one signal: its revision, its owner, and the stored JSON text exactly as stored (every
price as written). Exit status 1 when no signal is stored for the key.
  --json  {"strategyName", "symbol", "revision", "owner", "json"} on one line`;

export interface KeyOptions {
  url: string | undefined;
  strategy: string;
  symbol: string;
  json: boolean;
}

/** The stored signal of a key, its revision and owner; `found: false` with the key's revision when none. */
export async function readSignal(records: RecordStore, strategy: string, symbol: string) {
  const read = await records.read(signalRecordKey(symbol, strategy));
  const holder = await ownerOf(records, strategy, symbol);
  if (read.found)
    parseSignalRow(read.json, { backend: records.name, operation: "read", strategyName: strategy, symbol });
  return { read, owner: holder };
}

export async function get(options: KeyOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  return withStore(url, async ({ records }) => {
    const { read, owner: holder } = await readSignal(records, options.strategy, options.symbol);
    if (options.json) {
      line(
        io.stdout,
        JSON.stringify({
          strategyName: options.strategy,
          symbol: options.symbol,
          revision: read.revision,
          owner: holder,
          json: read.found ? read.json : null,
        }),
      );
    } else if (read.found) {
      line(io.stdout, `revision ${read.revision}, owner ${owner(holder)}`);
      line(io.stdout, read.json);
    } else {
      line(io.stderr, `no signal stored for ${options.strategy} / ${options.symbol} (revision ${read.revision})`);
    }
    return read.found ? EXIT.ok : EXIT.finding;
  });
}
