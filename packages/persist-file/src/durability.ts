import { constants } from "node:fs";
import { access, readFile, realpath, stat, statfs } from "node:fs/promises";
import { dirname } from "node:path";

/** The answer of `PersistFile.describeDurability()`, shaped like the server backends' reports. */
export interface FileDurabilityReport {
  /** The store's directory, with symbolic links resolved (its nearest existing parent if it is not made yet). */
  baseDir: string;
  /** The file system type from the mount table (`ext4`, `xfs`, `tmpfs`, ...), `"unknown"` where there is none to read. */
  fileSystem: string;
  /** Where that file system is mounted; `undefined` when unknown. */
  mountPoint: string | undefined;
  /** Bytes free for this user; `undefined` when the system cannot say. */
  freeBytes: number | undefined;
  /**
   * False when acknowledged writes cannot survive a reboot or power loss (a file system in memory:
   * `tmpfs`, `ramfs`), or the directory cannot be written at all. Every write is fsynced, file and
   * directory, before it resolves; this judges where those fsyncs go.
   */
  crashSafe: boolean;
  /** False when the file system type could not be read (no mount table): crashSafe is then a guess. */
  known: boolean;
  /**
   * What the file system is, as far as durability goes: `disk`; `memory` (tmpfs, ramfs); `network`
   * (NFS, SMB, FUSE, ...: whether an fsync reaches a disk is the server's business); `overlay` (a
   * container's layer); `unknown` (no mount table).
   */
  kind: "disk" | "memory" | "network" | "overlay" | "unknown";
  /** Whether this user may write in the directory; every write fails when it may not. */
  writable: boolean;
  /** What can lose acknowledged writes or stop them, and what to change; empty when nothing was found. */
  warnings: string[];
}

// File systems in memory: an fsync reaches no disk.
const IN_MEMORY = new Set(["tmpfs", "ramfs", "devtmpfs"]);
// File systems whose fsync and rename guarantees depend on another machine or another layer.
const NETWORK = /^(nfs4?|cifs|smb3?|smbfs|9p|ceph|glusterfs|lustre|afs|fuse(\..*)?|sshfs|davfs)$/;
// Below this, a burst of writes can fail with "disk full".
const LOW_FREE_BYTES = 256 * 1024 * 1024;

/** Judges the file system under `baseDir` (Linux mount table, `statfs`, the directory's mode). */
export async function describeFileDurability(
  baseDir: string,
  mountTable = "/proc/self/mountinfo",
): Promise<FileDurabilityReport> {
  const dir = await nearestExisting(baseDir);
  const warnings: string[] = [];
  const mounts = await readFile(mountTable, "utf8").then(parseMountInfo, () => undefined);
  const mount = mounts === undefined ? undefined : mountOf(dir, mounts);
  const fileSystem = mount?.type ?? "unknown";
  let crashSafe = true;
  if (mount === undefined) {
    warnings.push(`cannot read the mount table (${mountTable}), so the file system of ${dir} is unknown`);
  } else if (IN_MEMORY.has(mount.type)) {
    crashSafe = false;
    warnings.push(
      `${dir} is on ${mount.type} (memory, mounted at ${mount.point}): every signal is lost at a reboot or power loss; put baseDir on a disk file system`,
    );
  } else if (NETWORK.test(mount.type)) {
    warnings.push(
      `${dir} is on ${mount.type} (mounted at ${mount.point}): fsync and atomic rename depend on the server or the layer below; prefer a local disk, or check that it exports synchronously`,
    );
  } else if (mount.type === "overlay") {
    warnings.push(
      `${dir} is on overlay (mounted at ${mount.point}), usually a container's writable layer: it is gone when the container is removed; mount a volume for baseDir`,
    );
  }
  const writable = await access(dir, constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!writable) {
    crashSafe = false;
    warnings.push(`${dir} is not writable by this user (uid ${process.getuid?.() ?? "unknown"}): every write fails`);
  }
  const mode = (await stat(dir)).mode;
  if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
    warnings.push(
      `${dir} is writable by every user (mode ${(mode & 0o7777).toString(8)}): another account can replace records; use mode 700`,
    );
  }
  const freeBytes = await statfs(dir).then(
    (found) => found.bavail * found.bsize,
    () => undefined,
  );
  if (freeBytes !== undefined && freeBytes < LOW_FREE_BYTES) {
    warnings.push(`only ${Math.floor(freeBytes / 1024 / 1024)} MiB free on ${dir}: writes fail when the disk is full`);
  }
  return {
    baseDir: dir,
    fileSystem,
    mountPoint: mount?.point,
    freeBytes,
    crashSafe,
    known: mount !== undefined,
    kind: kindOf(mount),
    writable,
    warnings,
  };
}

function kindOf(mount: Mount | undefined): FileDurabilityReport["kind"] {
  if (mount === undefined) return "unknown";
  if (IN_MEMORY.has(mount.type)) return "memory";
  if (NETWORK.test(mount.type)) return "network";
  return mount.type === "overlay" ? "overlay" : "disk";
}

async function nearestExisting(path: string): Promise<string> {
  for (let current = path; ; current = dirname(current)) {
    try {
      return await realpath(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || dirname(current) === current) throw error;
    }
  }
}

interface Mount {
  point: string;
  type: string;
}

// mountinfo(5): `id parent major:minor root mountpoint options [optional...] - type source superoptions`,
// with spaces and backslashes in paths written as octal escapes.
function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    const point = fields[4];
    const type = fields[separator + 1];
    if (separator < 6 || point === undefined || type === undefined) continue;
    mounts.push({
      point: point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))),
      type,
    });
  }
  return mounts;
}

// The last mount (later mounts hide earlier ones) with the longest mount point holding `path`.
function mountOf(path: string, mounts: readonly Mount[]): Mount | undefined {
  let best: Mount | undefined;
  for (const mount of mounts) {
    const holds = mount.point === "/" || path === mount.point || path.startsWith(`${mount.point}/`);
    if (holds && (best === undefined || mount.point.length >= best.point.length)) best = mount;
  }
  return best;
}
