// The durable file system steps of the backend, as plain synchronous calls. They run on an I/O
// thread (./io-worker.ts), so a whole durable write costs one hand-off between threads and never
// blocks the application's event loop.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { processIsGone, thisPidSpaceTag } from "./process-identity.js";
import { StoredFormatError } from "./record-file.js";

/** Permission bits of the files written and of the directories made for them. */
export interface FileModes {
  fileMode: number;
  directoryMode: number;
}

// Temp files are hidden, name their writer and end in ".tmp": never a record file name (encoded
// names hold no "."), never shared by two writers. The writer is its pid space's tag and its pid
// (see ./process-identity.ts): a pid alone means another process, or none, in another PID
// namespace or on another host.
const TEMP_FILE_NAME = /^\.([0-9a-f]{12})-([1-9][0-9]*)-[0-9a-f]{12}\.tmp$/;

/** The writer a temp file name names: the tag of its pid space, and its pid there. */
export interface TempFileWriter {
  pidSpace: string;
  pid: number;
}

/** A new temp file name of this process: `.{pid space tag}-{pid}-{12 hex}.tmp`. */
export function tempFileName(): string {
  return `.${thisPidSpaceTag()}-${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
}

/** The writer of a temp file named `name`, or `undefined` when it is not one. */
export function tempFileWriter(name: string): TempFileWriter | undefined {
  const match = TEMP_FILE_NAME.exec(name);
  return match === null ? undefined : { pidSpace: match[1] as string, pid: Number(match[2]) };
}

/**
 * Replaces `file` with `text`, durably. The target is never touched until the rename, which
 * replaces it in one step: a crash at any moment leaves the old file or the new one, never a mix.
 * A failure says whether the rename happened (`renamed`).
 */
export function writeFileDurably(directory: string, file: string, text: string, modes: FileModes): void {
  const temp = path.join(directory, tempFileName());
  let descriptor: number | undefined = openNewFile(temp, modes.fileMode, directory, modes.directoryMode);
  let renamed = false;
  try {
    writeAll(descriptor, Buffer.from(text, "utf8"));
    // The bytes must be on disk before the rename can make them visible; otherwise a power loss
    // could leave the target name pointing at an empty or partial file.
    fs.fdatasyncSync(descriptor);
    fs.closeSync(descriptor);
    descriptor = undefined;
    fs.renameSync(temp, file);
    renamed = true;
    // The rename changed the directory, not the file: until the directory is synced, a power loss
    // can bring back the old file after this write was acknowledged.
    syncDirectory(directory);
  } catch (error) {
    if (descriptor !== undefined) closeQuietly(descriptor);
    if (!renamed) removeQuietly(temp);
    throw Object.assign(error as object, { renamed });
  }
}

// Every file this backend reads (records, floors, locks) is opened without blocking (a FIFO or a
// device opens at once instead of waiting for a writer) and without following a symbolic link at
// the file's own name, then checked with fstat: only a regular file is read. Windows has neither
// flag (and no FIFOs at a path); there the fstat check alone applies.
export const READ_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0);
// O_NOFOLLOW refuses a symbolic link with ELOOP (EMLINK on FreeBSD); O_NONBLOCK makes a socket ENXIO.
const REFUSED_OPEN_CODES = new Set(["ELOOP", "EMLINK", "ENXIO", "EOPNOTSUPP"]);

/**
 * The bytes of `file`, or `undefined` when it does not exist. Throws {@link StoredFormatError}
 * (naming `file`) when something other than a regular file stands there (a symbolic link, a FIFO,
 * a directory, a device, a socket), or {@link FileTooLargeError} when it holds more than
 * `maxBytes`: nothing blocks, and no buffer grows past `maxBytes + 1`.
 */
export function readFileIfExists(file: string, maxBytes: number): Buffer | undefined {
  let descriptor: number;
  try {
    descriptor = fs.openSync(file, READ_FLAGS);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw (isRefusedOpen(error) ? notRegularFile(file, lstatQuietly(file)) : undefined) ?? error;
  }
  try {
    const size = checkReadable(file, fs.fstatSync(descriptor), maxBytes);
    let buffer: Buffer = Buffer.allocUnsafe(readBufferSize(size, maxBytes));
    let length = 0;
    for (;;) {
      length += fs.readSync(descriptor, buffer, length, buffer.length - length, length);
      // A short read of a regular file is its end; the buffer is one byte longer than the file,
      // so a full one means it grew since the fstat.
      if (length < buffer.length) return buffer.subarray(0, length);
      buffer = grownBuffer(file, buffer, maxBytes);
    }
  } finally {
    fs.closeSync(descriptor);
  }
}

/**
 * Throws {@link StoredFormatError} unless `stats` (of the open `file`) is a regular file of at
 * most `maxBytes`; returns its size.
 */
export function checkReadable(file: string, stats: fs.Stats, maxBytes: number): number {
  const notFile = notRegularFile(file, stats);
  if (notFile !== undefined) throw notFile;
  if (stats.size > maxBytes) throw tooLarge(file, maxBytes);
  return stats.size;
}

/** The first read buffer for a file of `size` bytes: one byte more, so its end is seen in one read. */
export function readBufferSize(size: number, maxBytes: number): number {
  return Math.min(size, maxBytes) + 1;
}

/** A full buffer, doubled up to `maxBytes + 1`; throws {@link StoredFormatError} once the file is past `maxBytes`. */
export function grownBuffer(file: string, buffer: Buffer, maxBytes: number): Buffer {
  if (buffer.length > maxBytes) throw tooLarge(file, maxBytes);
  return Buffer.concat([buffer], Math.min(buffer.length * 2, maxBytes + 1));
}

/** True when an `open` failed with `error` maybe because of what stands at the name (`lstat` tells). */
export function isRefusedOpen(error: unknown): boolean {
  const code = errorCode(error);
  return typeof code === "string" && REFUSED_OPEN_CODES.has(code);
}

/** The error for `file` when `stats` (of the file itself, or of the name) is not a regular file. */
export function notRegularFile(file: string, stats: fs.Stats | undefined): StoredFormatError | undefined {
  if (stats === undefined || stats.isFile()) return undefined;
  const link = stats.isSymbolicLink() ? " (symbolic links are never followed below baseDir)" : "";
  return new StoredFormatError(`${describeKind(stats)} stands where a file is expected: ${file}${link}`);
}

/**
 * Throws {@link StoredFormatError} when one of `directories` (top first) is a symbolic link: below
 * baseDir a link is never followed, where a directory is expected any more than where a file is.
 * Stops at the first one that is missing or not a directory: the operation's own calls say what
 * stands there.
 */
export function refuseLinkedDirectories(directories: readonly string[]): void {
  for (const directory of directories) {
    const stats = lstatQuietly(directory);
    if (stats?.isSymbolicLink()) throw linkedDirectory(directory);
    if (!stats?.isDirectory()) return;
  }
}

/** The error for a symbolic link at `directory`, where the store expects a directory of its own. */
export function linkedDirectory(directory: string): StoredFormatError {
  return new StoredFormatError(
    `a symbolic link stands where a directory is expected: ${directory} (symbolic links are never followed below baseDir)`,
  );
}

function lstatQuietly(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

function describeKind(stats: fs.Stats): string {
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO (named pipe)";
  if (stats.isSocket()) return "a socket";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  return "something that is not a regular file";
}

/** A file past the size a reader allows: no buffer grew past the limit. */
export class FileTooLargeError extends StoredFormatError {}

function tooLarge(file: string, maxBytes: number): FileTooLargeError {
  return new FileTooLargeError(`${file} holds more than maxRecordBytes (${maxBytes} bytes)`);
}

/** Opens a new file with `O_EXCL`, making its directory (durably) when it is missing. */
export function openNewFile(file: string, fileMode: number, directory: string, directoryMode: number): number {
  try {
    return fs.openSync(file, "wx", fileMode);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
  createDirectory(directory, directoryMode);
  return fs.openSync(file, "wx", fileMode);
}

// mkdir -p, then sync the parent of each directory it created: a new directory entry is lost in a
// power loss just like a renamed file, taking every record below it along.
function createDirectory(directory: string, mode: number): void {
  const firstCreated = fs.mkdirSync(directory, { recursive: true, mode }) ?? directory;
  let parent = path.dirname(firstCreated);
  for (const segment of path.relative(parent, directory).split(path.sep)) {
    syncDirectory(parent);
    parent = path.join(parent, segment);
  }
}

/** fsync of a directory, so the renames and unlinks in it survive a power loss. */
export function syncDirectory(directory: string): void {
  // Windows cannot open a directory as a file; NTFS journals renames and unlinks itself.
  if (process.platform === "win32") return;
  const descriptor = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(descriptor);
  } finally {
    fs.closeSync(descriptor);
  }
}

/** Writes every byte, however many calls it takes. */
export function writeAll(descriptor: number, bytes: Buffer): void {
  for (let offset = 0; offset < bytes.length; ) {
    offset += fs.writeSync(descriptor, bytes, offset, bytes.length - offset);
  }
}

/** Proves that `directory` (made when missing) takes a new file. */
export function probeDirectory(directory: string, modes: FileModes): void {
  const temp = path.join(directory, tempFileName());
  fs.closeSync(openNewFile(temp, modes.fileMode, directory, modes.directoryMode));
  fs.unlinkSync(temp);
}

/**
 * A temp file belongs to a writer that may be running right now in another process: it is stale
 * only once that process is certainly gone (it ran in this pid space, and no process has its pid
 * now), or when it is so old that no write can still be using it (its pid was reused, or it ran
 * where its pid cannot be checked from here: another PID namespace, another host, another boot).
 */
export function isStaleTempFile(file: string, writer: TempFileWriter, staleAfterMs: number): boolean {
  if (writer.pidSpace === thisPidSpaceTag() && processIsGone(writer.pid)) return true;
  try {
    return Date.now() - fs.statSync(file).mtimeMs > staleAfterMs;
  } catch {
    return false;
  }
}

function closeQuietly(descriptor: number): void {
  try {
    fs.closeSync(descriptor);
  } catch {
    // The write already failed; that error is the one to report.
  }
}

/** Unlinks `file`, ignoring every failure (already gone, or not removable: a later sweep retries). */
export function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // Already gone, or not removable: a later start-up sweep removes it once this process is gone.
  }
}

/** The `code` of a thrown system error. */
export function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}
