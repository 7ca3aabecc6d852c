import { makeSignalRow } from "@persist-kit/contract";
import { createPersist, type ISignalRow, listenError, type PersistError, serializeSignalRow } from "@persist-kit/core";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fromUrl,
  PersistMongo,
  type PersistMongoOptions,
  type SignalDocument,
  signalDocumentId,
} from "../src/index.js";
import { closedPort, uniqueDatabaseName } from "./helpers.js";

const databaseName = uniqueDatabaseName("behaviour");
let url = "";
let raw: MongoClient;
let collections = 0;
const opened: PersistMongo[] = [];

function backend(options: PersistMongoOptions = {}): PersistMongo {
  const persist = new PersistMongo(url, {
    databaseName,
    collectionName: `signals_${++collections}`,
    onWarning: () => {},
    ...options,
  });
  opened.push(persist);
  return persist;
}

function rawCollection(persist: PersistMongo) {
  return raw.db(persist.databaseName).collection<SignalDocument>(persist.collectionName);
}

async function listKeys(persist: PersistMongo): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of persist.keys()) keys.push(JSON.stringify([key.strategyName, key.symbol]));
  return keys.sort();
}

async function isFerretDb(): Promise<boolean> {
  const info = await raw.db("admin").command({ buildInfo: 1 });
  return "ferretdbVersion" in info;
}

beforeAll(async () => {
  url = await getMongoUrl();
  raw = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  await raw.connect();
});

afterAll(async () => {
  await Promise.all(opened.map((persist) => persist.close()));
  await raw?.db(databaseName).dropDatabase();
  await raw?.close();
});

describe("names are data, never query operators", () => {
  it('a symbol like {"$gt": ""} reads and deletes only its own row', async () => {
    const persist = backend();
    const operatorLike = '{"$gt": ""}';
    await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1, { note: "plain" }));
    await persist.writeSignalData(operatorLike, "momentum", makeSignalRow(2, { note: "operator-like" }));

    expect(await persist.readSignalData(operatorLike, "momentum")).toEqual(makeSignalRow(2, { note: "operator-like" }));
    const stored = await rawCollection(persist).findOne({ _id: signalDocumentId(operatorLike, "momentum") });
    expect(stored?.symbol).toBe(operatorLike);

    await persist.deleteSignalData(operatorLike, "momentum");
    expect(await persist.readSignalData(operatorLike, "momentum")).toBeNull();
    expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1, { note: "plain" }));
    expect(await rawCollection(persist).countDocuments()).toBe(1);
  });

  it('a strategy name like {"$ne": null} matches nothing but itself', async () => {
    const persist = backend();
    await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
    expect(await persist.readSignalData("BTC/USDT", '{"$ne": null}')).toBeNull();
    await persist.deleteSignalData("BTC/USDT", '{"$ne": null}');
    expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1));
  });

  it('("a:b", "c") and ("a", "b:c") are different documents', async () => {
    const persist = backend();
    await persist.writeSignalData("c", "a:b", makeSignalRow(1));
    await persist.writeSignalData("b:c", "a", makeSignalRow(2));
    const ids = (await rawCollection(persist).find().toArray()).map((document) => document._id).sort();
    expect(ids).toEqual(['["a","b:c"]', '["a:b","c"]']);
    expect(await persist.readSignalData("c", "a:b")).toEqual(makeSignalRow(1));
    expect(await persist.readSignalData("b:c", "a")).toEqual(makeSignalRow(2));
  });
});

describe("the stored document", () => {
  const awkwardRow: ISignalRow = makeSignalRow(1, {
    $set: { priceOpen: 1 },
    "a.b": 1,
    $where: "sleep(1000)",
    "x:y": [{ $gt: "" }, { "c.d": { $ne: null } }],
    nested: { $inc: { n: 1 }, "dotted.key": 0.1 + 0.2, tiny: Number.MIN_VALUE },
  });

  it("fields named with $, . and : round trip, stored as the row's JSON text", async () => {
    const persist = backend();
    await persist.writeSignalData("ETH/USDT:USDT", "$strategy.v2", awkwardRow);
    expect(await persist.readSignalData("ETH/USDT:USDT", "$strategy.v2")).toEqual(awkwardRow);
    const stored = await rawCollection(persist).findOne({ _id: signalDocumentId("ETH/USDT:USDT", "$strategy.v2") });
    expect(stored?.signal).toBe(serializeSignalRow(awkwardRow));
  });

  it("holds _id, strategyName, symbol, signal and updatedAt, with an index on strategyName and no other unique one", async () => {
    const persist = backend();
    const before = Date.now();
    await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
    const stored = await rawCollection(persist).findOne({});
    expect(Object.keys(stored ?? {}).sort()).toEqual(["_id", "signal", "strategyName", "symbol", "updatedAt"]);
    expect(stored).toMatchObject({ _id: '["momentum","BTC/USDT"]', strategyName: "momentum", symbol: "BTC/USDT" });
    expect(stored?.updatedAt).toBeInstanceOf(Date);
    expect(stored?.updatedAt.getTime()).toBeGreaterThanOrEqual(before);

    const indexes = await rawCollection(persist).listIndexes().toArray();
    expect(indexes.map((index) => index.name).sort()).toEqual(["_id_", "strategyName_1"]);
    expect(indexes.find((index) => index.name === "strategyName_1")?.key).toEqual({ strategyName: 1 });
    expect(indexes.some((index) => index.unique === true)).toBe(false);
  });

  it("a document whose signal is not JSON text is validated: an invalid one is a CorruptDataError, left in place", async () => {
    const persist = backend();
    const collection = rawCollection(persist);
    const id = signalDocumentId("BTC/USDT", "momentum");
    await collection.insertOne({
      _id: id,
      strategyName: "momentum",
      symbol: "BTC/USDT",
      updatedAt: new Date(),
    } as never);
    const error = await persist.readSignalData("BTC/USDT", "momentum").catch((caught: PersistError) => caught);
    expect(error).toMatchObject({ name: "CorruptDataError", strategyName: "momentum", symbol: "BTC/USDT" });
    expect((error as Error).message).toContain(id);
    expect(await collection.countDocuments({ _id: id })).toBe(1);

    await collection.updateOne({ _id: id }, { $set: { signal: makeSignalRow(3) as never } });
    expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(3));
  });
});

describe("upserts that race on a new key", () => {
  it("six clients writing the same fresh keys at once all succeed (the duplicate-key loser retries)", async () => {
    const collectionName = `signals_${++collections}`;
    const writers = Array.from({ length: 6 }, () => backend({ collectionName }));
    await writers[0]?.ping();
    for (let round = 0; round < 20; round++) {
      const symbol = `RACE${round}/USDT`;
      await Promise.all(
        writers.flatMap((writer, index) =>
          [0, 1, 2].map((repeat) => writer.writeSignalData(symbol, "race", makeSignalRow(index * 3 + repeat))),
        ),
      );
      const row = await writers[0]?.readSignalData(symbol, "race");
      expect(row?.id).toMatch(/^signal-\d+$/);
    }
    expect(await rawCollection(writers[0] as PersistMongo).countDocuments()).toBe(20);
  });
});

describe("TTL", () => {
  it("a row written with ttlMs carries expiresAt; an overwrite without ttlMs removes it", async () => {
    const expiring = backend({ ttlMs: 60_000 });
    const lasting = backend({ collectionName: expiring.collectionName });
    const id = signalDocumentId("BTC/USDT", "momentum");
    const before = Date.now();
    await expiring.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
    const stored = await rawCollection(expiring).findOne({ _id: id });
    expect(stored?.expiresAt?.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    await lasting.writeSignalData("BTC/USDT", "momentum", makeSignalRow(2));
    expect(await rawCollection(expiring).findOne({ _id: id })).not.toHaveProperty("expiresAt");
  });

  it("a TTL index cleans up where the server has one; otherwise onWarning says so once", async () => {
    const warnings: PersistError[] = [];
    const persist = backend({ ttlMs: 60_000, onWarning: (warning) => warnings.push(warning) });
    await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
    await persist.readSignalData("BTC/USDT", "momentum");
    await persist.deleteSignalData("BTC/USDT", "momentum");
    const ttlIndex = (await rawCollection(persist).listIndexes().toArray()).find(
      (index) => index.name === "expiresAt_ttl",
    );
    if (await isFerretDb()) {
      // FerretDB 1.x answers createIndex with expireAfterSeconds with error 238 (NotImplemented).
      expect(ttlIndex).toBeUndefined();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).toMatch(/no TTL indexes.*deleteExpired\(\)/);
      expect(warnings[0]?.cause).toMatchObject({ code: 238 });
    } else {
      expect(ttlIndex).toMatchObject({ key: { expiresAt: 1 }, expireAfterSeconds: 0 });
      expect(warnings).toEqual([]);
    }
  });

  it("by default the missing TTL index reaches listenError subscribers", async () => {
    const heard: PersistError[] = [];
    const stop = listenError((error) => heard.push(error));
    const emitWarning = process.emitWarning;
    process.emitWarning = () => {};
    try {
      const persist = backend({ ttlMs: 60_000, onWarning: undefined });
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      await persist.deleteSignalData("BTC/USDT", "momentum");
    } finally {
      process.emitWarning = emitWarning;
      stop();
    }
    if (await isFerretDb())
      expect(heard.map((error) => error.message)).toEqual([expect.stringMatching(/no TTL indexes/)]);
    else expect(heard).toEqual([]);
  });

  it("expired rows are hidden from keys() at once, and deleteExpired() removes only them", async () => {
    const shortLived = backend({ ttlMs: 300 });
    const lasting = backend({ collectionName: shortLived.collectionName });
    await shortLived.writeSignalData("BTC/USDT", "short", makeSignalRow(1));
    await lasting.writeSignalData("BTC/USDT", "lasting", makeSignalRow(2));
    expect(await listKeys(lasting)).toEqual(['["lasting","BTC/USDT"]', '["short","BTC/USDT"]']);
    // Past the 300 ms expiry, far below MongoDB's 60 s TTL monitor period.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await listKeys(lasting)).toEqual(['["lasting","BTC/USDT"]']);
    expect(await lasting.deleteExpired()).toBe(1);
    expect(await rawCollection(lasting).countDocuments()).toBe(1);
    expect(await lasting.readSignalData("BTC/USDT", "lasting")).toEqual(makeSignalRow(2));
  });
});

describe("writeMany", () => {
  it("writes every entry with one ordered bulk write", async () => {
    const persist = backend();
    await persist.writeSignalData("BTC/USDT", "a", makeSignalRow(0));
    await persist.writeMany([
      { symbol: "BTC/USDT", strategyName: "a", row: makeSignalRow(1) },
      { symbol: "ETH/USDT", strategyName: "a", row: makeSignalRow(2) },
      { symbol: '{"$gt": ""}', strategyName: "b.c", row: makeSignalRow(3) },
    ]);
    expect(await persist.readSignalData("BTC/USDT", "a")).toEqual(makeSignalRow(1));
    expect(await persist.readSignalData("ETH/USDT", "a")).toEqual(makeSignalRow(2));
    expect(await persist.readSignalData('{"$gt": ""}', "b.c")).toEqual(makeSignalRow(3));
    await persist.writeMany([]);
  });

  it("an invalid entry anywhere in the batch means nothing is written", async () => {
    const persist = backend();
    const batch = [
      { symbol: "BTC/USDT", strategyName: "a", row: makeSignalRow(1) },
      { symbol: "ETH/USDT", strategyName: "a", row: makeSignalRow(2, { priceOpen: Number.NaN }) },
    ];
    await expect(persist.writeMany(batch)).rejects.toMatchObject({ name: "InvalidSignalError", symbol: "ETH/USDT" });
    await expect(persist.writeMany([{ symbol: "", strategyName: "a", row: makeSignalRow(1) }])).rejects.toMatchObject({
      name: "InvalidKeyError",
    });
    expect(await listKeys(persist)).toEqual([]);
  });
});

describe("clients and close()", () => {
  it("close() lets operations already started finish, then refuses new ones", async () => {
    const persist = backend();
    await persist.readSignalData("BTC/USDT", "momentum"); // connected, collection ready
    const writes = Array.from({ length: 20 }, (_, index) =>
      persist.writeSignalData(`SYM${index}/USDT`, "closing", makeSignalRow(index)),
    );
    await persist.close();
    await Promise.all(writes);
    expect(await rawCollection(persist).countDocuments({ strategyName: "closing" })).toBe(20);
    await expect(persist.readSignalData("BTC/USDT", "momentum")).rejects.toThrow(/the backend is closed/);
  });

  it("a client passed in is never closed; the backend's own client is, and later calls reject", async () => {
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
    try {
      const borrowed = new PersistMongo(client, { databaseName, collectionName: `signals_${++collections}` });
      await borrowed.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      await borrowed.close();
      await client.db("admin").command({ ping: 1 });
      await expect(borrowed.readSignalData("BTC/USDT", "momentum")).rejects.toThrow(/closed/);
    } finally {
      await client.close();
    }
    const owning = backend();
    await owning.ping();
    await owning.close();
    await owning.close();
    await expect(owning.readSignalData("BTC/USDT", "momentum")).rejects.toMatchObject({
      name: "PersistError",
      message: expect.stringMatching(/the backend is closed/),
    });
  });

  it("the database comes from the option, else the URL path, else persist_kit; the collection defaults to signals", async () => {
    const hosts = "mongodb://user:secret@127.0.0.1:1,127.0.0.2:2";
    expect(new PersistMongo(`${hosts}/trading?replicaSet=rs`).databaseName).toBe("trading");
    expect(new PersistMongo(`${hosts}/live%20desk`).databaseName).toBe("live desk");
    expect(new PersistMongo("mongodb://127.0.0.1:1/?w=1").databaseName).toBe("persist_kit");
    expect(new PersistMongo("mongodb://127.0.0.1:1").databaseName).toBe("persist_kit");
    expect(new PersistMongo(`${hosts}/trading`, { databaseName: "other" }).databaseName).toBe("other");
    expect(new PersistMongo(new MongoClient("mongodb://127.0.0.1:1/trading")).databaseName).toBe("persist_kit");
    expect(fromUrl("mongodb://127.0.0.1:1/trading").collectionName).toBe("signals");
  });

  it("createPersist builds it from a mongodb:// URL", async () => {
    const persist = await createPersist(url, { importModule: (name) => import(name) });
    // Loaded from the built package, so it is that copy's class: compare by name.
    expect(persist.constructor.name).toBe("PersistMongo");
    expect(persist).toMatchObject({ name: "mongo", databaseName: "persist_kit", collectionName: "signals" });
    await persist.close?.();
  });

  it("a URL the driver refuses is a PersistError at construction, with the password redacted", () => {
    expect(() => new PersistMongo("mongodb://user:secret@127.0.0.1:notaport/")).toThrow(
      expect.objectContaining({
        name: "PersistError",
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
      expect(error).toMatchObject({
        name: "BackendUnavailableError",
        backend: "mongo",
        operation: "read",
        strategyName: "momentum",
        symbol: "BTC/USDT",
      });
      expect((error as Error).message).toMatch(/^\[mongo\] read "momentum"\/"BTC\/USDT": /);
      expect((error as Error).message).not.toContain("secret");
      expect((error as Error).cause).toMatchObject({ name: "MongoServerSelectionError" });
      await expect(persist.ping()).rejects.toMatchObject({ name: "BackendUnavailableError", operation: "ping" });
      await expect(persist.keys()[Symbol.asyncIterator]().next()).rejects.toMatchObject({
        name: "BackendUnavailableError",
        operation: "keys",
      });
    } finally {
      await persist.close();
    }
  });
});
