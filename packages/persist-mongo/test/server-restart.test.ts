import { makeSignalRow } from "@persist-kit/contract";
import type { PersistError } from "@persist-kit/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MongoRecordStore, PersistMongo } from "../src/index.js";
import { PrivateFerretDb } from "./private-ferretdb.js";

const SERVER_SELECTION_TIMEOUT_MS = 1_500;
const SOCKET_TIMEOUT_MS = 2_000;
const TIMEOUTS = {
  serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
  connectTimeoutMS: 1_000,
  socketTimeoutMS: SOCKET_TIMEOUT_MS,
};
// Slack for the event loop and a busy machine, far below "hangs".
const slack = (ms: number) => ms * 1.5 + 1_000;

let server: PrivateFerretDb;

beforeAll(async () => {
  server = await PrivateFerretDb.start();
});

afterAll(async () => {
  await server?.destroy();
});

async function rejectsUnavailableWithin(what: string, operation: () => Promise<unknown>, limitMs: number) {
  const started = performance.now();
  const error = await operation().then(
    () => undefined,
    (caught: PersistError) => caught,
  );
  const elapsed = performance.now() - started;
  expect(error, what).toMatchObject({ name: "BackendUnavailableError" });
  expect(elapsed, `${what} took ${Math.round(elapsed)} ms`).toBeLessThan(limitMs);
  return error;
}

async function firstKey(persist: PersistMongo) {
  for await (const key of persist.keys()) return key;
  return undefined;
}

describe("revisions across a server kill -9 and restart", () => {
  it("every acknowledged revision survives, deleted keys included, and the next change goes on from it", async () => {
    const store = new MongoRecordStore(server.url, { collectionName: "revisions", ...TIMEOUTS });
    const live = { namespace: "test", parts: ["live"] };
    const deleted = { namespace: "test", parts: ["deleted"] };
    try {
      for (let write = 0; write < 5; write++) await store.write(live, JSON.stringify(write));
      await store.write(deleted, '"x"', { condition: { below: 40 } });
      await store.delete(deleted);
      await server.kill();
      await server.restart();
      expect(await store.read(live)).toEqual({ found: true, json: "4", revision: 5 });
      expect(await store.read(deleted)).toEqual({ found: false, revision: 41 });
      expect(await store.write(live, '"after"', { condition: { revision: 5 } })).toEqual({
        applied: true,
        revision: 6,
      });
      expect(await store.write(deleted, '"again"', { condition: { revision: 41 } })).toEqual({
        applied: true,
        revision: 42,
      });
      expect(await store.write(deleted, '"stale"', { condition: { revision: 41 } })).toEqual({
        applied: false,
        revision: 42,
      });
    } finally {
      await store.close();
    }
  });
});

describe("a server that goes away and comes back", () => {
  it("with the server killed every operation rejects in time with BackendUnavailableError; after a restart the same instances work", async () => {
    const persist = new PersistMongo(server.url, { collectionName: "restart", ...TIMEOUTS });
    try {
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      await server.kill();
      // Made while the server is down: its first operation (index creation) fails and is retried later.
      const late = new PersistMongo(server.url, { collectionName: "restart-late", ...TIMEOUTS });

      const limit = slack(SERVER_SELECTION_TIMEOUT_MS);
      const row = makeSignalRow(2);
      const entries = [{ symbol: "ETH/USDT", strategyName: "momentum", row }];
      const error = await rejectsUnavailableWithin("read", () => persist.readSignalData("BTC/USDT", "momentum"), limit);
      expect(error).toMatchObject({ operation: "read", strategyName: "momentum", symbol: "BTC/USDT" });
      await rejectsUnavailableWithin("write", () => persist.writeSignalData("BTC/USDT", "momentum", row), limit);
      await rejectsUnavailableWithin("delete", () => persist.deleteSignalData("BTC/USDT", "momentum"), limit);
      await rejectsUnavailableWithin("writeMany", async () => persist.writeMany?.(entries), limit);
      await rejectsUnavailableWithin("keys", () => firstKey(persist), limit);
      await rejectsUnavailableWithin("ping", () => persist.ping(), limit);
      await rejectsUnavailableWithin(
        "first write of a new backend",
        () => late.writeSignalData("A/B", "s", row),
        limit,
      );

      await server.restart();
      // Acknowledged before the crash, so it survived it.
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1));
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(3));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(3));
      await persist.deleteSignalData("BTC/USDT", "momentum");
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toBeNull();
      await late.writeSignalData("A/B", "s", row);
      expect(await late.readSignalData("A/B", "s")).toEqual(row);
      await late.close();
    } finally {
      await persist.close();
    }
  });

  it("a server that stops answering mid-operation fails it within socketTimeoutMS plus one server selection", async () => {
    const persist = new PersistMongo(server.url, { collectionName: "paused", ...TIMEOUTS });
    try {
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      server.pause();
      try {
        // The driver retries a failed read or write once, after a new server selection.
        const limit = slack(SOCKET_TIMEOUT_MS + SERVER_SELECTION_TIMEOUT_MS);
        await rejectsUnavailableWithin("read", () => persist.readSignalData("BTC/USDT", "momentum"), limit);
        await rejectsUnavailableWithin(
          "write",
          () => persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(2)),
          limit,
        );
        const entries = [{ symbol: "BTC/USDT", strategyName: "momentum", row: makeSignalRow(3) }];
        await rejectsUnavailableWithin("writeMany", async () => persist.writeMany?.(entries), limit);
      } finally {
        server.resume();
      }
      // The writes may or may not have reached the server before it froze: any of the rows is fine.
      const row = await persist.readSignalData("BTC/USDT", "momentum");
      expect([makeSignalRow(1), makeSignalRow(2), makeSignalRow(3)]).toContainEqual(row);
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(4));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(4));
    } finally {
      await persist.close();
    }
  });
});
