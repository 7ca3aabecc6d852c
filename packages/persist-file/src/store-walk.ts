// Walks the files of one namespace directory, synchronously, on an I/O thread.
import fs from "node:fs";
import path from "node:path";
import { namespaceProblem } from "@persist-kit/core";
import { errorCode } from "./durable-io.js";
import {
  decodeName,
  isContinuedSegment,
  namespaceDirectory,
  RECORD_FILE_EXTENSION,
  RECORDS_DIRECTORY,
} from "./file-names.js";

/** What a walk reports. */
export interface StoreVisitor {
  /** A record file, with the path segments of each key part (the last without `.json`). */
  record?(file: string, segments: string[][]): void;
  /** A hidden file (a temp file, a lock, a floor) in `directory`. */
  hidden?(directory: string, name: string): void;
  /** A symbolic link at a name a record or a directory of the store could have: never followed. */
  link?(file: string): void;
  /**
   * A directory that could not be read. Without this callback the walk throws what `readdir`
   * threw; with it, the walk goes on with the other directories.
   */
  unreadable?(directory: string, error: unknown): void;
}

/**
 * Follows the layout `{root}/{part 1 segments}/.../{last part segments}.json`, where every segment
 * but the last of a long name ends in `+`. Hidden entries are reported, never entered: `.records`
 * under the signal directory belongs to the other namespaces. Symbolic links are never followed.
 */
export function walkNamespace(root: string, visitor: StoreVisitor): void {
  walkPart(root, [], [], visitor);
}

/**
 * Walks only the records whose first part is stored at `groupSegments` below `root` (see
 * `nameSegments` in ./file-names.ts): the group's directory, and the record of the one-part key
 * beside it. No other directory of the namespace is read.
 */
export function walkGroup(root: string, groupSegments: string[], visitor: StoreVisitor): void {
  const groupDirectory = path.join(root, ...groupSegments);
  const onePartFile = `${groupDirectory}${RECORD_FILE_EXTENSION}`;
  const stats = lstatIfExists(onePartFile);
  if (stats?.isSymbolicLink()) visitor.link?.(onePartFile);
  else if (stats?.isFile()) visitor.record?.(onePartFile, [groupSegments]);
  walkPart(groupDirectory, [groupSegments], [], visitor);
}

/**
 * The directory of every namespace stored under `baseDir`: signals first, then `.records/*`. A
 * `.records` that is a symbolic link is not followed (see {@link StoreVisitor.link}).
 */
export function namespaceDirectories(baseDir: string, visitor: StoreVisitor = {}): string[] {
  const records = path.join(baseDir, RECORDS_DIRECTORY);
  let stats: fs.Stats | undefined;
  try {
    stats = lstatIfExists(records);
  } catch (error) {
    if (visitor.unreadable === undefined) throw error;
    visitor.unreadable(baseDir, error);
    return [baseDir];
  }
  if (stats?.isSymbolicLink()) {
    visitor.link?.(records);
    return [baseDir];
  }
  const others = readDirectory(records, visitor)
    .filter((entry) => entry.isDirectory() && namespaceProblem(entry.name) === undefined)
    .map((entry) => namespaceDirectory(baseDir, entry.name));
  return [baseDir, ...others];
}

function walkPart(directory: string, done: string[][], current: string[], visitor: StoreVisitor): void {
  for (const entry of readDirectory(directory, visitor)) {
    const child = path.join(directory, entry.name);
    if (entry.name.startsWith(".")) {
      if (entry.isFile()) visitor.hidden?.(directory, entry.name);
    } else if (entry.isSymbolicLink()) {
      if (isStoreSegment(entry.name) || isRecordFileName(entry.name)) visitor.link?.(child);
    } else if (entry.isDirectory()) {
      // Where a part starts, only directories this backend could have made: a foreign one
      // (lost+found at the root of a volume, say) may be unreadable, and is none of its business.
      // Below a continued segment, the rest of a long name may split an escape.
      if (current.length === 0 && !isStoreSegment(entry.name)) continue;
      if (isContinuedSegment(entry.name)) walkPart(child, done, [...current, entry.name], visitor);
      else walkPart(child, [...done, [...current, entry.name]], [], visitor);
    } else if (entry.isFile() && entry.name.endsWith(RECORD_FILE_EXTENSION)) {
      const last = entry.name.slice(0, -RECORD_FILE_EXTENSION.length);
      visitor.record?.(child, [...done, [...current, last]]);
    }
  }
}

function isStoreSegment(name: string): boolean {
  return isContinuedSegment(name) || decodeName(name) !== undefined;
}

function isRecordFileName(name: string): boolean {
  return name.endsWith(RECORD_FILE_EXTENSION) && decodeName(name.slice(0, -RECORD_FILE_EXTENSION.length)) !== undefined;
}

function readDirectory(directory: string, visitor: StoreVisitor): fs.Dirent[] {
  try {
    return fs.readdirSync(directory, { withFileTypes: true });
  } catch (error) {
    // Nothing written yet, or removed while we walked: nothing stored there.
    if (errorCode(error) === "ENOENT") return [];
    if (visitor.unreadable === undefined) throw error;
    visitor.unreadable(directory, error);
    return [];
  }
}

function lstatIfExists(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch (error) {
    if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return undefined;
    throw error;
  }
}
