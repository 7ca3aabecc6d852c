// Promises of this backend beyond the shared contract, on the shared single server.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { makeSignalRow } from "@persist-kit/contract";
import {
  BackendUnavailableError,
  CorruptDataError,
  createPersist,
  InvalidOptionError,
  InvalidSignalError,
  PersistError,
  PersistSignalAdapter,
  type SignalKey,
} from "@persist-kit/core";
import { getRedisUrl } from "@persist-kit/tools-test-servers";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NOT_SENT } from "../src/errors.js";
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

  it("url together with clusterNodes is refused at construction, not left half unused", () => {
    expect(() => new PersistRedis({ url, clusterNodes: [{ host: "127.0.0.1", port: 1 }] })).toThrow(
      /give only one of client, url, clusterNodes/,
    );
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

  it("flush() rejects with BackendUnavailableError when the server is down, every time until the change is stored", async () => {
    const persist = new PersistRedis({ url: `redis://127.0.0.1:${await closedPort()}`, timeoutMs: 300 });
    try {
      const batch = persist.createBatchWriter();
      await batch.writeSignalData("BTC/USDT", "backtest", makeSignalRow(1));
      await expect(batch.flush()).rejects.toBeInstanceOf(BackendUnavailableError);
      // Nothing was stored: the change is still queued, and the next flush says so again.
      await expect(batch.flush()).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(await batch.readSignalData("BTC/USDT", "backtest")).toEqual(makeSignalRow(1));
    } finally {
      await persist.close();
    }
  });

  describe("a pipeline that failed in the background (the server was down)", () => {
    let server: PrivateRedis;

    beforeAll(async () => {
      server = await startPrivateRedis(["appendonly yes", "appendfsync always", 'save ""']);
    });

    afterAll(async () => {
      await server.destroy();
    });

    it("its changes stay queued: reads see them, flush() rejects until they are stored, then stores them", async () => {
      const persist = new PersistRedis({
        url: server.url,
        prefix: nextPrefix(),
        timeoutMs: 300,
        maxReconnectDelayMs: 50,
      });
      try {
        const batch = persist.createBatchWriter({ maxBatchSize: 2 });
        await batch.writeSignalData("BTC/USDT", "backtest", makeSignalRow(1));
        await batch.flush();
        await server.stop();
        // Two keys queued: the pipeline goes in the background, and fails.
        await batch.writeSignalData("BTC/USDT", "backtest", makeSignalRow(2));
        await batch.writeSignalData("ETH/USDT", "backtest", makeSignalRow(3));
        await new Promise((resolve) => setTimeout(resolve, 600));
        expect(await batch.readSignalData("BTC/USDT", "backtest")).toEqual(makeSignalRow(2));
        expect(await batch.readSignalData("ETH/USDT", "backtest")).toEqual(makeSignalRow(3));
        await expect(batch.flush()).rejects.toBeInstanceOf(BackendUnavailableError);
        await expect(batch.flush()).rejects.toBeInstanceOf(BackendUnavailableError);
        // A newer change of a key replaces the failed one.
        await batch.deleteSignalData("ETH/USDT", "backtest");
        await server.start();
        await batch.flush();
        expect(await persist.readSignalData("BTC/USDT", "backtest")).toEqual(makeSignalRow(2));
        expect(await persist.readSignalData("ETH/USDT", "backtest")).toBeNull();
        await batch.flush();
      } finally {
        await persist.close();
      }
    });
  });

  it("a queued row with a TTL expires when the TTL runs out from the write, sent or not", () =>
    withPersist(
      async (persist) => {
        const batch = persist.createBatchWriter();
        await batch.writeSignalData("BTC/USDT", "ttl", makeSignalRow(1));
        expect(await batch.readSignalData("BTC/USDT", "ttl")).toEqual(makeSignalRow(1));
        await new Promise((resolve) => setTimeout(resolve, 450));
        expect(await batch.readSignalData("BTC/USDT", "ttl")).toBeNull();
        await batch.flush();
        expect(await persist.readSignalData("BTC/USDT", "ttl")).toBeNull();
        expect(await batch.readSignalData("BTC/USDT", "ttl")).toBeNull();
      },
      { ttlMs: 400 },
    ));

  it("a row sent later than written is stored with the TTL left, not a whole TTL", () =>
    withPersist(
      async (persist) => {
        const batch = persist.createBatchWriter();
        await batch.writeSignalData("BTC/USDT", "ttl-left", makeSignalRow(1));
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await batch.flush();
        const key = signalRedisKey(persist.prefix, { strategyName: "ttl-left", symbol: "BTC/USDT" });
        const left = await raw.pttl(key);
        expect(left).toBeGreaterThan(0);
        expect(left).toBeLessThanOrEqual(1_000);
      },
      { ttlMs: 2_000 },
    ));

  it('says it acknowledges writes before storing them (acknowledges: "queued"): the adapter refuses it unless told acceptQueuedWrites', () =>
    withPersist(async (persist) => {
      const batch = persist.createBatchWriter();
      expect(batch.acknowledges).toBe("queued");
      const adapter = new PersistSignalAdapter(batch);
      const error = await adapter.setPendingSignal("BTC/USDT", "queued", makeSignalRow(1)).catch((reason) => reason);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ outcome: "not-applied" });
      expect(error.message).toMatch(/acknowledges writes before they are stored/);
      expect(await batch.readSignalData("BTC/USDT", "queued")).toBeNull();
      const backtest = new PersistSignalAdapter(batch, { acceptQueuedWrites: true });
      await backtest.setPendingSignal("BTC/USDT", "queued", makeSignalRow(2));
      await batch.flush();
      expect(await persist.readSignalData("BTC/USDT", "queued")).toEqual(makeSignalRow(2));
      await adapter.close();
      await backtest.close();
    }));
});

describe("command timeouts are told apart by their type, not their text", () => {
  it("a reply of the server that reads 'Command timed out' is the server's reply, not a timeout", async () => {
    const fake = await startFakeServer(() => "-Command timed out\r\n");
    const persist = new PersistRedis({ url: `redis://127.0.0.1:${fake.port}`, timeoutMs: 2_000 });
    try {
      const error = await persist.writeSignalData("BTC/USDT", "text", makeSignalRow(1)).catch((reason) => reason);
      expect(error).toBeInstanceOf(PersistError);
      expect(error).not.toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toMatch(/: Command timed out/);
      expect(error.message).not.toMatch(/did not answer/);
    } finally {
      await persist.close();
      await fake.close();
    }
  });

  describe("on a frozen server (SIGSTOP)", () => {
    let server: PrivateRedis;

    beforeAll(async () => {
      server = await startPrivateRedis(["appendonly yes", "appendfsync always", 'save ""']);
    });

    afterAll(async () => {
      server.resume();
      await server.destroy();
    });

    it("a command that timed out is a CommandTimeoutError: 'did not answer', outcome unknown", async () => {
      const persist = new PersistRedis({ url: server.url, prefix: nextPrefix(), timeoutMs: 300 });
      try {
        await persist.ping();
        server.pause();
        const error = await persist.writeSignalData("BTC/USDT", "frozen", makeSignalRow(1)).catch((reason) => reason);
        server.resume();
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect(error).toMatchObject({ outcome: "unknown" });
        expect(error.message).toMatch(/the server did not answer within 300 ms/);
        expect(error.cause?.cause).toMatchObject({
          name: "CommandTimeoutError",
          code: "PERSIST_REDIS_COMMAND_TIMEOUT",
        });
      } finally {
        server.resume();
        await persist.close();
      }
    });
  });
});

describe("rediss:// to a server without TLS", () => {
  it("says the server may not speak TLS, and to use redis:// for a plain port", async () => {
    const plain = new URL(url);
    const persist = new PersistRedis({ url: `rediss://${plain.host}`, timeoutMs: 500 });
    try {
      const error = await persist.ping().catch((reason) => reason);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toMatch(/not connected .* within 500 ms — the server may not speak TLS; use redis:\/\//);
    } finally {
      await persist.close();
    }
  });

  it("gives no TLS hint when nothing listens at all", async () => {
    const persist = new PersistRedis({ url: `rediss://127.0.0.1:${await closedPort()}`, timeoutMs: 300 });
    try {
      const error = await persist.ping().catch((reason) => reason);
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect(error.message).not.toMatch(/TLS/);
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

/**
 * A TCP server that speaks just enough of the Redis protocol for a client to connect (INFO,
 * CLIENT, CONFIG GET) and answers every other command with `reply` (raw RESP).
 */
async function startFakeServer(
  reply: (command: string[]) => string,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      for (;;) {
        const parsed = parseCommand(buffered);
        if (parsed === undefined) break;
        buffered = buffered.slice(parsed.length);
        socket.write(answer(parsed.command, reply));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function answer(command: string[], reply: (command: string[]) => string): string {
  const bulk = (text: string) => `$${Buffer.byteLength(text, "latin1")}\r\n${text}\r\n`;
  switch (command[0]?.toUpperCase()) {
    case "INFO":
      return bulk("# Server\r\nredis_version:7.0.15\r\nrole:master\r\nloading:0\r\naof_enabled:1\r\n");
    case "CLIENT":
      return "+OK\r\n";
    // As a server before Redis 6 answers: ioredis 6 then speaks RESP2 (ioredis 5 never sends it).
    case "HELLO":
      return "-ERR unknown command 'HELLO'\r\n";
    case "CONFIG": {
      const name = command[2] ?? "";
      return `*2\r\n${bulk(name)}${bulk(name === "appendfsync" ? "always" : "")}`;
    }
    default:
      return reply(command);
  }
}

// One command (`*N` then N bulk strings) from the start of `text`, or undefined when it is not all there yet.
function parseCommand(text: string): { command: string[]; length: number } | undefined {
  const header = /^\*(\d+)\r\n/.exec(text);
  if (header === null) return undefined;
  let at = header[0].length;
  const command: string[] = [];
  for (let index = 0; index < Number(header[1]); index++) {
    const size = /^\$(\d+)\r\n/.exec(text.slice(at));
    if (size === null) return undefined;
    at += size[0].length;
    const end = at + Number(size[1]);
    if (text.length < end + 2) return undefined;
    command.push(text.slice(at, end));
    at = end + 2;
  }
  return { command, length: at };
}

describe("ioredis' errors for a command it never sent are told by their text, so the texts are checked", () => {
  it("the installed ioredis raises every text persist-redis reads as never sent", async () => {
    const built = dirname(createRequire(import.meta.url).resolve("ioredis"));
    const sources = await Promise.all(
      ["Redis.js", "cluster/index.js"].map((file) => readFile(join(built, file), "utf8")),
    );
    for (const pattern of NOT_SENT) {
      const text = pattern.source.replace(/^\^/, "").replaceAll("\\", "");
      expect(
        sources.some((source) => source.includes(text)),
        text,
      ).toBe(true);
    }
  });
});
