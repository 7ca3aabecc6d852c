import { importBacktestKitStore } from "@persist-kit/backtest-kit";
import { type CliIo, EXIT, line } from "../io.js";
import { withStore } from "../store.js";
import { resolveUrl } from "../url.js";

export const IMPORT_BACKTEST_KIT_HELP = `Usage: persist-kit import-backtest-kit <dir> [url] [--json]

Reads the file store of backtest-kit 19.5 (its ./dump folder) into a persist-kit store, so a bot
that switches keeps its open positions. Files that cannot be read one way only (ambiguous names),
cleared records, temporary files and unknown folders are skipped and listed: exit status 1 when
any file was skipped.
  --json  the report (imported and skipped files) as one JSON object`;

export interface ImportBacktestKitOptions {
  dir: string;
  url: string | undefined;
  json: boolean;
}

export async function importBacktestKit(options: ImportBacktestKitOptions, io: CliIo): Promise<number> {
  const url = resolveUrl(options.url, io);
  return withStore(url, async ({ records }) => {
    const report = await importBacktestKitStore(options.dir, records);
    if (options.json) line(io.stdout, JSON.stringify(report));
    else {
      const byDomain = new Map<string, number>();
      for (const { domain } of report.imported) byDomain.set(domain, (byDomain.get(domain) ?? 0) + 1);
      const parts = [...byDomain].map(([domain, files]) => `${domain} ${files}`);
      line(io.stdout, `imported ${report.imported.length} file(s)${parts.length > 0 ? `: ${parts.join(", ")}` : ""}`);
      for (const { file, reason } of report.skipped) line(io.stdout, `skipped ${file}: ${reason}`);
    }
    return report.skipped.length > 0 ? EXIT.finding : EXIT.ok;
  });
}
