import { parseSignalRow, SIGNAL_NAMESPACE } from "@persist-kit/core";
import { age, owner, table } from "../format.js";
import { type CliIo, EXIT, line } from "../io.js";
import { listAll, mapLimit, type Owner, ownerOf, withStore } from "../store.js";
import { resolveUrl } from "../url.js";

export const LS_HELP = `Usage: persist-kit ls [url] [--strategy NAME] [--namespace NAME] [--json]

Lists the open signals: strategy, symbol, position, priceOpen, age (since openTimestamp),
revision, and the process that owns the key now (its lease), if any.
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
  priceOpen: number;
  openTimestamp: number;
  revision: number;
  owner: Owner | null;
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
      const row = parseSignalRow(read.json, { backend: records.name, operation: "read", strategyName, symbol });
      const listed: ListedSignal = {
        strategyName,
        symbol,
        position: row.position,
        priceOpen: row.priceOpen,
        openTimestamp: row.openTimestamp,
        revision: read.revision,
        owner: await ownerOf(records, strategyName, symbol),
      };
      return listed;
    });
    const open = signals.filter((signal) => signal !== undefined);
    if (options.json) {
      line(io.stdout, JSON.stringify(open));
      return EXIT.ok;
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
          String(signal.priceOpen),
          age(now - signal.openTimestamp),
          String(signal.revision),
          owner(signal.owner),
        ]),
        [3, 5],
      ),
    );
    line(io.stderr, `${open.length} open signal${open.length === 1 ? "" : "s"}`);
    return EXIT.ok;
  });
}

function compareParts(a: readonly string[], b: readonly string[]): number {
  const left = JSON.stringify(a);
  const right = JSON.stringify(b);
  return left < right ? -1 : left > right ? 1 : 0;
}
