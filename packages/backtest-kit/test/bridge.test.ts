// The bridge on every backend, driven as backtest-kit's hooks drive it: realistic values of every
// domain come back bit-exact after the classes are registered again (a restart), names that
// collide in the framework's own store stay apart, Infinity is kept where the framework writes it.
import {
  BackendClosedError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidSignalError,
  LEASE_NAMESPACE,
  OwnershipError,
  OwnershipLostError,
  type RecordKey,
  type RecordStore,
} from "@persist-kit/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOMAINS, domainNamespace, type Installation, installPersistKit } from "../src/index.js";
import { BACKENDS } from "./backends.js";
import { type FrameworkHook, frameworkModule } from "./framework-harness.js";

const WHEN = new Date("2026-12-03T10:00:00Z");

// A signal as the framework keeps it, eternal hold included, with prices that JSON must keep exactly.
function signalRow(id: string, symbol: string) {
  return {
    id,
    position: "long",
    priceOpen: 0.1 + 0.2,
    priceTakeProfit: 1.7976931348623157e308,
    priceStopLoss: 5e-324,
    minuteEstimatedTime: Number.POSITIVE_INFINITY,
    exchangeName: "binance",
    strategyName: "momentum_v2",
    frameName: "",
    timestamp: 1_764_756_000_000,
    pendingAt: 1_764_756_060_000,
    scheduledAt: 1_764_756_000_000,
    symbol,
    _isScheduled: false,
    note: 'zażółć 🚀 \u2028 "quoted"',
    _partial: [{ type: "profit", percent: 25, price: 97_123.456789, costBasisAtClose: 1e-7 }],
    _entry: [{ price: 96_000.1, cost: 100, timestamp: 1_764_756_000_000 }],
    multiplier: 3,
    isolated: true,
  };
}

describe.each(BACKENDS)("the bridge on $name", (backend) => {
  let store: { records: RecordStore; destroy(): Promise<void> };
  const installations: Installation[] = [];

  beforeAll(async () => {
    store = await backend.open();
  });

  afterAll(async () => {
    for (const installation of installations) await installation.close();
    await store?.destroy();
  });

  // The lease records of a domain (their first part is a hash of the record's key), optionally of one context.
  async function leasesOf(namespace: string, context?: string[]) {
    const found: { key: RecordKey; parts: readonly string[] }[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.records.list(LEASE_NAMESPACE, cursor === undefined ? {} : { cursor });
      for (const { parts } of page.records) {
        if (parts[1] !== namespace) continue;
        if (context !== undefined && JSON.stringify(parts.slice(2)) !== JSON.stringify(context)) continue;
        found.push({ key: { namespace: LEASE_NAMESPACE, parts }, parts: parts.slice(2) });
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return found;
  }

  // A bot start: the module's hooks, persist-kit installed on them over the shared store.
  async function start(
    options: Parameters<typeof installPersistKit>[2] = {},
  ): Promise<Record<(typeof DOMAINS)[number], FrameworkHook> & { installation: Installation }> {
    const { module, hooks } = frameworkModule();
    const installation = await installPersistKit(module, store.records, options);
    installations.push(installation);
    return Object.assign(hooks, { installation });
  }

  it("registers all sixteen hooks, lists the one it does not know, and leaves it alone", async () => {
    const bot = await start();
    expect(bot.installation.domains).toEqual([...DOMAINS]);
    expect(bot.installation.skipped).toEqual(["PersistFutureAdapter"]);
    for (const domain of DOMAINS) expect(bot[domain].registered).toBe(true);
  });

  it("every crash-critical domain comes back bit-exact after a restart, Infinity included", async () => {
    const bot = await start();
    const row = signalRow("sig-1", "BTC/USDT");
    const scheduled = { ...signalRow("sig-2", "BTC/USDT"), _isScheduled: true, priceOpen: 95_000.5 };
    const strategy = {
      pendingSignalId: "sig-1",
      lastPendingId: null,
      createdSignal: null,
      commitQueue: [{ action: "partial-profit", percent: 10 }],
      closedSignal: { ...signalRow("sig-0", "BTC/USDT"), closeReason: "take_profit" },
      cancelledSignal: null,
      activatedSignal: null,
      takeProfitSignal: null,
      stopLossSignal: null,
      retryOpenSignal: { ...signalRow("sig-3", "BTC/USDT"), minuteEstimatedTime: 90 },
      retryOpenCount: 0,
      retryCloseCount: 2,
      isPaused: false,
    };
    const risk = [
      ["momentum_v2:BTC/USDT", { signal: row, strategyName: "momentum_v2", exchangeName: "binance", openTimestamp: 1 }],
      [
        "momentum_v2:ETH/USDT",
        {
          signal: { ...row, minuteEstimatedTime: 60 },
          strategyName: "momentum_v2",
          exchangeName: "binance",
          openTimestamp: 2,
        },
      ],
    ];
    const partial = { "10": { profitLevels: [10, 20], lossLevels: [] } };
    const breakeven = { reached: true, price: 96_000.1 };
    const recent = { ...row, pnl: { pnlPercentage: -0.5, priceOpen: row.priceOpen, priceClose: 96_500.25 } };
    const state = {
      id: "state-1",
      data: { trailing: [1, 2, 3], nested: { deep: { deeper: "x" } } },
      when: WHEN.getTime(),
    };
    const session = { id: "session-1", data: null, when: WHEN.getTime() };
    const context = ["BTC/USDT", "momentum_v2", "binance"];

    await bot.Signal.call(context, "writeSignalData", row);
    await bot.Schedule.call(context, "writeScheduleData", scheduled);
    await bot.Strategy.call(context, "writeStrategyData", strategy);
    await bot.Risk.call(["risk_main", "binance"], "writePositionData", risk, WHEN);
    await bot.Partial.call(context, "writePartialData", partial, "sig-1", WHEN);
    await bot.Breakeven.call(context, "writeBreakevenData", breakeven, "sig-1", WHEN);
    await bot.Recent.call([...context, "", false], "writeRecentData", recent, WHEN);
    await bot.State.call(["sig-1", "trailing"], "writeStateData", state, WHEN);
    await bot.Session.call(["momentum_v2", "binance", "", "BTC/USDT", false], "writeSessionData", session, WHEN);

    const restarted = await start();
    expect(await restarted.Signal.call(context, "readSignalData")).toStrictEqual(row);
    expect(await restarted.Schedule.call(context, "readScheduleData")).toStrictEqual(scheduled);
    expect(await restarted.Strategy.call(context, "readStrategyData")).toStrictEqual(strategy);
    expect(await restarted.Risk.call(["risk_main", "binance"], "readPositionData", WHEN)).toStrictEqual(risk);
    expect(await restarted.Partial.call(context, "readPartialData", "sig-1", WHEN)).toStrictEqual(partial);
    expect(await restarted.Breakeven.call(context, "readBreakevenData", "sig-1", WHEN)).toStrictEqual(breakeven);
    expect(await restarted.Recent.call([...context, "", false], "readRecentData")).toStrictEqual(recent);
    expect(await restarted.State.call(["sig-1", "trailing"], "readStateData")).toStrictEqual(state);
    expect(
      await restarted.Session.call(["momentum_v2", "binance", "", "BTC/USDT", false], "readSessionData"),
    ).toStrictEqual(session);
    // What was never written reads as the framework's empty value.
    expect(await restarted.Signal.call(["ETH/USDT", "momentum_v2", "binance"], "readSignalData")).toBeNull();
    expect(await restarted.Risk.call(["risk_other", "binance"], "readPositionData", WHEN)).toStrictEqual([]);
    expect(await restarted.Partial.call(context, "readPartialData", "sig-9", WHEN)).toStrictEqual({});
    // A null the framework wrote stays null; only minuteEstimatedTime written as Infinity is Infinity.
    const withNull = { ...row, id: "sig-null", minuteEstimatedTime: null };
    await restarted.Signal.call(["SOL/USDT", "momentum_v2", "binance"], "writeSignalData", withNull);
    expect(await (await start()).Signal.call(["SOL/USDT", "momentum_v2", "binance"], "readSignalData")).toStrictEqual(
      withNull,
    );
  });

  it("null deletes the record; an exchange, frame or mode never shares one", async () => {
    const bot = await start();
    const context = ["BTC/USDT", "clear_me", "binance"];
    await bot.Signal.call(context, "writeSignalData", signalRow("a", "BTC/USDT"));
    await bot.Signal.call(["BTC/USDT", "clear_me", "bybit"], "writeSignalData", signalRow("b", "BTC/USDT"));
    await bot.Signal.call(context, "writeSignalData", null);
    expect(await bot.Signal.call(context, "readSignalData")).toBeNull();
    const read = await store.records.read({
      namespace: domainNamespace("Signal"),
      parts: ["clear_me", "binance", "BTC/USDT"],
    });
    expect(read.found).toBe(false);
    expect(await (await start()).Signal.call(["BTC/USDT", "clear_me", "bybit"], "readSignalData")).toMatchObject({
      id: "b",
    });
    const recent = (frame: string, backtest: boolean) => ["BTC/USDT", "clear_me", "binance", frame, backtest];
    await bot.Recent.call(recent("", false), "writeRecentData", { id: "live" }, WHEN);
    await bot.Recent.call(recent("", true), "writeRecentData", { id: "backtest" }, WHEN);
    await bot.Recent.call(recent("1d-frame", true), "writeRecentData", { id: "framed" }, WHEN);
    const again = await start();
    expect(await again.Recent.call(recent("", false), "readRecentData")).toStrictEqual({ id: "live" });
    expect(await again.Recent.call(recent("", true), "readRecentData")).toStrictEqual({ id: "backtest" });
    expect(await again.Recent.call(recent("1d-frame", true), "readRecentData")).toStrictEqual({ id: "framed" });
  });

  it("names that collide in the framework's own store (joined with _) stay apart", async () => {
    const bot = await start();
    // Each pair is one file name in the framework's layout: "a_b_c_d".
    const pairs: [string[], string[]][] = [
      [
        ["a_b", "c", "d"],
        ["a", "b_c", "d"],
      ],
      [
        ["x", "y_z", "w"],
        ["x", "y", "z_w"],
      ],
      [
        ["BTC/USDT", "s", "e"],
        ["BTC", "USDT", "s"],
      ],
    ];
    for (const [first, second] of pairs) {
      await bot.Signal.call(first, "writeSignalData", { id: first.join("|") });
      await bot.Signal.call(second, "writeSignalData", { id: second.join("|") });
    }
    const again = await start();
    for (const [first, second] of pairs) {
      expect(await again.Signal.call(first, "readSignalData")).toStrictEqual({ id: first.join("|") });
      expect(await again.Signal.call(second, "readSignalData")).toStrictEqual({ id: second.join("|") });
    }
  });

  it("NaN, -Infinity, Infinity elsewhere, undefined items and non-plain objects are refused before anything is written", async () => {
    const bot = await start();
    const context = ["BTC/USDT", "refused", "binance"];
    const bad: unknown[] = [
      { ...signalRow("n", "BTC/USDT"), priceOpen: Number.NaN },
      { ...signalRow("n", "BTC/USDT"), minuteEstimatedTime: Number.NEGATIVE_INFINITY },
      { ...signalRow("n", "BTC/USDT"), priceTakeProfit: Number.POSITIVE_INFINITY },
      { ...signalRow("n", "BTC/USDT"), _partial: [undefined] },
      { ...signalRow("n", "BTC/USDT"), openedAt: new Date() },
      { ...signalRow("n", "BTC/USDT"), size: 10n },
    ];
    for (const value of bad) {
      await expect(bot.Signal.call(context, "writeSignalData", value)).rejects.toBeInstanceOf(InvalidSignalError);
    }
    await expect(
      bot.Risk.call(["r", "binance"], "writePositionData", [["k", { price: Number.NaN }]], WHEN),
    ).rejects.toBeInstanceOf(InvalidSignalError);
    expect(
      await store.records.read({ namespace: domainNamespace("Signal"), parts: ["refused", "binance", "BTC/USDT"] }),
    ).toMatchObject({
      found: false,
    });
    expect(await bot.Risk.call(["r", "binance"], "readPositionData", WHEN)).toStrictEqual([]);
    // A list with one bad item writes none of them.
    await expect(
      bot.Storage.call([true], "writeStorageData", [signalRow("ok", "BTC/USDT"), { id: "bad", price: Number.NaN }]),
    ).rejects.toBeInstanceOf(InvalidSignalError);
    await expect(bot.Storage.call([true], "writeStorageData", [{ id: "" }])).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await bot.Storage.call([true], "readStorageData")).toStrictEqual([]);
    const candles = ["ETH/USDT", "1m", "refused"];
    await expect(
      bot.Candle.call(candles, "writeCandlesData", [{ timestamp: 0 }, { timestamp: Number.NaN }]),
    ).rejects.toBeInstanceOf(InvalidSignalError);
    expect(await bot.Candle.call(candles, "readCandlesData", 1, 0, 60_000)).toBeNull();
    for (const [limit, since] of [
      [-1, 0],
      [1.5, 0],
      [1, Number.NaN],
      [1e9, 0],
    ]) {
      await expect(bot.Candle.call(candles, "readCandlesData", limit, since, 0)).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
    }
    expect(() => new bot.installation.classes.Candle("ETH/USDT", "7m", "refused")).toThrow(InvalidOptionError);
  });

  it("cache domains: candles by range with no scan, lists and removes for measure, interval and memory", async () => {
    const bot = await start();
    const minute = 60_000;
    const since = Math.floor(Date.now() / minute) * minute - 10 * minute;
    const candle = (index: number) => ({
      timestamp: since + index * minute,
      open: 96_000.1 + index,
      high: 96_100.25,
      low: 95_900.5,
      close: 96_050.75,
      volume: 12.345678,
    });
    const candles = Array.from({ length: 12 }, (_, index) => candle(index));
    const context = ["BTC/USDT", "1m", "binance"];
    await bot.Candle.call(context, "writeCandlesData", candles);
    // The last two are still open (closing after now) and are not stored.
    expect(await bot.Candle.call(context, "readCandlesData", 10, since, since + 10 * minute)).toStrictEqual(
      candles.slice(0, 10),
    );
    expect(await bot.Candle.call(context, "readCandlesData", 11, since, since + 11 * minute)).toBeNull();
    // Written once: a second write of the same timestamp keeps the first.
    await bot.Candle.call(context, "writeCandlesData", [{ ...candle(0), close: 1 }]);
    expect(await (await start()).Candle.call(context, "readCandlesData", 1, since, since + minute)).toStrictEqual([
      candle(0),
    ]);

    const storage = [signalRow("s1", "BTC/USDT"), signalRow("s2", "ETH/USDT")];
    await bot.Storage.call([false], "writeStorageData", storage);
    await bot.Notification.call([true], "writeNotificationData", [
      { id: "n1", type: "signal.opened", minuteEstimatedTime: Number.POSITIVE_INFINITY },
    ]);
    await bot.Log.call([], "writeLogData", [{ id: "l1", level: "info", text: "a" }]);
    await bot.Log.call([], "writeLogData", [
      { id: "l1", level: "info", text: "changed" },
      { id: "l2", level: "warn", text: "b" },
    ]);
    const again = await start();
    expect(await again.Storage.call([false], "readStorageData")).toStrictEqual(storage);
    expect(await again.Storage.call([true], "readStorageData")).toStrictEqual([]);
    // Listed in the framework's order on every backend: ids compared as its file store sorts them.
    await again.Notification.call([false], "writeNotificationData", [{ id: "n10" }, { id: "n2" }, { id: "N1" }]);
    expect(await again.Notification.call([false], "readNotificationData")).toStrictEqual([
      { id: "N1" },
      { id: "n2" },
      { id: "n10" },
    ]);
    expect(await again.Notification.call([true], "readNotificationData")).toStrictEqual([
      { id: "n1", type: "signal.opened", minuteEstimatedTime: Number.POSITIVE_INFINITY },
    ]);
    expect(await again.Log.call([], "readLogData")).toStrictEqual([
      { id: "l1", level: "info", text: "a" },
      { id: "l2", level: "warn", text: "b" },
    ]);

    for (const [domain, name] of [
      ["Measure", "Measure"],
      ["Interval", "Interval"],
    ] as const) {
      const hook = again[domain];
      await hook.call(["bucket_a"], `write${name}Data`, { value: 1, removed: false }, "k1", WHEN);
      await hook.call(["bucket_a"], `write${name}Data`, { value: 2, removed: false }, "k2", WHEN);
      await hook.call(["bucket_b"], `write${name}Data`, { value: 3, removed: false }, "k1", WHEN);
      await hook.call(["bucket_a"], `remove${name}Data`, "k1");
      expect(await hook.call(["bucket_a"], `read${name}Data`, "k1")).toBeNull();
      expect(await hook.call(["bucket_a"], `read${name}Data`, "k2")).toStrictEqual({ value: 2, removed: false });
      expect(await hook.list(["bucket_a"], `list${name}Data`)).toEqual(["k2"]);
      expect(await hook.list(["bucket_b"], `list${name}Data`)).toEqual(["k1"]);
    }
    const memory = { priority: 1, data: { note: "x" }, removed: false, index: "i", when: WHEN.getTime() };
    await again.Memory.call(["sig-1", "notes"], "writeMemoryData", memory, "m1", WHEN);
    await again.Memory.call(["sig-1", "notes"], "writeMemoryData", { ...memory, priority: 2 }, "m2", WHEN);
    await again.Memory.call(["sig-1", "notes"], "removeMemoryData", "m1");
    expect(await again.Memory.call(["sig-1", "notes"], "hasMemoryData", "m1")).toBe(false);
    expect(await again.Memory.call(["sig-1", "notes"], "hasMemoryData", "m2")).toBe(true);
    expect(await again.Memory.list(["sig-1", "notes"], "listMemoryData")).toStrictEqual([
      { memoryId: "m2", data: { ...memory, priority: 2 } },
    ]);
  });

  it("two bots on one position: the second writer's stale write is refused, nothing written", async () => {
    const first = await start();
    const second = await start();
    const context = ["BTC/USDT", "contested", "binance"];
    await first.Signal.call(context, "readSignalData");
    await second.Signal.call(context, "readSignalData");
    await first.Signal.call(context, "writeSignalData", { id: "first" });
    await expect(second.Signal.call(context, "writeSignalData", { id: "second" })).rejects.toBeInstanceOf(
      OwnershipLostError,
    );
    await expect(second.Signal.call(context, "writeSignalData", null)).rejects.toBeInstanceOf(OwnershipLostError);
    expect(await (await start()).Signal.call(context, "readSignalData")).toStrictEqual({ id: "first" });
    // The first bot goes on; a bot started after it takes over from the stored value.
    await first.Signal.call(context, "writeSignalData", { id: "first-2" });
    const third = await start();
    expect(await third.Signal.call(context, "readSignalData")).toStrictEqual({ id: "first-2" });
    await third.Signal.call(context, "writeSignalData", null);
    await expect(first.Signal.call(context, "writeSignalData", { id: "late" })).rejects.toBeInstanceOf(
      OwnershipLostError,
    );
  });

  it("exclusive: one owner per position; a second bot is refused at once, takes over after close, and fences out the old owner", async () => {
    const context = ["BTC/USDT", "exclusive", "binance"];
    const first = await start({ exclusive: { leaseMs: 5_000 } });
    await first.Signal.call(context, "writeSignalData", { id: "first" });
    const second = await start({ exclusive: { leaseMs: 5_000 } });
    const refused = await second.Signal.call(context, "readSignalData").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OwnershipError);
    expect((refused as OwnershipError).holder).toMatchObject({ pid: process.pid });
    await expect(second.Signal.call(context, "writeSignalData", { id: "second" })).rejects.toBeInstanceOf(
      OwnershipError,
    );
    // A non-critical domain takes no lease.
    await second.Measure.call(["bucket"], "writeMeasureData", { v: 1 }, "k", WHEN);
    // The first bot's lease disappears as if it expired while the bot was paused; a third takes over.
    const [held] = await leasesOf(domainNamespace("Signal"), ["exclusive", "binance", "BTC/USDT"]);
    const leaseKey = held?.key as RecordKey;
    expect((await store.records.read(leaseKey)).found).toBe(true);
    await store.records.delete(leaseKey);
    const third = await start({ exclusive: { leaseMs: 5_000 } });
    expect(await third.Signal.call(context, "readSignalData")).toStrictEqual({ id: "first" });
    // The paused bot wakes up: its write cannot land above the takeover, and it writes no more.
    await expect(first.Signal.call(context, "writeSignalData", { id: "stale" })).rejects.toBeInstanceOf(
      OwnershipLostError,
    );
    await expect(first.Signal.call(context, "readSignalData")).rejects.toBeInstanceOf(OwnershipLostError);
    await third.Signal.call(context, "writeSignalData", { id: "third" });
    // close() gives the lease back: the next bot takes the position at once.
    await third.installation.close();
    expect((await store.records.read(leaseKey)).found).toBe(false);
    const fourth = await start({ exclusive: { leaseMs: 5_000 } });
    expect(await fourth.Signal.call(context, "readSignalData")).toStrictEqual({ id: "third" });
    await fourth.installation.close();
    await first.installation.close();
  });

  it("exclusive: one lease per framework instance, not per record; dispose() gives it back", async () => {
    const bot = await start({ exclusive: { leaseMs: 5_000 } });
    const context = ["BTC/USDT", "leases", "binance"];
    for (const signalId of ["a", "b", "c"]) {
      await bot.Partial.call(context, "writePartialData", { [signalId]: 1 }, signalId, WHEN);
    }
    const leases = async (namespace: string) => (await leasesOf(namespace)).map(({ parts }) => parts);
    expect(await leases(domainNamespace("Partial"))).toEqual([["leases", "binance", "BTC/USDT"]]);
    await bot.State.call(["sig-leases", "trailing"], "writeStateData", { id: "s", data: {}, when: 1 }, WHEN);
    expect(await leases(domainNamespace("State"))).toContainEqual(["sig-leases", "trailing"]);
    await bot.State.call(["sig-leases", "trailing"], "dispose");
    await expect.poll(() => leases(domainNamespace("State"))).not.toContainEqual(["sig-leases", "trailing"]);
    await bot.installation.close();
    expect(await leases(domainNamespace("Partial"))).toEqual([]);
  });

  it("after close() every call rejects with BackendClosedError and nothing is written", async () => {
    const bot = await start();
    const context = ["BTC/USDT", "closed", "binance"];
    await bot.Signal.call(context, "writeSignalData", { id: "kept" });
    await bot.installation.close();
    await expect(bot.Signal.call(context, "writeSignalData", { id: "after" })).rejects.toBeInstanceOf(
      BackendClosedError,
    );
    await expect(bot.Signal.call(context, "readSignalData")).rejects.toBeInstanceOf(BackendClosedError);
    await expect(bot.Measure.list(["b"], "listMeasureData")).rejects.toBeInstanceOf(BackendClosedError);
    expect(await (await start()).Signal.call(context, "readSignalData")).toStrictEqual({ id: "kept" });
  });
});
