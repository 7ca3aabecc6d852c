// Who wrote a temp file or holds a lock. A pid alone names nobody: two containers sharing a volume
// run in different PID namespaces, where the same pid is two processes (or none), and so do two
// hosts, or one host before and after a reboot. A writer is named by its pid *and* the pid space
// it runs in: the host, the boot and the PID namespace. Its process can be checked only from a
// process of the same pid space.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";

/** A process, named beyond its pid. */
export interface ProcessIdentity {
  pid: number;
  /** The process's start time in clock ticks since boot (`/proc/<pid>/stat`), where Linux tells it. */
  start: string | null;
  /** `/proc/sys/kernel/random/boot_id`, where Linux tells it: another boot is another pid space. */
  boot: string | null;
  /** `/proc/self/ns/pid` (`pid:[4026531836]`), where Linux tells it: the PID namespace the pid belongs to. */
  pidNamespace: string | null;
  host: string;
}

/** The pid space of a process: where its pid means that process. */
export type PidSpace = Pick<ProcessIdentity, "boot" | "pidNamespace" | "host">;

let self: ProcessIdentity | undefined;
let selfTag: string | undefined;

/** This process. */
export function thisProcess(): ProcessIdentity {
  self ??= {
    pid: process.pid,
    start: startTimeIn("/proc/self/stat"),
    boot: readQuietly(() => fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()),
    pidNamespace: readQuietly(() => fs.readlinkSync("/proc/self/ns/pid")),
    host: os.hostname(),
  };
  return self;
}

/**
 * 12 hex digits naming the pid space of this process, short enough for a file name: the first
 * 12 hex digits of the SHA-256 of `{host}\0{boot id}\0{pid namespace}` (an unknown part is empty).
 */
export function thisPidSpaceTag(): string {
  selfTag ??= pidSpaceTag(thisProcess());
  return selfTag;
}

/** See {@link thisPidSpaceTag}. */
export function pidSpaceTag(space: PidSpace): string {
  return createHash("sha256")
    .update(`${space.host}\u0000${space.boot ?? ""}\u0000${space.pidNamespace ?? ""}`)
    .digest("hex")
    .slice(0, 12);
}

/** True when `space` is the pid space of this process: a pid there can be checked from here. */
export function sharesPidSpace(space: PidSpace): boolean {
  const current = thisProcess();
  return space.host === current.host && space.boot === current.boot && space.pidNamespace === current.pidNamespace;
}

/** True when no process of this pid space has `pid`. */
export function processIsGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists, it belongs to another user.
    return (error as { code?: unknown } | null)?.code === "ESRCH";
  }
}

/**
 * The start time of process `pid` of this pid space, or `null` when it cannot be told: no
 * `/proc`, or a `/proc` of another PID namespace (mounted by the parent of a namespace that did
 * not mount its own), whose `/proc/<pid>` is another process.
 */
export function processStartTime(pid: number): string | null {
  return procIsOurs() ? startTimeIn(`/proc/${pid}/stat`) : null;
}

/** When this machine booted, in ms since the epoch, by its own clock. */
export function bootTimeMs(): number {
  return Date.now() - os.uptime() * 1000;
}

let procMatches: boolean | undefined;

function procIsOurs(): boolean {
  procMatches ??= readQuietly(() => fs.readlinkSync("/proc/self")) === String(process.pid);
  return procMatches;
}

// Field 22 of a stat file, counted after the command name, which may itself hold spaces and
// parentheses: a reused pid has another start time.
function startTimeIn(file: string): string | null {
  const stat = readQuietly(() => fs.readFileSync(file, "utf8"));
  return stat === null ? null : (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null);
}

function readQuietly(read: () => string): string | null {
  try {
    return read();
  } catch {
    return null;
  }
}
