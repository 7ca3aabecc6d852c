// Promises of this backend beyond the shared contract, on the shared single server.
import { createServer, type Socket } from "node:net";
import { makeSignalRow } from "@persist-kit/contract";
import {
  BackendUnavailableError,
  CorruptDataError,
  createPersist,
  InvalidOptionError,
  InvalidSignalError,
  PersistError,
  type SignalKey,
} from "@persist-kit/core";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromUrl, PersistRedis, signalRedisKey } from "../src/index.js";
import { closedPort, deleteKeys, type PrivateRedis, startPrivateRedis, uniquePrefix } from "./helpers.js";

const runPrefix = uniquePrefix("redis");
let url = "";
let raw: Redis;
let namespaces = 0;

const nextPrefix = () => `${runPrefix}${++namespaces}:`;

async function withPersist(body: (persist: PersistRedis) => Promise<void>, options = {}): Promise<void> {
  const persist = new PersistRedis({ url, prefix: nextPrefix(), ...options });
  try {
    await body(persist);
  } finally {
    await persist.close();
  }
}

async function listKeys(persist: { keys(): AsyncIterable<SignalKey> }): Promise<SignalKey[]> {
  const keys: SignalKey[] = [];
  for await (const key of persist.keys()) keys.push(key);
  return keys.sort((x, y) => (x.strategyName + x.symbol).localeCompare(y.strategyName + y.symbol));
}

beforeAll(async () => {
  url = await getRedisUrl();
  raw = new Redis(url);
});

afterAll(async () => {
  await deleteKeys(raw, runPrefix);
  await raw.quit();
});

describe("connections are made on first use", () => {
  it("constructing a backend opens no connection; the first operation does", async () => {
    const sockets: Socket[] = [];
    const listener = createServer((socket) => {
      sockets.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const { port } = listener.address() as { port: number };
    const persist = new PersistRedis({ url: `redis://127.0.0.1:${port}`, timeoutMs: 300 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sockets).toHaveLength(0);
      await expect(persist.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      await persist.close();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

describe("stored data that is not a signal is corrupt, never missing", () => {
  it("an empty string gives CorruptDataError and stays in place", () =>
    withPersist(async (persist) => {
      const key = signalRedisKey(persist.prefix, { strategyName: "corrupt", symbol: "BTC/USDT" });
      await raw.set(key, "");
      await expect(persist.readSignalData("BTC/USDT", "corrupt")).rejects.toBeInstanceOf(CorruptDataError);
      expect(await raw.get(key)).toBe("");
    }));

  it("bytes that are not UTF-8 give CorruptDataError, not replacement characters", () =>
    withPersist(async (persist) => {
      const key = signalRedisKey(persist.prefix, { strategyName: "corrupt", symbol: "BTC/USDT" });
      const json = Buffer.from(JSON.stringify(makeSignalRow(1, { note: "é" })));
      const invalid = Buffer.from(json.toString("latin1"), "latin1");
      invalid[invalid.indexOf(0xc3)] = 0xff;
      await raw.set(key, invalid);
      const error = await persist.readSignalData("BTC/USDT", "corrupt").catch((reason) => reason);
      expect(error).toBeInstanceOf(CorruptDataError);
      expect(error.message).toMatch(/not UTF-8/);
    }));

  it("a key of another type (a hash) gives CorruptDataError naming the key, and stays", () =>
    withPersist(async (persist) => {
      const key = signalRedisKey(persist.prefix, { strategyName: "corrupt", symbol: "BTC/USDT" });
      await raw.hset(key, "id", "x");
      const error = await persist.readSignalData("BTC/USDT", "corrupt").catch((reason) => reason);
      expect(error).toBeInstanceOf(CorruptDataError);
      expect(error.message).toContain('"corrupt"/"BTC/USDT"');
      expect(await raw.type(key)).toBe("hash");
    }));
});

describe("a client passed in", () => {
  it("is used, connected on first use when lazy, and never closed", async () => {
    const client = new Redis(url, { lazyConnect: true });
    const persist = new PersistRedis({ client, prefix: nextPrefix() });
    await persist.writeSignalData("BTC/USDT", "borrowed", makeSignalRow(1));
    expect(await persist.readSignalData("BTC/USDT", "borrowed")).toEqual(makeSignalRow(1));
    await persist.close();
    expect(client.status).toBe("ready");
    expect(await client.ping()).toBe("PONG");
    await client.quit();
    const again = new PersistRedis({ client, prefix: nextPrefix() });
    await expect(again.readSignalData("BTC/USDT", "borrowed")).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it("cannot be combined with url or clusterNodes", () => {
    const client = new Redis(url, { lazyConnect: true });
    expect(() => new PersistRedis({ client, url })).toThrow(InvalidOptionError);
    expect(() => new PersistRedis({ client, clusterNodes: [{ host: "127.0.0.1", port: 1 }] })).toThrow(
      InvalidOptionError,
    );
    client.disconnect();
  });
});

describe("writeMany", () => {
  it("writes entries of several strategies together on a single server", () =>
    withPersist(async (persist) => {
      await persist.writeMany([
        { symbol: "BTC/USDT", strategyName: "one", row: makeSignalRow(1) },
        { symbol: "ETH/USDT", strategyName: "two", row: makeSignalRow(2) },
      ]);
      expect(await persist.readSignalData("BTC/USDT", "one")).toEqual(makeSignalRow(1));
      expect(await persist.readSignalData("ETH/USDT", "two")).toEqual(makeSignalRow(2));
    }));

  it("an invalid row refuses the whole batch before any I/O", () =>
    withPersist(async (persist) => {
      const batch = [
        { symbol: "BTC/USDT", strategyName: "one", row: makeSignalRow(1) },
        { symbol: "ETH/USDT", strategyName: "one", row: makeSignalRow(2, { priceOpen: Number.NaN }) },
      ];
      await expect(persist.writeMany(batch)).rejects.toBeInstanceOf(InvalidSignalError);
      expect(await listKeys(persist)).toEqual([]);
    }));

  describe("on a server where one key of the batch is refused", () => {
    let server: PrivateRedis;
    beforeAll(async () => {
      // This user may write only strategy "ok"
      // (and the floor key of strategy "ok"): the script call naming another strategy's keys fails.
      server = await startPrivateRedis([
        "appendonly yes",
        "user limited on nopass ~acl:signal:{ok}:* ~acl:floor:signal:{ok} +@all",
      ]);
    });
    afterAll(() => server.destroy());

    it("nothing of the batch is written (one script call over every key)", async () => {
      const persist = new PersistRedis({ url: `redis://limited@127.0.0.1:${server.port}`, prefix: "acl:" });
      try {
        await persist.writeSignalData("BTC/USDT", "ok", makeSignalRow(1));
        const error = await persist
          .writeMany([
            { symbol: "BTC/USDT", strategyName: "ok", row: makeSignalRow(2) },
            { symbol: "BTC/USDT", strategyName: "refused", row: makeSignalRow(3) },
          ])
          .catch((reason) => reason);
        expect(error).toBeInstanceOf(PersistError);
        expect(error).not.toBeInstanceOf(BackendUnavailableError);
        expect(error.message).toMatch(/NOPERM/);
        expect(await persist.readSignalData("BTC/USDT", "ok")).toEqual(makeSignalRow(1));
      } finally {
        await persist.close();
      }
    });
  });
});

describe("keys()", () => {
  it("skips keys under the prefix that are not in this layout, floor keys included", () =>
    withPersist(async (persist) => {
      await persist.writeSignalData("BTC/USDT", "mine", makeSignalRow(1));
      await persist.writeSignalData("ETH/USDT", "mine", makeSignalRow(2));
      await persist.deleteSignalData("ETH/USDT", "mine");
      expect(await raw.get(`${persist.prefix}floor:signal:{mine}`)).toBe("2");
      for (const foreign of [
        "other",
        "signal:{a%41}:b",
        "signal:x:y",
        "signal:{a}:b\u0001",
        "signal:{}:b",
        "signalx:{a}:b",
      ]) {
        await raw.set(`${persist.prefix}${foreign}`, "{}");
      }
      expect(await listKeys(persist)).toEqual([{ strategyName: "mine", symbol: "BTC/USDT" }]);
    }));

  it("a key of this layout holding something else is a CorruptDataError naming it, never skipped", () =>
    withPersist(async (persist) => {
      await persist.writeSignalData("BTC/USDT", "mine", makeSignalRow(1));
      await raw.set(`${persist.prefix}signal:{x}:y`, "{}");
      const error = await listKeys(persist).catch((reason) => reason);
      expect(error).toBeInstanceOf(CorruptDataError);
      expect(error.message).toContain(`${persist.prefix}signal:{x}:y`);
      expect(await raw.get(`${persist.prefix}signal:{x}:y`)).toBe("{}");
    }));

  it("a record of the signal namespace with three key parts is a CorruptDataError, not a signal", () =>
    withPersist(async (persist) => {
      await persist.records.write({ namespace: "signal", parts: ["x", "y", "z"] }, "{}");
      await expect(listKeys(persist)).rejects.toBeInstanceOf(CorruptDataError);
    }));

  it("lists many keys across SCAN pages, each once", () =>
    withPersist(async (persist) => {
      const expected: SignalKey[] = [];
      for (let index = 0; index < 1_200; index++) {
        expected.push({ strategyName: `s${index % 7}`, symbol: `SYM${index}` });
      }
      await Promise.all(expected.map((key) => persist.writeSignalData(key.symbol, key.strategyName, makeSignalRow(1))));
      const listed = await listKeys(persist);
      expect(listed).toHaveLength(expected.length);
      expect(new Set(listed.map((key) => `${key.strategyName}/${key.symbol}`)).size).toBe(expected.length);
    }));

  it("with ttlMs, expired keys are not listed", () =>
    withPersist(
      async (persist) => {
        await persist.writeSignalData("BTC/USDT", "ttl", makeSignalRow(1));
        expect(
          await raw.pttl(signalRedisKey(persist.prefix, { strategyName: "ttl", symbol: "BTC/USDT" })),
        ).toBeGreaterThan(0);
        await new Promise((resolve) => setTimeout(resolve, 400));
        expect(await listKeys(persist)).toEqual([]);
      },
      { ttlMs: 200 },
    ));
});

describe("the batch writer (backtests)", () => {
  it("queues writes, reads see them, flush() stores them, only the last change per key", () =>
    withPersist(async (persist) => {
      const batch = persist.createBatchWriter({ maxBatchSize: 100 });
      for (let sequence = 1; sequence <= 5_000; sequence++) {
        await batch.writeSignalData(`SYM${sequence % 250}`, "backtest", makeSignalRow(sequence));
      }
      await batch.deleteSignalData("SYM0", "backtest");
      expect(await batch.readSignalData("SYM0", "backtest")).toBeNull();
      expect(await batch.readSignalData("SYM1", "backtest")).toEqual(makeSignalRow(4_751));
      await batch.flush();
      expect(await persist.readSignalData("SYM1", "backtest")).toEqual(makeSignalRow(4_751));
      expect(await persist.readSignalData("SYM249", "backtest")).toEqual(makeSignalRow(4_999));
      expect(await persist.readSignalData("SYM0", "backtest")).toBeNull();
      expect(await listKeys(persist)).toHaveLength(249);
      await batch.close();
      await expect(batch.writeSignalData("SYM1", "backtest", makeSignalRow(1))).rejects.toThrow(/closed/);
    }));

  it("refuses invalid rows at once", () =>
    withPersist(async (persist) => {
      const batch = persist.createBatchWriter();
      await expect(
        batch.writeSignalData("BTC/USDT", "backtest", makeSignalRow(1, { priceOpen: 0 })),
      ).rejects.toBeInstanceOf(InvalidSignalError);
      await batch.flush();
      expect(await listKeys(persist)).toEqual([]);
    }));

  it("flush() rejects with BackendUnavailableError when the server is down", async () => {
    const persist = new PersistRedis({ url: `redis://127.0.0.1:${await closedPort()}`, timeoutMs: 300 });
    try {
      const batch = persist.createBatchWriter();
      await batch.writeSignalData("BTC/USDT", "backtest", makeSignalRow(1));
      await expect(batch.flush()).rejects.toBeInstanceOf(BackendUnavailableError);
      // The failure is reported once; nothing is queued any more.
      await batch.flush();
    } finally {
      await persist.close();
    }
  });
});

describe("construction and URLs", () => {
  it("createPersist(redis://...) builds a PersistRedis through fromUrl", async () => {
    const persist = await createPersist(url, { importModule: () => import("../src/index.js") });
    try {
      expect(persist).toBeInstanceOf(PersistRedis);
      expect((persist as PersistRedis).prefix).toBe("persist-kit:");
      await persist.ping?.();
    } finally {
      await persist.close?.();
    }
    expect(() => fromUrl("mongodb://x")).toThrow(PersistError);
  });

  it("refuses a prefix with braces and bad numbers", () => {
    expect(() => new PersistRedis({ prefix: "a{b}:" })).toThrow(InvalidOptionError);
    expect(() => new PersistRedis({ prefix: "a{b}:" })).toThrow(/must not contain/);
    expect(() => new PersistRedis({ maxReconnectDelayMs: 0.5 })).toThrow(
      /maxReconnectDelayMs must be a whole number >= 1/,
    );
    expect(() => new PersistRedis({}).createBatchWriter({ maxBatchSize: 0 })).toThrow(InvalidOptionError);
    expect(() => new PersistRedis({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new PersistRedis({ waitTimeoutMs: 0 })).toThrow(/waitTimeoutMs/);
    expect(() => new PersistRedis({ waitForReplicas: -1 })).toThrow(/waitForReplicas/);
    expect(() => new PersistRedis({ ttlMs: 1.5 })).toThrow(/ttlMs/);
  });

  it("keeps the password of the URL out of error messages", async () => {
    const persist = new PersistRedis({ url: `redis://user:s3cret@127.0.0.1:${await closedPort()}`, timeoutMs: 300 });
    try {
      const error = await persist.readSignalData("BTC/USDT", "secret").catch((reason) => reason);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect(error.message).not.toContain("s3cret");
    } finally {
      await persist.close();
    }
  });

  it("operations after close() reject; closing twice is harmless", async () => {
    const persist = new PersistRedis({ url, prefix: nextPrefix() });
    await persist.ping();
    await persist.close();
    await persist.close();
    await expect(persist.readSignalData("BTC/USDT", "closed")).rejects.toThrow(/closed/);
  });
});
