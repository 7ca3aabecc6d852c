// The jobs of an I/O thread: each request runs as one synchronous sequence of system calls, so a
// conditional write (lock, read, decide, durable write, unlock) costs one hand-off between threads.
import path from "node:path";
import { decideCondition, type RecordChange, type RecordCondition } from "@persist-kit/core";
import {
  errorCode,
  type FileModes,
  isStaleTempFile,
  probeDirectory,
  readFileIfExists,
  refuseLinkedDirectories,
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
import { directoriesBelow, directoriesOnTheWay, partsFromSegments, type RecordLocation } from "./file-names.js";
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
import { namespaceDirectories, walkGroup, walkNamespace } from "./store-walk.js";

/** The file of a group's revision floor, in the directory of its first key part. */
export const FLOOR_FILE_NAME = ".floor";
// How long the start-up sweep waits for a group's lock before it leaves the group for a later start.
const FOLD_GROUP_LOCK_WAIT_MS = 100;

interface ChangeRequest {
  /** The store's directory: nothing below it on the way to the record may be a symbolic link. */
  baseDir: string;
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

/** One page of the live records below `directory` (a namespace directory of `baseDir`). */
export interface ListRequest {
  op: "list";
  baseDir: string;
  directory: string;
  /**
   * The path segments of `prefix[0]` below `directory`, when the prefix has one: only that
   * group's directory is walked.
   */
  groupSegments: string[] | undefined;
  prefix: readonly string[];
  cursor: string | undefined;
  limit: number;
  maxRecordBytes: number;
}

/**
 * Remove what crashed processes left under `baseDir` and fold tombstones into their group's floor;
 * answers a {@link SweepReport}.
 */
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

/** What a sweep could not do: the directories it could not read, each left as it was. */
export interface SweepReport {
  unreadable: { directory: string; code: string | undefined; message: string }[];
}

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
  refuseLinkedDirectories(directoriesOnTheWay(request.baseDir, request.location));
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

// Every page walks the namespace again (only the group's directory with a prefix): file names
// are the only index. Records are read in id order, one past the page, so `cursor` is set only
// when a live record really follows. A symbolic link where a record or a directory of the store
// belongs fails the listing, as a corrupt record does: skipping it would hide a key.
function listRecords(request: ListRequest): ListedPage {
  const { baseDir, directory, groupSegments, prefix, cursor, limit, maxRecordBytes } = request;
  const candidates: Candidate[] = [];
  const visitor = {
    record(file: string, segments: string[][]) {
      const parts = partsFromSegments(segments);
      if (parts === undefined || !prefix.every((part, index) => parts[index] === part)) return;
      const id = JSON.stringify(parts);
      if (cursor === undefined || id > cursor) candidates.push({ id, parts, file });
    },
    link(file: string) {
      throw new StoredFormatError(
        `a symbolic link stands where a record or a directory of the store belongs: ${file} (symbolic links are never followed below baseDir)`,
      );
    },
  };
  if (groupSegments === undefined) {
    refuseLinkedDirectories(directoriesBelow(baseDir, directory));
    walkNamespace(directory, visitor);
  } else {
    refuseLinkedDirectories(directoriesBelow(baseDir, path.join(directory, ...groupSegments)));
    walkGroup(directory, groupSegments, visitor);
  }
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
// read-only disk, a directory it cannot read) stays for the next start, and never stops reads and
// writes. Symbolic links are never followed.
function sweepStore({ baseDir, staleAfterMs, modes, lockTimeoutMs, maxRecordBytes }: SweepRequest): SweepReport {
  const unreadable = new Map<string, SweepReport["unreadable"][number]>();
  const reportUnreadable = (directory: string, error: unknown) => {
    const code = errorCode(error);
    unreadable.set(directory, {
      directory,
      code: typeof code === "string" ? code : undefined,
      message: error instanceof Error ? error.message : String(error),
    });
  };
  for (const root of namespaceDirectories(baseDir, { unreadable: reportUnreadable })) {
    const settled = new Map<string, string[]>();
    walkNamespace(root, {
      unreadable: reportUnreadable,
      hidden(directory, name) {
        const file = path.join(directory, name);
        const writer = tempFileWriter(name);
        if (writer !== undefined && isStaleTempFile(file, writer, staleAfterMs)) removeQuietly(file);
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
  return { unreadable: [...unreadable.values()] };
}

// Tombstones (and expired values) become the group's floor, so deleted keys leave nothing behind:
// the floor is raised durably first, then the files go, so a crash in between leaves tombstones
// at or below the floor, and every key still reads a revision at least as high as before. Only
// keys whose lock is free right now are folded (key locks are tried, never waited for, since the
// order is key, then group), under the group's lock, and each file is read again under it. The
// group's lock is waited for briefly only (a write holds it for about one fsync): every first
// operation of the store waits for the sweep, and a lock that stays (one that cannot be broken
// from here) must not hold them up; the group is folded at a later start.
function foldGroup(
  groupDirectory: string,
  files: string[],
  { modes, lockTimeoutMs, maxRecordBytes }: { modes: FileModes; lockTimeoutMs: number; maxRecordBytes: number },
): void {
  const locked = files.filter((file) => tryLock(keyLockFile(file), modes));
  try {
    if (locked.length === 0) return;
    const groupLock = path.join(groupDirectory, GROUP_LOCK_NAME);
    acquireLock(groupLock, Date.now() + Math.min(lockTimeoutMs, FOLD_GROUP_LOCK_WAIT_MS), modes);
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
