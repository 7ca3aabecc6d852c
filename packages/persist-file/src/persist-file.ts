import path from "node:path";
import { errorMessage, InvalidOptionError, type PersistOptions, RecordSignalStore } from "@persist-kit/core";
import type { FileDurabilityReport } from "./durability.js";
import { DEFAULT_BASE_DIR, FileRecordStore, type FileRecordStoreOptions } from "./file-record-store.js";

/** Options of {@link PersistFile}: `ttlMs` and the options of its {@link FileRecordStore}. */
export interface PersistFileOptions extends PersistOptions, FileRecordStoreOptions {}

/**
 * The crash-safe default backend: one JSON file per open signal, at
 * `{baseDir}/{strategy}/{symbol}.json` with both names encoded by `encodeName`, over a
 * {@link FileRecordStore} (reachable as `records`).
 *
 * A write goes to a unique temp file beside the target, is fdatasynced, renamed over the target,
 * and the directory is fsynced: a crash at any moment leaves the old row or the new one, and an
 * acknowledged write survives a power loss. Each write runs as one job on a worker thread, so the
 * event loop stays free. Operations on one key run one at a time, in call order; different keys
 * run in parallel. Temp files and locks of crashed processes are removed at the first operation;
 * a corrupt file is reported with a `CorruptDataError` and left in place.
 *
 * @example
 * const persist = new PersistFile({ baseDir: "./data" });
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistFile extends RecordSignalStore<FileRecordStore> {
  /** The absolute directory that holds the signals. */
  readonly baseDir: string;

  constructor(options: PersistFileOptions = {}) {
    super(new FileRecordStore(options), options);
    this.baseDir = this.records.baseDir;
  }

  /**
   * What the file system under `baseDir` does to acknowledged writes (see {@link FileDurabilityReport}).
   * @example
   * const report = await persist.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  describeDurability(): Promise<FileDurabilityReport> {
    return this.records.describeDurability();
  }
}

/**
 * Builds a {@link PersistFile} from a `file:` URL, for `createPersist` in `@persist-kit/core`.
 * Every form is read by one parser: `file:./data`, `file:relative/dir` and `file:../dir` are
 * relative to the working directory; `file:/abs/dir`, `file:///abs/dir` and
 * `file://localhost/abs/dir` are absolute; `file:` alone is the default `./data`. Percent-escapes
 * are decoded, as UTF-8, in every form (`file:./my%20data` is `./my data`). A query or a fragment
 * (`?`, `#`; spell them `%3F` and `%23` in a directory name), another host, a broken escape, an
 * encoded `/` and NUL are refused with `InvalidOptionError`.
 * @example const persist = fromUrl("file:./data", { ttlMs: 60_000 });
 */
export function fromUrl(url: string, options: PersistFileOptions & { scope?: string } = {}): PersistFile {
  const { scope, ...rest } = options;
  const baseDir = baseDirFromUrl(url);
  // A scope is a directory of its own beside the store (`./data` becomes `./data.name`): inside
  // it, the store's own start-up sweep and listings would meet it as a stranger.
  return new PersistFile({
    ...rest,
    baseDir: scope === undefined ? baseDir : `${path.resolve(baseDir ?? DEFAULT_BASE_DIR)}.${scope}`,
  });
}

const FILE_SCHEME = /^file:/i;
// Escapes that would change what the path says rather than spell a name: a separator, or NUL.
const REFUSED_ESCAPES = process.platform === "win32" ? /%(2f|5c|00)/i : /%(2f|00)/i;

/** The directory a `file:` URL names; `undefined` for `file:` alone (the store's default). */
function baseDirFromUrl(url: string): string | undefined {
  const refuse = (reason: string, cause?: unknown): never => {
    throw new InvalidOptionError(`${JSON.stringify(url)} is not a usable file: URL: ${reason}`, {
      backend: "file",
      operation: "create",
      cause,
    });
  };
  if (!FILE_SCHEME.test(url)) refuse("expected a URL that starts with file:");
  let location = url.slice("file:".length);
  if (/[?#]/.test(location)) refuse("a query or a fragment names no directory (spell ? as %3F and # as %23 in a name)");
  if (location.startsWith("//")) {
    const pathStart = location.indexOf("/", 2);
    const host = location.slice(2, pathStart === -1 ? undefined : pathStart);
    if (host !== "" && host.toLowerCase() !== "localhost")
      refuse(`it names the host ${JSON.stringify(host)}, not this machine`);
    if (pathStart === -1) refuse("it names no directory after the host");
    location = location.slice(pathStart);
  }
  if (location === "") return undefined;
  if (REFUSED_ESCAPES.test(location)) refuse("an escaped separator or NUL names no directory");
  const decoded = decodePercentEscapes(location, refuse);
  // file:///C:/data names C:/data on Windows.
  return process.platform === "win32" && /^\/[A-Za-z]:/.test(decoded) ? decoded.slice(1) : decoded;
}

function decodePercentEscapes(location: string, refuse: (reason: string, cause: unknown) => never): string {
  try {
    return decodeURIComponent(location);
  } catch (error) {
    return refuse(`a percent-escape is broken or not UTF-8 (${errorMessage(error)})`, error);
  }
}
