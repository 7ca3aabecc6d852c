import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeSignalRow } from "@persist-kit/contract";
import { type SignalKey, serializeSignalRow } from "@persist-kit/core";
import { PersistFile, recordLocation, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeStoredValue } from "./stored-files.js";

// One policy for every operation: baseDir itself (and what is above it) may be a symbolic link;
// below it, a link is never followed, whether it stands where a directory or a record file is
// expected. Every operation that meets one is refused with CorruptDataError naming the link, and
// the link and its target stay as they are.

const KEY: SignalKey = { strategyName: "momentum", symbol: "BTC/USDT" };
const ROW = makeSignalRow(1);

let root = "";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-links-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface LinkedStore {
  baseDir: string;
  /** The link inside the store. */
  link: string;
  /** What the link leads to. */
  leadsTo: string;
  /** A valid record file at or below `leadsTo`: the row a follower would read. */
  target: string;
}

/** A store whose strategy directory of KEY is a link to a directory holding KEY's record. */
async function linkedStrategyDirectory(): Promise<LinkedStore> {
  const baseDir = await mkdtemp(path.join(root, "store-"));
  const elsewhere = await mkdtemp(path.join(root, "elsewhere-"));
  const file = signalFilePath(baseDir, KEY);
  const target = path.join(elsewhere, path.basename(file));
  await writeStoredValue(target, serializeSignalRow(ROW));
  const link = path.dirname(file);
  await symlink(elsewhere, link);
  return { baseDir, link, leadsTo: elsewhere, target };
}

/** A store whose record file of KEY is a link to a valid record file. */
async function linkedRecordFile(): Promise<LinkedStore> {
  const baseDir = await mkdtemp(path.join(root, "store-"));
  const target = path.join(await mkdtemp(path.join(root, "elsewhere-")), "row.json");
  await writeStoredValue(target, serializeSignalRow(ROW));
  const link = signalFilePath(baseDir, KEY);
  await mkdir(path.dirname(link), { recursive: true });
  await symlink(target, link);
  return { baseDir, link, leadsTo: target, target };
}

const LINKED_PLACES = [
  ["a linked strategy directory", linkedStrategyDirectory],
  ["a linked record file", linkedRecordFile],
] as const;

async function withPersist<T>(baseDir: string, body: (persist: PersistFile) => Promise<T>): Promise<T> {
  const persist = new PersistFile({ baseDir });
  try {
    return await body(persist);
  } finally {
    await persist.close();
  }
}

async function expectRefused(call: () => Promise<unknown>, operation: string, link: string): Promise<void> {
  const error = (await call().then(
    (result) => ({ result }),
    (caught: unknown) => caught,
  )) as Error;
  expect(error).toMatchObject({ name: "CorruptDataError", backend: "file", operation, outcome: "not-applied" });
  expect(error.message).toContain(link);
  expect(error.message).toContain("symbolic link");
}

/** The link still leads to the untouched target, and nothing was made beside the target (no temp file, no lock). */
async function expectUntouched({ link, leadsTo, target }: LinkedStore): Promise<void> {
  expect(await readlink(link)).toBe(leadsTo);
  expect(await readdir(path.dirname(target))).toEqual([path.basename(target)]);
  expect(await readFile(target, "utf8")).toBe(`{"format":1,"revision":1,"value":${serializeSignalRow(ROW)}}`);
}

async function listKeys(persist: PersistFile, options?: { strategyName?: string }): Promise<SignalKey[]> {
  const keys: SignalKey[] = [];
  for await (const key of persist.keys(options)) keys.push(key);
  return keys;
}

describe.skipIf(process.platform === "win32")(
  "a symbolic link below baseDir is never followed, by any operation",
  () => {
    for (const [place, make] of LINKED_PLACES) {
      it(`read: ${place} is a CorruptDataError naming the link`, async () => {
        const store = await make();
        await withPersist(store.baseDir, (persist) =>
          expectRefused(() => persist.readSignalData(KEY.symbol, KEY.strategyName), "read", store.link),
        );
        await expectUntouched(store);
      });

      it(`write: ${place} is a CorruptDataError naming the link; nothing is written through it`, async () => {
        const store = await make();
        await withPersist(store.baseDir, (persist) =>
          expectRefused(
            () => persist.writeSignalData(KEY.symbol, KEY.strategyName, makeSignalRow(2)),
            "write",
            store.link,
          ),
        );
        await expectUntouched(store);
      });

      it(`delete: ${place} is a CorruptDataError naming the link; nothing is deleted through it`, async () => {
        const store = await make();
        await withPersist(store.baseDir, (persist) =>
          expectRefused(() => persist.deleteSignalData(KEY.symbol, KEY.strategyName), "delete", store.link),
        );
        await expectUntouched(store);
      });

      it(`keys(): ${place} is a CorruptDataError naming the link, never skipped`, async () => {
        const store = await make();
        await withPersist(store.baseDir, async (persist) => {
          // keys() pages through the record store's list(), whose errors it passes on.
          await expectRefused(() => listKeys(persist), "list", store.link);
          await expectRefused(() => listKeys(persist, { strategyName: KEY.strategyName }), "list", store.link);
          await expectRefused(() => persist.records.list("signal"), "list", store.link);
        });
        await expectUntouched(store);
      });
    }

    it("a linked namespace directory under .records is refused by read, write, delete and list alike", async () => {
      const baseDir = await mkdtemp(path.join(root, "store-"));
      const elsewhere = await mkdtemp(path.join(root, "elsewhere-"));
      const key = { namespace: "risk", parts: ["momentum"] };
      const link = path.dirname(recordLocation(baseDir, key).file);
      await mkdir(path.dirname(link), { recursive: true });
      await symlink(elsewhere, link);
      await withPersist(baseDir, async (persist) => {
        await expectRefused(() => persist.records.read(key), "read", link);
        await expectRefused(() => persist.records.write(key, "1"), "write", link);
        await expectRefused(() => persist.records.delete(key, { condition: { revision: 0 } }), "delete", link);
        await expectRefused(() => persist.records.list("risk"), "list", link);
      });
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
    });

    it("links the store never owns (a name no key encodes to) are left out of keys() and stay", async () => {
      const baseDir = await mkdtemp(path.join(root, "store-"));
      const elsewhere = await mkdtemp(path.join(root, "elsewhere-"));
      await symlink(elsewhere, path.join(baseDir, "lost+found"));
      await mkdir(path.join(baseDir, "momentum"));
      await symlink(elsewhere, path.join(baseDir, "momentum", "notes.txt"));
      await withPersist(baseDir, async (persist) => {
        await persist.writeSignalData(KEY.symbol, KEY.strategyName, ROW);
        expect(await listKeys(persist)).toEqual([KEY]);
      });
      expect((await lstat(path.join(baseDir, "lost+found"))).isSymbolicLink()).toBe(true);
    });

    it("baseDir itself may be a link: every operation works through it", async () => {
      const real = await mkdtemp(path.join(root, "real-"));
      const baseDir = path.join(root, `linked-${path.basename(real)}`);
      await symlink(real, baseDir);
      await withPersist(baseDir, async (persist) => {
        await persist.writeSignalData(KEY.symbol, KEY.strategyName, ROW);
        expect(await persist.readSignalData(KEY.symbol, KEY.strategyName)).toEqual(ROW);
        expect(await listKeys(persist)).toEqual([KEY]);
        await persist.deleteSignalData(KEY.symbol, KEY.strategyName);
        expect(await persist.readSignalData(KEY.symbol, KEY.strategyName)).toBeNull();
      });
      expect(await readFile(signalFilePath(real, KEY), "utf8")).toBe('{"format":1,"revision":2}');
    });
  },
);
