import { open } from "node:fs/promises";
import path from "node:path";
import {
  BaseRecordStore,
  CorruptDataError,
  decodeStoredText,
  type ListRequest,
  type PersistError,
  type PersistErrorContext,
  type RecordChange,
  type RecordCondition,
  type RecordKey,
  type RecordPage,
  type RecordRead,
  type RecordStoreCapabilities,
  RetryingOnce,
  SIGNAL_NAMESPACE,
  wholeNumberOption,
  wrapDriverError,
} from "@persist-kit/core";
import type { FileModes } from "./durable-io.js";
import { LockTimeoutError } from "./file-locks.js";
import { namespaceDirectory, type RecordLocation, recordLocation } from "./file-names.js";
import { IoError, IoPool } from "./io-pool.js";
import { decodeFloor, decodeRecord, isLive, StoredFormatError, type StoredRecord } from "./record-file.js";
import { FLOOR_FILE_NAME, type IoRequest, type ListedPage } from "./record-jobs.js";

const BACKEND = "file";
const DEFAULT_BASE_DIR = "./data";
// A write takes milliseconds; a temp file this old belongs to no running write, whatever its pid.
const STALE_TEMP_FILE_AGE_MS = 60 * 60 * 1000;
// Large enough for any realistic record in one read; bigger files take more reads.
const READ_BUFFER_BYTES = 16 * 1024;

/** Options of {@link FileRecordStore}. */
export interface FileRecordStoreOptions {
  /**
   * Directory of the store, dedicated to this backend; a relative path is resolved against the
   * working directory when the store is made. Default: `"./data"`.
   */
  baseDir?: string;
  /** Permission bits of record files, before the umask. Default: `0o600` (owner only). */
  fileMode?: number;
  /** Permission bits of the directories it creates, before the umask. Default: `0o700` (owner only). */
  directoryMode?: number;
  /** Worker threads that run writes and deletes, each as one synchronous sequence. Default: `2`. */
  writeThreads?: number;
  /**
   * How long a write or delete waits for another process's lock on its key before it fails
   * with nothing changed, in milliseconds. Default: `10000`.
   */
  lockTimeoutMs?: number;
}

/**
 * Records as files, one per key: `{baseDir}/{strategy}/{symbol}.json` for signals,
 * `{baseDir}/.records/{namespace}/{part 1}/.../{last part}.json` for every other namespace, each
 * name encoded by `encodeName`. A file holds `{"format":1,"revision":R,"value":V}` (plus
 * `"expiresAt"` with a TTL); a deleted key keeps a tombstone `{"format":1,"revision":R}` until the
 * next start folds it into its group's floor file.
 *
 * A write or delete runs as one job on a worker thread: take the key's lock file, read the
 * revision, decide the condition, write a temp file, fdatasync, rename it over the record, fsync
 * the directory, drop the lock. Conditions hold across every process of the host. A crash at any
 * moment leaves the old record or the new one; a lock left by a dead process is broken.
 *
 * @example
 * const store = new FileRecordStore({ baseDir: "./data" });
 * const key = { namespace: "risk", parts: ["momentum", "BTC/USDT"] };
 * await store.write(key, '{"exposure":1}', { condition: { revision: 0 } }); // { applied: true, revision: 1 }
 */
export class FileRecordStore extends BaseRecordStore {
  readonly name = BACKEND;
  readonly capabilities: RecordStoreCapabilities = {
    // Files cannot be replaced together atomically without a journal.
    writeMany: "none",
    ttl: true,
    ttlResetsRevision: false,
    durable: true,
  };
  /** The absolute directory that holds the records. */
  readonly baseDir: string;
  readonly #modes: FileModes;
  readonly #lockTimeoutMs: number;
  readonly #pool: IoPool;
  // Temp files and locks of crashed processes are removed, and tombstones folded, before the
  // first operation; a failed sweep is retried by the next one.
  readonly #sweep = new RetryingOnce(() =>
    this.#pool.run<void>({
      op: "sweep",
      baseDir: this.baseDir,
      staleAfterMs: STALE_TEMP_FILE_AGE_MS,
      modes: this.#modes,
      lockTimeoutMs: this.#lockTimeoutMs,
    }),
  );

  constructor(options: FileRecordStoreOptions = {}) {
    super();
    this.baseDir = path.resolve(options.baseDir ?? DEFAULT_BASE_DIR);
    this.#modes = {
      fileMode: wholeNumberOption(BACKEND, "fileMode", options.fileMode, { default: 0o600, min: 0, max: 0o7777 }),
      directoryMode: wholeNumberOption(BACKEND, "directoryMode", options.directoryMode, {
        default: 0o700,
        min: 0,
        max: 0o7777,
      }),
    };
    this.#lockTimeoutMs = wholeNumberOption(BACKEND, "lockTimeoutMs", options.lockTimeoutMs, {
      default: 10_000,
      min: 1,
    });
    this.#pool = new IoPool(
      wholeNumberOption(BACKEND, "writeThreads", options.writeThreads, { default: 2, min: 1, max: 64 }),
    );
  }

  protected async readRecord(key: RecordKey, context: PersistErrorContext): Promise<RecordRead> {
    await this.#sweep.get();
    const location = recordLocation(this.baseDir, key);
    const stored = await readStoredRecord(location.file, context);
    return stored === undefined ? this.#readAbsent(location, context) : readOf(stored);
  }

  protected async writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
  ): Promise<RecordChange> {
    return this.#run<RecordChange>({
      op: "write",
      ...this.#change(key, options.condition),
      json,
      ttlMs: options.ttlMs,
    });
  }

  protected async deleteRecord(key: RecordKey, condition: RecordCondition | undefined): Promise<RecordChange> {
    return this.#run<RecordChange>({ op: "delete", ...this.#change(key, condition) });
  }

  protected async listRecords(namespace: string, request: ListRequest): Promise<RecordPage> {
    const directory = namespaceDirectory(this.baseDir, namespace);
    return this.#run<ListedPage>({ op: "list", directory, ...request });
  }

  protected async pingStore(): Promise<void> {
    await this.#run<void>({ op: "probe", baseDir: this.baseDir, modes: this.#modes });
  }

  protected async closeStore(): Promise<void> {
    await this.#pool.close();
  }

  protected wrapError(error: unknown, context: PersistErrorContext): PersistError {
    if ((error as { code?: unknown } | null)?.code === StoredFormatError.code) {
      return new CorruptDataError(`${(error as Error).message}; it was left in place`, { ...context, cause: error });
    }
    return wrapDriverError(error, context, {
      // Every failure of the file system means the store cannot be used right now.
      isUnavailable: () => true,
      // A refused system call before the rename changed nothing; anything else (a thread that
      // died, a failed directory sync after the rename) may have.
      outcome: (cause) => (cause instanceof IoError && !cause.renamed ? "not-applied" : "unknown"),
      describe: (cause) => this.#describe(cause, context),
    });
  }

  async #run<T>(request: IoRequest): Promise<T> {
    await this.#sweep.get();
    return this.#pool.run<T>(request);
  }

  #change(key: RecordKey, condition: RecordCondition | undefined) {
    return {
      location: recordLocation(this.baseDir, key),
      condition,
      modes: this.#modes,
      lockTimeoutMs: this.#lockTimeoutMs,
    };
  }

  // No file: the group's floor is the revision, but only a floor seen both before and after the
  // file was found missing. A start-up sweep of another process may raise it in between, after a
  // first write of this key landed below the raised floor; a reader must not report that floor
  // and then the lower revision.
  async #readAbsent(location: RecordLocation, context: PersistErrorContext): Promise<RecordRead> {
    const floorFile = path.join(location.groupDirectory, FLOOR_FILE_NAME);
    for (;;) {
      const floor = await readFloor(floorFile, context);
      const stored = await readStoredRecord(location.file, context);
      if (stored !== undefined) return readOf(stored);
      if ((await readFloor(floorFile, context)) === floor) return { found: false, revision: floor };
    }
  }

  #describe(error: unknown, context: PersistErrorContext): string {
    const code = (error as { code?: unknown } | null)?.code;
    const reason = typeof code === "string" ? FILE_ERROR_REASONS[code] : undefined;
    const key = keyOfContext(context);
    const where =
      key === undefined ? ` (store ${this.baseDir})` : ` (record file ${recordLocation(this.baseDir, key).file})`;
    return `${reason === undefined ? "" : `: ${reason}`}${where}`;
  }
}

function readOf(stored: StoredRecord): RecordRead {
  return isLive(stored, Date.now())
    ? { found: true, json: stored.json, revision: stored.revision }
    : { found: false, revision: stored.revision };
}

async function readStoredRecord(file: string, context: PersistErrorContext): Promise<StoredRecord | undefined> {
  const bytes = await readFileBytes(file);
  return bytes === undefined ? undefined : decodeStored(bytes, file, context, decodeRecord);
}

async function readFloor(file: string, context: PersistErrorContext): Promise<number> {
  const bytes = await readFileBytes(file);
  return bytes === undefined ? 0 : decodeStored(bytes, file, context, decodeFloor);
}

function decodeStored<T>(bytes: Buffer, file: string, context: PersistErrorContext, decode: (text: string) => T): T {
  const text = decodeStoredText(bytes, context, file);
  try {
    return decode(text);
  } catch (error) {
    if (!(error instanceof StoredFormatError)) throw error;
    throw new CorruptDataError(`${error.message} in ${file}; it was left in place`, { ...context, cause: error });
  }
}

// open, one read, close: fewer thread-pool hand-offs than readFile, which also stats the file.
async function readFileBytes(file: string): Promise<Buffer | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    let buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      length += bytesRead;
      // A short read of a regular file is its end; the file is never written in place.
      if (length < buffer.length) break;
      buffer = Buffer.concat([buffer], buffer.length * 2);
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

function keyOfContext(context: PersistErrorContext): RecordKey | undefined {
  if (context.record !== undefined) return context.record;
  if (context.strategyName === undefined || context.symbol === undefined) return undefined;
  return { namespace: SIGNAL_NAMESPACE, parts: [context.strategyName, context.symbol] };
}

const FILE_ERROR_REASONS: Record<string, string> = {
  ENOSPC: "disk full",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a file stands where a directory is expected",
  EISDIR: "a directory stands where a record file is expected",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  EFBIG: "file too large for this process's limit",
  ENAMETOOLONG: "path too long",
  EIO: "input/output error",
  [LockTimeoutError.code]: "another process holds the key's lock",
};
