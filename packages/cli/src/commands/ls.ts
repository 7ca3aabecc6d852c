import { type ISignalRow, SIGNAL_NAMESPACE } from "@persist-kit/core";
import { age, owner, table } from "../format.js";
import { type CliIo, EXIT, line } from "../io.js";
import { listAll, mapLimit, type Owner, ownerOf, withStore } from "../store.js";
import { resolveUrl } from "../url.js";
import { signalProblem } from "./get.js";

export const LS_HELP = `Usage: persist-kit ls [url] [--strategy NAME] [--namespace NAME] [--json]

Lists the open signals: strategy, symbol, position, priceOpen, age (since openTimestamp),
revision, and the process that owns the key now (its lease), if any. A stored text that is not
a valid signal is listed as corrupt, with what is wrong, and makes the exit status 1.
  --strategy NAME   only this strategy's signals
  --namespace NAME  list the records of another namespace (a backtest-kit domain such as
                    bt-risk): key, revision and size
  --json            one JSON array instead of the table`;

export interface LsOptions {
  url: string | undefined;
  strategy: string | undefined;
  namespace: string | undefined;
  json: boolean;
}

export interface ListedSignal {
  strategyName: string;
  symbol: string;
  position: string;
  /** `null` for a stored text that is not a valid signal (position `"corrupt"`, see `problem`). */
  priceOpen: number | null;
  openTimestamp: number | null;
  revision: number;
  owner: Owner | null;
  /** Why the stored text is not a valid signal; absent when it is one. */
  problem?: string;
}

export async function ls(options: LsOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  const prefix = options.strategy === undefined ? [] : [options.strategy];
  return withStore(url, async ({ records }) => {
    const namespace = options.namespace ?? SIGNAL_NAMESPACE;
    const keys: (readonly string[])[] = [];
    for await (const { parts } of listAll(records, namespace, prefix)) keys.push(parts);
    keys.sort(compareParts);
    if (namespace !== SIGNAL_NAMESPACE) {
      const found = await mapLimit(keys, 32, async (parts) => ({
        parts,
        read: await records.read({ namespace, parts }),
      }));
      const rows = found.flatMap(({ parts, read }) =>
        read.found ? [{ key: parts, revision: read.revision, bytes: Buffer.byteLength(read.json) }] : [],
      );
      if (options.json) line(io.stdout, JSON.stringify(rows));
      else
        line(
          io.stdout,
          table(
            ["KEY", "REVISION", "BYTES"],
            rows.map((row) => [row.key.join(" / "), String(row.revision), String(row.bytes)]),
            [1, 2],
          ),
        );
      return EXIT.ok;
    }
    const signals = await mapLimit(keys, 32, async ([strategyName = "", symbol = ""]) => {
      const read = await records.read({ namespace, parts: [strategyName, symbol] });
      if (!read.found) return undefined;
      const problem = signalProblem(records, read.json, strategyName, symbol);
      const row = problem === undefined ? (JSON.parse(read.json) as ISignalRow) : undefined;
      const listed: ListedSignal = {
        strategyName,
        symbol,
        position: row?.position ?? "corrupt",
        priceOpen: row?.priceOpen ?? null,
        openTimestamp: row?.openTimestamp ?? null,
        revision: read.revision,
        owner: await ownerOf(records, strategyName, symbol),
        ...(problem === undefined ? {} : { problem }),
      };
      return listed;
    });
    const open = signals.filter((signal) => signal !== undefined);
    const corrupt = open.filter((signal) => signal.problem !== undefined);
    const status = corrupt.length > 0 ? EXIT.finding : EXIT.ok;
    if (options.json) {
      line(io.stdout, JSON.stringify(open));
      return status;
    }
    const now = Date.now();
    line(
      io.stdout,
      table(
        ["STRATEGY", "SYMBOL", "POSITION", "PRICE OPEN", "AGE", "REVISION", "OWNER"],
        open.map((signal) => [
          signal.strategyName,
          signal.symbol,
          signal.position,
          signal.priceOpen === null ? "-" : String(signal.priceOpen),
          signal.openTimestamp === null ? "-" : age(now - signal.openTimestamp),
          String(signal.revision),
          owner(signal.owner),
        ]),
        [3, 5],
      ),
    );
    line(io.stderr, `${open.length} open signal${open.length === 1 ? "" : "s"}`);
    for (const signal of corrupt) line(io.stderr, `not a valid signal: ${signal.problem}`);
    return status;
  });
}

function compareParts(a: readonly string[], b: readonly string[]): number {
  const left = JSON.stringify(a);
  const right = JSON.stringify(b);
  return left < right ? -1 : left > right ? 1 : 0;
}
