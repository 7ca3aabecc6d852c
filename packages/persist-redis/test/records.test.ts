// The record store (revisions, conditions, floors, listing, writeMany, close) on the shared
// single server and on the three-master cluster, checked through the store and directly in Redis.

import { BackendClosedError, CorruptDataError, InvalidOptionError, type RecordKey } from "@persist-kit/core";
import { getRedisClusterNodes, getRedisUrl } from "@persist-kit/tools-test-servers";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { floorRedisKey, RedisRecordStore, type RedisRecordStoreOptions, recordRedisKey } from "../src/index.js";
import { deleteKeys, uniquePrefix } from "./helpers.js";

const deployments: { name: string; connect(): Promise<{ target: RedisRecordStoreOptions; raw: Redis | Cluster }> }[] = [
  {
    name: "single server",
    async connect() {
      const url = await getRedisUrl();
      return { target: { url }, raw: new Redis(url) };
    },
  },
  {
    name: "cluster",
    async connect() {
      const clusterNodes = await getRedisClusterNodes();
      return { target: { clusterNodes }, raw: new Cluster(clusterNodes) };
    },
  },
];

const key = (first: string, ...rest: string[]): RecordKey => ({ namespace: "risk", parts: [first, ...rest] });

describe.each(deployments)("the redis record store on a $name", (deployment) => {
  const runPrefix = uniquePrefix("records");
  let target: RedisRecordStoreOptions = {};
  let raw: Redis | Cluster;
  let stores = 0;

  async function withStore(body: (store: RedisRecordStore) => Promise<void>): Promise<void> {
    const store = new RedisRecordStore({ ...target, prefix: `${runPrefix}${++stores}:` });
    try {
      await body(store);
    } finally {
      await store.close();
    }
  }

  beforeAll(async () => {
    ({ target, raw } = await deployment.connect());
    await raw.ping();
  });

  afterAll(async () => {
    await deleteKeys(raw, runPrefix);
    await raw.quit();
  });

  describe("revisions", () => {
    it("a never-written key has revision 0; unconditional writes take the next one", () =>
      withStore(async (store) => {
        expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 0 });
        expect(await store.write(key("a", "x"), '{"n":1}')).toEqual({ applied: true, revision: 1 });
        expect(await store.write(key("a", "x"), '{"n":2}')).toEqual({ applied: true, revision: 2 });
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: '{"n":2}', revision: 2 });
      }));

    it("stores the v1 envelope with the value verbatim, and nothing else", () =>
      withStore(async (store) => {
        const json = '{ "kept": [1, 2.50, "as written"] }';
        await store.write(key("a", "x"), json);
        await store.write(key("a", "x"), json);
        expect(await raw.get(recordRedisKey(store.prefix, key("a", "x")))).toBe(`{"v":1,"revision":2,"value":${json}}`);
        expect(await raw.pttl(recordRedisKey(store.prefix, key("a", "x")))).toBe(-1);
        expect(await raw.exists(floorRedisKey(store.prefix, key("a", "x")))).toBe(0);
      }));

    it("{ revision: R } applies only at exactly R and stores R + 1", () =>
      withStore(async (store) => {
        expect(await store.write(key("a", "x"), "1", { condition: { revision: 1 } })).toEqual({
          applied: false,
          revision: 0,
        });
        expect(await store.write(key("a", "x"), "1", { condition: { revision: 0 } })).toEqual({
          applied: true,
          revision: 1,
        });
        expect(await store.write(key("a", "x"), "2", { condition: { revision: 0 } })).toEqual({
          applied: false,
          revision: 1,
        });
        expect(await store.write(key("a", "x"), "3", { condition: { revision: 2 } })).toEqual({
          applied: false,
          revision: 1,
        });
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: "1", revision: 1 });
      }));

    it("{ below: R } applies only below R and stores R", () =>
      withStore(async (store) => {
        expect(await store.write(key("a", "x"), "1", { condition: { below: 5 } })).toEqual({
          applied: true,
          revision: 5,
        });
        expect(await store.write(key("a", "x"), "2", { condition: { below: 5 } })).toEqual({
          applied: false,
          revision: 5,
        });
        expect(await store.write(key("a", "x"), "3", { condition: { below: 9 } })).toEqual({
          applied: true,
          revision: 9,
        });
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: "3", revision: 9 });
      }));

    it("a delete of a live key raises its revision; it then reads absent at that revision", () =>
      withStore(async (store) => {
        await store.write(key("a", "x"), "1");
        await store.write(key("a", "x"), "2");
        expect(await store.delete(key("a", "x"))).toEqual({ applied: true, revision: 3 });
        expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 3 });
        expect(await raw.exists(recordRedisKey(store.prefix, key("a", "x")))).toBe(0);
        expect(await raw.get(floorRedisKey(store.prefix, key("a", "x")))).toBe("3");
        // The next write continues from there, never from 0.
        expect(await store.write(key("a", "x"), "4")).toEqual({ applied: true, revision: 4 });
      }));

    it("an unconditional delete of an absent key applies and changes nothing", () =>
      withStore(async (store) => {
        expect(await store.delete(key("a", "x"))).toEqual({ applied: true, revision: 0 });
        expect(await raw.exists(floorRedisKey(store.prefix, key("a", "x")))).toBe(0);
        expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 0 });
      }));

    it("conditional deletes follow the condition, on live and absent keys", () =>
      withStore(async (store) => {
        await store.write(key("a", "x"), "1");
        expect(await store.delete(key("a", "x"), { condition: { revision: 0 } })).toEqual({
          applied: false,
          revision: 1,
        });
        expect(await store.read(key("a", "x"))).toMatchObject({ found: true, revision: 1 });
        expect(await store.delete(key("a", "x"), { condition: { revision: 1 } })).toEqual({
          applied: true,
          revision: 2,
        });
        // Absent now: { revision: 2 } applies and raises the absent key's revision.
        expect(await store.delete(key("a", "x"), { condition: { revision: 1 } })).toEqual({
          applied: false,
          revision: 2,
        });
        expect(await store.delete(key("a", "x"), { condition: { revision: 2 } })).toEqual({
          applied: true,
          revision: 3,
        });
        expect(await store.delete(key("a", "x"), { condition: { below: 3 } })).toEqual({ applied: false, revision: 3 });
        expect(await store.delete(key("a", "x"), { condition: { below: 7 } })).toEqual({ applied: true, revision: 7 });
        expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 7 });
      }));

    it("the floor is per group: the namespace and first part, in the records' hash slot", () =>
      withStore(async (store) => {
        await store.write(key("a", "z"), "1");
        await store.write(key("a", "x"), "1");
        await store.write(key("a", "x"), "2");
        await store.delete(key("a", "x"));
        // Another key of the group, never written, reports the floor; other groups do not.
        expect(await store.read(key("a", "y"))).toEqual({ found: false, revision: 3 });
        expect(await store.read(key("b", "x"))).toEqual({ found: false, revision: 0 });
        expect(await store.read({ namespace: "other", parts: ["a", "x"] })).toEqual({ found: false, revision: 0 });
        expect(await store.write(key("a", "y"), "1")).toEqual({ applied: true, revision: 4 });
        // A live key below the floor keeps its revision; deleting it never lowers the floor.
        expect(await store.delete(key("a", "w"), { condition: { below: 10 } })).toEqual({
          applied: true,
          revision: 10,
        });
        expect(await store.read(key("a", "z"))).toMatchObject({ found: true, revision: 1 });
        // The deleted key reports the floor, already above its own next revision (2).
        expect(await store.delete(key("a", "z"))).toEqual({ applied: true, revision: 10 });
        expect(await store.read(key("a", "z"))).toEqual({ found: false, revision: 10 });
        expect(await raw.get(floorRedisKey(store.prefix, key("a")))).toBe("10");
        if (raw.isCluster) {
          const slot = (redisKey: string) => raw.cluster("KEYSLOT", redisKey);
          expect(await slot(floorRedisKey(store.prefix, key("a")))).toBe(
            await slot(recordRedisKey(store.prefix, key("a", "z"))),
          );
        }
      }));

    it("TTL: the key expires by the server's clock and falls back to the floor (ttlResetsRevision)", () =>
      withStore(async (store) => {
        expect(store.capabilities).toMatchObject({ ttl: true, ttlResetsRevision: true });
        await store.write(key("a", "x"), "1");
        await store.delete(key("a", "x"));
        expect(await store.write(key("a", "x"), "2", { ttlMs: 150 })).toEqual({ applied: true, revision: 3 });
        expect(await raw.pttl(recordRedisKey(store.prefix, key("a", "x")))).toBeGreaterThan(0);
        await new Promise((resolve) => setTimeout(resolve, 250));
        expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 2 });
      }));
  });

  describe("stored data of another shape is corrupt, never overwritten", () => {
    it("a write or delete over a value that is not a v1 record rejects and leaves it", () =>
      withStore(async (store) => {
        const redisKey = recordRedisKey(store.prefix, key("a", "x"));
        for (const foreign of ["{}", '{"v":2,"revision":3,"value":1}', "plain"]) {
          await raw.set(redisKey, foreign);
          await expect(store.read(key("a", "x"))).rejects.toBeInstanceOf(CorruptDataError);
          const write = await store.write(key("a", "x"), "1").catch((reason) => reason);
          expect(write).toBeInstanceOf(CorruptDataError);
          expect(write.outcome).toBe("not-applied");
          expect(write.message).toContain(redisKey);
          await expect(store.delete(key("a", "x"))).rejects.toBeInstanceOf(CorruptDataError);
          await expect(
            store.writeMany([
              { key: key("a", "y"), json: "1" },
              { key: key("a", "x"), json: "1" },
            ]),
          ).rejects.toBeInstanceOf(CorruptDataError);
          expect(await raw.get(redisKey)).toBe(foreign);
          expect(await store.read(key("a", "y"))).toEqual({ found: false, revision: 0 });
        }
      }));

    it("a key of another type, or a floor that is not a number, is CorruptDataError", () =>
      withStore(async (store) => {
        await raw.hset(recordRedisKey(store.prefix, key("a", "x")), "field", "1");
        await expect(store.read(key("a", "x"))).rejects.toBeInstanceOf(CorruptDataError);
        await expect(store.write(key("a", "x"), "1")).rejects.toBeInstanceOf(CorruptDataError);
        await raw.set(floorRedisKey(store.prefix, key("b")), "x1");
        await expect(store.read(key("b", "x"))).rejects.toBeInstanceOf(CorruptDataError);
        await expect(store.write(key("b", "x"), "1")).rejects.toBeInstanceOf(CorruptDataError);
        expect(await raw.type(recordRedisKey(store.prefix, key("a", "x")))).toBe("hash");
        expect(await raw.get(floorRedisKey(store.prefix, key("b")))).toBe("x1");
      }));
  });

  describe("planted revisions, envelopes and floors: the reader and the scripts agree", () => {
    const MAX = Number.MAX_SAFE_INTEGER;

    async function expectCorrupt(change: Promise<unknown>, redisKey: string): Promise<void> {
      const error = await change.then(
        () => undefined,
        (reason) => reason,
      );
      expect(error).toBeInstanceOf(CorruptDataError);
      expect(error.outcome).toBe("not-applied");
      expect(error.message).toContain(redisKey);
    }

    it("a revision of more than 16 digits or above 2^53 - 1 is corrupt for reads, writes, deletes and writeMany; nothing is written", () =>
      withStore(async (store) => {
        const recordKey = recordRedisKey(store.prefix, key("a", "x"));
        for (const revision of ["12345678901234567890", "9007199254740992", "9999999999999999", "00000000000000001"]) {
          const planted = `{"v":1,"revision":${revision},"value":{}}`;
          await raw.set(recordKey, planted);
          await expectCorrupt(store.read(key("a", "x")), recordKey);
          await expectCorrupt(store.write(key("a", "x"), "1"), recordKey);
          await expectCorrupt(store.write(key("a", "x"), "1", { condition: { below: 2 ** 52 } }), recordKey);
          await expectCorrupt(store.delete(key("a", "x")), recordKey);
          await expectCorrupt(store.writeMany([{ key: key("a", "x"), json: "1" }]), recordKey);
          await expectCorrupt(store.list("risk"), recordKey);
          expect(await raw.get(recordKey)).toBe(planted);
        }
        await raw.del(recordKey);
        const floorKey = floorRedisKey(store.prefix, key("b"));
        for (const floor of ["99999999999999999999", "9007199254740992", "00000000000000001"]) {
          await raw.set(floorKey, floor);
          await expectCorrupt(store.read(key("b", "x")), floorKey);
          await expectCorrupt(store.write(key("b", "x"), "1"), floorKey);
          await expectCorrupt(store.delete(key("b", "x"), { condition: { revision: 0 } }), floorKey);
          await expectCorrupt(store.writeMany([{ key: key("b", "x"), json: "1" }]), floorKey);
          expect(await raw.get(floorKey)).toBe(floor);
          expect(await raw.exists(recordRedisKey(store.prefix, key("b", "x")))).toBe(0);
        }
      }));

    it("revisions up to 2^53 - 1 are taken and reported exactly; a key at 2^53 - 1 refuses the change that would pass it", () =>
      withStore(async (store) => {
        const recordKey = recordRedisKey(store.prefix, key("a", "x"));
        await raw.set(recordKey, `{"v":1,"revision":${MAX - 2},"value":{}}`);
        expect(await store.write(key("a", "x"), "1")).toEqual({ applied: true, revision: MAX - 1 });
        expect(await store.write(key("a", "x"), "2", { condition: { revision: 0 } })).toEqual({
          applied: false,
          revision: MAX - 1,
        });
        // Twice the same key: the second entry would pass 2^53 - 1, so neither is written.
        await expectCorrupt(
          store.writeMany([
            { key: key("a", "x"), json: "3" },
            { key: key("a", "x"), json: "4" },
          ]),
          recordKey,
        );
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: "1", revision: MAX - 1 });
        expect(await store.write(key("a", "x"), "5")).toEqual({ applied: true, revision: MAX });
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: "5", revision: MAX });
        expect(await store.list("risk")).toEqual({
          records: [{ parts: ["a", "x"], revision: MAX }],
          cursor: undefined,
        });
        await expectCorrupt(store.write(key("a", "x"), "6"), recordKey);
        await expectCorrupt(store.delete(key("a", "x")), recordKey);
        await expectCorrupt(store.writeMany([{ key: key("a", "x"), json: "6" }]), recordKey);
        expect(await raw.get(recordKey)).toBe(`{"v":1,"revision":${MAX},"value":5}`);
        const floorKey = floorRedisKey(store.prefix, key("b"));
        await raw.set(floorKey, String(MAX));
        expect(await store.read(key("b", "x"))).toEqual({ found: false, revision: MAX });
        expect(await store.write(key("b", "x"), "1", { condition: { below: 2 ** 52 } })).toEqual({
          applied: false,
          revision: MAX,
        });
        await expectCorrupt(store.write(key("b", "x"), "1"), floorKey);
        await expectCorrupt(store.writeMany([{ key: key("b", "x"), json: "1" }]), floorKey);
        expect(await store.delete(key("b", "x"))).toEqual({ applied: true, revision: MAX });
        expect(await raw.get(floorKey)).toBe(String(MAX));
        expect(await raw.exists(recordRedisKey(store.prefix, key("b", "x")))).toBe(0);
      }));

    it("a record is read only whole: an envelope whose value is not one JSON text (a missing closing brace) is corrupt", () =>
      withStore(async (store) => {
        const recordKey = recordRedisKey(store.prefix, key("a", "x"));
        for (const planted of [
          '{"v":1,"revision":3,"value":{}',
          '{"v":1,"revision":3,"value":{"a":{}}',
          '{"v":1,"revision":3,"value":}',
          '{"v":1,"revision":3,"value":1}}',
          '{"v":1,"revision":3,"value":1',
        ]) {
          await raw.set(recordKey, planted);
          await expectCorrupt(store.read(key("a", "x")), recordKey);
          await expectCorrupt(store.list("risk"), recordKey);
          expect(await raw.get(recordKey)).toBe(planted);
        }
        await raw.set(recordKey, '{"v":1,"revision":3,"value": {"a":[1, {}]} }');
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: ' {"a":[1, {}]} ', revision: 3 });
      }));

    it("a floor of another type is corrupt for reads too, naming the floor key, as for writes and deletes", () =>
      withStore(async (store) => {
        const floorKey = floorRedisKey(store.prefix, key("a"));
        await raw.hset(floorKey, "field", "1");
        await expectCorrupt(store.read(key("a", "x")), floorKey);
        await expectCorrupt(store.write(key("a", "x"), "1"), floorKey);
        await expectCorrupt(store.delete(key("a", "x"), { condition: { revision: 0 } }), floorKey);
        await expectCorrupt(store.read(key("a", "x")), floorKey);
        expect(await raw.type(floorKey)).toBe("hash");
        expect(await raw.exists(recordRedisKey(store.prefix, key("a", "x")))).toBe(0);
      }));

    it("a read of a live key is one GET, as before floors were checked for their type", async () => {
      const client = raw.isCluster ? new Cluster(target.clusterNodes ?? []) : new Redis(target.url as string);
      const store = new RedisRecordStore({ client, prefix: `${runPrefix}${++stores}:` });
      const sent: string[] = [];
      const sendCommand = client.sendCommand.bind(client);
      client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
        sent.push(command.name);
        return (sendCommand as (...args: unknown[]) => unknown)(command, ...rest);
      }) as typeof client.sendCommand;
      try {
        await store.write(key("a", "x"), "1");
        await store.read(key("a", "y"));
        sent.length = 0;
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: "1", revision: 1 });
        expect(sent).toEqual(["get"]);
        sent.length = 0;
        expect(await store.read(key("a", "y"))).toEqual({ found: false, revision: 0 });
        // The GET, then the read script (EVALSHA; EVAL too should the server have lost it).
        expect(sent[0]).toBe("get");
        expect(sent.length).toBeGreaterThan(1);
        expect(sent.slice(1).every((name) => name === "evalsha" || name === "eval")).toBe(true);
      } finally {
        await store.close();
        await client.quit();
      }
    });
  });

  describe("list()", () => {
    async function listAll(store: RedisRecordStore, limit: number, prefix: string[] = []) {
      const listed: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.list("risk", { limit, prefix, cursor });
        expect(page.records.length).toBeLessThanOrEqual(limit);
        listed.push(...page.records.map((record) => `${JSON.stringify(record.parts)}@${record.revision}`));
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined);
      return { listed, pages };
    }

    it("pages through every live key exactly once with limit 1, 2 and 1000; prefix filters", () =>
      withStore(async (store) => {
        const expected: string[] = [];
        for (let group = 0; group < 12; group++) {
          for (let index = 0; index < 5; index++) {
            const parts = [`g${group}`, `k${index}`, ...(index % 2 === 0 ? ["deep"] : [])];
            await store.write({ namespace: "risk", parts }, "1");
            await store.write({ namespace: "risk", parts }, "2");
            expected.push(`${JSON.stringify(parts)}@2`);
          }
        }
        await store.delete({ namespace: "risk", parts: ["g0", "k1"] });
        expected.splice(expected.indexOf('["g0","k1"]@2'), 1);
        await store.write({ namespace: "other", parts: ["g0", "k1"] }, "1");
        for (const limit of [1, 2, 1_000]) {
          const { listed, pages } = await listAll(store, limit);
          expect(listed.sort()).toEqual([...expected].sort());
          if (limit === 1) expect(pages).toBeGreaterThanOrEqual(expected.length);
        }
        const { listed } = await listAll(store, 2, ["g3"]);
        expect(listed.sort()).toEqual(expected.filter((entry) => entry.startsWith('["g3",')).sort());
        const deep = await listAll(store, 1, ["g4", "k2"]);
        expect(deep.listed).toEqual(['["g4","k2","deep"]@2']);
        expect((await listAll(store, 5, ["g4", "k"])).listed).toEqual([]);
      }));

    it("an empty namespace is one empty last page; a cursor not made by list() is refused", () =>
      withStore(async (store) => {
        expect(await store.list("empty", { limit: 3 })).toEqual({ records: [], cursor: undefined });
        await expect(store.list("risk", { cursor: "not-a-cursor" })).rejects.toBeInstanceOf(InvalidOptionError);
        const forged = Buffer.from(JSON.stringify([7, "0", 0, []])).toString("base64url");
        await expect(store.list("risk", { cursor: forged })).rejects.toBeInstanceOf(InvalidOptionError);
      }));

    it("keys carried in a cursor are checked again: a forged one lists nothing of another namespace", () =>
      withStore(async (store) => {
        await store.write({ namespace: "secret", parts: ["a"] }, "1");
        const forged = Buffer.from(
          JSON.stringify([0, "0", 1, [recordRedisKey(store.prefix, { namespace: "secret", parts: ["a"] })]]),
        ).toString("base64url");
        const page = await store.list("risk", { cursor: forged });
        expect(page.records).toEqual([]);
      }));
  });

  describe("writeMany (atomic)", () => {
    it("writes every entry with the next revision of each, duplicates in order", () =>
      withStore(async (store) => {
        await store.write(key("a", "x"), "0");
        await store.delete(key("a", "gone"), { condition: { below: 4 } });
        await store.writeMany([
          { key: key("a", "x"), json: "1" },
          { key: key("a", "y"), json: "2" },
          { key: key("a", "x"), json: "3" },
        ]);
        expect(await store.read(key("a", "x"))).toEqual({ found: true, json: "3", revision: 3 });
        expect(await store.read(key("a", "y"))).toEqual({ found: true, json: "2", revision: 5 });
      }));

    it(
      deployment.name === "cluster"
        ? "refuses entries of several first key parts (hash slots) before sending anything"
        : "spans groups on a single server",
      () =>
        withStore(async (store) => {
          const many = store.writeMany([
            { key: key("a", "x"), json: "1" },
            { key: key("b", "x"), json: "2" },
          ]);
          if (raw.isCluster) {
            const error = await many.catch((reason) => reason);
            expect(error).toBeInstanceOf(InvalidOptionError);
            expect(error.outcome).toBe("not-applied");
            expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 0 });
          } else {
            await many;
            expect(await store.read(key("b", "x"))).toMatchObject({ found: true, revision: 1 });
          }
        }),
    );
  });

  describe("close()", () => {
    it("waits for running operations, then later calls reject with BackendClosedError", async () => {
      const store = new RedisRecordStore({ ...target, prefix: `${runPrefix}${++stores}:` });
      const running = Array.from({ length: 50 }, (_, index) => store.write(key("a", `k${index}`), "1"));
      const closed = store.close();
      const results = await Promise.allSettled(running);
      await closed;
      expect(results.every((result) => result.status === "fulfilled")).toBe(true);
      await expect(store.read(key("a", "k1"))).rejects.toBeInstanceOf(BackendClosedError);
      await expect(store.list("risk")).rejects.toBeInstanceOf(BackendClosedError);
      await store.close();
      const other = new RedisRecordStore({ ...target, prefix: store.prefix });
      try {
        expect((await other.list("risk")).records).toHaveLength(50);
      } finally {
        await other.close();
      }
    });
  });
});
