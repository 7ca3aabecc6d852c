import { makeSignalRow } from "@persist-kit/contract";
import {
  createPersist,
  InvalidOptionError,
  type ISignalRow,
  type PersistError,
  type RecordKey,
  serializeSignalRow,
  signalRecordKey,
} from "@persist-kit/core";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fromUrl,
  keyDocumentRange,
  MongoRecordStore,
  type MongoRecordStoreOptions,
  PersistMongo,
  type PersistMongoOptions,
  type RecordDocument,
  recordDocumentId,
} from "../src/index.js";
import { closedPort, uniqueDatabaseName } from "./helpers.js";

const databaseName = uniqueDatabaseName("behaviour");
let url = "";
let raw: MongoClient;
let collections = 0;
const opened: { close(): Promise<void> }[] = [];

function backend(options: PersistMongoOptions = {}): PersistMongo {
  const persist = new PersistMongo(url, { databaseName, collectionName: `signals_${++collections}`, ...options });
  opened.push(persist);
  return persist;
}

function recordStore(options: MongoRecordStoreOptions = {}): MongoRecordStore {
  const store = new MongoRecordStore(url, { databaseName, collectionName: `records_${++collections}`, ...options });
  opened.push(store);
  return store;
}

function rawCollection(store: { databaseName: string; collectionName: string }) {
  return raw.db(store.databaseName).collection<RecordDocument>(store.collectionName);
}

async function documentsOf(store: { databaseName: string; collectionName: string }, key: RecordKey) {
  return rawCollection(store)
    .find({ _id: keyDocumentRange(key) })
    .sort({ _id: 1 })
    .toArray();
}

async function allKeys(
  store: MongoRecordStore,
  namespace: string,
  options: { prefix?: string[]; limit?: number } = {},
) {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(namespace, { ...options, cursor });
    expect(page.records.length).toBeLessThanOrEqual(options.limit ?? 1000);
    for (const record of page.records) keys.push(JSON.stringify(record.parts));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

const key = (...parts: string[]): RecordKey => ({ namespace: "test", parts });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  url = await getMongoUrl();
  raw = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  await raw.connect();
});

afterAll(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await raw?.db(databaseName).dropDatabase();
  await raw?.close();
});

describe("revisions", () => {
  it("a never-written key reads absent at 0; every unconditional write raises the revision by one", async () => {
    const store = recordStore();
    expect(await store.read(key("a"))).toEqual({ found: false, revision: 0 });
    expect(await store.write(key("a"), '"one"')).toEqual({ applied: true, revision: 1 });
    expect(await store.write(key("a"), '"two"')).toEqual({ applied: true, revision: 2 });
    expect(await store.read(key("a"))).toEqual({ found: true, json: '"two"', revision: 2 });
  });

  it("{ revision: R } applies only at exactly R and stores R + 1", async () => {
    const store = recordStore();
    expect(await store.write(key("a"), '"x"', { condition: { revision: 1 } })).toEqual({ applied: false, revision: 0 });
    expect(await store.write(key("a"), '"y"', { condition: { revision: 0 } })).toEqual({ applied: true, revision: 1 });
    expect(await store.write(key("a"), '"z"', { condition: { revision: 0 } })).toEqual({ applied: false, revision: 1 });
    expect(await store.read(key("a"))).toEqual({ found: true, json: '"y"', revision: 1 });
  });

  it("{ below: R } applies only below R and stores R", async () => {
    const store = recordStore();
    expect(await store.write(key("a"), '"x"', { condition: { below: 7 } })).toEqual({ applied: true, revision: 7 });
    expect(await store.write(key("a"), '"y"', { condition: { below: 7 } })).toEqual({ applied: false, revision: 7 });
    expect(await store.write(key("a"), '"z"')).toEqual({ applied: true, revision: 8 });
    expect(await store.read(key("a"))).toEqual({ found: true, json: '"z"', revision: 8 });
  });

  it("a delete of a live key raises the revision, and the key reads absent at it; later writes go on from there", async () => {
    const store = recordStore();
    await store.write(key("a"), '"x"');
    expect(await store.delete(key("a"))).toEqual({ applied: true, revision: 2 });
    expect(await store.read(key("a"))).toEqual({ found: false, revision: 2 });
    expect(await store.delete(key("a"))).toEqual({ applied: true, revision: 2 });
    expect(await store.write(key("a"), '"y"', { condition: { revision: 2 } })).toEqual({ applied: true, revision: 3 });
    expect(await store.delete(key("a"), { condition: { revision: 1 } })).toEqual({ applied: false, revision: 3 });
    expect(await store.delete(key("a"), { condition: { below: 10 } })).toEqual({ applied: true, revision: 10 });
    expect(await store.read(key("a"))).toEqual({ found: false, revision: 10 });
  });

  it("conditional deletes of an absent key follow the condition and raise its revision; an unconditional one changes nothing", async () => {
    const store = recordStore();
    expect(await store.delete(key("a"))).toEqual({ applied: true, revision: 0 });
    expect(await documentsOf(store, key("a"))).toEqual([]);
    expect(await store.delete(key("a"), { condition: { revision: 1 } })).toEqual({ applied: false, revision: 0 });
    expect(await store.delete(key("a"), { condition: { revision: 0 } })).toEqual({ applied: true, revision: 1 });
    expect(await store.delete(key("a"), { condition: { below: 5 } })).toEqual({ applied: true, revision: 5 });
    expect(await store.read(key("a"))).toEqual({ found: false, revision: 5 });
  });

  it("an expired record reads absent at once, keeping its revision; the next write goes on from it", async () => {
    const store = recordStore();
    await store.write(key("a"), '"x"');
    await store.write(key("a"), '"y"', { ttlMs: 200 });
    await sleep(400);
    expect(await store.read(key("a"))).toEqual({ found: false, revision: 2 });
    expect(await store.delete(key("a"))).toEqual({ applied: true, revision: 2 });
    expect(await store.write(key("a"), '"z"', { condition: { revision: 2 } })).toEqual({ applied: true, revision: 3 });
  });

  it("eight stores writing one key at once: every write applies with its own revision, the last read sees them all", async () => {
    const collectionName = `records_${++collections}`;
    const stores = Array.from({ length: 8 }, () => recordStore({ collectionName }));
    const changes = await Promise.all(
      stores.flatMap((store, index) =>
        Array.from({ length: 25 }, (_, write) => store.write(key("hot"), JSON.stringify({ index, write }))),
      ),
    );
    expect(changes.every((change) => change.applied)).toBe(true);
    expect(new Set(changes.map((change) => change.revision)).size).toBe(200);
    expect((await stores[0]?.read(key("hot")))?.revision).toBe(200);
  });
});

/**
 * A store whose next read of a key is held back after it answered, until `release()`: the writer
 * decides on what it read while other writers move the key on, as a paused process would.
 */
function pausedStore(collectionName: string) {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  let armed = false;
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let answered = () => {};
  const readAnswered = new Promise<void>((resolve) => (answered = resolve));
  const realDb = client.db.bind(client);
  client.db = ((name?: string) => {
    const database = realDb(name);
    const realCollection = database.collection.bind(database);
    database.collection = ((collection: string, options?: object) => {
      const handle = realCollection(collection, options);
      const realFind = handle.find.bind(handle);
      handle.find = ((...args: Parameters<typeof realFind>) => {
        const cursor = realFind(...args);
        const toArray = cursor.toArray.bind(cursor);
        cursor.toArray = async () => {
          const found = await toArray();
          if (armed) {
            armed = false;
            answered();
            await released;
          }
          return found;
        };
        return cursor;
      }) as typeof handle.find;
      return handle;
    }) as typeof database.collection;
    return database;
  }) as typeof client.db;
  const store = new MongoRecordStore(client, { databaseName, collectionName });
  opened.push({
    async close() {
      await store.close();
      await client.close();
    },
  });
  return { store, arm: () => (armed = true), readAnswered, release };
}

describe("a writer paused between its read and its insert", () => {
  for (const [name, condition, expected] of [
    ["an unconditional write goes on from the newest revision", undefined, { applied: true, revision: 4 }],
    ["{ revision: R } reports not applied", { revision: 1 }, { applied: false, revision: 3 }],
  ] as const) {
    it(`its insert lands below newer changes, is removed, never seen: ${name}`, async () => {
      const collectionName = `records_${++collections}`;
      const paused = pausedStore(collectionName);
      const other = recordStore({ collectionName });
      await other.write(key("a"), '"1"');
      paused.arm();
      const late = paused.store.write(key("a"), '"late"', condition === undefined ? {} : { condition });
      await paused.readAnswered;
      // Moves the key to 3 and deletes the document at _id #1 that the paused writer will insert again.
      await other.write(key("a"), '"2"');
      await other.write(key("a"), '"3"');
      expect((await documentsOf(other, key("a"))).map((document) => document.revision)).toEqual([3]);
      paused.release();
      expect(await late).toEqual(expected);
      const after = await other.read(key("a"));
      expect(after).toEqual(
        expected.applied ? { found: true, json: '"late"', revision: 4 } : { found: true, json: '"3"', revision: 3 },
      );
      expect((await documentsOf(other, key("a"))).map((document) => document.revision)).toEqual([after.revision]);
    });
  }
});

describe("the stored documents", () => {
  it("one v1 document per change, _id = key prefix # base revision; superseded ones are deleted by the next change", async () => {
    const store = recordStore();
    const signal = signalRecordKey("BTC/USDT", "momentum");
    await store.write(signal, '{"a":1}');
    await store.write(signal, '{"a":2}', { condition: { below: 9 } });
    const documents = await documentsOf(store, signal);
    expect(documents).toEqual([
      {
        _id: '["signal","momentum","BTC/USDT"]#0000000000000001',
        v: 1,
        namespace: "signal",
        parts: ["momentum", "BTC/USDT"],
        base: 1,
        revision: 9,
        change: expect.stringMatching(/^[0-9a-f]{24}$/),
        ancestors: [{ change: expect.stringMatching(/^[0-9a-f]{24}$/), revision: 1 }],
        value: '{"a":2}',
      },
    ]);
    await store.delete(signal);
    expect(await documentsOf(store, signal)).toEqual([
      expect.objectContaining({ _id: recordDocumentId(signal, 9), revision: 10, deleted: true }),
    ]);
    const indexes = await rawCollection(store).listIndexes().toArray();
    expect(indexes.map((index) => index.name)).toEqual(["_id_"]);
  });

  it("a TTL write stores expiresAt by the server's clock; a write without TTL stores none", async () => {
    const store = recordStore();
    const { localTime } = await raw.db("admin").command({ hello: 1 });
    await store.write(key("a"), '"x"', { ttlMs: 60_000 });
    const [expiring] = await documentsOf(store, key("a"));
    const expected = (localTime as Date).getTime() + 60_000;
    expect(Math.abs((expiring?.expiresAt?.getTime() ?? 0) - expected)).toBeLessThan(5_000);
    await store.write(key("a"), '"y"');
    const [lasting] = await documentsOf(store, key("a"));
    expect(lasting).not.toHaveProperty("expiresAt");
  });

  it("names and values are data: operator-like names stay apart, values come back as the very text written", async () => {
    const persist = backend();
    const awkward: ISignalRow = makeSignalRow(1, { $set: { priceOpen: 1 }, "a.b": 1, nested: { "c.d": 0.1 + 0.2 } });
    await persist.writeSignalData('{"$gt": ""}', "$strategy.v2", awkward);
    await persist.writeSignalData("c", "a:b", makeSignalRow(2));
    await persist.writeSignalData("b:c", "a", makeSignalRow(3));
    expect(await persist.readSignalData('{"$gt": ""}', "$strategy.v2")).toEqual(awkward);
    expect(await persist.readSignalData("c", "a:b")).toEqual(makeSignalRow(2));
    expect(await persist.readSignalData("b:c", "a")).toEqual(makeSignalRow(3));
    const [stored] = await documentsOf(persist, signalRecordKey('{"$gt": ""}', "$strategy.v2"));
    expect(stored?.value).toBe(serializeSignalRow(awkward));
    expect(await rawCollection(persist).countDocuments()).toBe(3);
  });

  it("a document that is not a v1 record is a CorruptDataError naming its _id, left in place, for reads, writes and listings", async () => {
    const store = recordStore();
    await store.write(key("a"), '"x"');
    const id = recordDocumentId(key("a"), 1);
    await rawCollection(store).insertOne({ _id: id, v: 2, namespace: "test", parts: ["a"] } as never);
    for (const operation of [
      () => store.read(key("a")),
      () => store.write(key("a"), '"y"'),
      () => store.list("test"),
    ]) {
      const error = await operation().catch((caught: PersistError) => caught);
      expect(error).toMatchObject({ name: "CorruptDataError" });
      expect((error as Error).message).toContain(id);
    }
    expect(await rawCollection(store).countDocuments({ _id: id })).toBe(1);
  });
});

describe("documents written by another program", () => {
  it("list and keys() take each key from its document's _id and check it: a key that is no valid key is a CorruptDataError naming the _id", async () => {
    for (const parts of [
      ["", "BTC/USDT"],
      ["momentum", "BTC\nUSDT"],
    ]) {
      const persist = backend();
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      const foreign = { namespace: "signal", parts };
      const id = recordDocumentId(foreign, 0);
      const value = serializeSignalRow(makeSignalRow(2));
      await rawCollection(persist).insertOne({
        _id: id,
        v: 1,
        ...foreign,
        base: 0,
        revision: 1,
        change: "c",
        ancestors: [],
        value,
      });
      const listed = await persist.records.list("signal").catch((caught: PersistError) => caught);
      expect(listed).toMatchObject({ name: "CorruptDataError", message: expect.stringContaining(id) });
      const keys = async () => {
        for await (const _ of persist.keys());
      };
      await expect(keys()).rejects.toMatchObject({ name: "CorruptDataError", message: expect.stringContaining(id) });
      expect(await rawCollection(persist).countDocuments({ _id: id })).toBe(1);
    }
  });

  it("deleteExpired takes each key from its document's _id: a document whose fields name another key is a CorruptDataError, and that key stays", async () => {
    const store = recordStore();
    await store.write(key("victim"), '"keep"');
    for (const id of ["foreign-1", recordDocumentId(key("other"), 0)]) {
      const foreign = { _id: id, v: 1, namespace: "test", parts: ["victim"], base: 0, revision: 1 };
      await rawCollection(store).insertOne({
        ...foreign,
        change: "c",
        ancestors: [],
        value: '"x"',
        expiresAt: new Date(0),
      });
      await expect(store.deleteExpired()).rejects.toMatchObject({
        name: "CorruptDataError",
        message: expect.stringContaining(id),
      });
      expect(await store.read(key("victim"))).toEqual({ found: true, json: '"keep"', revision: 1 });
      await rawCollection(store).deleteOne({ _id: id });
    }
  });
});

describe("list", () => {
  it("every live key exactly once with limit 1, 2 and 1000; deleted and expired keys are skipped; prefix filters", async () => {
    const store = recordStore();
    const live = [["a"], ["a", "b"], ["a", "b", "c"], ["a", "c"], ["a:b"], ["b"], ["é"], ['a"]']];
    for (const parts of live) await store.write(key(...parts), '"v"');
    for (const parts of live.slice(0, 3)) await store.write(key(...parts), '"again"');
    await store.write(key("gone"), '"v"');
    await store.delete(key("gone"));
    await store.write(key("a", "expired"), '"v"', { ttlMs: 100 });
    await store.write({ namespace: "other", parts: ["a"] }, '"v"');
    await sleep(300);
    const expected = live.map((parts) => JSON.stringify(parts)).sort();
    for (const limit of [1, 2, 1000]) expect((await allKeys(store, "test", { limit })).sort()).toEqual(expected);
    expect((await allKeys(store, "test", { prefix: ["a"], limit: 1 })).sort()).toEqual(
      ['["a"]', '["a","b"]', '["a","b","c"]', '["a","c"]'].sort(),
    );
    expect((await allKeys(store, "test", { prefix: ["a", "b"] })).sort()).toEqual(
      ['["a","b"]', '["a","b","c"]'].sort(),
    );
    expect(await allKeys(store, "other")).toEqual(['["a"]']);
    const page = await store.list("test", { prefix: ["a"], limit: 1000 });
    expect(page.cursor).toBeUndefined();
    expect(page.records.find((record) => record.parts.length === 1)).toEqual({ parts: ["a"], revision: 2 });
  });

  it("keys() of PersistMongo lists the signals, by strategy too", async () => {
    const persist = backend();
    await persist.writeSignalData("BTC/USDT", "a", makeSignalRow(1));
    await persist.writeSignalData("ETH/USDT", "b", makeSignalRow(2));
    const keys = [];
    for await (const found of persist.keys()) keys.push(found);
    expect(keys).toHaveLength(2);
    const only = [];
    for await (const found of persist.keys({ strategyName: "b" })) only.push(found);
    expect(only).toEqual([{ strategyName: "b", symbol: "ETH/USDT" }]);
  });
});

describe("writeMany (ordered)", () => {
  it("writes every entry in order, each raising its key's revision", async () => {
    const store = recordStore();
    await store.write(key("a"), '"0"');
    await store.writeMany([
      { key: key("a"), json: '"1"' },
      { key: key("b"), json: '"2"' },
      { key: key("a"), json: '"3"' },
    ]);
    expect(await store.read(key("a"))).toEqual({ found: true, json: '"3"', revision: 3 });
    expect(await store.read(key("b"))).toEqual({ found: true, json: '"2"', revision: 1 });
  });

  it("a refused entry stops the batch; the error names what was written and what was never sent", async () => {
    const store = recordStore();
    const tooLarge = JSON.stringify("x".repeat(17 * 1024 * 1024));
    const error = await store
      .writeMany([
        { key: key("a"), json: '"1"' },
        { key: key("b"), json: tooLarge },
        { key: key("c"), json: '"3"' },
      ])
      .catch((caught: PersistError) => caught);
    expect(error).toMatchObject({ operation: "writeMany", outcome: "unknown" });
    expect((error as Error).message).toMatch(
      /entries 0 to 0 were written, entry 1 may have been written; entries 2 to 2 were not sent/,
    );
    expect((await store.read(key("a"))).found).toBe(true);
    expect((await store.read(key("c"))).found).toBe(false);
  });

  it("when the first entry fails after it was sent, the error says it may have been written, never that no entry was", async () => {
    const store = recordStore();
    const tooLarge = JSON.stringify("x".repeat(17 * 1024 * 1024));
    const error = await store
      .writeMany([
        { key: key("a"), json: tooLarge },
        { key: key("b"), json: '"2"' },
      ])
      .catch((caught: PersistError) => caught);
    expect(error).toMatchObject({ operation: "writeMany", outcome: "unknown" });
    expect((error as Error).message).toMatch(/: entry 0 may have been written; entries 1 to 1 were not sent/);
    expect((error as Error).message).not.toMatch(/no entry was written/);
    expect((await store.read(key("b"))).found).toBe(false);
  });

  it("when the first entry fails before anything is sent, the error says no entry was written", async () => {
    const store = new MongoRecordStore(`mongodb://127.0.0.1:${await closedPort()}/`, { serverSelectionTimeoutMS: 300 });
    const error = await store.writeMany([{ key: key("a"), json: '"1"' }]).catch((caught: PersistError) => caught);
    expect(error).toMatchObject({ name: "BackendUnavailableError", outcome: "not-applied" });
    expect((error as Error).message).toMatch(/no entry was written, entry 0 was not written/);
    await store.close();
  });

  it("PersistMongo.writeMany validates every row first: an invalid one means nothing is written", async () => {
    const persist = backend();
    const batch = [
      { symbol: "BTC/USDT", strategyName: "a", row: makeSignalRow(1) },
      { symbol: "ETH/USDT", strategyName: "a", row: makeSignalRow(2, { priceOpen: Number.NaN }) },
    ];
    await expect(persist.writeMany?.(batch)).rejects.toMatchObject({ name: "InvalidSignalError", symbol: "ETH/USDT" });
    expect(await rawCollection(persist).countDocuments()).toBe(0);
  });
});

describe("deleteExpired", () => {
  it("turns expired records into deletions, keeping their revisions, and leaves the rest", async () => {
    const store = recordStore();
    await store.write(key("short"), '"x"', { ttlMs: 100 });
    await store.write(key("lasting"), '"y"');
    await sleep(300);
    expect(await store.deleteExpired()).toBe(1);
    expect(await store.read(key("short"))).toEqual({ found: false, revision: 2 });
    expect(await store.read(key("lasting"))).toEqual({ found: true, json: '"y"', revision: 1 });
    expect(await documentsOf(store, key("short"))).toEqual([expect.objectContaining({ deleted: true, revision: 2 })]);
  });
});

describe("clients and close()", () => {
  it("close() lets operations already started finish, then refuses new ones with BackendClosedError", async () => {
    const persist = backend();
    await persist.ping();
    const writes = Array.from({ length: 20 }, (_, index) =>
      persist.writeSignalData(`SYM${index}/USDT`, "closing", makeSignalRow(index)),
    );
    await persist.close();
    await Promise.all(writes);
    expect(await rawCollection(persist).countDocuments()).toBe(20);
    await expect(persist.readSignalData("BTC/USDT", "momentum")).rejects.toMatchObject({
      name: "BackendClosedError",
      outcome: "not-applied",
    });
  });

  it("a client passed in is never closed; the store's own client is", async () => {
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
    try {
      const borrowed = new PersistMongo(client, { databaseName, collectionName: `signals_${++collections}` });
      await borrowed.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      await borrowed.close();
      await client.db("admin").command({ ping: 1 });
    } finally {
      await client.close();
    }
    const owning = backend();
    await owning.ping();
    await owning.close();
    await owning.close();
  });

  it("the database comes from the option, else the URL path, else persist_kit; the collection defaults to signals", () => {
    const hosts = "mongodb://user:secret@127.0.0.1:1,127.0.0.2:2";
    expect(new PersistMongo(`${hosts}/trading?replicaSet=rs`).databaseName).toBe("trading");
    expect(new PersistMongo(`${hosts}/live%20desk`).databaseName).toBe("live desk");
    expect(new PersistMongo("mongodb://127.0.0.1:1/?w=1").databaseName).toBe("persist_kit");
    expect(new PersistMongo(`${hosts}/trading`, { databaseName: "other" }).databaseName).toBe("other");
    expect(new PersistMongo(new MongoClient("mongodb://127.0.0.1:1/trading")).databaseName).toBe("persist_kit");
    expect(fromUrl("mongodb://127.0.0.1:1/trading").collectionName).toBe("signals");
    expect(fromUrl("mongodb://127.0.0.1:1/").records).toBeInstanceOf(MongoRecordStore);
  });

  it("timeouts must be whole numbers: anything else is an InvalidOptionError at construction", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, "5000"]) {
      expect(() => new PersistMongo("mongodb://127.0.0.1:1/", { socketTimeoutMS: bad as number })).toThrow(
        expect.objectContaining({ name: "InvalidOptionError", operation: "create" }),
      );
    }
  });

  it("createPersist builds it from a mongodb:// URL", async () => {
    const persist = await createPersist(url, { importModule: (name) => import(name) });
    expect(persist.constructor.name).toBe("PersistMongo");
    expect(persist).toMatchObject({ name: "mongo", databaseName: "persist_kit", collectionName: "signals" });
    await persist.close?.();
  });

  it("an unset URL (undefined), an empty string or another scheme is an InvalidOptionError at construction", () => {
    for (const bad of [undefined, "", "redis://127.0.0.1:6379", null, 42]) {
      expect(() => new PersistMongo(bad as unknown as string), String(bad)).toThrow(InvalidOptionError);
    }
  });

  it("a URL the driver refuses is an InvalidOptionError at construction, with the password redacted", () => {
    expect(() => new PersistMongo("mongodb://user:secret@127.0.0.1:notaport/")).toThrow(
      expect.objectContaining({
        name: "InvalidOptionError",
        operation: "create",
        message: expect.not.stringContaining("secret"),
      }),
    );
  });
});

describe("errors", () => {
  it("an unreachable server is a BackendUnavailableError naming backend, operation and key, without the password", async () => {
    const port = await closedPort();
    const persist = new PersistMongo(`mongodb://trader:secret@127.0.0.1:${port}/?authSource=admin`, {
      serverSelectionTimeoutMS: 500,
    });
    try {
      const error = await persist.readSignalData("BTC/USDT", "momentum").catch((caught: PersistError) => caught);
      expect(error).toMatchObject({ name: "BackendUnavailableError", backend: "mongo", operation: "read" });
      expect(error).toMatchObject({ strategyName: "momentum", symbol: "BTC/USDT", outcome: "not-applied" });
      expect((error as Error).message).toMatch(/^\[mongo\] read "momentum"\/"BTC\/USDT": /);
      expect((error as Error).message).not.toContain("secret");
      expect((error as Error).cause).toMatchObject({ name: "MongoServerSelectionError" });
      // Nothing was sent: the read that decides the write failed first.
      await expect(persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1))).rejects.toMatchObject({
        name: "BackendUnavailableError",
        outcome: "not-applied",
        cause: expect.objectContaining({ name: "MongoServerSelectionError" }),
      });
      await expect(persist.ping()).rejects.toMatchObject({ name: "BackendUnavailableError", operation: "ping" });
      await expect(persist.keys()[Symbol.asyncIterator]().next()).rejects.toMatchObject({
        name: "BackendUnavailableError",
      });
    } finally {
      await persist.close();
    }
  });
});
