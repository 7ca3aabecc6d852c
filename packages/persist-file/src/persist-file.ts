import { fileURLToPath } from "node:url";
import { errorMessage, InvalidOptionError, type PersistOptions, RecordSignalStore } from "@persist-kit/core";
import { FileRecordStore, type FileRecordStoreOptions } from "./file-record-store.js";

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
}

/**
 * Builds a {@link PersistFile} from a `file:` URL, for `createPersist` in `@persist-kit/core`:
 * `file:./data` and `file:relative/dir` are relative to the working directory, `file:///abs/dir`
 * and `file:/abs/dir` are absolute.
 * @example const persist = fromUrl("file:./data", { ttlMs: 60_000 });
 */
export function fromUrl(url: string, options: PersistFileOptions = {}): PersistFile {
  return new PersistFile({ ...options, baseDir: baseDirFromUrl(url) });
}

// `file:` alone means the store's default directory.
function baseDirFromUrl(url: string): string | undefined {
  const context = { backend: "file", operation: "create" } as const;
  if (!/^file:/i.test(url)) throw new InvalidOptionError(`expected a file: URL, got ${JSON.stringify(url)}`, context);
  const location = url.slice("file:".length);
  if (!location.startsWith("//")) return location === "" ? undefined : location;
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new InvalidOptionError(`${JSON.stringify(url)} is not a usable file URL: ${errorMessage(error)}`, {
      ...context,
      cause: error,
    });
  }
}
