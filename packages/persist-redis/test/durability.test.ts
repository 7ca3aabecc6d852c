// describeDurability() and the write waits, against private redis-servers started with the
// settings under test.

import { makeSignalRow } from "@persist-kit/contract";
import { BackendUnavailableError, PersistError } from "@persist-kit/core";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PersistRedis, parseStoredRecord, signalRedisKey } from "../src/index.js";
import { type PrivateRedis, startPrivateRedis } from "./helpers.js";

const servers: PrivateRedis[] = [];
const backends: PersistRedis[] = [];

async function server(configLines: string[]): Promise<PrivateRedis> {
  const started = await startPrivateRedis(configLines);
  servers.push(started);
  return started;
}

function backend(url: string, options: ConstructorParameters<typeof PersistRedis>[0] = {}): PersistRedis {
  const made = new PersistRedis({ url, timeoutMs: 2_000, ...options });
  backends.push(made);
  return made;
}

async function rawGet(url: string, key: string): Promise<string | null> {
  const raw = new Redis(url);
  try {
    return await raw.get(key);
  } finally {
    raw.disconnect();
  }
}

afterEach(async () => {
  await Promise.all(backends.splice(0).map((made) => made.close()));
});

afterAll(async () => {
  await Promise.all(servers.splice(0).map((started) => started.destroy()));
});

describe("describeDurability() reports the server's settings", () => {
  it("appendonly yes, appendfsync always: crash-safe, no warnings", async () => {
    const { url, port } = await server(["appendonly yes", "appendfsync always", 'save ""']);
    const report = await backend(url).describeDurability();
    expect(report.servers).toHaveLength(1);
    expect(report.servers[0]).toMatchObject({
      address: `127.0.0.1:${port}`,
      role: "master",
      appendOnly: true,
      appendFsync: "always",
      snapshotRules: "",
      connectedReplicas: 0,
    });
    expect(report.servers[0]?.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(report.crashSafe).toBe(true);
    expect(report.warnings).toEqual([]);
  });

  it("appendonly no with snapshots: not crash-safe, says to set appendonly yes", async () => {
    const { url } = await server(["appendonly no", "save 3600 1"]);
    const report = await backend(url).describeDurability();
    expect(report.servers[0]).toMatchObject({ appendOnly: false, snapshotRules: "3600 1" });
    expect(report.crashSafe).toBe(false);
    expect(report.warnings.join("\n")).toMatch(/appendonly no: a crash loses every write since the last RDB snapshot/);
  });

  it("appendonly no and no snapshots: says a restart loses everything", async () => {
    const { url } = await server(["appendonly no", 'save ""']);
    const report = await backend(url).describeDurability();
    expect(report.crashSafe).toBe(false);
    expect(report.warnings.join("\n")).toMatch(/a restart loses every signal/);
  });

  it("appendfsync everysec: not crash-safe, names the trade-off", async () => {
    const { url } = await server(["appendonly yes", "appendfsync everysec", 'save ""']);
    const report = await backend(url).describeDurability();
    expect(report.servers[0]).toMatchObject({ appendOnly: true, appendFsync: "everysec" });
    expect(report.crashSafe).toBe(false);
    expect(report.warnings.join("\n")).toMatch(/everysec: a power loss or OS crash can lose about the last second/);
  });

  it("a server that refuses CONFIG: appendonly from INFO, appendfsync unknown", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always", 'rename-command CONFIG ""']);
    const report = await backend(url).describeDurability();
    expect(report.servers[0]).toMatchObject({ appendOnly: true, appendFsync: undefined, snapshotRules: undefined });
    expect(report.crashSafe).toBe(false);
    expect(report.warnings.join("\n")).toMatch(/appendfsync cannot be read \(CONFIG GET is refused\)/);
  });
});

describe("waitForAof", () => {
  it("on appendfsync always, writes succeed (the server fsyncs before it replies)", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always"]);
    const persist = backend(url, { waitForAof: true });
    await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(1));
    expect(await persist.readSignalData("BTC/USDT", "aof")).toEqual(makeSignalRow(1));
    await persist.deleteSignalData("BTC/USDT", "aof");
    expect((await persist.describeDurability()).crashSafe).toBe(true);
  });

  it("on appendfsync everysec, uses WAITAOF where the server has it, and otherwise refuses before writing", async () => {
    const { url } = await server(["appendonly yes", "appendfsync everysec"]);
    const persist = backend(url, { waitForAof: true });
    const report = await persist.describeDurability();
    const write = persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(1));
    if (report.servers[0]?.supportsWaitAof) {
      await write;
      expect(report.crashSafe).toBe(true);
      expect(await persist.readSignalData("BTC/USDT", "aof")).toEqual(makeSignalRow(1));
    } else {
      await expect(write).rejects.toThrow(/waitForAof needs WAITAOF \(Redis >= 7.2\) or appendfsync always/);
      expect(await rawGet(url, signalRedisKey(persist.prefix, { strategyName: "aof", symbol: "BTC/USDT" }))).toBeNull();
    }
  });

  it("on appendonly no, refuses before writing", async () => {
    const { url } = await server(["appendonly no", 'save ""']);
    const persist = backend(url, { waitForAof: true });
    const error = await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(1)).catch((reason) => reason);
    expect(error).toBeInstanceOf(PersistError);
    expect(error).not.toBeInstanceOf(BackendUnavailableError);
    expect(String(error.message)).toMatch(/waitForAof needs appendonly yes/);
    expect(await rawGet(url, signalRedisKey(persist.prefix, { strategyName: "aof", symbol: "BTC/USDT" }))).toBeNull();
  });

  it("on a server that refuses CONFIG and has no WAITAOF, refuses before writing", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always", 'rename-command CONFIG ""']);
    const persist = backend(url, { waitForAof: true });
    const report = await persist.describeDurability();
    const write = persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(1));
    if (report.servers[0]?.supportsWaitAof) await write;
    else await expect(write).rejects.toThrow(/appendfsync unknown \(CONFIG GET is refused\)/);
  });
});

describe("waitForReplicas (WAIT)", () => {
  it("resolves once the replica has the write, and rejects when the replica is gone", async () => {
    const primary = await server(["appendonly yes", "appendfsync always", 'save ""']);
    const replica = await server([
      "appendonly yes",
      "appendfsync always",
      'save ""',
      `replicaof 127.0.0.1 ${primary.port}`,
    ]);
    const replicaClient = new Redis(replica.url);
    try {
      // The replica is ready once its link to the primary is up.
      while (!(await replicaClient.info("replication")).includes("master_link_status:up")) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const persist = backend(primary.url, { waitForReplicas: 1, waitTimeoutMs: 500 });
      const report = await persist.describeDurability();
      expect(report.servers[0]?.connectedReplicas).toBe(1);
      expect(report.warnings).toEqual([]);

      await persist.writeSignalData("BTC/USDT", "replicated", makeSignalRow(1));
      const key = signalRedisKey(persist.prefix, { strategyName: "replicated", symbol: "BTC/USDT" });
      expect(JSON.parse(parseStoredRecord((await replicaClient.get(key)) ?? "")?.json ?? "null")).toEqual(
        makeSignalRow(1),
      );
      await persist.writeMany([
        { symbol: "ETH/USDT", strategyName: "replicated", row: makeSignalRow(2) },
        { symbol: "SOL/USDT", strategyName: "replicated", row: makeSignalRow(3) },
      ]);
      expect(
        await replicaClient.exists(signalRedisKey(persist.prefix, { strategyName: "replicated", symbol: "SOL/USDT" })),
      ).toBe(1);
      await persist.deleteSignalData("BTC/USDT", "replicated");
      expect(await replicaClient.get(key)).toBeNull();

      replicaClient.disconnect();
      await replica.stop("SIGKILL");
      const started = performance.now();
      const error = await persist.writeSignalData("BTC/USDT", "replicated", makeSignalRow(4)).catch((e) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(String(error.message)).toMatch(
        /the change was applied but reached 0 of 1 replicas within 500 ms \(WAIT\)/,
      );
      expect(performance.now() - started).toBeLessThan(2_000 + 500 + 500);
      expect((await persist.describeDurability()).warnings.join("\n")).toMatch(/waitForReplicas is 1 but 0 replicas/);
    } finally {
      replicaClient.disconnect();
    }
  });
});
