// Locks between processes sharing a baseDir, for the read-decide-rename step of a conditional
// write. Node has no flock, so a lock is a file: made complete in a temp file, then hard-linked
// into place (link fails when the name exists, and a reader never sees a half-written owner). Its
// owner removes it. A lock whose owner is gone (killed at any moment) is broken by whoever needs
// it next, through a marker named after the dead owner's token, so two breakers never remove a
// lock that a third process has taken since.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  FileTooLargeError,
  openNewFile,
  readFileIfExists,
  removeQuietly,
  tempFileName,
  writeAll,
} from "./durable-io.js";
import {
  bootTimeMs,
  type ProcessIdentity,
  processIsGone,
  processStartTime,
  sharesPidSpace,
  thisProcess,
} from "./process-identity.js";
import { StoredFormatError } from "./record-file.js";

/** Who holds a lock: a process named beyond its pid (see ./process-identity.ts), and this one lock's token. */
interface LockOwner extends ProcessIdentity {
  token: string;
  /** Set when the lock file names no owner that can be checked: it is never broken. */
  problem?: string;
}

/** Permission bits of lock files and of the directories made for them. */
export interface LockModes {
  fileMode: number;
  directoryMode: number;
}

/** A lock was held by a live process until the deadline: nothing was changed. */
export class LockTimeoutError extends Error {
  /** Recognised across the I/O thread boundary, where only `code` and `message` survive. */
  static readonly code = "PERSIST_FILE_LOCK_TIMEOUT";
  readonly code = LockTimeoutError.code;
}

/** The group lock's file name: it ends in `.lock`, a key lock in `.lk`, so the two never meet. */
export const GROUP_LOCK_NAME = ".group.lock";
const KEY_LOCK_SUFFIX = ".lk";
const BREAK_MARKER = /^\.[0-9a-f]{32}\.break$/;
// Short sleeps at first (a write holds a lock for about one fsync), longer ones under contention.
const FIRST_PAUSE_MS = 0.05;
const LONGEST_PAUSE_MS = 5;
// A lock holds one small JSON object; anything bigger was not written by this backend.
const LOCK_FILE_MAX_BYTES = 4096;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The lock file of the record file `file`: `.{name}.lk` beside it (at most 254 bytes). */
export function keyLockFile(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file, ".json")}${KEY_LOCK_SUFFIX}`);
}

/** True for the name of a key lock, a group lock or a break marker. */
export function isLockFileName(name: string): boolean {
  return (
    name.startsWith(".") && (name.endsWith(KEY_LOCK_SUFFIX) || name === GROUP_LOCK_NAME || BREAK_MARKER.test(name))
  );
}

/**
 * Takes the lock `file`, waiting while a live process holds it; throws {@link LockTimeoutError}
 * at `deadline` (ms since the epoch). Every attempt that fails checks the deadline and pauses
 * (longer each time), whatever stands at `file`. Its directory is made when missing.
 *
 * What this backend never writes there is refused with `StoredFormatError` (the file is left in
 * place): something other than a regular file (a symbolic link, a FIFO, a directory) at once,
 * a file naming no owner that can be checked (not a lock of this backend) at the deadline.
 */
export function acquireLock(file: string, deadline: number, modes: LockModes): void {
  for (let attempt = 0; ; attempt++) {
    const holder = tryLock(file, modes);
    if (holder === undefined) return;
    if (Date.now() >= deadline) throw lockError(file, holder);
    pause(attempt);
  }
}

/** Gives the lock `file` back. */
export function releaseLock(file: string): void {
  removeQuietly(file);
}

/** Removes the lock `file` when its owner is gone (a start-up sweep); a live owner's lock stays. */
export function breakLockIfDead(file: string, modes: LockModes): void {
  const owner = readOwner(file);
  if (owner !== undefined && !isAlive(file, owner)) breakDeadLock(file, owner, modes);
}

/** The lock was released, or its dead owner's lock broken, after our link failed: try again. */
const FREED = Symbol("freed");

/**
 * One attempt: takes the lock (`undefined`), or returns who holds it (a dead owner whose lock
 * another process is breaking, too), or {@link FREED}.
 */
function tryLock(file: string, modes: LockModes): LockOwner | typeof FREED | undefined {
  if (linkNewLock(file, modes)) return undefined;
  const owner = readOwner(file);
  if (owner === undefined) return FREED;
  if (isAlive(file, owner) || !breakDeadLock(file, owner, modes)) return owner;
  return FREED;
}

function lockError(file: string, holder: LockOwner | typeof FREED): Error {
  if (holder === FREED) return new LockTimeoutError(`${file} was taken by other processes again and again`);
  if (holder.problem !== undefined) {
    return new StoredFormatError(
      `the lock file ${file} ${holder.problem}: no owner can be checked, so it is never broken (remove it once no process uses the store)`,
    );
  }
  const where = sharesPidSpace(holder)
    ? ""
    : ` (${otherPidSpace(holder)}, where this process cannot check it: the lock is never broken; remove it once that process is gone)`;
  return new LockTimeoutError(`${file} is still held by process ${holder.pid} on ${holder.host}${where}`);
}

function otherPidSpace(holder: LockOwner): string {
  const current = thisProcess();
  if (holder.host !== current.host) return "another host";
  if (holder.boot !== current.boot) return "another boot";
  return `PID namespace ${holder.pidNamespace ?? "unknown"}, not this process's ${current.pidNamespace ?? "unknown"}`;
}

function linkNewLock(file: string, modes: LockModes): boolean {
  const directory = path.dirname(file);
  const temp = path.join(directory, tempFileName());
  const descriptor = openNewFile(temp, modes.fileMode, directory, modes.directoryMode);
  try {
    try {
      writeAll(descriptor, Buffer.from(JSON.stringify({ ...thisProcess(), token: randomBytes(16).toString("hex") })));
    } finally {
      fs.closeSync(descriptor);
    }
    fs.linkSync(temp, file);
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw error;
  } finally {
    removeQuietly(temp);
  }
}

// Only the holder of the marker named after the dead owner's token removes the lock, and only
// while the lock still carries that token: no one else removes a lock with that token (its owner
// is dead, other breakers wait for the marker), so the check and the unlink cannot be split by a
// new owner. A later breaker that still saw the old token takes the marker, finds another token
// and leaves the lock alone. Returns false when another process holds the marker.
function breakDeadLock(file: string, owner: LockOwner, modes: LockModes): boolean {
  const digest = createHash("sha256")
    .update(`${path.basename(file)}\u0000${owner.token}`)
    .digest("hex");
  const marker = path.join(path.dirname(file), `.${digest.slice(0, 32)}.break`);
  if (tryLock(marker, modes) !== undefined) return false;
  try {
    if (readOwner(file)?.token === owner.token) removeQuietly(file);
  } finally {
    releaseLock(marker);
  }
  return true;
}

/**
 * The owner named in the lock `file`; `undefined` when there is none (released). An owner that
 * cannot be read carries a `problem` and is never broken. Throws `StoredFormatError` when `file`
 * is not a regular file: never a lock of this backend, which links regular files only.
 */
function readOwner(file: string): LockOwner | undefined {
  let bytes: Buffer | undefined;
  try {
    bytes = readFileIfExists(file, LOCK_FILE_MAX_BYTES);
  } catch (error) {
    if (error instanceof FileTooLargeError)
      return unreadableOwner(`holds more than the ${LOCK_FILE_MAX_BYTES} bytes of any lock`);
    throw error;
  }
  if (bytes === undefined) return undefined;
  try {
    const owner = JSON.parse(bytes.toString("utf8")) as Partial<LockOwner>;
    if (typeof owner.pid === "number" && typeof owner.token === "string" && typeof owner.host === "string") {
      return {
        pid: owner.pid,
        start: owner.start ?? null,
        boot: owner.boot ?? null,
        pidNamespace: owner.pidNamespace ?? null,
        host: owner.host,
        token: owner.token,
      };
    }
  } catch {
    // Not a lock this backend wrote: never broken, reported at the deadline.
  }
  return unreadableOwner("names no owner this backend wrote");
}

function unreadableOwner(problem: string): LockOwner {
  return {
    pid: 0,
    start: null,
    boot: null,
    pidNamespace: null,
    host: "unknown (unreadable lock file)",
    token: "",
    problem,
  };
}

// False only when the owner is certainly gone: it ran in this pid space and its process is gone
// (or its pid is another process's now), or it ran on another boot and the lock was last changed
// before this machine started (a lock of another host that shares the directory is milliseconds
// old, unless its process has been paused for longer than this machine has been up). A lock of
// another PID namespace of this boot (another container) is never broken: its process cannot be
// checked from here.
function isAlive(file: string, owner: LockOwner): boolean {
  if (owner.token === "") return true;
  if (sharesPidSpace(owner)) {
    if (processIsGone(owner.pid)) return false;
    if (owner.start === null) return true;
    const start = processStartTime(owner.pid);
    return start === null || start === owner.start;
  }
  const current = thisProcess();
  if (owner.boot === null || current.boot === null || owner.boot === current.boot) return true;
  try {
    return fs.lstatSync(file).mtimeMs >= bootTimeMs();
  } catch {
    return true;
  }
}

function pause(attempt: number): void {
  const longest = Math.min(FIRST_PAUSE_MS * 2 ** attempt, LONGEST_PAUSE_MS);
  Atomics.wait(sleeper, 0, 0, longest * (0.5 + Math.random() / 2));
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}
