import { lstat, open } from "node:fs/promises";
import path from "node:path";
import {
  BaseRecordStore,
  CorruptDataError,
  decodeStoredText,
  errorMessage,
  InvalidKeyError,
  InvalidOptionError,
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
  reportWarning,
  SIGNAL_NAMESPACE,
  wholeNumberOption,
  wrapDriverError,
} from "@persist-kit/core";
import { describeFileDurability, type FileDurabilityReport } from "./durability.js";
import {
  checkReadable,
  type FileModes,
  grownBuffer,
  isRefusedOpen,
  linkedDirectory,
  notRegularFile,
  READ_FLAGS,
  readBufferSize,
} from "./durable-io.js";
import { LockTimeoutError } from "./file-locks.js";
import {
  directoriesOnTheWay,
  encodeName,
  longestPathBytes,
  MAX_PATH_BYTES,
  nameSegments,
  namespaceDirectory,
  type RecordLocation,
  recordLocation,
} from "./file-names.js";
import { IoError, IoPool, WORKER_MISSING_CODE } from "./io-pool.js";
import { decodeFloor, decodeRecord, encodeValue, isLive, StoredFormatError, type StoredRecord } from "./record-file.js";
import { FLOOR_FILE_NAME, type IoRequest, type ListedPage, type SweepReport } from "./record-jobs.js";

const BACKEND = "file";
export const DEFAULT_BASE_DIR = "./data";
// A write takes milliseconds; a temp file this old belongs to no running write, whatever its pid.
const STALE_TEMP_FILE_AGE_MS = 60 * 60 * 1000;
const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
// The longest header a record file can have: the largest revision and expiry there are.
const LONGEST_HEADER_BYTES = Buffer.byteLength(encodeValue(Number.MAX_SAFE_INTEGER, "", Number.MAX_SAFE_INTEGER));

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
  /**
   * Worker threads that run writes and deletes, each as one synchronous sequence. `0` runs them on
   * the calling thread (for a bundled application, which lacks the threads' module; each write
   * then blocks the event loop for its system calls, fsyncs included). Default: `2`.
   */
  writeThreads?: number;
  /**
   * How long a write or delete waits for another process's lock on its key before it fails
   * with nothing changed, in milliseconds. Default: `10000`.
   */
  lockTimeoutMs?: number;
  /**
   * The largest record file, in bytes, that is written or read. A write whose record could be
   * larger is refused (`InvalidOptionError`); a larger file found on disk is a `CorruptDataError`,
   * and no read buffer grows past it. At least 1024. Default: `16777216` (16 MiB).
   */
  maxRecordBytes?: number;
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
  readonly #maxRecordBytes: number;
  readonly #pool: IoPool;
  // Temp files and locks of crashed processes are removed, and tombstones folded, before the
  // first operation. It is housekeeping, never a condition of an operation: what it cannot do
  // (a directory it cannot read) is reported as a warning, once, and left for a later start.
  readonly #sweep = new RetryingOnce(() => this.#sweepOnce());

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
    this.#maxRecordBytes = wholeNumberOption(BACKEND, "maxRecordBytes", options.maxRecordBytes, {
      default: DEFAULT_MAX_RECORD_BYTES,
      min: 1024,
      max: 2 ** 30,
    });
    this.#pool = new IoPool(
      wholeNumberOption(BACKEND, "writeThreads", options.writeThreads, { default: 2, min: 0, max: 64 }),
    );
  }

  /**
   * What the file system under `baseDir` does to acknowledged writes: in memory (`tmpfs`) they
   * are lost at a reboot, on a network or overlay file system they depend on another layer.
   * @example
   * const report = await store.describeDurability();
   * if (!report.crashSafe) console.warn(report.warnings.join("\n"));
   */
  describeDurability(): Promise<FileDurabilityReport> {
    return describeFileDurability(this.baseDir);
  }

  protected async readRecord(key: RecordKey, context: PersistErrorContext): Promise<RecordRead> {
    const location = this.#location(key, context);
    await this.#sweep.get();
    // Checked beside the read, not before it, so a read still costs one round of hand-offs.
    const [stored] = await Promise.all([
      readStoredRecord(location.file, this.#maxRecordBytes, context),
      refuseLinkedDirectories(directoriesOnTheWay(this.baseDir, location)),
    ]);
    return stored === undefined ? this.#readAbsent(location, context) : readOf(stored);
  }

  protected async writeRecord(
    key: RecordKey,
    json: string,
    options: { condition: RecordCondition | undefined; ttlMs: number | undefined },
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    const recordBytes = LONGEST_HEADER_BYTES + Buffer.byteLength(json);
    if (recordBytes > this.#maxRecordBytes) {
      throw new InvalidOptionError(
        `the value is ${Buffer.byteLength(json)} bytes: with its header, the record could be ${recordBytes} bytes, over maxRecordBytes (${this.#maxRecordBytes})`,
        context,
      );
    }
    return this.#run<RecordChange>({
      op: "write",
      ...this.#change(key, options.condition, context),
      json,
      ttlMs: options.ttlMs,
    });
  }

  protected async deleteRecord(
    key: RecordKey,
    condition: RecordCondition | undefined,
    context: PersistErrorContext,
  ): Promise<RecordChange> {
    return this.#run<RecordChange>({ op: "delete", ...this.#change(key, condition, context) });
  }

  protected async listRecords(namespace: string, request: ListRequest): Promise<RecordPage> {
    const [first] = request.prefix;
    return this.#run<ListedPage>({
      op: "list",
      baseDir: this.baseDir,
      directory: namespaceDirectory(this.baseDir, namespace),
      groupSegments: first === undefined ? undefined : nameSegments(encodeName(first)),
      ...request,
      maxRecordBytes: this.#maxRecordBytes,
    });
  }

  protected async pingStore(): Promise<void> {
    await this.#run<void>({ op: "probe", baseDir: this.baseDir, modes: this.#modes });
  }

  protected async closeStore(): Promise<void> {
    await this.#pool.close();
  }

  protected wrapError(error: unknown, context: PersistErrorContext): PersistError {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === StoredFormatError.code) {
      return new CorruptDataError(`${(error as Error).message}; it was left in place`, { ...context, cause: error });
    }
    // A name the file system refused before anything was renamed (a limit below PATH_MAX, or of
    // a file system with shorter names): this key can never be stored here.
    const key = keyOfContext(context);
    if (code === "ENAMETOOLONG" && key !== undefined && !(error instanceof IoError && error.renamed)) {
      return new InvalidKeyError(`the file system cannot hold a name that long (${(error as Error).message})`, {
        ...context,
        cause: error,
      });
    }
    return wrapDriverError(error, context, {
      // Every failure of the file system means the store cannot be used right now; a missing I/O
      // thread module is a broken installation, not a store that is down.
      isUnavailable: (cause) => !(cause instanceof IoError && cause.code === WORKER_MISSING_CODE),
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

  async #sweepOnce(): Promise<void> {
    let report: SweepReport;
    try {
      report = await this.#pool.run<SweepReport>({
        op: "sweep",
        baseDir: this.baseDir,
        staleAfterMs: STALE_TEMP_FILE_AGE_MS,
        modes: this.#modes,
        lockTimeoutMs: this.#lockTimeoutMs,
        maxRecordBytes: this.#maxRecordBytes,
      });
    } catch (error) {
      reportWarning({
        backend: BACKEND,
        kind: "capability",
        message: `the start-up sweep of ${this.baseDir} failed (${errorMessage(error)}): temp files and locks that crashed processes left stay until a later start; operations go on`,
        details: { baseDir: this.baseDir },
      });
      return;
    }
    for (const { directory, code, message } of report.unreadable) {
      const reason = (code === undefined ? undefined : FILE_ERROR_REASONS[code]) ?? message;
      reportWarning({
        backend: BACKEND,
        kind: "capability",
        message: `the start-up sweep could not read ${directory} (${reason}): temp files and locks that crashed processes left there stay until a later start; operations on keys stored elsewhere are not affected`,
        details: { baseDir: this.baseDir, directory, code },
      });
    }
  }

  #change(key: RecordKey, condition: RecordCondition | undefined, context: PersistErrorContext) {
    return {
      baseDir: this.baseDir,
      location: this.#location(key, context),
      condition,
      modes: this.#modes,
      lockTimeoutMs: this.#lockTimeoutMs,
      maxRecordBytes: this.#maxRecordBytes,
    };
  }

  // Known before any I/O: every segment fits a file name, but the whole path may not fit the
  // system's PATH_MAX (8 parts of 255 bytes of non-ASCII characters encode to over 6000 bytes).
  #location(key: RecordKey, context: PersistErrorContext): RecordLocation {
    const location = recordLocation(this.baseDir, key);
    const length = longestPathBytes(location);
    if (length > MAX_PATH_BYTES) {
      throw new InvalidKeyError(
        `the file system cannot hold a name that long: this key's files need paths of ${length} bytes below ${this.baseDir}, and this system takes at most ${MAX_PATH_BYTES} (use shorter key parts or a shorter baseDir)`,
        context,
      );
    }
    return location;
  }

  // No file: the group's floor is the revision, but only a floor seen both before and after the
  // file was found missing. A start-up sweep of another process may raise it in between, after a
  // first write of this key landed below the raised floor; a reader must not report that floor
  // and then the lower revision.
  async #readAbsent(location: RecordLocation, context: PersistErrorContext): Promise<RecordRead> {
    const floorFile = path.join(location.groupDirectory, FLOOR_FILE_NAME);
    const maxBytes = this.#maxRecordBytes;
    for (;;) {
      const floor = await readFloor(floorFile, maxBytes, context);
      const stored = await readStoredRecord(location.file, maxBytes, context);
      if (stored !== undefined) return readOf(stored);
      if ((await readFloor(floorFile, maxBytes, context)) === floor) return { found: false, revision: floor };
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

async function readStoredRecord(
  file: string,
  maxBytes: number,
  context: PersistErrorContext,
): Promise<StoredRecord | undefined> {
  const bytes = await readFileBytes(file, maxBytes);
  return bytes === undefined ? undefined : decodeStored(bytes, file, context, decodeRecord);
}

async function readFloor(file: string, maxBytes: number, context: PersistErrorContext): Promise<number> {
  const bytes = await readFileBytes(file, maxBytes);
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

// open, fstat, one read, close: fewer thread-pool hand-offs than readFile. The open never blocks
// and never follows a symbolic link, and only a regular file of at most `maxBytes` is read (see
// readFileIfExists in ./durable-io.ts, its twin on the I/O thread).
async function readFileBytes(file: string, maxBytes: number): Promise<Buffer | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, READ_FLAGS);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw (isRefusedOpen(error) ? notRegularFile(file, await lstat(file).catch(() => undefined)) : undefined) ?? error;
  }
  try {
    const size = checkReadable(file, await handle.stat(), maxBytes);
    let buffer: Buffer = Buffer.allocUnsafe(readBufferSize(size, maxBytes));
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      length += bytesRead;
      // A short read of a regular file is its end; the buffer is one byte longer than the file,
      // so a full one means it grew since the fstat.
      if (length < buffer.length) return buffer.subarray(0, length);
      buffer = grownBuffer(file, buffer, maxBytes);
    }
  } finally {
    await handle.close();
  }
}

// The twin of refuseLinkedDirectories in ./durable-io.ts, for the main thread: every lstat at
// once, judged top first.
async function refuseLinkedDirectories(directories: readonly string[]): Promise<void> {
  const stats = await Promise.all(directories.map((directory) => lstat(directory).catch(() => undefined)));
  for (const [index, directory] of directories.entries()) {
    if (stats[index]?.isSymbolicLink()) throw linkedDirectory(directory);
    if (!stats[index]?.isDirectory()) return;
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
  ENAMETOOLONG: "the file system cannot hold a name that long",
  EIO: "input/output error",
  [LockTimeoutError.code]: "another process holds the key's lock",
};
