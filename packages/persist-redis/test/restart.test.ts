// Contract item 5 under the durable settings, and item 8 with a real outage: a private
// redis-server (appendonly yes, appendfsync always) is killed with SIGKILL and started again on
// the same data, while one PersistRedis instance keeps being used.

import { makeSignalRow, makeTrialRow } from "@persist-kit/contract";
import { BackendUnavailableError, type ISignalRow, type RecordKey } from "@persist-kit/core";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistRedis, RedisRecordStore } from "../src/index.js";
import { type PrivateRedis, startPrivateRedis } from "./helpers.js";

const DURABLE_CONFIG = ["appendonly yes", "appendfsync always", 'save ""'];
const TIMEOUT_MS = 1_000;

async function rejectionWithin(operation: Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = performance.now();
  const error = await operation.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return { error, elapsedMs: performance.now() - started };
}

describe("a redis-server killed with SIGKILL and restarted", () => {
  let server: PrivateRedis;
  let persist: PersistRedis;

  beforeAll(async () => {
    server = await startPrivateRedis(DURABLE_CONFIG);
    persist = new PersistRedis({ url: server.url, timeoutMs: TIMEOUT_MS, maxReconnectDelayMs: 200 });
  });

  afterAll(async () => {
    await persist?.close();
    await server?.destroy();
  });

  it("keeps every acknowledged write, including those acknowledged just before the kill", async () => {
    const written = new Map<string, ISignalRow>();
    for (let index = 0; index < 200; index++) {
      const row = makeSignalRow(index);
      await persist.writeSignalData(`SYM${index}/USDT`, "restart", row);
      written.set(`SYM${index}/USDT`, row);
    }
    // A writer keeps going while the server is killed: whatever it saw acknowledged must be kept.
    let acknowledged = 0;
    const writer = (async () => {
      for (let sequence = 1; ; sequence++) {
        try {
          await persist.writeSignalData("LOOP/USDT", "restart", makeTrialRow("loop", sequence));
        } catch {
          return;
        }
        acknowledged = sequence;
      }
    })();
    while (acknowledged < 50) await new Promise((resolve) => setTimeout(resolve, 5));
    await server.stop("SIGKILL");
    await writer;
    await server.start();

    for (const [symbol, row] of written) expect(await persist.readSignalData(symbol, "restart")).toEqual(row);
    const last = await persist.readSignalData("LOOP/USDT", "restart");
    expect(last).not.toBeNull();
    expect([acknowledged, acknowledged + 1]).toContain(last?.sequence);
    expect(last).toEqual(makeTrialRow("loop", Number(last?.sequence)));
  });

  it("rejects with BackendUnavailableError within the timeout while the server is down, and works again after", async () => {
    await persist.writeSignalData("BTC/USDT", "outage", makeSignalRow(1));
    await server.stop("SIGKILL");
    const operations = [
      () => persist.writeSignalData("BTC/USDT", "outage", makeSignalRow(2)),
      () => persist.readSignalData("BTC/USDT", "outage"),
      () => persist.deleteSignalData("BTC/USDT", "outage"),
      () => persist.ping(),
    ];
    for (const operation of operations) {
      const { error, elapsedMs } = await rejectionWithin(operation());
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(elapsedMs).toBeLessThan(TIMEOUT_MS + 500);
    }
    await server.start();
    // The same instance: it reconnected by itself in the background.
    expect(await persist.readSignalData("BTC/USDT", "outage")).toEqual(makeSignalRow(1));
    await persist.writeSignalData("BTC/USDT", "outage", makeSignalRow(3));
    expect(await persist.readSignalData("BTC/USDT", "outage")).toEqual(makeSignalRow(3));
  });

  it("rejects within the timeout when the server stops answering (SIGSTOP), and works again after SIGCONT", async () => {
    await persist.writeSignalData("ETH/USDT", "frozen", makeSignalRow(1));
    server.pause();
    try {
      const { error, elapsedMs } = await rejectionWithin(persist.readSignalData("ETH/USDT", "frozen"));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(String((error as Error).message)).toMatch(/did not answer within 1000 ms/);
      expect(elapsedMs).toBeLessThan(TIMEOUT_MS + 500);
    } finally {
      server.resume();
    }
    expect(await persist.readSignalData("ETH/USDT", "frozen")).toEqual(makeSignalRow(1));
  });

  it("a fresh client after the restart reads the same data from the append-only file", async () => {
    await persist.writeSignalData("SOL/USDT", "fresh", makeSignalRow(9));
    await server.stop("SIGKILL");
    await server.start();
    const other = new PersistRedis({ url: server.url, timeoutMs: TIMEOUT_MS });
    try {
      expect(await other.readSignalData("SOL/USDT", "fresh")).toEqual(makeSignalRow(9));
    } finally {
      await other.close();
    }
    const raw = new Redis(server.url);
    try {
      expect(await raw.config("GET", "appendfsync")).toEqual(["appendfsync", "always"]);
    } finally {
      raw.disconnect();
    }
  });
});

describe("revisions after a redis-server kill -9 and restart (appendfsync always)", () => {
  let server: PrivateRedis;
  let store: RedisRecordStore;
  const deleted: RecordKey = { namespace: "risk", parts: ["deleted", "BTC/USDT"] };
  const raised: RecordKey = { namespace: "risk", parts: ["raised", "BTC/USDT"] };
  const looping: RecordKey = { namespace: "risk", parts: ["loop", "BTC/USDT"] };

  beforeAll(async () => {
    server = await startPrivateRedis(DURABLE_CONFIG);
    store = new RedisRecordStore({ url: server.url, timeoutMs: TIMEOUT_MS, maxReconnectDelayMs: 200 });
  });

  afterAll(async () => {
    await store?.close();
    await server?.destroy();
  });

  it("never go back: deleted keys keep their floor, written keys at least their last acknowledged revision", async () => {
    for (let index = 0; index < 3; index++) await store.write(deleted, `${index}`);
    expect(await store.delete(deleted)).toEqual({ applied: true, revision: 4 });
    expect(await store.write(raised, "1", { condition: { below: 7 } })).toEqual({ applied: true, revision: 7 });
    let acknowledged = 0;
    const writer = (async () => {
      for (;;) {
        try {
          acknowledged = (await store.write(looping, `${acknowledged + 1}`)).revision;
        } catch {
          return;
        }
      }
    })();
    while (acknowledged < 50) await new Promise((resolve) => setTimeout(resolve, 5));
    await server.stop("SIGKILL");
    await writer;
    await server.start();

    const fresh = new RedisRecordStore({ url: server.url, timeoutMs: TIMEOUT_MS });
    try {
      for (const reader of [store, fresh]) {
        expect(await reader.read(deleted)).toEqual({ found: false, revision: 4 });
        expect(await reader.read({ ...deleted, parts: ["deleted", "other"] })).toEqual({ found: false, revision: 4 });
        expect(await reader.read(raised)).toEqual({ found: true, json: "1", revision: 7 });
        // The one write in flight at the kill may have landed too.
        const loop = await reader.read(looping);
        expect([acknowledged, acknowledged + 1]).toContain(loop.revision);
      }
      expect(await fresh.write(deleted, JSON.stringify("again"))).toEqual({ applied: true, revision: 5 });
      expect(await store.write(deleted, JSON.stringify("stale"), { condition: { revision: 4 } })).toEqual({
        applied: false,
        revision: 5,
      });
    } finally {
      await fresh.close();
    }
  });
});
