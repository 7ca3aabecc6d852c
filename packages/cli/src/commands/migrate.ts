import { count, owner } from "../format.js";
import { type CliIo, EXIT, line, UsageError } from "../io.js";
import { Progress } from "../progress.js";
import { exportRecord, importRecord } from "../records.js";
import { COPIED_NAMESPACES, listAll, liveOwners, mapLimit, type OpenedStore, withStore } from "../store.js";
import { resolveUrl, shownUrl } from "../url.js";
import { emptyCounts } from "./import.js";

export const MIGRATE_HELP = `Usage: persist-kit migrate <from> <to> [--dry-run] [--overwrite] [--ignore-owners]
                           [--concurrency N] [--json]

Copies every record (signals and every backtest-kit namespace) from one store to another, each
at its revision, then reads each back from the target and compares it bit for bit. A run that
was stopped part way can be run again: what was copied is found unchanged, the rest is copied.
Refuses while a running process owns keys in either store (its writes would go on in the old
store after the copy), unless --ignore-owners. Exit status 1 when a record differs after the
copy, the target holds a newer one (left as it is unless --overwrite), or the target holds keys
the source does not (a position closed since an earlier run; listed, never deleted).
  --dry-run        count what would be copied, write nothing
  --overwrite      replace records the target holds at a newer revision
  --ignore-owners  copy although processes own keys
  --concurrency N  records copied at a time (default 16)
  --json           the counts as one JSON object`;

export interface MigrateOptions {
  from: string;
  to: string;
  dryRun: boolean;
  overwrite: boolean;
  ignoreOwners: boolean;
  concurrency: number;
  json: boolean;
}

export async function migrate(options: MigrateOptions, io: CliIo): Promise<number> {
  const from = resolveUrl(options.from, io);
  const to = resolveUrl(options.to, io);
  if (from === to) throw new UsageError("the source and the target are the same URL");
  return withStore(from, (source) => withStore(to, (target) => copy(source, target, options, io)));
}

async function copy(source: OpenedStore, target: OpenedStore, options: MigrateOptions, io: CliIo): Promise<number> {
  const directory = (store: OpenedStore) => (store.records as { baseDir?: string }).baseDir;
  if (directory(source) !== undefined && directory(source) === directory(target)) {
    throw new UsageError(`the source and the target are the same directory (${directory(source)})`);
  }
  if (!options.ignoreOwners) {
    for (const [store, role] of [
      [source, "source"],
      [target, "target"],
    ] as const) {
      const owners = await liveOwners(store.records);
      if (owners.length === 0) continue;
      line(
        io.stderr,
        `refused: ${owners.length} key(s) of the ${role} (${shownUrl(store.url)}) are owned by running processes:`,
      );
      for (const { parts, owner: holder } of owners.slice(0, 10))
        line(io.stderr, `  ${parts.join(" / ")}: ${owner(holder)}`);
      line(io.stderr, "stop them (or wait for their leases to expire), or pass --ignore-owners; nothing was copied");
      return EXIT.finding;
    }
  }
  const keys: { namespace: string; parts: readonly string[] }[] = [];
  for (const namespace of COPIED_NAMESPACES) {
    for await (const { parts } of listAll(source.records, namespace)) keys.push({ namespace, parts });
  }
  // Keys the target holds that the source does not: left by an earlier run whose source has
  // since deleted them (a position closed meanwhile), or by another writer. Never deleted here;
  // counted as a difference, since after a switch the bot would find a position it closed.
  const inSource = new Set(keys.map((key) => JSON.stringify([key.namespace, ...key.parts])));
  const onlyInTarget: string[] = [];
  for (const namespace of COPIED_NAMESPACES) {
    for await (const { parts } of listAll(target.records, namespace)) {
      const id = JSON.stringify([namespace, ...parts]);
      if (!inSource.has(id)) onlyInTarget.push(id);
    }
  }
  const counts = { ...emptyCounts(), gone: 0, mismatched: 0, onlyInTarget: onlyInTarget.length };
  const mismatched: string[] = [];
  const progress = new Progress(io, options.dryRun ? "checked" : "copied", keys.length);
  await mapLimit(keys, options.concurrency, async (key) => {
    const record = await exportRecord(source.records, key);
    if (record === undefined) {
      counts.gone++;
    } else {
      const outcome = await importRecord(target.records, record, options);
      counts[outcome]++;
      if (!options.dryRun && outcome !== "newer-in-target") {
        const back = await target.records.read(key);
        const exact = back.found && back.json === record.json && back.revision >= record.revision;
        if (!exact) {
          counts.mismatched++;
          mismatched.push(JSON.stringify([key.namespace, ...key.parts]));
        }
      }
    }
    progress.step();
  });
  progress.end();
  const summary = { dryRun: options.dryRun, records: keys.length, ...counts };
  if (options.json) line(io.stdout, JSON.stringify(summary));
  else {
    const verb = options.dryRun ? "would copy" : "copied";
    line(
      io.stdout,
      `${count(keys.length)} records: ${verb} ${count(counts.written)}, unchanged ${count(counts.unchanged)}, newer in the target ${count(counts["newer-in-target"])}, overwritten ${count(counts.overwritten)}, deleted meanwhile ${count(counts.gone)}, different after the copy ${count(counts.mismatched)}`,
    );
    for (const key of mismatched.slice(0, 20)) line(io.stderr, `different after the copy: ${key}`);
    if (onlyInTarget.length > 0) {
      line(io.stdout, `${count(onlyInTarget.length)} record(s) only in the target, left as they are:`);
      for (const key of onlyInTarget.slice(0, 20)) line(io.stdout, `  ${key}`);
    }
  }
  return counts.mismatched > 0 || counts["newer-in-target"] > 0 || onlyInTarget.length > 0 ? EXIT.finding : EXIT.ok;
}
