import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir, uptime } from "node:os";
import path from "node:path";
import { makeSignalRow } from "@persist-kit/contract";
import { type SignalKey, serializeSignalRow } from "@persist-kit/core";
import { PersistFile, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const STRATEGY = "momentum";
const CORRUPT = '{"id": "signal-1", "posi';

let root = "";
let sleeper: ChildProcess | undefined;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-leftovers-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

afterEach(() => {
  sleeper?.kill("SIGKILL");
  sleeper = undefined;
});

/** A pid that no process has: a child that has already exited and been waited for. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ["-e", ""]);
  if (pid === undefined) throw new Error("could not start a child process");
  return pid;
}

/** The pid of another process that is alive until the test ends. */
function livePid(): number {
  sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { stdio: "ignore" });
  if (sleeper.pid === undefined) throw new Error("could not start a child process");
  return sleeper.pid;
}

function readQuietly(read: () => string): string {
  try {
    return read();
  } catch {
    return "";
  }
}

/** The PID namespace of this process (Linux), empty where the system does not tell. */
function pidNamespace(): string {
  return readQuietly(() => readlinkSync("/proc/self/ns/pid"));
}

/** The tag of this process's pid space, as the README defines it: host, boot id, PID namespace. */
function pidSpaceTag(space = { host: hostname(), boot: bootId(), pidNamespace: pidNamespace() }): string {
  return createHash("sha256")
    .update(`${space.host}\u0000${space.boot}\u0000${space.pidNamespace}`)
    .digest("hex")
    .slice(0, 12);
}

/** A temp file name of a writer with `pid`, in this process's pid space unless `space` says otherwise. */
function tempFileName(pid: number, space = pidSpaceTag()): string {
  return `.${space}-${pid}-${randomBytes(6).toString("hex")}.tmp`;
}

async function newStore(): Promise<string> {
  const baseDir = await mkdtemp(path.join(root, "store-"));
  await mkdir(path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" })), {
    recursive: true,
  });
  return baseDir;
}

async function listKeys(persist: PersistFile): Promise<SignalKey[]> {
  const keys: SignalKey[] = [];
  for await (const key of persist.keys()) keys.push(key);
  return keys;
}

describe("a crashed writer's temp file is removed at start-up and never read", () => {
  it("a temp file of a dead process is removed before the first operation; a corrupt target stays and is reported", async () => {
    const baseDir = await newStore();
    const target = signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" });
    const directory = path.dirname(target);
    const temp = path.join(directory, tempFileName(deadPid()));
    // A complete, valid row in the temp file: reading it would hide the corruption.
    await writeFile(temp, serializeSignalRow(makeSignalRow(2)));
    await writeFile(target, CORRUPT);

    const persist = new PersistFile({ baseDir });
    try {
      const error = await persist.readSignalData("BTC/USDT", STRATEGY).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ name: "CorruptDataError", backend: "file", operation: "read" });
      expect((error as Error).message).toContain(target);
      expect((error as Error).message).toContain("BTC/USDT");
      expect(await readdir(directory)).toEqual([path.basename(target)]);
      expect(await readFile(target, "utf8")).toBe(CORRUPT);
      const listing = (await listKeys(persist).catch((caught: unknown) => caught)) as Error;
      expect(listing).toMatchObject({ name: "CorruptDataError", operation: "list" });
      expect(listing.message).toContain(target);
      expect(await readFile(target, "utf8")).toBe(CORRUPT);
    } finally {
      await persist.close();
    }
  });

  it("a temp file with no target beside it reads as absent and is never listed", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "ETH/USDT" }));
    await writeFile(path.join(directory, tempFileName(deadPid())), serializeSignalRow(makeSignalRow(3)));
    const persist = new PersistFile({ baseDir });
    try {
      expect(await listKeys(persist)).toEqual([]);
      expect(await persist.readSignalData("ETH/USDT", STRATEGY)).toBeNull();
      expect(await readdir(directory)).toEqual([]);
    } finally {
      await persist.close();
    }
  });

  it("a temp file of a live process is left alone: that process may be writing it right now", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" }));
    const otherProcess = path.join(directory, tempFileName(livePid()));
    const thisProcess = path.join(directory, tempFileName(process.pid));
    await writeFile(otherProcess, "{");
    await writeFile(thisProcess, "{");
    const persist = new PersistFile({ baseDir });
    try {
      await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
      expect(await listKeys(persist)).toEqual([{ strategyName: STRATEGY, symbol: "BTC/USDT" }]);
      expect((await readdir(directory)).sort()).toEqual(
        [otherProcess, thisProcess, signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" })]
          .map((file) => path.basename(file))
          .sort(),
      );
    } finally {
      await persist.close();
    }
  });

  it("a temp file older than an hour is removed even when its pid is alive (pids are reused)", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" }));
    const temp = path.join(directory, tempFileName(livePid()));
    await writeFile(temp, "{");
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(temp, twoHoursAgo, twoHoursAgo);
    const persist = new PersistFile({ baseDir });
    try {
      await persist.ping();
      expect(await readdir(directory)).toEqual([]);
    } finally {
      await persist.close();
    }
  });

  it("a temp file of another pid space (another PID namespace, host or boot) is left alone though its pid is free here, until it is over an hour old", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" }));
    const elsewhere = pidSpaceTag({ host: hostname(), boot: bootId(), pidNamespace: "pid:[1]" });
    const fresh = tempFileName(deadPid(), elsewhere);
    const old = tempFileName(deadPid(), elsewhere);
    await writeFile(path.join(directory, fresh), "{");
    await writeFile(path.join(directory, old), "{");
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(path.join(directory, old), twoHoursAgo, twoHoursAgo);
    const persist = new PersistFile({ baseDir });
    try {
      await persist.ping();
      expect(await readdir(directory)).toEqual([fresh]);
    } finally {
      await persist.close();
    }
  });

  it("directories this backend never makes (lost+found at a volume's root) are not entered", async () => {
    const baseDir = await newStore();
    const foreignDirectory = path.join(baseDir, "lost+found");
    await mkdir(path.join(foreignDirectory, "inner"), { recursive: true });
    const names = [tempFileName(deadPid()), "inner"];
    await writeFile(path.join(foreignDirectory, names[0] as string), "kept");
    const persist = new PersistFile({ baseDir });
    try {
      await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
      expect(await listKeys(persist)).toEqual([{ strategyName: STRATEGY, symbol: "BTC/USDT" }]);
      expect((await readdir(foreignDirectory)).sort()).toEqual(names.sort());
    } finally {
      await persist.close();
    }
  });

  it("files that only look like temp files are not touched", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" }));
    const foreign = [
      "notes.tmp",
      `.${deadPid()}.tmp`,
      `.${pidSpaceTag()}-0-${"0".repeat(12)}.tmp`,
      `.${pidSpaceTag()}-${deadPid()}.tmp`,
      "README",
    ];
    for (const name of foreign) await writeFile(path.join(directory, name), "kept");
    const persist = new PersistFile({ baseDir });
    try {
      expect(await listKeys(persist)).toEqual([]);
      expect((await readdir(directory)).sort()).toEqual([...foreign].sort());
    } finally {
      await persist.close();
    }
  });
});

/** `/proc/<pid>/stat` field 22 (start time), as the lock owner records it; Linux only. */
function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] as string;
}

function bootId(): string {
  return readQuietly(() => readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
}

interface LeftOwner {
  pid: number;
  start?: string;
  host?: string;
  boot?: string;
  pidNamespace?: string;
}

/** A lock file as another process would have left it beside the key's record file. */
async function leaveLock(lockFile: string, owner: LeftOwner): Promise<void> {
  await mkdir(path.dirname(lockFile), { recursive: true });
  const content = {
    pid: owner.pid,
    start: owner.start ?? startTimeOf(owner.pid),
    boot: owner.boot ?? bootId(),
    pidNamespace: owner.pidNamespace ?? pidNamespace(),
    host: owner.host ?? hostname(),
    token: randomBytes(16).toString("hex"),
  };
  await writeFile(lockFile, JSON.stringify(content));
}

function keyLockOf(baseDir: string, symbol: string): string {
  const file = signalFilePath(baseDir, { strategyName: STRATEGY, symbol });
  return path.join(path.dirname(file), `.${path.basename(file, ".json")}.lk`);
}

describe.skipIf(process.platform !== "linux")(
  "a lock left by a dead process is broken; a live owner's lock is waited for",
  () => {
    it("a key lock of a killed process: the next write takes it at once and leaves no lock behind", async () => {
      const baseDir = await newStore();
      const persist = new PersistFile({ baseDir, lockTimeoutMs: 60_000 });
      try {
        await persist.ping();
        // Left after the start-up sweep, so the write itself must break it.
        await leaveLock(keyLockOf(baseDir, "BTC/USDT"), { pid: deadPid(), start: "1" });
        const started = Date.now();
        await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
        expect(Date.now() - started).toBeLessThan(5_000);
        const directory = path.dirname(signalFilePath(baseDir, { strategyName: STRATEGY, symbol: "BTC/USDT" }));
        expect(await readdir(directory)).toEqual(["^b^t^c%2F^u^s^d^t.json"]);
      } finally {
        await persist.close();
      }
    });

    it("a lock whose pid now belongs to another process (another start time) is broken", async () => {
      const baseDir = await newStore();
      const persist = new PersistFile({ baseDir, lockTimeoutMs: 60_000 });
      try {
        await persist.ping();
        await leaveLock(keyLockOf(baseDir, "BTC/USDT"), { pid: livePid(), start: "1" });
        await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
        expect(await persist.readSignalData("BTC/USDT", STRATEGY)).toEqual(makeSignalRow(1));
      } finally {
        await persist.close();
      }
    });

    it("a dead process's group lock does not stop the first write of a new key; the sweep removes it too", async () => {
      const baseDir = await newStore();
      const groupLock = path.join(baseDir, STRATEGY, ".group.lock");
      await leaveLock(groupLock, { pid: deadPid(), start: "1" });
      const persist = new PersistFile({ baseDir, lockTimeoutMs: 60_000 });
      try {
        await persist.ping();
        expect(await readdir(path.dirname(groupLock))).toEqual([]);
        await leaveLock(groupLock, { pid: deadPid(), start: "1" });
        await persist.writeSignalData("ETH/USDT", STRATEGY, makeSignalRow(1));
        expect(await readdir(path.dirname(groupLock))).toEqual(["^e^t^h%2F^u^s^d^t.json"]);
      } finally {
        await persist.close();
      }
    });

    it("a lock of another boot, last changed before this machine started, is broken (its owner died in the reboot)", async () => {
      const baseDir = await newStore();
      const persist = new PersistFile({ baseDir, lockTimeoutMs: 60_000 });
      try {
        await persist.ping();
        const lock = keyLockOf(baseDir, "BTC/USDT");
        await leaveLock(lock, { pid: process.pid, start: "1", boot: "a-boot-before-this-one" });
        const beforeBoot = new Date(Date.now() - uptime() * 1000 - 60_000);
        await utimes(lock, beforeBoot, beforeBoot);
        await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
        expect(await persist.readSignalData("BTC/USDT", STRATEGY)).toEqual(makeSignalRow(1));
      } finally {
        await persist.close();
      }
    });

    for (const [owner, describeOwner] of [
      [() => ({ pid: livePid() }), "a live process"],
      [() => ({ pid: deadPid(), start: "1", host: "another-host" }), "a process of another host"],
      [() => ({ pid: deadPid(), start: "1", pidNamespace: "pid:[1]" }), "a process of another PID namespace"],
      [
        () => ({ pid: deadPid(), start: "1", boot: "another-boot" }),
        "a process of another boot, changed since this one began",
      ],
    ] as const) {
      it(`a lock of ${describeOwner} is never broken: the write fails at lockTimeoutMs with nothing changed`, async () => {
        const baseDir = await newStore();
        const persist = new PersistFile({ baseDir, lockTimeoutMs: 300 });
        try {
          await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
          const lock = keyLockOf(baseDir, "BTC/USDT");
          await leaveLock(lock, owner());
          const error = await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(2)).catch((caught) => caught);
          expect(error).toMatchObject({ name: "BackendUnavailableError", operation: "write", outcome: "not-applied" });
          expect((error as Error).message).toContain("another process holds the key's lock");
          await expect(persist.deleteSignalData("BTC/USDT", STRATEGY)).rejects.toMatchObject({
            outcome: "not-applied",
          });
          expect(await persist.readSignalData("BTC/USDT", STRATEGY)).toEqual(makeSignalRow(1));
          expect(await readFile(lock, "utf8")).toContain('"pid"');
        } finally {
          await persist.close();
        }
      });
    }
  },
);
