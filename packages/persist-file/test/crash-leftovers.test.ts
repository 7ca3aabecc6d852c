import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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

function tempFileName(pid: number): string {
  return `.${pid}-${randomBytes(8).toString("hex")}.tmp`;
}

async function newStore(): Promise<string> {
  const baseDir = await mkdtemp(path.join(root, "store-"));
  await mkdir(path.dirname(signalFilePath(baseDir, "BTC/USDT", STRATEGY)), { recursive: true });
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
    const target = signalFilePath(baseDir, "BTC/USDT", STRATEGY);
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
      expect(await listKeys(persist)).toEqual([{ strategyName: STRATEGY, symbol: "BTC/USDT" }]);
    } finally {
      await persist.close();
    }
  });

  it("a temp file with no target beside it reads as absent and is never listed", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, "ETH/USDT", STRATEGY));
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
    const directory = path.dirname(signalFilePath(baseDir, "BTC/USDT", STRATEGY));
    const otherProcess = path.join(directory, tempFileName(livePid()));
    const thisProcess = path.join(directory, tempFileName(process.pid));
    await writeFile(otherProcess, "{");
    await writeFile(thisProcess, "{");
    const persist = new PersistFile({ baseDir });
    try {
      await persist.writeSignalData("BTC/USDT", STRATEGY, makeSignalRow(1));
      expect(await listKeys(persist)).toEqual([{ strategyName: STRATEGY, symbol: "BTC/USDT" }]);
      expect((await readdir(directory)).sort()).toEqual(
        [otherProcess, thisProcess, signalFilePath(baseDir, "BTC/USDT", STRATEGY)]
          .map((file) => path.basename(file))
          .sort(),
      );
    } finally {
      await persist.close();
    }
  });

  it("a temp file older than an hour is removed even when its pid is alive (pids are reused)", async () => {
    const baseDir = await newStore();
    const directory = path.dirname(signalFilePath(baseDir, "BTC/USDT", STRATEGY));
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
    const directory = path.dirname(signalFilePath(baseDir, "BTC/USDT", STRATEGY));
    const foreign = ["notes.tmp", `.${deadPid()}.tmp`, `.0-${"0".repeat(16)}.tmp`, "README"];
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
