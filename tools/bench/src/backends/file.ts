// The file family: persist-file against the same durable sequence written by hand (promises and
// synchronous calls), write-file-atomic, the reference framework's sequence and unstorage's fs driver.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { mkdir, mkdtemp, open, readFile, rename, rm, statfs, unlink } from "node:fs/promises";
import path from "node:path";
import type { PersistBase } from "@persist-kit/core";
import { createStorage } from "unstorage";
import fsDriver from "unstorage/drivers/fs";
import writeFileAtomic from "write-file-atomic";
import type { BenchKey, Contender, Family, SignalStore } from "../model.js";
import { cachedPerKey, loadPackage, persistStore, unstorageStore } from "../stores.js";
import { FILE_FLOOR_GOALS, FILE_PEER_GOALS } from "../targets.js";
import { benchKeys } from "../workload.js";
import type { FamilySetup } from "./setup.js";

/** What the harness uses of @persist-kit/persist-file (typed here: see loadPackage). */
interface PersistFileModule {
  PersistFile: new (options: { baseDir: string }) => PersistBase;
  /** The file persist-file keeps a signal in: `{baseDir}/{strategy}/{symbol}.json`, names encoded. */
  signalFilePath(baseDir: string, key: { strategyName: string; symbol: string }): string;
}

const NO_DIRECTORY_FSYNC =
  "it syncs no directory, neither after the rename nor after an unlink: fewer fsyncs, " +
  "but a power loss can bring back the old row after a write, or a deleted one, that was acknowledged";

/** The file family; every contender writes under its own directory of a fresh temporary one. */
export async function fileFamily(setup: FamilySetup): Promise<Family> {
  await mkdir(setup.dataDir, { recursive: true });
  const root = await mkdtemp(path.join(setup.dataDir, `persist-kit-bench-${setup.tag}-`));
  const directory = (name: string) => path.join(root, name);
  const openBackend = async (name: string) => {
    const { PersistFile } = await loadPackage<PersistFileModule>("@persist-kit/persist-file");
    return new PersistFile({ baseDir: directory(name) });
  };
  const contenders: Contender[] = [
    {
      name: "persist-file",
      role: "ours",
      description:
        "PersistFile: under a key lock file, temp file, fdatasync, rename, directory fsync, on its I/O threads; a delete renames a tombstone in",
      open: async () => persistStore(await openBackend("persist-file")),
    },
    {
      name: "fs.promises by hand",
      role: "driver",
      description: "the same durable sequence with fs.promises: temp, fdatasync, rename, directory fsync",
      inFlightNote:
        "each system call is a separate job on libuv's thread pool (4 threads by default), so more fsyncs run at once; " +
        "persist-file runs each whole write as one job on its 2 I/O threads (writeThreads), which keeps the event loop free",
      open: () => handWrittenStore(directory("fs-promises"), durableWriteAsync, durableDeleteAsync),
    },
    {
      name: "sync system calls",
      role: "floor",
      description: "the same durable sequence as back-to-back synchronous calls on the main thread",
      goals: FILE_FLOOR_GOALS,
      open: () => syncStore(directory("sync")),
    },
    {
      name: "write-file-atomic",
      role: "peer",
      description: "write-file-atomic (temp, fsync, rename; no directory fsync); readFile; unlink",
      goals: FILE_PEER_GOALS,
      inFlightNote: NO_DIRECTORY_FSYNC,
      open: () =>
        handWrittenStore(
          directory("write-file-atomic"),
          (file, text) => writeFileAtomic(file, text),
          (file) => unlink(file),
        ),
    },
    {
      name: "reference framework",
      role: "peer",
      description: "the reference framework's sequence: temp, fsync, rename, no directory fsync; unlink",
      goals: FILE_PEER_GOALS,
      inFlightNote: NO_DIRECTORY_FSYNC,
      open: () => handWrittenStore(directory("reference"), referenceWrite, (file) => unlink(file)),
    },
    {
      name: "unstorage fs",
      role: "peer",
      description: "unstorage's fs driver: writes in place, no fsync, no rename (not crash-safe, so no target)",
      inFlightNote:
        "it never calls fsync and writes the file in place: nothing waits for the disk, and a crash can tear the file",
      open: async () => {
        const storage = createStorage({ driver: fsDriver({ base: directory("unstorage") }) });
        return unstorageStore(storage, unstorageKey);
      },
    },
  ];
  return {
    name: "file",
    description: `${await fileSystemOf(root)} file system, one JSON file per signal`,
    contenders,
    unavailable: [],
    passes: setup.passes,
    openBackend,
    close: () => rm(root, { recursive: true, force: true }),
  };
}

// The file system decides what an fsync costs; its type, not its path, goes into the report.
const FILE_SYSTEM_TYPES: Record<number, string> = {
  61267: "ext4",
  1481003842: "xfs",
  2435016766: "btrfs",
  16914836: "tmpfs",
  2035054128: "overlayfs",
  801189825: "zfs",
};

async function fileSystemOf(directory: string): Promise<string> {
  const { type } = await statfs(directory);
  return FILE_SYSTEM_TYPES[type] ?? `type 0x${type.toString(16)}`;
}

// unstorage turns ":" into path separators: strategy directory, then the symbol's file.
function unstorageKey(key: BenchKey): string {
  return `${key.strategyName}:${key.fileName}`;
}

type WriteFile = (file: string, text: string) => Promise<void>;
type DeleteFile = (file: string) => Promise<void>;

/**
 * persist-file's layout under `base`, from the package itself (one directory per strategy, one
 * file per symbol, both names encoded as persist-file encodes them): each key's file, worked out
 * once, and the strategy's directory made ahead, as persist-file makes it on a first write.
 */
async function fileLayout(base: string): Promise<(key: BenchKey) => string> {
  const { signalFilePath } = await loadPackage<PersistFileModule>("@persist-kit/persist-file");
  const fileOf = cachedPerKey((key) => signalFilePath(base, key));
  const [sample] = benchKeys(1) as [BenchKey];
  await mkdir(path.dirname(fileOf(sample)), { recursive: true });
  return fileOf;
}

// The hand-written stores keep persist-file's layout (see fileLayout).
async function handWrittenStore(base: string, write: WriteFile, remove: DeleteFile): Promise<SignalStore> {
  const fileOf = await fileLayout(base);
  return {
    write: (key, row) => write(fileOf(key), JSON.stringify(row)),
    read: async (key) => {
      try {
        return JSON.parse(await readFile(fileOf(key), "utf8"));
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") return null;
        throw error;
      }
    },
    delete: async (key) => {
      try {
        await remove(fileOf(key));
      } catch (error) {
        if ((error as { code?: unknown }).code !== "ENOENT") throw error;
      }
    },
    close: async () => {},
  };
}

function tempFileOf(file: string): string {
  return path.join(path.dirname(file), `.${process.pid}-${randomBytes(8).toString("hex")}.tmp`);
}

// persist-file's system calls, each awaited through the thread pool.
async function durableWriteAsync(file: string, text: string): Promise<void> {
  const temp = tempFileOf(file);
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.write(text);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  await syncDirectoryAsync(path.dirname(file));
}

async function durableDeleteAsync(file: string): Promise<void> {
  try {
    await unlink(file);
  } finally {
    await syncDirectoryAsync(path.dirname(file));
  }
}

async function syncDirectoryAsync(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// What the reference framework does per write: no directory fsync after the rename.
async function referenceWrite(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.tmp-${randomBytes(6).toString("hex")}-${path.basename(file)}`);
  const handle = await open(temp, "w", 0o666);
  try {
    await handle.writeFile(text, { encoding: "utf8" });
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}

// The floor: the least a durable write can cost, every call synchronous on the main thread with
// no hand-off to another thread. It blocks the event loop, which a real backend must not do.
async function syncStore(base: string): Promise<SignalStore> {
  const fileOf = await fileLayout(base);
  return {
    write: async (key, row) => {
      const file = fileOf(key);
      const temp = tempFileOf(file);
      const descriptor = fs.openSync(temp, "wx", 0o600);
      try {
        fs.writeSync(descriptor, JSON.stringify(row));
        fs.fdatasyncSync(descriptor);
      } finally {
        fs.closeSync(descriptor);
      }
      fs.renameSync(temp, file);
      syncDirectory(path.dirname(file));
    },
    read: async (key) => {
      try {
        return JSON.parse(fs.readFileSync(fileOf(key), "utf8"));
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") return null;
        throw error;
      }
    },
    delete: async (key) => {
      const file = fileOf(key);
      try {
        fs.unlinkSync(file);
      } catch (error) {
        if ((error as { code?: unknown }).code !== "ENOENT") throw error;
      }
      syncDirectory(path.dirname(file));
    },
    close: async () => {},
  };
}

function syncDirectory(directory: string): void {
  const descriptor = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(descriptor);
  } finally {
    fs.closeSync(descriptor);
  }
}
