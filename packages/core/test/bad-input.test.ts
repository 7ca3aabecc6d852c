import { describe, expect, it } from "vitest";
import {
  BackendUnavailableError,
  CorruptDataError,
  createPersist,
  HoldingRecordStore,
  InvalidSignalError,
  type ISignalRow,
  MAX_ROW_DEPTH,
  MemoryRecordStore,
  PersistMemory,
  PersistSignalAdapter,
  RecordSignalStore,
} from "../src/index.js";

const row = (): ISignalRow => ({
  id: "sig",
  position: "long",
  priceOpen: 100,
  priceTakeProfit: 110,
  priceStopLoss: 95,
  openTimestamp: 1_732_000_000_000,
  minuteEstimatedTime: 60,
});

function nested(depth: number): unknown {
  const root: Record<string, unknown> = {};
  let level = root;
  for (let index = 0; index < depth; index++) {
    const next: Record<string, unknown> = {};
    level.a = next;
    level = next;
  }
  return root;
}

const signalKey = { namespace: "signal", parts: ["s", "BTC/USDT"] };

describe("rows nested thousands of levels deep", () => {
  it("are refused with InvalidSignalError by the adapter and by every store, nothing written", async () => {
    const persist = new PersistMemory();
    const adapter = new PersistSignalAdapter(persist);
    for (const depth of [MAX_ROW_DEPTH + 1, 5_000, 100_000]) {
      const deep = { ...row(), extra: nested(depth) } as ISignalRow;
      await expect(adapter.setPendingSignal("BTC/USDT", "s", deep)).rejects.toBeInstanceOf(InvalidSignalError);
      await expect(persist.writeSignalData("BTC/USDT", "s", deep)).rejects.toBeInstanceOf(InvalidSignalError);
      await expect(persist.writeSignalData("BTC/USDT", "s", deep)).rejects.toThrow(/nests deeper than/);
    }
    expect(await persist.readSignalData("BTC/USDT", "s")).toBeNull();
    await adapter.setPendingSignal("BTC/USDT", "s", { ...row(), extra: nested(MAX_ROW_DEPTH - 2) } as ISignalRow);
  });

  it("stored deep rows read back as CorruptDataError, through the store and the adapter", async () => {
    const records = new MemoryRecordStore();
    const persist = new RecordSignalStore(records);
    const depth = 5_000;
    const deep = `${JSON.stringify(row()).slice(0, -1)},"extra":${'{"a":'.repeat(depth)}{}${"}".repeat(depth)}}`;
    await records.write(signalKey, deep);
    await expect(persist.readSignalData("BTC/USDT", "s")).rejects.toBeInstanceOf(CorruptDataError);
    await expect(new PersistSignalAdapter(persist).waitForInit("BTC/USDT", "s")).rejects.toBeInstanceOf(
      CorruptDataError,
    );
  });
});

describe("the row validated is the row stored", () => {
  const tricky: Array<[string, () => unknown]> = [
    [
      "a getter that answers NaN the second time",
      () => {
        let reads = 0;
        const value = row() as unknown as Record<string, unknown>;
        Object.defineProperty(value, "priceOpen", { enumerable: true, get: () => (reads++ === 0 ? 100 : Number.NaN) });
        return value;
      },
    ],
    [
      "a Proxy whose price turns negative after the first read",
      () => {
        let reads = 0;
        return new Proxy(row(), {
          get: (target, name) => (name === "priceOpen" ? (reads++ === 0 ? 100 : -5) : Reflect.get(target, name)),
        });
      },
    ],
    [
      "a non-enumerable price (JSON drops it)",
      () => {
        const value = row() as unknown as Record<string, unknown>;
        Object.defineProperty(value, "priceOpen", { enumerable: false, value: 100 });
        return value;
      },
    ],
    [
      "a Proxy whose trap throws while it is stored",
      () => {
        let reads = 0;
        return new Proxy(row(), {
          ownKeys: (target) => {
            if (reads++ > 0) throw new Error("trap");
            return Reflect.ownKeys(target);
          },
        });
      },
    ],
  ];

  for (const [name, make] of tricky) {
    it(`${name}: InvalidSignalError at the write, nothing stored`, async () => {
      const persist = new PersistMemory();
      await expect(persist.writeSignalData("BTC/USDT", "s", make() as ISignalRow)).rejects.toBeInstanceOf(
        InvalidSignalError,
      );
      const adapter = new PersistSignalAdapter(persist);
      await expect(adapter.setPendingSignal("BTC/USDT", "s", make() as ISignalRow)).rejects.toBeInstanceOf(
        InvalidSignalError,
      );
      expect(await persist.readSignalData("BTC/USDT", "s")).toBeNull();
    });
  }
});

describe("calls queued while the store does not answer", () => {
  it("are capped per key and in all, each refusal not-applied and at once", async () => {
    const held = new HoldingRecordStore(new MemoryRecordStore());
    const adapter = new PersistSignalAdapter(new RecordSignalStore(held), {
      maxQueuedPerKey: 3,
      maxQueued: 5,
      timeoutMs: 60_000,
    });
    await adapter.waitForInit("BTC/USDT", "s");
    held.hold();
    const first = [1, 2, 3].map(() => adapter.setPendingSignal("BTC/USDT", "s", row()));
    const started = performance.now();
    const refused = adapter.setPendingSignal("BTC/USDT", "s", row());
    await expect(refused).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(refused).rejects.toMatchObject({ outcome: "not-applied" });
    await expect(refused).rejects.toThrow(/maxQueuedPerKey/);
    const others = [adapter.setPendingSignal("ETH/USDT", "s", row()), adapter.setPendingSignal("SOL/USDT", "s", row())];
    await expect(adapter.setPendingSignal("XRP/USDT", "s", row())).rejects.toThrow(/maxQueued\)/);
    expect(performance.now() - started).toBeLessThan(1_000);
    held.resume();
    await Promise.all([...first, ...others]);
    await adapter.setPendingSignal("BTC/USDT", "s", row());
  });
});

describe("createPersist with a missing package", () => {
  const notFound = (message: string) => Object.assign(new Error(message), { code: "ERR_MODULE_NOT_FOUND" });

  it("names the driver when the backend is installed and its driver is not", async () => {
    const importModule = async () => {
      throw notFound(
        "Cannot find package 'ioredis' imported from /app/node_modules/@persist-kit/persist-redis/dist/index.js",
      );
    };
    const error = (await createPersist("redis://127.0.0.1:6379", { importModule }).catch(
      (caught: unknown) => caught,
    )) as Error;
    expect(error.message).toMatch(/ioredis is not installed \(@persist-kit\/persist-redis needs it\)/);
    expect(error.message).toMatch(/npm install ioredis$/);
  });

  it("names the backend package when it is the one missing", async () => {
    const importModule = async () => {
      throw notFound("Cannot find package '@persist-kit/persist-mongo' imported from /app/index.js");
    };
    const error = (await createPersist("mongodb://127.0.0.1", { importModule }).catch(
      (caught: unknown) => caught,
    )) as Error;
    expect(error.message).toMatch(
      /@persist-kit\/persist-mongo is not installed; install it with: npm install @persist-kit\/persist-mongo mongodb/,
    );
  });

  it("passes any other failure on as a load failure", async () => {
    const importModule = async () => {
      throw notFound("Cannot find package 'left-pad' imported from /app/node_modules/pg/lib/index.js");
    };
    const error = (await createPersist("postgres://127.0.0.1", { importModule }).catch(
      (caught: unknown) => caught,
    )) as Error;
    expect(error.message).toMatch(/loading @persist-kit\/persist-postgres failed/);
  });
});

describe("createPersist with the backend modules given (a bundled application)", () => {
  const fileModule = {
    packageName: "@persist-kit/persist-file",
    fromUrl: (url: string) => Object.assign(new PersistMemory(), { url }),
  };

  it("builds from the given module and loads nothing by name", async () => {
    const persist = (await createPersist("file:./data", { backends: [fileModule] })) as PersistMemory & { url: string };
    expect(persist.url).toBe("file:./data");
    await persist.close();
  });

  it("refuses a URL whose backend is not given, naming the package to add", async () => {
    await expect(createPersist("redis://127.0.0.1:6379", { backends: [fileModule] })).rejects.toMatchObject({
      name: "InvalidOptionError",
      message: expect.stringMatching(
        /needs @persist-kit\/persist-redis, which is not among the backends given \(@persist-kit\/persist-file\)/,
      ),
    });
  });

  it("refuses backends together with importModule, and modules without fromUrl", async () => {
    const importModule = async () => fileModule;
    await expect(createPersist("file:./data", { backends: [fileModule], importModule })).rejects.toMatchObject({
      name: "InvalidOptionError",
    });
    await expect(
      createPersist("file:./data", { backends: [{ packageName: "@persist-kit/persist-file" } as never] }),
    ).rejects.toMatchObject({ name: "InvalidOptionError", message: expect.stringMatching(/fromUrl/) });
  });
});

describe("createPersist scope", () => {
  const seen: { url: string; options: unknown }[] = [];
  const redisModule = {
    packageName: "@persist-kit/persist-redis",
    fromUrl: (url: string, options?: unknown) => {
      seen.push({ url, options });
      return new PersistMemory();
    },
  };
  const open = (url: string, scope?: string) => createPersist(url, { backends: [redisModule], scope });

  it("takes ?scope= out of the URL, keeping every other part as written", async () => {
    seen.length = 0;
    await open("redis://:p%40ss@host:6379/2?scope=bot_a");
    await open("redis://:p%40ss@host:6379/2?db=1&scope=bot_a&tls=x#frag");
    await open("redis://host:6379", "bot_b");
    await open("redis://host:6379?scope=bot_c", "bot_c");
    expect(seen).toEqual([
      { url: "redis://:p%40ss@host:6379/2", options: { scope: "bot_a" } },
      { url: "redis://:p%40ss@host:6379/2?db=1&tls=x#frag", options: { scope: "bot_a" } },
      { url: "redis://host:6379", options: { scope: "bot_b" } },
      { url: "redis://host:6379", options: { scope: "bot_c" } },
    ]);
  });

  it("refuses a bad, doubled or disagreeing scope, never showing the URL", async () => {
    for (const [url, scope] of [
      ["redis://:hunter2@host?scope=Bad", undefined],
      ["redis://:hunter2@host?scope=a&scope=b", undefined],
      ["redis://:hunter2@host?scope=a", "b"],
      ["redis://:hunter2@host?scope=%zz", undefined],
      ["redis://:hunter2@host", "has-dash"],
      ["redis://:hunter2@host", ""],
    ] as const) {
      const error = (await open(url, scope).catch((caught: unknown) => caught)) as Error;
      expect(error, `${url} ${scope}`).toMatchObject({ name: "InvalidOptionError" });
      expect(error.message).not.toContain("hunter2");
    }
  });
});

describe("a backend whose writes resolve before they are stored", () => {
  class QueuedBackend extends PersistMemory {
    readonly acknowledges = "queued" as const;
  }

  it("is refused by the adapter unless acceptQueuedWrites is given, nothing written", async () => {
    const backend = new QueuedBackend();
    const adapter = new PersistSignalAdapter(backend);
    await expect(adapter.setPendingSignal("BTC/USDT", "s", row())).rejects.toThrow(
      /acknowledges writes before they are stored/,
    );
    await expect(adapter.waitForInit("BTC/USDT", "s")).rejects.toMatchObject({
      name: "InvalidOptionError",
      outcome: "not-applied",
    });
    expect(await backend.readSignalData("BTC/USDT", "s")).toBeNull();
    const backtest = new PersistSignalAdapter(backend, { acceptQueuedWrites: true });
    await backtest.setPendingSignal("BTC/USDT", "s", row());
    expect(await backend.readSignalData("BTC/USDT", "s")).toEqual(row());
  });
});
