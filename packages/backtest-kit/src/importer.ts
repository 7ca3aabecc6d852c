import type { Dirent } from "node:fs";
import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { InvalidOptionError, PersistError, type RecordStore } from "@persist-kit/core";
import { CANDLE_INTERVAL_MINUTES, type Domain, type DomainClasses } from "./domains.js";
import { persistKitClasses } from "./install.js";

/** What {@link importBacktestKitStore} did, file by file (paths relative to the dump directory). */
export interface ImportReport {
  /** Files read into the store, with their domain. */
  readonly imported: readonly { readonly file: string; readonly domain: Domain }[];
  /** Files left out, and why (ambiguous names, cleared records, temporary files, unknown folders). */
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
}

interface Parsed {
  domain: Domain;
  write(classes: DomainClasses): Promise<void>;
}

type Row = Record<string, unknown>;

// Where backtest-kit 19.5's file store puts each domain, under its `./dump` folder.
const ROOTS: readonly [string, Domain][] = [
  ["data/signal", "Signal"],
  ["data/schedule", "Schedule"],
  ["data/strategy", "Strategy"],
  ["data/risk", "Risk"],
  ["data/partial", "Partial"],
  ["data/breakeven", "Breakeven"],
  ["data/recent", "Recent"],
  ["data/candle", "Candle"],
  ["data/storage", "Storage"],
  ["data/notification", "Notification"],
  ["data/log", "Log"],
  ["data/measure", "Measure"],
  ["data/interval", "Interval"],
  ["memory", "Memory"],
  ["state", "State"],
  ["session", "Session"],
];

// A file larger than this is no record the framework wrote: it is reported, never read.
const MAX_FILE_BYTES = 64 * 1024 * 1024;

// The framework's temporary files of an unfinished write (write-file-atomic).
const TEMPORARY = /^\.tmp-/;
// The fields of a StrategyData that hold signal rows.
const STRATEGY_SIGNALS = [
  "closedSignal",
  "cancelledSignal",
  "activatedSignal",
  "takeProfitSignal",
  "stopLossSignal",
  "retryOpenSignal",
];

/**
 * Reads a backtest-kit file store (the `./dump` folder as 19.5 writes it) into a persist-kit
 * store, through the same classes `installPersistKit` registers, so a bot that switches keeps
 * its open positions. Where the framework's own reader turns a stored null (or missing)
 * `minuteEstimatedTime` into `Infinity`, the import does the same. The framework joins context
 * parts with `_` unescaped: the parts are taken from the fields the stored rows carry where they
 * do (a signal's `symbol`, `strategyName`, `exchangeName`; a partial's signal by its id), or from
 * a name that splits only one way; any other file is skipped as ambiguous and reported, as is a
 * cleared record (the text `null`), a temporary file and anything outside the known layout.
 * @example
 * const report = await importBacktestKitStore("./dump", persist);
 * for (const { file, reason } of report.skipped) console.warn(`not imported: ${file}: ${reason}`);
 */
export async function importBacktestKitStore(
  dumpDir: string,
  target: { readonly records: RecordStore } | RecordStore,
): Promise<ImportReport> {
  const classes = persistKitClasses(target);
  const imported: { file: string; domain: Domain }[] = [];
  const skipped: { file: string; reason: string }[] = [];
  const dump = await stat(dumpDir).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidOptionError(`cannot read the dump directory (${error.code ?? error.message})`, {
      backend: "backtest-kit",
      operation: "read",
      cause: error,
    });
  });
  if (!dump.isDirectory()) {
    throw new InvalidOptionError("the dump directory is not a directory", {
      backend: "backtest-kit",
      operation: "read",
    });
  }
  skipped.push(...(await unknownFolders(dumpDir)));
  const files = new Map<Domain, { file: string; path: string; value: unknown }[]>();
  for (const [root, domain] of ROOTS) {
    const list: { file: string; path: string; value: unknown }[] = [];
    const found = await jsonFiles(dumpDir, join(dumpDir, root), true);
    skipped.push(...found.skipped);
    for (const path of found.files) {
      const file = relative(dumpDir, path).split(sep).join("/");
      const name = path.slice(path.lastIndexOf(sep) + 1);
      if (TEMPORARY.test(name)) {
        skipped.push({ file, reason: "a temporary file of a write that did not finish" });
        continue;
      }
      let text: string;
      try {
        const { size } = await stat(path);
        if (size > MAX_FILE_BYTES) {
          skipped.push({ file, reason: `${size} bytes, more than any record of the framework (${MAX_FILE_BYTES})` });
          continue;
        }
        text = await readFile(path, "utf8");
      } catch (error) {
        skipped.push({
          file,
          reason: `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        });
        continue;
      }
      try {
        list.push({ file, path: relative(join(dumpDir, root), path).split(sep).join("/"), value: JSON.parse(text) });
      } catch (error) {
        skipped.push({ file, reason: `not JSON: ${(error as Error).message}` });
      }
    }
    files.set(domain, list);
  }
  // Signals and scheduled signals by id: a partial or breakeven file names only its signal's id.
  const signalsById = new Map<string, Row>();
  for (const domain of ["Signal", "Schedule"] as const) {
    for (const { value } of files.get(domain) ?? []) {
      if (isRow(value) && typeof value.id === "string") signalsById.set(value.id, value);
    }
  }
  for (const [, domain] of ROOTS) {
    for (const { file, path, value } of files.get(domain) ?? []) {
      const parsed = parse(domain, path, value, signalsById);
      if (typeof parsed === "string") {
        skipped.push({ file, reason: parsed });
        continue;
      }
      try {
        await parsed.write(classes);
      } catch (error) {
        // A value or name the store refuses (each such error says nothing was written), or a
        // store that failed: the file is reported and the import goes on with the next one.
        if (!(error instanceof PersistError)) throw error;
        const what = error.outcome === "unknown" ? "may have been written (outcome unknown)" : "not written";
        skipped.push({ file, reason: `${what}: ${error.message}` });
        continue;
      }
      imported.push({ file, domain });
    }
  }
  return { imported, skipped };
}

// The regular .json files under `dir`, folders followed, sorted; anything else under it (a
// symbolic link, a FIFO, an unreadable folder) is reported as skipped, never followed or opened.
async function jsonFiles(
  dumpDir: string,
  dir: string,
  root = false,
): Promise<{ files: string[]; skipped: { file: string; reason: string }[] }> {
  const found = { files: [] as string[], skipped: [] as { file: string; reason: string }[] };
  const shown = (path: string) => relative(dumpDir, path).split(sep).join("/");
  if (root) {
    // A root (or a folder on the way to it) that is a symbolic link is not followed either.
    let at = dumpDir;
    for (const part of relative(dumpDir, dir).split(sep)) {
      at = join(at, part);
      const entry = await lstat(at).catch(() => undefined);
      if (entry === undefined) return found;
      if (entry.isSymbolicLink()) {
        found.skipped.push({ file: shown(at), reason: "a symbolic link: not followed" });
        return found;
      }
    }
  }
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return found;
    found.skipped.push({ file: shown(dir), reason: `cannot be read (${code ?? (error as Error).message})` });
    return found;
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const inner = await jsonFiles(dumpDir, path);
      found.files.push(...inner.files);
      found.skipped.push(...inner.skipped);
    } else if (entry.isFile()) {
      if (entry.name.endsWith(".json")) found.files.push(path);
      else found.skipped.push({ file: shown(path), reason: "not a .json file" });
    } else {
      const kind = entry.isSymbolicLink() ? "a symbolic link" : "not a regular file or folder";
      found.skipped.push({ file: shown(path), reason: `${kind}: not followed` });
    }
  }
  return found;
}

// Entries of the dump folder and of its data folder that no domain of 19.5 uses, one line each.
async function unknownFolders(dumpDir: string): Promise<{ file: string; reason: string }[]> {
  const known = new Set(ROOTS.map(([root]) => root));
  const unknown: { file: string; reason: string }[] = [];
  for (const folder of ["", "data"]) {
    const entries = await readdir(join(dumpDir, folder)).catch(() => [] as string[]);
    for (const name of entries.sort()) {
      const path = folder === "" ? name : `${folder}/${name}`;
      if (known.has(path) || (folder === "" && name === "data")) continue;
      unknown.push({ file: path, reason: "not a persistence folder of backtest-kit 19.5: not read" });
    }
  }
  return unknown;
}

function isRow(value: unknown): value is Row {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// The framework's readers: a null or missing minuteEstimatedTime is an eternal hold.
function restoreInfinity(row: unknown): void {
  if (isRow(row) && row.minuteEstimatedTime == null) row.minuteEstimatedTime = Number.POSITIVE_INFINITY;
}

/** Every way `path` reads as `<entity>/<id>.json` (a ccxt symbol nests folders). */
function splits(path: string): { entity: string; id: string }[] {
  const stem = path.slice(0, -".json".length);
  const found: { entity: string; id: string }[] = [];
  for (let index = stem.indexOf("/"); index >= 0; index = stem.indexOf("/", index + 1)) {
    found.push({ entity: stem.slice(0, index), id: stem.slice(index + 1) });
  }
  return found;
}

const AMBIGUOUS =
  'ambiguous: the framework joins names with "_", its name reads more than one way, and no stored field says which';

/**
 * The one reading of a file, or a reason to skip it. `names` are the "_"-joined names it could
 * have, with the number of parts each should have: a name with more "_" than that is ambiguous.
 */
function single<T>(readings: T[], what: string, names: readonly { name: string; parts: number }[] = []): T | string {
  if (readings.length === 1) return readings[0] as T;
  if (readings.length > 1 || names.some(({ name, parts }) => name.split("_").length > parts)) return AMBIGUOUS;
  return `its path does not fit the layout of ${what}`;
}

// `<symbol>_<strategyName>_<exchangeName>` with the given symbol: the rest splits one way only.
function signalContext(entity: string, symbol: string): { strategyName: string; exchangeName: string } | undefined {
  if (!entity.startsWith(`${symbol}_`)) return undefined;
  const rest = entity.slice(symbol.length + 1).split("_");
  if (rest.length !== 2 || rest.some((part) => part === "")) return undefined;
  return { strategyName: rest[0] as string, exchangeName: rest[1] as string };
}

function fieldsOf(row: unknown): { symbol: string; strategyName: string; exchangeName: string } | undefined {
  if (!isRow(row)) return undefined;
  const { symbol, strategyName, exchangeName } = row;
  if (typeof symbol !== "string" || typeof strategyName !== "string" || typeof exchangeName !== "string")
    return undefined;
  return { symbol, strategyName, exchangeName };
}

function parse(domain: Domain, path: string, value: unknown, signalsById: Map<string, Row>): Parsed | string {
  if (value === null) return "a cleared record (the text null): nothing to import";
  switch (domain) {
    case "Signal":
    case "Schedule": {
      const fields = fieldsOf(value);
      if (fields !== undefined) {
        if (path !== `${fields.symbol}_${fields.strategyName}_${fields.exchangeName}/${fields.symbol}.json`) {
          return "the row's symbol, strategyName and exchangeName do not match its path";
        }
        restoreInfinity(value);
        const { symbol, strategyName, exchangeName } = fields;
        return domain === "Signal"
          ? { domain, write: (c) => new c.Signal(symbol, strategyName, exchangeName).writeSignalData(value) }
          : { domain, write: (c) => new c.Schedule(symbol, strategyName, exchangeName).writeScheduleData(value) };
      }
      return "the row names no symbol, strategyName and exchangeName, so its name cannot be read";
    }
    case "Strategy": {
      const candidates = splits(path).filter(({ id }) => id === "strategy");
      const rows = isRow(value) ? STRATEGY_SIGNALS.map((field) => value[field]) : [];
      const readings = candidates.flatMap(({ entity }) => {
        const fromRows = rows
          .map(fieldsOf)
          .find(
            (fields) =>
              fields !== undefined && entity === `${fields.symbol}_${fields.strategyName}_${fields.exchangeName}`,
          );
        if (fromRows !== undefined) return [fromRows];
        const parts = entity.split("_");
        return parts.length === 3 && !parts.includes("")
          ? [{ symbol: parts[0] as string, strategyName: parts[1] as string, exchangeName: parts[2] as string }]
          : [];
      });
      const reading = single(
        readings,
        "strategy data",
        candidates.map(({ entity }) => ({ name: entity, parts: 3 })),
      );
      if (typeof reading === "string") return reading;
      for (const row of rows) restoreInfinity(row);
      return {
        domain,
        write: (c) =>
          new c.Strategy(reading.symbol, reading.strategyName, reading.exchangeName).writeStrategyData(value),
      };
    }
    case "Risk": {
      const entity = splits(path).find(({ id }) => id === "positions")?.entity;
      if (entity === undefined || !Array.isArray(value))
        return "its path or value does not fit the layout of risk data";
      const exchanges = new Set(
        value
          .map((entry) => (Array.isArray(entry) && isRow(entry[1]) ? entry[1].exchangeName : undefined))
          .filter((name) => typeof name === "string"),
      );
      const readings = [...exchanges]
        .filter((exchange) => entity.endsWith(`_${exchange}`) && entity.length > exchange.length + 1)
        .map((exchange) => ({ riskName: entity.slice(0, -exchange.length - 1), exchangeName: exchange }));
      if (readings.length === 0 && entity.split("_").length === 2) {
        const [riskName, exchangeName] = entity.split("_") as [string, string];
        if (riskName !== "" && exchangeName !== "") readings.push({ riskName, exchangeName });
      }
      const reading = single(readings, "risk data", [{ name: entity, parts: 2 }]);
      if (typeof reading === "string") return reading;
      for (const entry of value) if (Array.isArray(entry)) restoreInfinity(entry[1]);
      return {
        domain,
        write: (c) => new c.Risk(reading.riskName, reading.exchangeName).writePositionData(value, new Date()),
      };
    }
    case "Partial":
    case "Breakeven": {
      const readings = splits(path).flatMap(({ entity, id }) => {
        const signal = fieldsOf(signalsById.get(id));
        if (signal !== undefined) {
          return entity === `${signal.symbol}_${signal.strategyName}_${signal.exchangeName}`
            ? [{ ...signal, signalId: id }]
            : [];
        }
        const parts = entity.split("_");
        return parts.length === 3 && !parts.includes("") && !id.includes("/")
          ? [
              {
                symbol: parts[0] as string,
                strategyName: parts[1] as string,
                exchangeName: parts[2] as string,
                signalId: id,
              },
            ]
          : [];
      });
      const names = splits(path).map(({ entity }) => ({ name: entity, parts: 3 }));
      const reading = single(readings, `${domain.toLowerCase()} data`, names);
      if (typeof reading === "string") return reading;
      const { symbol, strategyName, exchangeName, signalId } = reading;
      return domain === "Partial"
        ? {
            domain,
            write: (c) =>
              new c.Partial(symbol, strategyName, exchangeName).writePartialData(value, signalId, new Date()),
          }
        : {
            domain,
            write: (c) =>
              new c.Breakeven(symbol, strategyName, exchangeName).writeBreakevenData(value, signalId, new Date()),
          };
    }
    case "Recent": {
      const fields = fieldsOf(value);
      const readings = splits(path).flatMap(({ entity, id }) => {
        const mode = entity.endsWith("_backtest") ? true : entity.endsWith("_live") ? false : undefined;
        if (mode === undefined) return [];
        const head = entity.slice(0, entity.lastIndexOf("_"));
        if (fields !== undefined) {
          if (
            fields.symbol !== id ||
            !head.startsWith(`${fields.symbol}_${fields.strategyName}_${fields.exchangeName}`)
          )
            return [];
          const rest = head.slice(`${fields.symbol}_${fields.strategyName}_${fields.exchangeName}`.length);
          if (rest !== "" && !rest.startsWith("_")) return [];
          return [{ ...fields, frameName: rest.slice(1), backtest: mode }];
        }
        const context = signalContext(head, id);
        return context === undefined ? [] : [{ symbol: id, ...context, frameName: "", backtest: mode }];
      });
      const reading = single(readings, "recent data");
      if (typeof reading === "string") return reading;
      restoreInfinity(value);
      const { symbol, strategyName, exchangeName, frameName, backtest } = reading;
      return {
        domain,
        write: (c) =>
          new c.Recent(symbol, strategyName, exchangeName, frameName, backtest).writeRecentData(value, new Date()),
      };
    }
    case "Candle": {
      const segments = path.slice(0, -".json".length).split("/");
      if (segments.length < 4 || !isRow(value)) return "its path does not fit the layout of candles";
      const exchange = segments[0] as string;
      const interval = segments[segments.length - 2] as string;
      const symbol = segments.slice(1, -2).join("/");
      if (String(value.timestamp) !== segments[segments.length - 1])
        return "the candle's timestamp does not match its file name";
      const minutes = CANDLE_INTERVAL_MINUTES[interval];
      if (minutes === undefined) return `unknown candle interval ${JSON.stringify(interval)}`;
      if ((value.timestamp as number) + minutes * 60_000 > Date.now()) {
        return "a candle that has not closed yet (the bridge stores closed candles only)";
      }
      return {
        domain,
        write: (c) => new c.Candle(symbol, interval, exchange).writeCandlesData([value as { timestamp: number }]),
      };
    }
    case "Storage":
    case "Notification": {
      const [mode, ...rest] = path.slice(0, -".json".length).split("/");
      const id = rest.join("/");
      if ((mode !== "backtest" && mode !== "live") || !isRow(value) || value.id !== id) {
        return `its path or id does not fit the layout of ${domain.toLowerCase()} data`;
      }
      if (domain === "Storage") restoreInfinity(value);
      else if ("minuteEstimatedTime" in value) restoreInfinity(value);
      const backtest = mode === "backtest";
      return domain === "Storage"
        ? { domain, write: (c) => new c.Storage(backtest).writeStorageData([value]) }
        : { domain, write: (c) => new c.Notification(backtest).writeNotificationData([value]) };
    }
    case "Log": {
      const id = path.startsWith("log/") ? path.slice("log/".length, -".json".length) : undefined;
      if (id === undefined || !isRow(value) || value.id !== id)
        return "its path or id does not fit the layout of log entries";
      return { domain, write: (c) => new c.Log().writeLogData([value]) };
    }
    case "Measure":
    case "Interval": {
      const segments = path.slice(0, -".json".length).split("/");
      if (segments.length !== 2) return 'ambiguous: a bucket or key holds a "/", so the path reads more than one way';
      const [bucket, key] = segments as [string, string];
      return domain === "Measure"
        ? { domain, write: (c) => new c.Measure(bucket).writeMeasureData(value, key) }
        : { domain, write: (c) => new c.Interval(bucket).writeIntervalData(value, key) };
    }
    case "Memory": {
      const segments = path.slice(0, -".json".length).split("/");
      if (segments.length !== 3) return 'ambiguous: a signal id, bucket or memory id holds a "/"';
      const [signalId, bucket, memoryId] = segments as [string, string, string];
      return { domain, write: (c) => new c.Memory(signalId, bucket).writeMemoryData(value, memoryId, new Date()) };
    }
    case "State": {
      const segments = path.slice(0, -".json".length).split("/");
      if (segments.length !== 3 || segments[1] !== segments[2]) return "its path does not fit the layout of state data";
      const [signalId, bucket] = segments as [string, string];
      return { domain, write: (c) => new c.State(signalId, bucket).writeStateData(value, new Date()) };
    }
    case "Session": {
      const segments = path.slice(0, -".json".length).split("/");
      // <strategy>/<exchange>[/<frame>]/<symbol>_<mode>: an empty frame leaves its folder out, so
      // four parts could be a frame or a symbol with "/"; only three read one way.
      if (segments.length !== 3) return 'ambiguous: a frame folder and a symbol with "/" cannot be told apart';
      const [strategyName, exchangeName, stem] = segments as [string, string, string];
      const at = stem.lastIndexOf("_");
      const mode = stem.slice(at + 1);
      if (at <= 0 || (mode !== "backtest" && mode !== "live"))
        return "its file name does not end in _backtest or _live";
      const symbol = stem.slice(0, at);
      return {
        domain,
        write: (c) =>
          new c.Session(strategyName, exchangeName, "", symbol, mode === "backtest").writeSessionData(
            value,
            new Date(),
          ),
      };
    }
  }
}
