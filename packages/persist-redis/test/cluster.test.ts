// Promises that only a Redis Cluster can show, on the shared three-master cluster.

import { makeSignalRow } from "@persist-kit/contract";
import { BackendUnavailableError, PersistError, type SignalKey } from "@persist-kit/core";
import { getRedisClusterNodes, type RedisClusterNode } from "@persist-kit/tools-test-servers";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistRedis, signalRedisKey } from "../src/index.js";
import { deleteKeys, uniquePrefix } from "./helpers.js";

const runPrefix = uniquePrefix("cluster");
let clusterNodes: RedisClusterNode[] = [];
let raw: Cluster;
let namespaces = 0;

async function withPersist(body: (persist: PersistRedis) => Promise<void>): Promise<void> {
  const persist = new PersistRedis({ clusterNodes, prefix: `${runPrefix}${++namespaces}:` });
  try {
    await body(persist);
  } finally {
    await persist.close();
  }
}

async function listKeys(persist: PersistRedis): Promise<SignalKey[]> {
  const keys: SignalKey[] = [];
  for await (const key of persist.keys()) keys.push(key);
  return keys;
}

async function slotOf(key: string): Promise<number> {
  return Number(await raw.cluster("KEYSLOT", key));
}

beforeAll(async () => {
  clusterNodes = await getRedisClusterNodes();
  raw = new Cluster(clusterNodes);
  await raw.ping();
});

afterAll(async () => {
  await deleteKeys(raw, runPrefix);
  await raw.quit();
});

describe("hash slots", () => {
  it("all keys of one strategy share one slot, whatever the symbol", async () => {
    for (const strategy of ["momentum", "a:b", "{tag}", "x}y{", "*"]) {
      const slots = new Set<number>();
      for (const symbol of ["BTC/USDT", "ETH/USDT:USDT", "{other}", "}", "a{b}c"]) {
        slots.add(await slotOf(signalRedisKey("p:", { strategyName: strategy, symbol })));
      }
      expect(slots.size).toBe(1);
    }
  });

  it("keys() lists keys spread over every master", () =>
    withPersist(async (persist) => {
      const written: string[] = [];
      for (let index = 0; index < 40; index++) {
        await persist.writeSignalData("BTC/USDT", `strategy-${index}`, makeSignalRow(index));
        written.push(`strategy-${index}`);
      }
      const masters = new Set<string>();
      for (const master of raw.nodes("master")) {
        const [, keys] = await master.scan("0", "MATCH", `${persist.prefix}*`, "COUNT", 1_000);
        if (keys.length > 0) masters.add(`${master.options.host}:${master.options.port}`);
      }
      expect(masters.size).toBe(raw.nodes("master").length);
      const listed = (await listKeys(persist)).map((key) => key.strategyName).sort();
      expect(listed).toEqual(written.sort());
    }));
});

describe("writeMany on a cluster", () => {
  it("writes one strategy's entries together (one slot, one script call)", () =>
    withPersist(async (persist) => {
      await persist.writeMany([
        { symbol: "BTC/USDT", strategyName: "grid", row: makeSignalRow(1) },
        { symbol: "ETH/USDT", strategyName: "grid", row: makeSignalRow(2) },
        { symbol: "SOL/USDT", strategyName: "grid", row: makeSignalRow(3) },
      ]);
      expect(await persist.readSignalData("SOL/USDT", "grid")).toEqual(makeSignalRow(3));
    }));

  it("refuses entries of several strategies before writing anything", () =>
    withPersist(async (persist) => {
      const error = await persist
        .writeMany([
          { symbol: "BTC/USDT", strategyName: "one", row: makeSignalRow(1) },
          { symbol: "BTC/USDT", strategyName: "two", row: makeSignalRow(2) },
        ])
        .catch((reason) => reason);
      expect(error).toBeInstanceOf(PersistError);
      expect(error.message).toMatch(/atomic within one hash slot only/);
      expect(await listKeys(persist)).toEqual([]);
    }));
});

describe("the batch writer on a cluster", () => {
  it("sends one pipeline per strategy and stores everything", () =>
    withPersist(async (persist) => {
      const batch = persist.createBatchWriter({ maxBatchSize: 50 });
      for (let index = 0; index < 600; index++) {
        await batch.writeSignalData(`SYM${index % 20}`, `strategy-${index % 15}`, makeSignalRow(index));
      }
      await batch.flush();
      expect(await listKeys(persist)).toHaveLength(60);
      expect(await persist.readSignalData("SYM19", "strategy-14")).toEqual(makeSignalRow(599));
    }));
});

describe("describeDurability() on a cluster", () => {
  it("reports every master", () =>
    withPersist(async (persist) => {
      const report = await persist.describeDurability();
      expect(report.servers.map((server) => server.address).sort()).toEqual(
        clusterNodes.map((node) => `${node.host}:${node.port}`).sort(),
      );
      for (const server of report.servers) {
        expect(server).toMatchObject({ role: "master", appendOnly: true, appendFsync: "always" });
      }
      expect(report.crashSafe).toBe(true);
      await persist.ping();
    }));
});

describe("a cluster client passed in", () => {
  it("is used and never closed", async () => {
    const client = new Cluster(clusterNodes, { lazyConnect: true });
    const persist = new PersistRedis({ client, prefix: `${runPrefix}${++namespaces}:` });
    await persist.writeSignalData("BTC/USDT", "borrowed", makeSignalRow(1));
    expect(await persist.readSignalData("BTC/USDT", "borrowed")).toEqual(makeSignalRow(1));
    await expect(
      persist.writeMany([
        { symbol: "BTC/USDT", strategyName: "a", row: makeSignalRow(1) },
        { symbol: "BTC/USDT", strategyName: "b", row: makeSignalRow(1) },
      ]),
    ).rejects.toThrow(/atomic within one hash slot only/);
    await persist.close();
    expect(client.status).toBe("ready");
    expect(await client.ping()).toBe("PONG");
    await client.quit();
    await expect(persist.readSignalData("BTC/USDT", "borrowed")).rejects.toThrow(/closed/);
    const again = new PersistRedis({ client, prefix: "unused:" });
    await expect(again.readSignalData("BTC/USDT", "borrowed")).rejects.toBeInstanceOf(BackendUnavailableError);
  });
});
