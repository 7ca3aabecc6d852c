import { afterEach, describe, expect, it } from "vitest";
import {
  InvalidKeyError,
  InvalidSignalError,
  type ISignalRow,
  listenError,
  type PersistBase,
  PersistError,
  PersistMemory,
  PersistSignalAdapter,
  setConfig,
} from "../src/index.js";

const row = (id: string): ISignalRow => ({
  id,
  position: "short",
  priceOpen: 3_000.25,
  priceTakeProfit: 2_900,
  priceStopLoss: 3_100,
  openTimestamp: 1_732_000_000_000,
  minuteEstimatedTime: 30,
});

interface Call {
  method: "read" | "write" | "delete";
  row?: ISignalRow;
  settle(error?: Error): void;
}

/** A backend whose every call waits until the test settles it, in any order the test likes. */
class ControlledBackend implements PersistBase {
  readonly name = "controlled";
  readonly calls: Call[] = [];
  readonly inner = new PersistMemory();
  #waiters: Array<() => void> = [];

  #call(method: Call["method"], apply: () => Promise<unknown>, written?: ISignalRow): Promise<never> {
    return new Promise((resolve, reject) => {
      this.calls.push({
        method,
        row: written,
        settle: (error) => (error ? reject(error) : apply().then(resolve as (value: unknown) => void, reject)),
      });
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  async callCount(count: number): Promise<void> {
    while (this.calls.length < count) await new Promise<void>((wake) => this.#waiters.push(wake));
  }

  writeSignalData(symbol: string, strategyName: string, written: ISignalRow) {
    return this.#call("write", () => this.inner.writeSignalData(symbol, strategyName, written), written);
  }
  readSignalData(symbol: string, strategyName: string) {
    return this.#call("read", () => this.inner.readSignalData(symbol, strategyName));
  }
  deleteSignalData(symbol: string, strategyName: string) {
    return this.#call("delete", () => this.inner.deleteSignalData(symbol, strategyName));
  }
}

const unsubscribers: Array<() => void> = [];
afterEach(() => {
  for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
  setConfig({ persistAdapter: undefined });
});

describe("waitForInit", () => {
  it("concurrent callers share one read", async () => {
    const backend = new ControlledBackend();
    await backend.inner.writeSignalData("BTC/USDT", "s", row("stored"));
    const adapter = new PersistSignalAdapter(backend);
    const waits = [1, 2, 3].map(() => adapter.waitForInit("BTC/USDT", "s"));
    await backend.callCount(1);
    backend.calls[0]?.settle();
    expect(await Promise.all(waits)).toEqual([row("stored"), row("stored"), row("stored")]);
    expect(await adapter.waitForInit("BTC/USDT", "s")).toEqual(row("stored"));
    expect(backend.calls.map((call) => call.method)).toEqual(["read"]);
  });

  it("a failed init is retried by the next call, not cached", async () => {
    const backend = new ControlledBackend();
    const adapter = new PersistSignalAdapter(backend);
    const first = adapter.waitForInit("BTC/USDT", "s");
    await backend.callCount(1);
    backend.calls[0]?.settle(new Error("connection reset"));
    await expect(first).rejects.toThrow("connection reset");
    const second = adapter.waitForInit("BTC/USDT", "s");
    await backend.callCount(2);
    backend.calls[1]?.settle();
    expect(await second).toBeNull();
  });

  it("does no I/O before the first call", () => {
    const backend = new ControlledBackend();
    new PersistSignalAdapter(backend);
    expect(backend.calls).toEqual([]);
  });

  it("returns the state after later writes and deletes", async () => {
    const adapter = new PersistSignalAdapter(new PersistMemory());
    expect(await adapter.waitForInit("BTC/USDT", "s")).toBeNull();
    await adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    expect(await adapter.waitForInit("BTC/USDT", "s")).toEqual(row("a"));
    await adapter.deletePendingSignal("BTC/USDT", "s");
    expect(await adapter.waitForInit("BTC/USDT", "s")).toBeNull();
  });
});

describe("operations on one key", () => {
  it("set, delete, set reach the backend one at a time, in call order", async () => {
    const backend = new ControlledBackend();
    const adapter = new PersistSignalAdapter(backend);
    const done = [
      adapter.setPendingSignal("BTC/USDT", "s", row("first")),
      adapter.deletePendingSignal("BTC/USDT", "s"),
      adapter.setPendingSignal("BTC/USDT", "s", row("last")),
    ];
    // Each call is settled as soon as the adapter lets it through; the next must not arrive before.
    for (let settled = 0; settled < 3; settled++) {
      await backend.callCount(settled + 1);
      expect(backend.calls.length, "the next call waits for the previous one").toBe(settled + 1);
      backend.calls[settled]?.settle();
    }
    await Promise.all(done);
    expect(backend.calls.map((call) => [call.method, call.row?.id])).toEqual([
      ["write", "first"],
      ["delete", undefined],
      ["write", "last"],
    ]);
    expect(await backend.inner.readSignalData("BTC/USDT", "s")).toEqual(row("last"));
  });

  it("set, delete, set ends in the last state while the backend resolves out of order", async () => {
    // The first write is slow: called concurrently, this backend applies it last.
    const delays = [40, 0, 0];
    const makeBackend = () => {
      const inner = new PersistMemory();
      let call = 0;
      const later = async <T>(apply: () => Promise<T>) => {
        await new Promise((resolve) => setTimeout(resolve, delays[call++] ?? 0));
        return apply();
      };
      const backend: PersistBase = {
        writeSignalData: (symbol, strategy, written) => later(() => inner.writeSignalData(symbol, strategy, written)),
        readSignalData: (symbol, strategy) => inner.readSignalData(symbol, strategy),
        deleteSignalData: (symbol, strategy) => later(() => inner.deleteSignalData(symbol, strategy)),
      };
      return { backend, inner };
    };

    const direct = makeBackend();
    await Promise.all([
      direct.backend.writeSignalData("BTC/USDT", "s", row("first")),
      direct.backend.deleteSignalData("BTC/USDT", "s"),
      direct.backend.writeSignalData("BTC/USDT", "s", row("last")),
    ]);
    expect((await direct.inner.readSignalData("BTC/USDT", "s"))?.id, "without the adapter the slow write wins").toBe(
      "first",
    );

    const ordered = makeBackend();
    const adapter = new PersistSignalAdapter(ordered.backend);
    await Promise.all([
      adapter.setPendingSignal("BTC/USDT", "s", row("first")),
      adapter.deletePendingSignal("BTC/USDT", "s"),
      adapter.setPendingSignal("BTC/USDT", "s", row("last")),
    ]);
    expect(await ordered.inner.readSignalData("BTC/USDT", "s")).toEqual(row("last"));
    expect(await adapter.waitForInit("BTC/USDT", "s")).toEqual(row("last"));
  });

  it("different keys are not held up by each other", async () => {
    const backend = new ControlledBackend();
    const adapter = new PersistSignalAdapter(backend);
    const first = adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    const second = adapter.setPendingSignal("ETH/USDT", "s", row("b"));
    await backend.callCount(2);
    backend.calls[1]?.settle();
    await second;
    backend.calls[0]?.settle();
    await first;
  });

  it("a failed operation does not block the next one", async () => {
    const backend = new ControlledBackend();
    const adapter = new PersistSignalAdapter(backend);
    const failing = adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    const next = adapter.setPendingSignal("BTC/USDT", "s", row("b"));
    await backend.callCount(1);
    backend.calls[0]?.settle(new Error("disk full"));
    await expect(failing).rejects.toThrow("disk full");
    await backend.callCount(2);
    backend.calls[1]?.settle();
    await next;
    expect(await backend.inner.readSignalData("BTC/USDT", "s")).toEqual(row("b"));
  });
});

describe("errors", () => {
  it("reach listenError subscribers with context, and the caller still gets the rejection", async () => {
    const seen: PersistError[] = [];
    unsubscribers.push(listenError((error) => seen.push(error)));
    const backend = new ControlledBackend();
    const adapter = new PersistSignalAdapter(backend);
    const write = adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    await backend.callCount(1);
    const cause = new Error("ECONNRESET");
    backend.calls[0]?.settle(cause);
    const error = await write.catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PersistError);
    expect(seen).toEqual([error]);
    expect(seen[0]).toMatchObject({ operation: "write", symbol: "BTC/USDT", strategyName: "s" });
    expect(seen[0]?.cause).toBe(cause);
  });

  it("unsubscribing stops delivery", async () => {
    const seen: unknown[] = [];
    const unsubscribe = listenError((error) => seen.push(error));
    unsubscribe();
    const adapter = new PersistSignalAdapter(new PersistMemory());
    await expect(adapter.setPendingSignal("", "s", row("a"))).rejects.toThrow(InvalidKeyError);
    expect(seen).toEqual([]);
  });

  it("invalid rows and keys are refused before any backend call, each with its typed error", async () => {
    const seen: PersistError[] = [];
    unsubscribers.push(listenError((error) => seen.push(error)));
    const backend = new ControlledBackend();
    const adapter = new PersistSignalAdapter(backend);
    const invalidRows: unknown[] = [
      { ...row("a"), priceOpen: Number.NaN },
      { ...row("a"), priceStopLoss: Number.POSITIVE_INFINITY },
      { ...row("a"), priceTakeProfit: 0 },
      { ...row("a"), priceOpen: -1 },
      { ...row("a"), id: "" },
      { ...row("a"), position: "sideways" },
    ];
    for (const invalid of invalidRows) {
      await expect(adapter.setPendingSignal("BTC/USDT", "s", invalid as ISignalRow)).rejects.toThrow(
        InvalidSignalError,
      );
    }
    for (const [symbol, strategy] of [
      ["", "s"],
      ["BTC/USDT", "a\nb"],
      ["x".repeat(256), "s"],
    ] as const) {
      await expect(adapter.setPendingSignal(symbol, strategy, row("a"))).rejects.toThrow(InvalidKeyError);
      await expect(adapter.waitForInit(symbol, strategy)).rejects.toThrow(InvalidKeyError);
      await expect(adapter.deletePendingSignal(symbol, strategy)).rejects.toThrow(InvalidKeyError);
    }
    expect(backend.calls).toEqual([]);
    expect(seen).toHaveLength(invalidRows.length + 9);
  });

  it("a backend that answers undefined for a missing row is reported, not taken as null", async () => {
    const backend: PersistBase = {
      name: "sloppy",
      readSignalData: async () => undefined as unknown as null,
      writeSignalData: async () => {},
      deleteSignalData: async () => {},
    };
    await expect(new PersistSignalAdapter(backend).waitForInit("BTC/USDT", "s")).rejects.toThrow(
      /\[sloppy\] read "s"\/"BTC\/USDT": backend returned undefined/,
    );
  });

  it("a corrupt row from a third-party backend is a CorruptDataError", async () => {
    const backend: PersistBase = {
      readSignalData: async () => ({ ...row("a"), priceOpen: null }) as unknown as ISignalRow,
      writeSignalData: async () => {},
      deleteSignalData: async () => {},
    };
    await expect(new PersistSignalAdapter(backend).waitForInit("BTC/USDT", "s")).rejects.toMatchObject({
      name: "CorruptDataError",
    });
  });
});

describe("configuration", () => {
  it("an adapter without a backend uses setConfig's persistAdapter, made on first use", async () => {
    const memory = new PersistMemory();
    let made = 0;
    const adapter = new PersistSignalAdapter();
    setConfig({
      persistAdapter: () => {
        made++;
        return memory;
      },
    });
    expect(made).toBe(0);
    await adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    await adapter.deletePendingSignal("BTC/USDT", "s");
    expect(made).toBe(1);
  });

  it("stores a snapshot: mutating the row afterwards changes nothing", async () => {
    const memory = new PersistMemory();
    const adapter = new PersistSignalAdapter(memory);
    const mutable = row("a");
    await adapter.setPendingSignal("BTC/USDT", "s", mutable);
    mutable.priceOpen = 1;
    expect((await adapter.waitForInit("BTC/USDT", "s"))?.priceOpen).toBe(3_000.25);
    expect((await memory.readSignalData("BTC/USDT", "s"))?.priceOpen).toBe(3_000.25);
  });
});

describe("openSignals: what a restarting bot takes up again", () => {
  async function list(adapter: PersistSignalAdapter, strategyName?: string) {
    const found: { symbol: string; strategyName: string; row: ISignalRow }[] = [];
    for await (const entry of adapter.openSignals(strategyName)) found.push(entry);
    return found.sort((a, b) => (a.symbol + a.strategyName < b.symbol + b.strategyName ? -1 : 1));
  }

  it("lists the open signals of one strategy or of all, after the calls made before it", async () => {
    const persist = new PersistMemory();
    await persist.writeSignalData("BTC/USDT", "momentum", row("a"));
    await persist.writeSignalData("ETH/USDT", "momentum", row("b"));
    await persist.writeSignalData("BTC/USDT", "mean-revert", row("c"));
    const adapter = new PersistSignalAdapter(persist);
    // Queued before the listing: the listing sees them.
    const queued = [
      adapter.deletePendingSignal("ETH/USDT", "momentum"),
      adapter.setPendingSignal("SOL/USDT", "momentum", row("d")),
    ];
    expect(await list(adapter, "momentum")).toEqual([
      { symbol: "BTC/USDT", strategyName: "momentum", row: row("a") },
      { symbol: "SOL/USDT", strategyName: "momentum", row: row("d") },
    ]);
    await Promise.all(queued);
    expect((await list(adapter)).map(({ row }) => row.id)).toEqual(["c", "a", "d"]);
    await adapter.close();
    await expect(list(adapter)).rejects.toMatchObject({ name: "BackendClosedError" });
  });

  it("refuses a bad strategy name, and a backend that cannot list its keys", async () => {
    const adapter = new PersistSignalAdapter(new PersistMemory());
    await expect(list(adapter, "")).rejects.toBeInstanceOf(InvalidKeyError);
    const unlisted: PersistBase = {
      name: "unlisted",
      readSignalData: async () => null,
      writeSignalData: async () => {},
      deleteSignalData: async () => {},
    };
    await expect(list(new PersistSignalAdapter(unlisted))).rejects.toThrow(/cannot list its keys/);
  });
});
