// The file system work of the backend, as plain synchronous calls. It runs on an I/O thread
// (./io-thread.ts), so a whole durable write costs one hand-off between threads and never blocks
// the application's event loop.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { decodeName, isContinuedSegment, SIGNAL_FILE_EXTENSION } from "./file-names.js";

/** Replace `file` with `text`, durably. */
export interface WriteRequest {
  op: "write";
  directory: string;
  file: string;
  text: string;
  fileMode: number;
  directoryMode: number;
}

/** Remove `file`, durably; a missing file is success. */
export interface DeleteRequest {
  op: "delete";
  directory: string;
  file: string;
}

/** Remove the temp files that crashed writers left under `baseDir`. */
export interface SweepRequest {
  op: "sweep";
  baseDir: string;
  staleAfterMs: number;
}

/** List the signal files under `baseDir`. */
export interface ListRequest {
  op: "list";
  baseDir: string;
}

/** Prove that `baseDir` takes new files. */
export interface ProbeRequest {
  op: "probe";
  baseDir: string;
  fileMode: number;
  directoryMode: number;
}

export type IoRequest = WriteRequest | DeleteRequest | SweepRequest | ListRequest | ProbeRequest;

/** A signal file found by a listing: the path segments of its strategy and of its symbol. */
export interface ListedFile {
  file: string;
  strategySegments: string[];
  /** The last one without `.json`. */
  symbolSegments: string[];
}

/** A failed request, as it crosses from the I/O thread. */
export interface IoFailure {
  message: string;
  code?: string;
  /** True when a write failed after its rename: the new row is in place, maybe not yet durable. */
  renamed?: boolean;
}

/** Runs one request; throws what the file system threw. */
export function runIoRequest(request: IoRequest): unknown {
  switch (request.op) {
    case "write":
      return writeFileDurably(request);
    case "delete":
      return deleteFileDurably(request);
    case "sweep":
      return removeStaleTempFiles(request);
    case "list":
      return listSignalFiles(request.baseDir);
    case "probe":
      return probeDirectory(request);
  }
}

/** The parts of a thrown error that matter to the caller, as plain data. */
export function describeFailure(error: unknown): IoFailure {
  const { message, code, renamed } = (error ?? {}) as { message?: unknown; code?: unknown; renamed?: unknown };
  return {
    message: typeof message === "string" ? message : String(error),
    code: typeof code === "string" ? code : undefined,
    renamed: renamed === true,
  };
}

// A write never touches the target until the rename, which replaces it in one step: a crash at
// any moment leaves the old row or the new one, never a mix.
function writeFileDurably({ directory, file, text, fileMode, directoryMode }: WriteRequest): void {
  const temp = path.join(directory, tempFileName());
  let descriptor: number | undefined = openNewFile(temp, fileMode, directory, directoryMode);
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
    // can bring back the old row after this write was acknowledged.
    syncDirectory(directory);
  } catch (error) {
    if (descriptor !== undefined) closeQuietly(descriptor);
    if (!renamed) removeQuietly(temp);
    throw Object.assign(error as object, { renamed });
  }
}

function deleteFileDurably({ directory, file }: DeleteRequest): void {
  try {
    fs.unlinkSync(file);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
  // Synced even when the file was already gone: another process may have removed it without
  // syncing yet. Like a rename, an unlink is undone by a power loss until the directory is synced.
  try {
    syncDirectory(directory);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
}

function probeDirectory({ baseDir, fileMode, directoryMode }: ProbeRequest): void {
  const temp = path.join(baseDir, tempFileName());
  fs.closeSync(openNewFile(temp, fileMode, baseDir, directoryMode));
  fs.unlinkSync(temp);
}

// Temp files are hidden, name their writer's process and end in ".tmp": never a signal file name
// (encoded names hold no "."), never shared by two writers.
const TEMP_FILE_NAME = /^\.([1-9][0-9]*)-[0-9a-f]{16}\.tmp$/;

function tempFileName(): string {
  return `.${process.pid}-${randomBytes(8).toString("hex")}.tmp`;
}

function openNewFile(file: string, fileMode: number, directory: string, directoryMode: number): number {
  try {
    return fs.openSync(file, "wx", fileMode);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
  createDirectory(directory, directoryMode);
  return fs.openSync(file, "wx", fileMode);
}

// mkdir -p, then sync the parent of each directory it created: a new directory entry is lost in a
// power loss just like a renamed file, taking every signal below it along.
function createDirectory(directory: string, mode: number): void {
  const firstCreated = fs.mkdirSync(directory, { recursive: true, mode }) ?? directory;
  let parent = path.dirname(firstCreated);
  for (const segment of path.relative(parent, directory).split(path.sep)) {
    syncDirectory(parent);
    parent = path.join(parent, segment);
  }
}

function syncDirectory(directory: string): void {
  // Windows cannot open a directory as a file; NTFS journals renames and unlinks itself.
  if (process.platform === "win32") return;
  const descriptor = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(descriptor);
  } finally {
    fs.closeSync(descriptor);
  }
}

function writeAll(descriptor: number, bytes: Buffer): void {
  for (let offset = 0; offset < bytes.length; ) {
    offset += fs.writeSync(descriptor, bytes, offset, bytes.length - offset);
  }
}

function removeStaleTempFiles({ baseDir, staleAfterMs }: SweepRequest): void {
  walkStore(baseDir, {
    signal: () => {},
    temp: (file, writerPid) => {
      if (isStale(file, writerPid, staleAfterMs)) removeQuietly(file);
    },
  });
}

// A temp file belongs to a writer that may be running right now in another process: it is only
// removed once that process is gone, or when it is so old that no write can still be using it
// (the pid was reused, or the writer ran on another host).
function isStale(file: string, writerPid: number, staleAfterMs: number): boolean {
  if (processIsGone(writerPid)) return true;
  try {
    return Date.now() - fs.statSync(file).mtimeMs > staleAfterMs;
  } catch {
    return false;
  }
}

function processIsGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists, it belongs to another user.
    return errorCode(error) === "ESRCH";
  }
}

function listSignalFiles(baseDir: string): ListedFile[] {
  const files: ListedFile[] = [];
  walkStore(baseDir, {
    signal: (file, strategySegments, symbolSegments) => files.push({ file, strategySegments, symbolSegments }),
    temp: () => {},
  });
  return files;
}

interface StoreVisitor {
  signal(file: string, strategySegments: string[], symbolSegments: string[]): void;
  temp(file: string, writerPid: number): void;
}

// Follows the layout {baseDir}/{strategy segments}/{symbol segments}.json, where every segment but
// the last of a long name ends in "+". Symbolic links are not followed.
function walkStore(baseDir: string, visitor: StoreVisitor): void {
  const visitTemp = (directory: string, name: string) => {
    const writerPid = TEMP_FILE_NAME.exec(name)?.[1];
    if (writerPid !== undefined) visitor.temp(path.join(directory, name), Number(writerPid));
  };
  const walkSymbols = (directory: string, strategy: string[], symbol: string[]) => {
    for (const entry of readDirectory(directory)) {
      const child = path.join(directory, entry.name);
      if (entry.isDirectory() && isContinuedSegment(entry.name)) {
        walkSymbols(child, strategy, [...symbol, entry.name]);
      } else if (entry.isFile() && entry.name.endsWith(SIGNAL_FILE_EXTENSION)) {
        visitor.signal(child, strategy, [...symbol, entry.name.slice(0, -SIGNAL_FILE_EXTENSION.length)]);
      } else if (entry.isFile()) {
        visitTemp(directory, entry.name);
      }
    }
  };
  const walkStrategies = (directory: string, strategy: string[]) => {
    for (const entry of readDirectory(directory)) {
      const child = path.join(directory, entry.name);
      if (entry.isFile()) visitTemp(directory, entry.name);
      if (!entry.isDirectory()) continue;
      // At the top, only directories this backend could have made: a foreign one (lost+found at
      // the root of a volume, say) may be unreadable, and must not stop every operation. Below a
      // continued segment, the rest of a long name may split an escape, so any name goes there.
      if (strategy.length === 0 && !isStoreSegment(entry.name)) continue;
      if (isContinuedSegment(entry.name)) walkStrategies(child, [...strategy, entry.name]);
      else walkSymbols(child, [...strategy, entry.name], []);
    }
  };
  walkStrategies(baseDir, []);
}

function isStoreSegment(name: string): boolean {
  return isContinuedSegment(name) || decodeName(name) !== undefined;
}

function readDirectory(directory: string): fs.Dirent[] {
  try {
    return fs.readdirSync(directory, { withFileTypes: true });
  } catch (error) {
    // Nothing written yet, or removed while we walked: nothing stored there.
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  }
}

function closeQuietly(descriptor: number): void {
  try {
    fs.closeSync(descriptor);
  } catch {
    // The write already failed; that error is the one to report.
  }
}

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // Already gone, or not removable: a later start-up sweep removes it once this process is gone.
  }
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}
