import { open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type CliIo, EXIT, line, UsageError } from "../io.js";
import { assertCopiedNamespace, type ExportedRecord, endLine, exportLine, exportRecord } from "../records.js";
import { COPIED_NAMESPACES, listAll, mapLimit, withStore } from "../store.js";
import { resolveUrl } from "../url.js";

export const EXPORT_HELP = `Usage: persist-kit export [url] [--out FILE] [--namespace NAME]...

Writes every record to JSON Lines: {"namespace", "parts", "revision", "json", "sha256"} per
line, "json" being the stored text byte for byte, and last {"end": true, "records": N}, without
which import refuses the file as cut short. Signals and every backtest-kit namespace are
exported; ownership leases are not (they belong to running processes).
  --out FILE        write to FILE (complete or not at all: a temp file, fsynced, then renamed)
                    instead of standard output
  --namespace NAME  only this namespace (repeatable)`;

export interface ExportOptions {
  url: string | undefined;
  out: string | undefined;
  namespaces: readonly string[];
}

/** Reads every record of `namespaces`, in listing order, `concurrency` reads at a time. */
export async function* readAll(
  records: Parameters<typeof exportRecord>[0],
  namespaces: readonly string[],
  concurrency = 32,
): AsyncGenerator<ExportedRecord> {
  for (const namespace of namespaces) {
    let batch: (readonly string[])[] = [];
    const flush = async () => {
      const found = await mapLimit(batch, concurrency, (parts) => exportRecord(records, { namespace, parts }));
      batch = [];
      return found.filter((record) => record !== undefined);
    };
    for await (const { parts } of listAll(records, namespace)) {
      batch.push(parts);
      if (batch.length >= 1000) yield* await flush();
    }
    yield* await flush();
  }
}

export async function exportStore(options: ExportOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  const namespaces = options.namespaces.length > 0 ? options.namespaces : COPIED_NAMESPACES;
  for (const namespace of namespaces) assertCopiedNamespace(namespace);
  return withStore(url, async ({ records }) => {
    let written = 0;
    if (options.out === undefined) {
      for await (const record of readAll(records, namespaces)) {
        if (!io.stdout.write(`${exportLine(record)}\n`))
          await new Promise((resolve) => io.stdout.once("drain", resolve));
        written++;
      }
      io.stdout.write(`${endLine(written)}\n`);
    } else {
      const temp = join(dirname(options.out), `.${process.pid}.${Date.now()}.persist-kit-export.tmp`);
      const file = await open(temp, "wx", 0o600);
      try {
        for await (const record of readAll(records, namespaces)) {
          await file.write(`${exportLine(record)}\n`);
          written++;
        }
        await file.write(`${endLine(written)}\n`);
        await file.sync();
        await file.close();
        await rename(temp, options.out);
        // The rename is durable only once the directory is synced.
        const directory = await open(dirname(options.out), "r");
        try {
          await directory.sync();
        } finally {
          await directory.close();
        }
      } catch (error) {
        await file.close().catch(() => {});
        await rm(temp, { force: true });
        throw error;
      }
    }
    line(io.stderr, `exported ${written} record${written === 1 ? "" : "s"}`);
    return EXIT.ok;
  });
}

/** Reads an export from FILE, or standard input for `-`. */
export async function readExportText(file: string, io: CliIo): Promise<string> {
  if (file !== "-") {
    return readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${file} (${error.code ?? error.message})`);
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}
