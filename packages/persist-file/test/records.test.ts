import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { makeSignalRow } from "@persist-kit/contract";
import type { RecordKey } from "@persist-kit/core";
import { FileRecordStore, PersistFile, recordLocation, signalFilePath } from "@persist-kit/persist-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStoredText, writeStoredValue } from "./stored-files.js";

let root = "";

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "persist-file-records-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function withStore(body: (store: FileRecordStore) => Promise<void>, baseDir?: string): Promise<void> {
  const store = new FileRecordStore({ baseDir: baseDir ?? (await mkdtemp(path.join(root, "store-"))) });
  try {
    await body(store);
  } finally {
    await store.close();
  }
}

const key = (parts: string[], namespace = "risk"): RecordKey => ({ namespace, parts });
const text = (file: string) => readFile(file, "utf8");

describe("layout: signals at {baseDir}/{strategy}/{symbol}.json, other namespaces under .records", () => {
  it("a record of another namespace lives under .records/{namespace}, and keys() never lists it", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const persist = new PersistFile({ baseDir });
    try {
      await persist.records.write(key(["momentum", "BTC/USDT", "level 2"]), '{"size":1}');
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      const file = recordLocation(baseDir, key(["momentum", "BTC/USDT", "level 2"])).file;
      expect(path.relative(baseDir, file)).toBe(
        path.join(".records", "risk", "momentum", "^b^t^c%2F^u^s^d^t", "level%202.json"),
      );
      expect(await text(file)).toBe('{"format":1,"revision":1,"value":{"size":1}}');
      const listed = [];
      for await (const signal of persist.keys()) listed.push(signal);
      expect(listed).toEqual([{ strategyName: "momentum", symbol: "BTC/USDT" }]);
      expect((await persist.records.list("risk")).records).toEqual([
        { parts: ["momentum", "BTC/USDT", "level 2"], revision: 1 },
      ]);
    } finally {
      await persist.close();
    }
  });

  it("a strategy named .records is an ordinary encoded directory, apart from the reserved one", () =>
    withStore(async (store) => {
      await store.write(key([".records", "risk"], "signal"), '"signal"');
      await store.write(key(["x"], "records"), '"record"');
      expect(
        path.relative(store.baseDir, signalFilePath(store.baseDir, { strategyName: ".records", symbol: "risk" })),
      ).toBe(path.join("%2Erecords", "risk.json"));
      expect((await store.list("signal")).records).toEqual([{ parts: [".records", "risk"], revision: 1 }]);
      expect((await store.list("records")).records).toEqual([{ parts: ["x"], revision: 1 }]);
    }));

  it("the value is stored exactly as given, not re-serialized; a hand-edited record still reads", () =>
    withStore(async (store) => {
      const spaced = '{ "price" : 0.30000000000000004 , "list": [1, 2] }';
      await store.write(key(["a", "b"]), spaced);
      expect(await store.read(key(["a", "b"]))).toEqual({ found: true, json: spaced, revision: 1 });
      const file = recordLocation(store.baseDir, key(["a", "b"])).file;
      await writeFile(file, '{\n  "format": 1,\n  "revision": 7,\n  "value": { "edited": true }\n}\n');
      expect(await store.read(key(["a", "b"]))).toEqual({ found: true, json: '{"edited":true}', revision: 7 });
    }));
});

describe("revisions: every applied change raises the key's revision, kept in its file", () => {
  it("unconditional writes and deletes, on disk and read back", () =>
    withStore(async (store) => {
      const k = key(["group", "k"]);
      const file = recordLocation(store.baseDir, k).file;
      expect(await store.read(k)).toEqual({ found: false, revision: 0 });
      expect(await store.write(k, "1")).toEqual({ applied: true, revision: 1 });
      expect(await store.write(k, "2")).toEqual({ applied: true, revision: 2 });
      expect(await store.delete(k)).toEqual({ applied: true, revision: 3 });
      expect(await text(file)).toBe('{"format":1,"revision":3}');
      expect(await store.read(k)).toEqual({ found: false, revision: 3 });
      expect(await store.delete(k)).toEqual({ applied: true, revision: 3 });
      expect(await store.write(k, "4")).toEqual({ applied: true, revision: 4 });
    }));

  it("conditions on present, deleted and never-written keys", () =>
    withStore(async (store) => {
      const k = key(["group", "k"]);
      expect(await store.delete(k, { condition: { revision: 1 } })).toEqual({ applied: false, revision: 0 });
      expect(await readStoredText(recordLocation(store.baseDir, k).file)).toBeNull();
      expect(await store.delete(k, { condition: { revision: 0 } })).toEqual({ applied: true, revision: 1 });
      expect(await store.write(k, "1", { condition: { revision: 0 } })).toEqual({ applied: false, revision: 1 });
      expect(await store.write(k, "1", { condition: { below: 5 } })).toEqual({ applied: true, revision: 5 });
      expect(await store.write(k, "2", { condition: { below: 5 } })).toEqual({ applied: false, revision: 5 });
      expect(await store.delete(k, { condition: { below: 9 } })).toEqual({ applied: true, revision: 9 });
      expect(await store.write(k, "3", { condition: { revision: 9 } })).toEqual({ applied: true, revision: 10 });
      expect(await store.read(k)).toEqual({ found: true, json: "3", revision: 10 });
    }));

  it("an expired record keeps its revision: it reads absent at once, and the next write goes above it", async () => {
    const store = new FileRecordStore({ baseDir: await mkdtemp(path.join(root, "store-")) });
    try {
      const k = key(["group", "k"]);
      await store.write(k, "1", { condition: { below: 4 }, ttlMs: 50 });
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(await store.read(k)).toEqual({ found: false, revision: 4 });
      expect((await store.list("risk")).records).toEqual([]);
      expect(await store.delete(k)).toEqual({ applied: true, revision: 4 });
      expect(await store.write(k, "2")).toEqual({ applied: true, revision: 5 });
    } finally {
      await store.close();
    }
  });
});

describe("floors: a new store folds tombstones into its group's floor, and no revision falls", () => {
  it("deleted keys leave only the floor file; they and never-written keys of the group read the floor", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const deleted = [key(["group", "a"]), key(["group", "b", "deep"]), key(["group"])];
    await withStore(async (store) => {
      await store.write(deleted[0] as RecordKey, "1", { condition: { below: 7 } });
      await store.delete(deleted[0] as RecordKey);
      await store.delete(deleted[1] as RecordKey, { condition: { below: 12 } });
      await store.write(deleted[2] as RecordKey, "1");
      await store.delete(deleted[2] as RecordKey);
      await store.write(key(["group", "live"]), "1");
      await store.write(key(["other", "a"]), "1");
      await store.delete(key(["other", "a"]));
    }, baseDir);
    await withStore(async (store) => {
      await store.ping();
      const group = path.join(baseDir, ".records", "risk", "group");
      expect((await readdir(group, { recursive: true })).sort()).toEqual([".floor", "b", "live.json"]);
      expect(await text(path.join(group, ".floor"))).toBe('{"format":1,"floor":12}');
      expect(await text(path.join(baseDir, ".records", "risk", "other", ".floor"))).toBe('{"format":1,"floor":2}');
      expect(await readStoredText(recordLocation(baseDir, deleted[2] as RecordKey).file)).toBeNull();
      for (const k of [...deleted, key(["group", "never"])])
        expect(await store.read(k)).toEqual({ found: false, revision: 12 });
      expect(await store.read(key(["group", "live"]))).toEqual({ found: true, json: "1", revision: 1 });
      expect(await store.write(key(["group", "never"]), "1", { condition: { revision: 0 } })).toEqual({
        applied: false,
        revision: 12,
      });
      expect(await store.write(key(["group", "a"]), "2")).toEqual({ applied: true, revision: 13 });
      expect(await store.read(key(["other", "never"]))).toEqual({ found: false, revision: 2 });
    }, baseDir);
  });

  it("a tombstone whose key another live process has locked is left for a later start", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const k = key(["group", "busy"]);
    await withStore(async (store) => {
      await store.delete(k, { condition: { below: 3 } });
    }, baseDir);
    const { file } = recordLocation(baseDir, k);
    const lock = path.join(path.dirname(file), ".busy.lk");
    const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { stdio: "ignore" });
    try {
      const pid = sleeper.pid as number;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
      const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      await writeFile(lock, JSON.stringify({ pid, start, boot, host: hostname(), token: "f".repeat(32) }));
      await withStore((store) => store.ping(), baseDir);
      expect(await text(file)).toBe('{"format":1,"revision":3}');
    } finally {
      sleeper.kill("SIGKILL");
    }
    await rm(lock);
    await withStore(async (store) => {
      expect(await store.read(k)).toEqual({ found: false, revision: 3 });
      expect(await readStoredText(file)).toBeNull();
    }, baseDir);
  });
});

describe("list: every live key exactly once, in pages", () => {
  it("with limit 1, 2 and 1000, with and without a prefix, skipping deleted and expired keys", () =>
    withStore(async (store) => {
      const live: string[][] = [];
      for (let index = 0; index < 23; index++) {
        const parts = [index % 2 === 0 ? "even" : "odd", `s${index}`, ...(index % 3 === 0 ? ["x"] : [])];
        await store.write(key(parts), String(index));
        if (index % 5 === 0) await store.delete(key(parts));
        else live.push(parts);
      }
      await store.write(key(["odd", "expired"]), "1", { ttlMs: 1 });
      await store.write(key(["elsewhere"], "other"), "1");
      await new Promise((resolve) => setTimeout(resolve, 10));
      const byId = (parts: string[][]) => parts.map((p) => JSON.stringify(p)).sort();
      for (const limit of [1, 2, 1000]) {
        for (const prefix of [[], ["odd"], ["even", "s6"]]) {
          const seen: string[][] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await store.list("risk", { prefix, cursor, limit });
            expect(page.records.length).toBeLessThanOrEqual(limit);
            seen.push(...page.records.map((record) => [...record.parts]));
            cursor = page.cursor;
            pages++;
          } while (cursor !== undefined);
          const expected = live.filter((parts) => prefix.every((part, index) => parts[index] === part));
          expect(byId(seen), `limit ${limit} prefix ${prefix}`).toEqual(byId(expected));
          expect(seen.map((p) => JSON.stringify(p))).toEqual(byId(expected));
          expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
        }
      }
    }));
});

describe("writeMany: none, as declared", () => {
  it("the record store refuses it before any I/O, and PersistFile has none", async () => {
    const baseDir = await mkdtemp(path.join(root, "store-"));
    const persist = new PersistFile({ baseDir });
    try {
      expect(persist.records.capabilities.writeMany).toBe("none");
      expect(persist.writeMany).toBeUndefined();
      await expect(persist.records.writeMany([{ key: key(["a", "b"]), json: "1" }])).rejects.toMatchObject({
        code: "PERSIST_INVALID_OPTION",
        outcome: "not-applied",
      });
      expect(await readdir(baseDir)).toEqual([]);
    } finally {
      await persist.close();
    }
  });
});

describe("stored files that are not format 1 records are reported, never replaced", () => {
  for (const [what, content] of [
    ["a later format", '{"format":2,"revision":1,"value":1}'],
    ["a bare row of no format", JSON.stringify(makeSignalRow(1))],
    ["a negative revision", '{"format":1,"revision":-1,"value":1}'],
    ["a floor file that is not one", "{"],
  ] as const) {
    it(`${what}: reads, writes and deletes get CorruptDataError naming the file`, () =>
      withStore(async (store) => {
        const k = key(["group", "k"]);
        const { file, groupDirectory } = recordLocation(store.baseDir, k);
        const target = what.startsWith("a floor") ? path.join(groupDirectory, ".floor") : file;
        await writeStoredValue(file, "0");
        await rm(file);
        await writeFile(target, content);
        for (const call of [
          () => store.read(k),
          () => store.write(k, "1"),
          () => store.delete(k, { condition: { revision: 0 } }),
        ]) {
          const error = (await call().catch((caught: unknown) => caught)) as Error;
          expect(error).toMatchObject({ name: "CorruptDataError", outcome: "not-applied" });
          expect(error.message).toContain(target);
          expect(error.message).toContain('risk/"group"/"k"');
        }
        expect(await text(target)).toBe(content);
      }));
  }
});
