import { open } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  assertSignalKey,
  assertSignalRow,
  assertTtl,
  BackendUnavailableError,
  checkStoredSignalRow,
  decodeStoredText,
  errorMessage,
  expiresAt,
  type ISignalRow,
  type PersistBase,
  PersistError,
  type PersistErrorContext,
  type PersistOperation,
  type PersistOptions,
  parseSignalRow,
  type SignalKey,
  serializeSignalRow,
  signalKeyId,
} from "@persist-kit/core";
import type { ListedFile } from "./durable-io.js";
import { keyFromSegments, signalFilePath, signalLocation } from "./file-names.js";
import { IoError, IoThreads } from "./io-threads.js";

const BACKEND = "file";
const DEFAULT_BASE_DIR = "./data";
// A write takes milliseconds; a temp file this old belongs to no running write, whatever its pid.
const STALE_TEMP_FILE_AGE_MS = 60 * 60 * 1000;
// Large enough for any realistic row in one read; bigger files take more reads.
const READ_BUFFER_BYTES = 16 * 1024;
const EXPIRING_PREFIX = '{"expiresAt":';

/** Options of {@link PersistFile}. */
export interface PersistFileOptions extends PersistOptions {
  /**
   * Directory that holds one sub-directory per strategy, dedicated to this backend; a relative
   * path is resolved against the working directory when the backend is made. Default: `"./data"`.
   */
  baseDir?: string;
  /** Permission bits of signal files, before the umask. Default: `0o600` (owner only). */
  fileMode?: number;
  /** Permission bits of the directories it creates, before the umask. Default: `0o700` (owner only). */
  directoryMode?: number;
  /** Worker threads that run writes and deletes, each as one synchronous sequence. Default: `2`. */
  writeThreads?: number;
}

type KeyContext = PersistErrorContext & { operation: PersistOperation; strategyName: string; symbol: string };

/**
 * The crash-safe default backend: one JSON file per open signal, at
 * `{baseDir}/{strategy}/{symbol}.json` with both names encoded by `encodeName`.
 *
 * A write goes to a unique temp file beside the target, is fsynced, renamed over the target, and
 * the directory is fsynced: a crash at any moment leaves the old row or the new one, and an
 * acknowledged write survives a power loss. Each write runs as one job on a worker thread, so the
 * event loop stays free. Operations on one key run one at a time, in call order; different keys
 * run in parallel. Temp files of crashed writers are removed at the first operation; a corrupt
 * file is reported with a `CorruptDataError` and left in place.
 *
 * @example
 * const persist = new PersistFile({ baseDir: "./data" });
 * await persist.writeSignalData("BTC/USDT", "momentum", row);
 * await persist.readSignalData("BTC/USDT", "momentum"); // row, or null
 * await persist.deleteSignalData("BTC/USDT", "momentum");
 * await persist.close();
 */
export class PersistFile implements PersistBase {
  readonly name = BACKEND;
  /** The absolute directory that holds the signals. */
  readonly baseDir: string;
  readonly #ttlMs: number | undefined;
  readonly #fileMode: number;
  readonly #directoryMode: number;
  readonly #threads: IoThreads;
  readonly #tails = new Map<string, Promise<void>>();
  readonly #unkeyed = new Set<Promise<unknown>>();
  #swept: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: PersistFileOptions = {}) {
    this.#ttlMs = assertTtl(options.ttlMs, BACKEND);
    this.baseDir = path.resolve(options.baseDir ?? DEFAULT_BASE_DIR);
    this.#fileMode = assertInteger("fileMode", options.fileMode ?? 0o600, 0, 0o7777);
    this.#directoryMode = assertInteger("directoryMode", options.directoryMode ?? 0o700, 0, 0o7777);
    this.#threads = new IoThreads(assertInteger("writeThreads", options.writeThreads ?? 2, 1, 64));
  }

  async writeSignalData(symbol: string, strategyName: string, row: ISignalRow): Promise<void> {
    const context = { backend: BACKEND, operation: "write", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    assertSignalRow(row, context);
    const text = storedText(row, this.#ttlMs);
    const { directory, file } = signalLocation(this.baseDir, symbol, strategyName);
    const request = { directory, file, text, fileMode: this.#fileMode, directoryMode: this.#directoryMode };
    await this.#enqueue(context, file, () => this.#threads.run<void>({ op: "write", ...request }));
  }

  async readSignalData(symbol: string, strategyName: string): Promise<ISignalRow | null> {
    const context = { backend: BACKEND, operation: "read", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const file = signalFilePath(this.baseDir, symbol, strategyName);
    return this.#enqueue(context, file, async () => {
      const bytes = await readFileBytes(file);
      return bytes === null ? null : parseStoredSignal(bytes, context, file);
    });
  }

  async deleteSignalData(symbol: string, strategyName: string): Promise<void> {
    const context = { backend: BACKEND, operation: "delete", symbol, strategyName } as const;
    assertSignalKey(symbol, strategyName, context);
    const { directory, file } = signalLocation(this.baseDir, symbol, strategyName);
    await this.#enqueue(context, file, () => this.#threads.run<void>({ op: "delete", directory, file }));
  }

  /** Every stored key whose row has not expired; a corrupt file is listed (reading it reports it). */
  async *keys(): AsyncIterable<SignalKey> {
    const context = { backend: BACKEND, operation: "keys" } as const;
    const files = await this.#unkeyedOperation(context, this.baseDir, () =>
      this.#threads.run<ListedFile[]>({ op: "list", baseDir: this.baseDir }),
    );
    for (const { file, strategySegments, symbolSegments } of files) {
      const key = keyFromSegments(strategySegments, symbolSegments);
      // Not a name this backend writes: some other file in the directory.
      if (key === undefined) continue;
      const bytes = await this.#unkeyedOperation(context, file, () => readFileBytes(file));
      if (bytes !== null && !hasExpired(bytes)) yield key;
    }
  }

  /** Resolves when `baseDir` can be created and takes a new file; rejects with the reason otherwise. */
  async ping(): Promise<void> {
    const context = { backend: BACKEND, operation: "ping" } as const;
    await this.#unkeyedOperation(context, this.baseDir, () =>
      this.#threads.run<void>({
        op: "probe",
        baseDir: this.baseDir,
        fileMode: this.#fileMode,
        directoryMode: this.#directoryMode,
      }),
    );
  }

  /**
   * Waits for the operations already started, then stops the worker threads. Later operations
   * reject with a `PersistError`; closing twice is harmless.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#tails.values(), ...this.#unkeyed]);
      await this.#threads.close();
    })();
    return this.#closing;
  }

  // Chains the operation after the previous one on the same key, so this process never races
  // itself on one file.
  #enqueue<T>(context: KeyContext, file: string, operation: () => Promise<T>): Promise<T> {
    this.#assertOpen(context);
    const id = signalKeyId(context.symbol, context.strategyName);
    const previous = this.#tails.get(id) ?? Promise.resolve();
    const result = previous
      .then(() => this.#sweepOnce())
      .then(operation)
      .catch((error: unknown) => {
        throw fileError(error, context, file);
      });
    const tail = result.then(
      () => {},
      () => {},
    );
    this.#tails.set(id, tail);
    tail.then(() => {
      if (this.#tails.get(id) === tail) this.#tails.delete(id);
    });
    return result;
  }

  // Operations on no one key (keys, ping) are not chained, only waited for by close().
  async #unkeyedOperation<T>(context: PersistErrorContext, file: string, operation: () => Promise<T>): Promise<T> {
    this.#assertOpen(context);
    const result = this.#sweepOnce()
      .then(operation)
      .catch((error: unknown) => {
        throw fileError(error, context, file);
      });
    const settled = result.catch(() => {});
    this.#unkeyed.add(settled);
    settled.then(() => this.#unkeyed.delete(settled));
    return result;
  }

  // Temp files of crashed writers are removed before the first operation, once; a failed sweep is
  // retried by the next operation.
  #sweepOnce(): Promise<void> {
    if (this.#swept === undefined) {
      const swept = this.#threads.run<void>({
        op: "sweep",
        baseDir: this.baseDir,
        staleAfterMs: STALE_TEMP_FILE_AGE_MS,
      });
      this.#swept = swept;
      swept.catch(() => {
        if (this.#swept === swept) this.#swept = undefined;
      });
    }
    return this.#swept;
  }

  #assertOpen(context: PersistErrorContext): void {
    if (this.#closing !== undefined) throw new PersistError("the backend is closed", context);
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

function baseDirFromUrl(url: string): string {
  const context = { backend: BACKEND, operation: "create" } as const;
  if (!/^file:/i.test(url)) throw new PersistError(`expected a file: URL, got ${JSON.stringify(url)}`, context);
  const location = url.slice("file:".length);
  if (!location.startsWith("//")) return location === "" ? DEFAULT_BASE_DIR : location;
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new PersistError(`${JSON.stringify(url)} is not a usable file URL: ${errorMessage(error)}`, {
      ...context,
      cause: error,
    });
  }
}

function assertInteger(option: string, value: number, min: number, max: number): number {
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  throw new PersistError(`${option} must be a whole number from ${min} to ${max}, got ${value}`, {
    backend: BACKEND,
    operation: "create",
  });
}

// With a TTL the row is wrapped as {"expiresAt": ms, "signal": row}; without one the file is the
// row itself. A row has at least seven fields, so the two-field wrapper is never mistaken for one.
function storedText(row: ISignalRow, ttlMs: number | undefined): string {
  const json = serializeSignalRow(row);
  const expires = expiresAt(ttlMs);
  return expires === undefined ? json : `${EXPIRING_PREFIX}${expires},"signal":${json}}`;
}

interface ExpiringSignal {
  expiresAt: number;
  signal: unknown;
}

function expiringSignal(text: string): ExpiringSignal | undefined {
  if (!text.startsWith(EXPIRING_PREFIX)) return undefined;
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof stored !== "object" || stored === null || Array.isArray(stored)) return undefined;
  const fields = Object.keys(stored);
  const { expiresAt, signal } = stored as Partial<ExpiringSignal>;
  const isWrapper = fields.length === 2 && typeof expiresAt === "number" && "signal" in stored;
  return isWrapper ? { expiresAt, signal } : undefined;
}

function parseStoredSignal(bytes: Buffer, context: KeyContext, file: string): ISignalRow | null {
  const text = decodeStoredText(bytes, context, file);
  const expiring = expiringSignal(text);
  if (expiring === undefined) return parseSignalRow(text, context, file);
  if (expiring.expiresAt <= Date.now()) return null;
  return checkStoredSignalRow(expiring.signal, context, file);
}

function hasExpired(bytes: Buffer): boolean {
  const expiring = expiringSignal(bytes.toString("utf8"));
  return expiring !== undefined && expiring.expiresAt <= Date.now();
}

// open, one read, close: fewer thread-pool hand-offs than readFile, which also stats the file.
async function readFileBytes(file: string): Promise<Buffer | null> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return null;
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

const FILE_ERROR_REASONS: Record<string, string> = {
  ENOSPC: "disk full",
  EDQUOT: "disk quota exceeded",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a file stands where a directory is expected",
  EISDIR: "a directory stands where a signal file is expected",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
  EFBIG: "file too large for this process's limit",
  ENAMETOOLONG: "path too long",
  EIO: "input/output error",
};

function fileError(error: unknown, context: PersistErrorContext, file: string): PersistError {
  if (error instanceof PersistError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const reason = typeof code === "string" ? FILE_ERROR_REASONS[code] : undefined;
  const cause = reason === undefined ? errorMessage(error) : `${reason} (${errorMessage(error)})`;
  return new BackendUnavailableError(`${cause} at ${file}${writeOutcome(error, context)}`, {
    ...context,
    cause: error,
  });
}

function writeOutcome(error: unknown, context: PersistErrorContext): string {
  // Anything but a refused system call (a thread that died, say) leaves the outcome unknown.
  if (context.operation !== "write" || !(error instanceof IoError)) return "";
  return error.renamed
    ? "; the new row is in place, but the directory sync failed, so it may not survive a power loss"
    : "; nothing was written, the stored row is unchanged";
}
