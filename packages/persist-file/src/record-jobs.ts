// The jobs of an I/O thread: each request runs as one synchronous sequence of system calls, so a
// conditional write (lock, read, decide, durable write, unlock) costs one hand-off between threads.
import path from "node:path";
import { decideCondition, type RecordChange, type RecordCondition } from "@persist-kit/core";
import {
  type FileModes,
  isStaleTempFile,
  probeDirectory,
  readFileIfExists,
  removeQuietly,
  syncDirectory,
  tempFileWriter,
  writeFileDurably,
} from "./durable-io.js";
import {
  acquireLock,
  breakLockIfDead,
  GROUP_LOCK_NAME,
  isLockFileName,
  keyLockFile,
  releaseLock,
} from "./file-locks.js";
import { partsFromSegments, type RecordLocation } from "./file-names.js";
import {
  decodeFloor,
  decodeRecord,
  encodeFloor,
  encodeTombstone,
  encodeValue,
  isLive,
  StoredFormatError,
  type StoredRecord,
} from "./record-file.js";
import { namespaceDirectories, walkNamespace } from "./store-walk.js";

/** The file of a group's revision floor, in the directory of its first key part. */
export const FLOOR_FILE_NAME = ".floor";

interface ChangeRequest {
  location: RecordLocation;
  condition: RecordCondition | undefined;
  modes: FileModes;
  /** How long to wait for the key's and the group's locks. */
  lockTimeoutMs: number;
  /** The largest record or floor file read; a larger one is refused as corrupt. */
  maxRecordBytes: number;
}

/** Write `json` under the key if `condition` holds. */
export interface WriteRequest extends ChangeRequest {
  op: "write";
  json: string;
  ttlMs: number | undefined;
}

/** Delete the key if `condition` holds: a tombstone keeps its revision. */
export interface DeleteRequest extends ChangeRequest {
  op: "delete";
}

/** One page of the live records below `directory` (a namespace directory). */
export interface ListRequest {
  op: "list";
  directory: string;
  prefix: readonly string[];
  cursor: string | undefined;
  limit: number;
  maxRecordBytes: number;
}

/** Remove what crashed processes left under `baseDir` and fold tombstones into their group's floor. */
export interface SweepRequest {
  op: "sweep";
  baseDir: string;
  staleAfterMs: number;
  modes: FileModes;
  lockTimeoutMs: number;
  maxRecordBytes: number;
}

/** Prove that `baseDir` takes new files. */
export interface ProbeRequest {
  op: "probe";
  baseDir: string;
  modes: FileModes;
}

export type IoRequest = WriteRequest | DeleteRequest | ListRequest | SweepRequest | ProbeRequest;

/** A page of {@link ListRequest}: `cursor` is the id of the last record when more may follow. */
export interface ListedPage {
  records: { parts: string[]; revision: number }[];
  cursor: string | undefined;
}

/** A failed request, as it crosses from the I/O thread. */
export interface IoFailure {
  message: string;
  code?: string;
  /** True when a change failed after its rename: the new file is in place, maybe not yet durable. */
  renamed?: boolean;
}

/** Runs one request; throws what the file system threw. */
export function runIoRequest(request: IoRequest): unknown {
  switch (request.op) {
    case "write":
      return writeRecord(request);
    case "delete":
      return deleteRecord(request);
    case "list":
      return listRecords(request);
    case "sweep":
      return sweepStore(request);
    case "probe":
      return probeDirectory(request.baseDir, request.modes);
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

function writeRecord(request: WriteRequest): RecordChange {
  return underLock(request, (current) => {
    const { applies, next } = decideCondition(current.revision, request.condition);
    if (!applies) return { applied: false, revision: current.revision };
    const expiresAt = request.ttlMs === undefined ? undefined : Date.now() + request.ttlMs;
    const { directory, file } = request.location;
    writeFileDurably(directory, file, encodeValue(next, request.json, expiresAt), request.modes);
    return { applied: true, revision: next };
  });
}

// A tombstone replaces the record in one rename, so the delete and its revision land together.
function deleteRecord(request: DeleteRequest): RecordChange {
  return underLock(request, (current) => {
    if (!current.live && request.condition === undefined) return { applied: true, revision: current.revision };
    const { applies, next } = decideCondition(current.revision, request.condition);
    if (!applies) return { applied: false, revision: current.revision };
    const { directory, file } = request.location;
    writeFileDurably(directory, file, encodeTombstone(next), request.modes);
    return { applied: true, revision: next };
  });
}

interface CurrentRevision {
  revision: number;
  /** A value that has not expired is stored. */
  live: boolean;
}

// The key's lock covers read, decide and rename, so no other process changes the file in
// between. A key with no file starts from its group's floor: it holds the group's lock too, until
// its file is in place, so the floor cannot rise in between (the start-up fold raises it), and no
// reader sees the floor above the revision this write is about to store. Locks are taken key
// first, then group, everywhere.
function underLock(request: ChangeRequest, change: (current: CurrentRevision) => RecordChange): RecordChange {
  const deadline = Date.now() + request.lockTimeoutMs;
  const { file, groupDirectory } = request.location;
  const keyLock = keyLockFile(file);
  acquireLock(keyLock, deadline, request.modes);
  try {
    const stored = readStoredRecord(file, request.maxRecordBytes);
    if (stored !== undefined) return change({ revision: stored.revision, live: isLive(stored, Date.now()) });
    const groupLock = path.join(groupDirectory, GROUP_LOCK_NAME);
    acquireLock(groupLock, deadline, request.modes);
    try {
      return change({ revision: readFloor(groupDirectory, request.maxRecordBytes), live: false });
    } finally {
      releaseLock(groupLock);
    }
  } finally {
    releaseLock(keyLock);
  }
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The record in `file`, or `undefined` when there is no file; throws {@link StoredFormatError} naming the file. */
function readStoredRecord(file: string, maxBytes: number): StoredRecord | undefined {
  const bytes = readFileIfExists(file, maxBytes);
  return bytes === undefined ? undefined : decodeStored(bytes, file, decodeRecord);
}

function readFloor(groupDirectory: string, maxBytes: number): number {
  const file = path.join(groupDirectory, FLOOR_FILE_NAME);
  const bytes = readFileIfExists(file, maxBytes);
  return bytes === undefined ? 0 : decodeStored(bytes, file, decodeFloor);
}

function decodeStored<T>(bytes: Buffer, file: string, decode: (text: string) => T): T {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    throw new StoredFormatError(`stored data is not UTF-8 in ${file}`);
  }
  try {
    return decode(text);
  } catch (error) {
    if (error instanceof StoredFormatError) throw new StoredFormatError(`${error.message} in ${file}`);
    throw error;
  }
}

interface Candidate {
  id: string;
  parts: string[];
  file: string;
}

// Every page walks the namespace again: file names are the only index. Records are read in id
// order, one past the page, so `cursor` is set only when a live record really follows.
function listRecords({ directory, prefix, cursor, limit, maxRecordBytes }: ListRequest): ListedPage {
  const candidates: Candidate[] = [];
  walkNamespace(directory, {
    record(file, segments) {
      const parts = partsFromSegments(segments);
      if (parts === undefined || !prefix.every((part, index) => parts[index] === part)) return;
      const id = JSON.stringify(parts);
      if (cursor === undefined || id > cursor) candidates.push({ id, parts, file });
    },
  });
  candidates.sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0));
  const page: Candidate[] = [];
  const revisions: number[] = [];
  const now = Date.now();
  for (const candidate of candidates) {
    const stored = readStoredRecord(candidate.file, maxRecordBytes);
    if (stored === undefined || !isLive(stored, now)) continue;
    if (page.length === limit) return { records: pageRecords(page, revisions), cursor: page.at(-1)?.id };
    page.push(candidate);
    revisions.push(stored.revision);
  }
  return { records: pageRecords(page, revisions), cursor: undefined };
}

function pageRecords(page: Candidate[], revisions: number[]): ListedPage["records"] {
  return page.map(({ parts }, index) => ({ parts, revision: revisions[index] as number }));
}

// Best effort, at the first operation of a store: what it cannot clean now (a busy lock, a
// read-only disk) stays for the next start, and never stops reads and writes.
function sweepStore({ baseDir, staleAfterMs, modes, lockTimeoutMs, maxRecordBytes }: SweepRequest): void {
  for (const root of namespaceDirectories(baseDir)) {
    const settled = new Map<string, string[]>();
    walkNamespace(root, {
      hidden(directory, name) {
        const file = path.join(directory, name);
        const writerPid = tempFileWriter(name);
        if (writerPid !== undefined && isStaleTempFile(file, writerPid, staleAfterMs)) removeQuietly(file);
        if (isLockFileName(name)) quietly(() => breakLockIfDead(file, modes));
      },
      record(file, segments) {
        const [first] = segments;
        if (first === undefined || partsFromSegments(segments) === undefined) return;
        const stored = quietly(() => readStoredRecord(file, maxRecordBytes));
        if (stored === FAILED || stored === undefined || isLive(stored, Date.now())) return;
        const groupDirectory = path.join(root, ...first);
        settled.set(groupDirectory, [...(settled.get(groupDirectory) ?? []), file]);
      },
    });
    for (const [groupDirectory, files] of settled)
      quietly(() => foldGroup(groupDirectory, files, { modes, lockTimeoutMs, maxRecordBytes }));
  }
}

// Tombstones (and expired values) become the group's floor, so deleted keys leave nothing behind:
// the floor is raised durably first, then the files go, so a crash in between leaves tombstones
// at or below the floor, and every key still reads a revision at least as high as before. Only
// keys whose lock is free right now are folded (key locks are tried, never waited for, since the
// order is key, then group), under the group's lock, and each file is read again under it.
function foldGroup(
  groupDirectory: string,
  files: string[],
  { modes, lockTimeoutMs, maxRecordBytes }: { modes: FileModes; lockTimeoutMs: number; maxRecordBytes: number },
): void {
  const locked = files.filter((file) => tryLock(keyLockFile(file), modes));
  try {
    if (locked.length === 0) return;
    const groupLock = path.join(groupDirectory, GROUP_LOCK_NAME);
    acquireLock(groupLock, Date.now() + lockTimeoutMs, modes);
    try {
      foldLocked(groupDirectory, locked, modes, maxRecordBytes);
    } finally {
      releaseLock(groupLock);
    }
  } finally {
    for (const file of locked) releaseLock(keyLockFile(file));
  }
}

function foldLocked(groupDirectory: string, files: string[], modes: FileModes, maxBytes: number): void {
  const before = readFloor(groupDirectory, maxBytes);
  let floor = before;
  const folded: string[] = [];
  const now = Date.now();
  for (const file of files) {
    const stored = quietly(() => readStoredRecord(file, maxBytes));
    if (stored === FAILED || stored === undefined || isLive(stored, now)) continue;
    floor = Math.max(floor, stored.revision);
    folded.push(file);
  }
  if (floor > before) {
    writeFileDurably(groupDirectory, path.join(groupDirectory, FLOOR_FILE_NAME), encodeFloor(floor), modes);
  }
  for (const file of folded) removeQuietly(file);
  for (const directory of new Set(folded.map((file) => path.dirname(file)))) syncDirectory(directory);
}

function tryLock(file: string, modes: FileModes): boolean {
  return quietly(() => acquireLock(file, 0, modes)) !== FAILED;
}

const FAILED = Symbol("failed");

function quietly<T>(step: () => T): T | typeof FAILED {
  try {
    return step();
  } catch {
    return FAILED;
  }
}
