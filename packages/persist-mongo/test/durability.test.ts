import { listenWarning, type PersistWarning } from "@persist-kit/core";
import { getMongoUrl } from "@persist-kit/tools-test-servers";
import { type CommandStartedEvent, MongoClient, type WriteConcernSettings } from "mongodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MongoRecordStore, type MongoRecordStoreOptions, PersistMongo } from "../src/index.js";
import { closedPort, uniqueDatabaseName } from "./helpers.js";

const databaseName = uniqueDatabaseName("durability");
let url = "";
let raw: MongoClient;
let collections = 0;
const opened: { close(): Promise<void> }[] = [];
const stops: (() => void)[] = [];

function recordStore(options: MongoRecordStoreOptions = {}): MongoRecordStore {
  const store = new MongoRecordStore(url, { databaseName, collectionName: `records_${++collections}`, ...options });
  opened.push(store);
  return store;
}

/** The durability warnings reported while `build` runs. */
function warningsOf<T>(build: () => T): { result: T; warnings: PersistWarning[] } {
  const warnings: PersistWarning[] = [];
  const stop = listenWarning((warning) => warnings.push(warning));
  try {
    return { result: build(), warnings };
  } finally {
    stop();
  }
}

const key = { namespace: "test", parts: ["a"] };

beforeAll(async () => {
  url = await getMongoUrl();
  raw = await new MongoClient(url, { serverSelectionTimeoutMS: 10_000 }).connect();
});

afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

afterAll(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await raw?.db(databaseName).dropDatabase();
  await raw?.close();
});

describe("an unacknowledged write concern is refused", () => {
  it("w: 0 is an InvalidOptionError at construction, nothing sent: an unacknowledged insert cannot tell whether it won its _id", () => {
    for (const w of [0, "0"]) {
      expect(() => new MongoRecordStore(url, { writeConcern: { w: w as 0 } })).toThrow(
        expect.objectContaining({
          name: "InvalidOptionError",
          backend: "mongo",
          operation: "create",
          outcome: "not-applied",
        }),
      );
      expect(() => new PersistMongo(url, { writeConcern: { w: w as 0, journal: true } })).toThrow(
        expect.objectContaining({ name: "InvalidOptionError", message: expect.stringContaining("w: 0") }),
      );
    }
  });

  it("a write concern of the wrong shape is an InvalidOptionError at construction", () => {
    for (const writeConcern of [{ w: -1 }, { w: 1.5 }, { w: "" }, { journal: "yes" }, { j: 1 }, "majority"]) {
      expect(() => new MongoRecordStore(url, { writeConcern: writeConcern as never })).toThrow(
        expect.objectContaining({ name: "InvalidOptionError", operation: "create" }),
      );
    }
  });

  it("every insert and delete is sent with the store's write concern: a URL's or a client's w: 0 never applies", async () => {
    const client = new MongoClient(`${url}${url.includes("?") ? "&" : "?"}w=0`, { monitorCommands: true });
    const sent: CommandStartedEvent[] = [];
    client.on("commandStarted", (event) => sent.push(event));
    try {
      const store = new MongoRecordStore(client, {
        databaseName,
        collectionName: `records_${++collections}`,
        writeConcern: { wtimeoutMS: 10_000 },
      });
      await store.write(key, '"x"');
      await store.write(key, '"y"');
      await store.delete(key);
      await store.close();
      const changes = sent.filter((event) => ["insert", "delete", "findAndModify"].includes(event.commandName));
      expect(changes.length).toBeGreaterThanOrEqual(3);
      for (const event of changes) {
        expect(event.command.writeConcern).toEqual({ w: "majority", j: true, wtimeout: 10_000 });
      }
    } finally {
      await client.close();
    }
  });
});

describe("settings that can lose acknowledged writes are reported, or refused with requireDurable", () => {
  it("the default { w: majority, j: true } reports nothing", () => {
    const { warnings } = warningsOf(() => recordStore());
    expect(warnings).toEqual([]);
  });

  it("j: false and w below majority each become a durability warning through listenWarning; the store works", async () => {
    for (const [writeConcern, words] of [
      [{ w: "majority", journal: false }, ["j: false"]],
      [{ w: 1, j: true }, ["w: 1"]],
      [{ w: 2, journal: false }, ["w: 2", "j: false"]],
    ] as const) {
      const { result: store, warnings } = warningsOf(() => recordStore({ writeConcern }));
      expect(warnings).toEqual(
        words.map((word) =>
          expect.objectContaining({ backend: "mongo", kind: "durability", message: expect.stringContaining(word) }),
        ),
      );
      // w: 2 needs a second member: a single MongoDB would wait for it (FerretDB ignores w).
      if (writeConcern.w !== 2) expect(await store.write(key, '"x"')).toEqual({ applied: true, revision: 1 });
    }
  });

  it("requireDurable makes them a NotDurableError at construction, not applied; the default settings pass", async () => {
    const weak: WriteConcernSettings[] = [{ journal: false }, { w: 1 }, { w: "tagged" as never }];
    for (const writeConcern of weak) {
      const { warnings } = warningsOf(() => {
        expect(() => new PersistMongo(url, { writeConcern, requireDurable: true })).toThrow(
          expect.objectContaining({
            name: "NotDurableError",
            backend: "mongo",
            operation: "create",
            outcome: "not-applied",
          }),
        );
      });
      expect(warnings).toEqual([]);
    }
    const store = recordStore({ requireDurable: true });
    expect(await store.write(key, '"x"')).toEqual({ applied: true, revision: 1 });
  });
});

describe("describeDurability()", () => {
  it("reports the server, the write concern, crashSafe and warnings: FerretDB ignores write concern, so it is not crash-safe", async () => {
    const store = recordStore();
    const report = await store.describeDurability();
    expect(report).toMatchObject({
      servers: [{ product: "ferretdb", role: "standalone", replicaSet: undefined, address: expect.any(String) }],
      writeConcern: { w: "majority", journal: true },
      crashSafe: false,
    });
    expect(report.warnings).toEqual([expect.stringContaining("FerretDB ignores the write concern")]);
  });

  it("names the weak settings too, and PersistMongo has it", async () => {
    const { result: persist } = warningsOf(
      () =>
        new PersistMongo(url, {
          databaseName,
          collectionName: `signals_${++collections}`,
          writeConcern: { w: 1, journal: false },
        }),
    );
    opened.push(persist);
    const report = await persist.describeDurability();
    expect(report.crashSafe).toBe(false);
    expect(report.writeConcern).toEqual({ w: 1, journal: false });
    expect(report.warnings).toEqual([
      expect.stringContaining("w: 1"),
      expect.stringContaining("j: false"),
      expect.stringContaining("FerretDB"),
    ]);
  });

  it("an unreachable server is a BackendUnavailableError of operation describe, nothing changed", async () => {
    const store = new MongoRecordStore(`mongodb://127.0.0.1:${await closedPort()}/`, { serverSelectionTimeoutMS: 300 });
    await expect(store.describeDurability()).rejects.toMatchObject({
      name: "BackendUnavailableError",
      operation: "describe",
      outcome: "not-applied",
    });
    await store.close();
  });
});
