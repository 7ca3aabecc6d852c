// describeDurability() and the write waits, against private redis-servers started with the
// settings under test.

import { makeSignalRow } from "@persist-kit/contract";
import {
  BackendUnavailableError,
  listenWarning,
  NotDurableError,
  PersistError,
  type PersistWarning,
} from "@persist-kit/core";
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

async function rawCall(url: string, ...args: string[]): Promise<unknown> {
  const raw = new Redis(url);
  try {
    return await raw.call(args[0] as string, ...args.slice(1));
  } finally {
    raw.disconnect();
  }
}

// The warnings reported while `body` runs, once `until` holds for them (the settings are read in
// the background, right after a connection is made) or 2 s have passed.
async function warningsDuring(
  body: () => Promise<void>,
  until: (warnings: PersistWarning[]) => boolean = () => false,
): Promise<PersistWarning[]> {
  const warnings: PersistWarning[] = [];
  const stop = listenWarning((warning) => warnings.push(warning));
  try {
    await body();
    const deadline = Date.now() + 2_000;
    while (!until(warnings) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return warnings;
  } finally {
    stop();
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

describe("waitForAof reads the fsync policy again with every change", () => {
  for (const change of [
    ["appendfsync", "everysec"],
    ["appendonly", "no"],
  ]) {
    it(`after CONFIG SET ${change.join(" ")} at run time, no change is acknowledged as fsynced`, async () => {
      const { url } = await server(["appendonly yes", "appendfsync always", 'save ""']);
      const persist = backend(url, { waitForAof: true });
      const key = signalRedisKey(persist.prefix, { strategyName: "aof", symbol: "BTC/USDT" });
      await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(1));
      const report = await persist.describeDurability();
      await rawCall(url, "CONFIG", "SET", ...change);
      const write = persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(2));
      if (report.servers[0]?.supportsWaitAof && change[0] === "appendfsync") {
        // WAITAOF waits for the fsync (everysec: within a second).
        await write;
        return;
      }
      const error = await write.catch((reason) => reason);
      expect(error).toBeInstanceOf(PersistError);
      if (!report.servers[0]?.supportsWaitAof) {
        // Redis 7.0: the change was made in the transaction that read the new setting.
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect(error.message).toMatch(/the change was applied but is not known to be fsynced/);
      }
      // From now on, refused before anything is sent.
      const refused = await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(3)).catch((reason) => reason);
      expect(refused).toBeInstanceOf(NotDurableError);
      expect(refused).toMatchObject({ outcome: "not-applied" });
      expect(JSON.parse(parseStoredRecord((await rawGet(url, key)) ?? "")?.json ?? "null")).not.toEqual(
        makeSignalRow(3),
      );
      await expect(persist.deleteSignalData("BTC/USDT", "aof")).rejects.toBeInstanceOf(NotDurableError);
      expect(await rawGet(url, key)).not.toBeNull();
    });
  }

  it("once the setting fsyncs each write again, changes go through (a refusal reads the settings again)", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always", 'save ""']);
    const persist = backend(url, { waitForAof: true });
    await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(1));
    await rawCall(url, "CONFIG", "SET", "appendfsync", "everysec");
    await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(2)).catch(() => {});
    const report = await persist.describeDurability();
    if (!report.servers[0]?.supportsWaitAof) {
      await expect(persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(3))).rejects.toBeInstanceOf(
        NotDurableError,
      );
    }
    await rawCall(url, "CONFIG", "SET", "appendfsync", "always");
    await persist.writeSignalData("BTC/USDT", "aof", makeSignalRow(4));
    expect(await persist.readSignalData("BTC/USDT", "aof")).toEqual(makeSignalRow(4));
  });
});

describe("settings that can lose acknowledged writes are reported through listenWarning", () => {
  it("at the first connection: each risk, with the server's address", async () => {
    const { url, port } = await server(["appendonly no", "save 3600 1"]);
    const persist = backend(url);
    const warnings = await warningsDuring(
      () => persist.ping(),
      (seen) => seen.length > 0,
    );
    expect(warnings).toEqual([
      {
        backend: "redis",
        kind: "durability",
        message: `127.0.0.1:${port}: appendonly no: a crash loses every write since the last RDB snapshot; set appendonly yes`,
        details: expect.objectContaining({ address: `127.0.0.1:${port}`, appendOnly: false, snapshotRules: "3600 1" }),
      },
    ]);
  });

  it("nothing for appendonly yes with appendfsync always", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always", 'save ""']);
    const persist = backend(url);
    expect(await warningsDuring(() => persist.writeSignalData("BTC/USDT", "quiet", makeSignalRow(1)))).toEqual([]);
  });

  it("after a reconnection: the settings are read again, and a new risk is reported once", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always", 'save ""']);
    const persist = backend(url, { maxReconnectDelayMs: 50 });
    await persist.ping();
    await rawCall(url, "CONFIG", "SET", "appendfsync", "everysec");
    const reconnected = async () => {
      await rawCall(url, "CLIENT", "KILL", "TYPE", "normal");
      const deadline = Date.now() + 5_000;
      while (
        await persist.ping().then(
          () => false,
          () => Date.now() < deadline,
        )
      ) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const warnings = await warningsDuring(reconnected, (seen) => seen.length > 0);
    expect(warnings.map((warning) => warning.message)).toEqual([
      expect.stringMatching(/appendfsync everysec: a power loss or OS crash can lose about the last second/),
    ]);
    // The same risk after the next reconnection is not reported again.
    expect(await warningsDuring(reconnected)).toEqual([]);
  });
});

describe("requireDurable", () => {
  it("refuses writes and deletes on settings that can lose them (NotDurableError, not-applied, nothing written)", async () => {
    const { url } = await server(["appendonly no", 'save ""']);
    const persist = backend(url, { requireDurable: true });
    const key = signalRedisKey(persist.prefix, { strategyName: "durable", symbol: "BTC/USDT" });
    const error = await persist.writeSignalData("BTC/USDT", "durable", makeSignalRow(1)).catch((reason) => reason);
    expect(error).toBeInstanceOf(NotDurableError);
    expect(error).toMatchObject({ outcome: "not-applied", code: "PERSIST_NOT_DURABLE" });
    expect(error.message).toMatch(/requireDurable is set, but .*appendonly no/);
    expect(await rawGet(url, key)).toBeNull();
    await expect(persist.deleteSignalData("BTC/USDT", "durable")).rejects.toBeInstanceOf(NotDurableError);
    await expect(
      persist.writeMany([{ symbol: "BTC/USDT", strategyName: "durable", row: makeSignalRow(1) }]),
    ).rejects.toBeInstanceOf(NotDurableError);
    const batch = persist.createBatchWriter();
    await batch.writeSignalData("BTC/USDT", "durable", makeSignalRow(1));
    await expect(batch.flush()).rejects.toBeInstanceOf(NotDurableError);
    expect(await rawGet(url, key)).toBeNull();
  });

  it("refuses appendfsync everysec without waitForAof", async () => {
    const { url } = await server(["appendonly yes", "appendfsync everysec", 'save ""']);
    const persist = backend(url, { requireDurable: true });
    const error = await persist.writeSignalData("BTC/USDT", "durable", makeSignalRow(1)).catch((reason) => reason);
    expect(error).toBeInstanceOf(NotDurableError);
    expect(error.message).toMatch(/appendfsync everysec/);
  });

  it("writes on appendfsync always, and stops acknowledging once the policy is changed at run time", async () => {
    const { url } = await server(["appendonly yes", "appendfsync always", 'save ""']);
    const persist = backend(url, { requireDurable: true });
    await persist.writeSignalData("BTC/USDT", "durable", makeSignalRow(1));
    await persist.deleteSignalData("BTC/USDT", "durable");
    await persist.writeSignalData("BTC/USDT", "durable", makeSignalRow(2));
    expect(await persist.readSignalData("BTC/USDT", "durable")).toEqual(makeSignalRow(2));
    await rawCall(url, "CONFIG", "SET", "appendfsync", "no");
    const error = await persist.writeSignalData("BTC/USDT", "durable", makeSignalRow(3)).catch((reason) => reason);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.message).toMatch(
      /applied but is not known to be fsynced: the server now runs appendonly yes with appendfsync no/,
    );
    await expect(persist.writeSignalData("BTC/USDT", "durable", makeSignalRow(4))).rejects.toBeInstanceOf(
      NotDurableError,
    );
    expect(await persist.readSignalData("BTC/USDT", "durable")).toEqual(makeSignalRow(3));
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
