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
}

/**
 * Follows the layout `{root}/{part 1 segments}/.../{last part segments}.json`, where every segment
 * but the last of a long name ends in `+`. Hidden entries are reported, never entered: `.records`
 * under the signal directory belongs to the other namespaces. Symbolic links are not followed.
 */
export function walkNamespace(root: string, visitor: StoreVisitor): void {
  walkPart(root, [], [], visitor);
}

/** The directory of every namespace stored under `baseDir`: signals first, then `.records/*`. */
export function namespaceDirectories(baseDir: string): string[] {
  const others = readDirectory(path.join(baseDir, RECORDS_DIRECTORY))
    .filter((entry) => entry.isDirectory() && namespaceProblem(entry.name) === undefined)
    .map((entry) => namespaceDirectory(baseDir, entry.name));
  return [baseDir, ...others];
}

function walkPart(directory: string, done: string[][], current: string[], visitor: StoreVisitor): void {
  for (const entry of readDirectory(directory)) {
    const child = path.join(directory, entry.name);
    if (entry.name.startsWith(".")) {
      if (entry.isFile()) visitor.hidden?.(directory, entry.name);
    } else if (entry.isDirectory()) {
      // Where a part starts, only directories this backend could have made: a foreign one
      // (lost+found at the root of a volume, say) may be unreadable, and must not stop every
      // operation. Below a continued segment, the rest of a long name may split an escape.
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

function readDirectory(directory: string): fs.Dirent[] {
  try {
    return fs.readdirSync(directory, { withFileTypes: true });
  } catch (error) {
    // Nothing written yet, or removed while we walked: nothing stored there.
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  }
}
