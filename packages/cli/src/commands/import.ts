import { type CliIo, EXIT, line } from "../io.js";
import { type ImportOutcome, importRecord, parseExport } from "../records.js";
import { mapLimit, withStore } from "../store.js";
import { resolveUrl } from "../url.js";
import { readExportText } from "./export.js";

export const IMPORT_HELP = `Usage: persist-kit import [url] <FILE|-> [--overwrite] [--dry-run] [--json]

Imports an export (JSON Lines from persist-kit export; - for standard input). The whole file is
checked first (keys, revisions, checksums, signal rows); one bad line and nothing is written.
Each record is written at its exported revision, so importing twice changes nothing. A record
the target holds at a newer revision with other content is left alone and counted as a
difference (exit status 1), unless --overwrite.
  --overwrite  replace newer records of the target too
  --dry-run    say what would be written, write nothing
  --json       the counts as one JSON object`;

export interface ImportOptions {
  url: string | undefined;
  file: string;
  overwrite: boolean;
  dryRun: boolean;
  json: boolean;
}

export type OutcomeCounts = Record<ImportOutcome, number>;

export function emptyCounts(): OutcomeCounts {
  return { written: 0, unchanged: 0, "newer-in-target": 0, overwritten: 0 };
}

export async function importStore(options: ImportOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  const records = parseExport(
    await readExportText(options.file, io),
    options.file === "-" ? "standard input" : options.file,
  );
  return withStore(url, async (store) => {
    const counts = emptyCounts();
    const newer: string[] = [];
    const outcomes = await mapLimit(records, 32, (record) => importRecord(store.records, record, options));
    for (const [index, outcome] of outcomes.entries()) {
      counts[outcome]++;
      const record = records[index];
      if (outcome === "newer-in-target" && record !== undefined)
        newer.push(JSON.stringify([record.namespace, ...record.parts]));
    }
    if (options.json) line(io.stdout, JSON.stringify({ dryRun: options.dryRun, ...counts }));
    else {
      const verb = options.dryRun ? "would write" : "written";
      line(
        io.stdout,
        `${verb} ${counts.written}, unchanged ${counts.unchanged}, newer in the target ${counts["newer-in-target"]}, overwritten ${counts.overwritten}`,
      );
      for (const key of newer.slice(0, 20)) line(io.stderr, `newer in the target, left as it is: ${key}`);
      if (newer.length > 20) line(io.stderr, `... and ${newer.length - 20} more`);
    }
    return counts["newer-in-target"] > 0 ? EXIT.finding : EXIT.ok;
  });
}
