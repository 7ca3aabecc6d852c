// The importer: a store written in backtest-kit 19.5's file layout (built here from its
// PersistBase: `<baseDir>/<entityName>/<entityId>.json`, JSON.stringify, so Infinity is null)
// moves to redis and postgres, and from redis into persist-kit's file layout, without a difference.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { RecordStore } from "@persist-kit/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOMAINS, domainNamespace, importBacktestKitStore, persistKitClasses } from "../src/index.js";
import { BACKENDS } from "./backends.js";

const WHEN = new Date(0);

// What backtest-kit's PersistBase writes for (baseDir, entityName, entityId, value).
function frameworkWrite(dump: string, baseDir: string, entityName: string, entityId: string, value: unknown): void {
  const path = join(dump, baseDir, entityName, `${entityId}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
}

const signal = (id: string, symbol: string, strategyName: string, exchangeName: string, minutes: number | null) => ({
  id,
  symbol,
  strategyName,
  exchangeName,
  position: "short",
  priceOpen: 0.1 + 0.2,
  priceTakeProfit: 2.5e-7,
  priceStopLoss: 1e21,
  minuteEstimatedTime: minutes,
  multiplier: 1,
  isolated: false,
});

function buildFrameworkStore(dump: string): void {
  // An eternal hold (Infinity, stored by JSON as null) on a ccxt symbol, which nests folders.
  frameworkWrite(
    dump,
    "data/signal",
    "BTC/USDT_trend_follow_binance",
    "BTC/USDT",
    signal("s1", "BTC/USDT", "trend_follow", "binance", null),
  );
  frameworkWrite(
    dump,
    "data/signal",
    "ETH/USDT_momentum_bybit",
    "ETH/USDT",
    signal("s2", "ETH/USDT", "momentum", "bybit", 120),
  );
  frameworkWrite(dump, "data/signal", "SOL/USDT_momentum_bybit", "SOL/USDT", null); // cleared
  frameworkWrite(
    dump,
    "data/signal",
    "XRP/USDT_momentum_bybit",
    ".tmp-3f2a-XRP",
    signal("t", "XRP/USDT", "momentum", "bybit", 1),
  );
  frameworkWrite(
    dump,
    "data/schedule",
    "ETH/USDT_momentum_bybit",
    "ETH/USDT",
    signal("s3", "ETH/USDT", "momentum", "bybit", 30),
  );
  // Strategy data names its context only through the signals it holds.
  frameworkWrite(dump, "data/strategy", "BTC/USDT_trend_follow_binance", "strategy", {
    pendingSignalId: "s1",
    closedSignal: signal("s0", "BTC/USDT", "trend_follow", "binance", null),
    retryOpenCount: 0,
    isPaused: false,
  });
  frameworkWrite(dump, "data/strategy", "ETH/USDT_momentum_bybit", "strategy", {
    pendingSignalId: null,
    isPaused: true,
  });
  // Ambiguous: no signal inside, and "a_b_c_d" splits three ways.
  frameworkWrite(dump, "data/strategy", "a_b_c_d", "strategy", { pendingSignalId: null, isPaused: false });
  frameworkWrite(dump, "data/risk", "main_risk_binance", "positions", [
    [
      "trend_follow:BTC/USDT",
      {
        signal: signal("s1", "BTC/USDT", "trend_follow", "binance", 5),
        strategyName: "trend_follow",
        exchangeName: "binance",
        openTimestamp: 7,
      },
    ],
  ]);
  // A partial names only its signal's id: its context comes from that signal ("trend_follow" has a "_").
  frameworkWrite(dump, "data/partial", "BTC/USDT_trend_follow_binance", "s1", {
    "10": { profitLevels: [10], lossLevels: [] },
  });
  frameworkWrite(dump, "data/breakeven", "ETH/USDT_momentum_bybit", "s2", { reached: false });
  frameworkWrite(dump, "data/recent", "ETH/USDT_momentum_bybit_live", "ETH/USDT", {
    ...signal("s2", "ETH/USDT", "momentum", "bybit", null),
    frameName: "",
  });
  frameworkWrite(dump, "data/recent", "ETH/USDT_momentum_bybit_1y_backtest", "ETH/USDT", {
    ...signal("s9", "ETH/USDT", "momentum", "bybit", 9),
    frameName: "1y",
  });
  frameworkWrite(dump, "data/candle", "binance/BTC/USDT/1m", "1700000000000", {
    timestamp: 1_700_000_000_000,
    open: 1.5,
    high: 2,
    low: 1,
    close: 1.75,
    volume: 1e-8,
  });
  frameworkWrite(dump, "data/storage", "live", "s2", signal("s2", "ETH/USDT", "momentum", "bybit", null));
  frameworkWrite(dump, "data/notification", "backtest", "n1", {
    id: "n1",
    type: "signal.opened",
    minuteEstimatedTime: null,
  });
  frameworkWrite(dump, "data/notification", "backtest", "n2", { id: "n2", type: "risk.rejection" });
  frameworkWrite(dump, "data/log", "log", "l1", { id: "l1", level: "info", text: "started" });
  frameworkWrite(dump, "data/measure", "latency", "k1", { value: 3, removed: false });
  frameworkWrite(dump, "data/interval", "hourly", "k2", { value: 4, removed: false });
  frameworkWrite(dump, "memory/s1", "notes", "m1", {
    priority: 1,
    data: { a: 1 },
    removed: false,
    index: "i",
    when: 5,
  });
  frameworkWrite(dump, "state/s1", "trailing", "trailing", { id: "st", data: { level: 2 }, when: 6 });
  frameworkWrite(dump, "session/trend_follow/binance", "", "ADA_live", { id: "se", data: null, when: 8 });
  // A frame folder or a symbol with "/"? Four parts read two ways.
  frameworkWrite(dump, "session/trend_follow/binance", "q1", "ADA_live", { id: "se2", data: null, when: 9 });
}

const eternal = (row: Record<string, unknown>) => ({ ...row, minuteEstimatedTime: Number.POSITIVE_INFINITY });

// Everything the imported store should give the framework back, through the classes.
async function readEverything(records: RecordStore) {
  const c = persistKitClasses(records);
  const list = async <T>(generator: AsyncGenerator<T>) => {
    const items: T[] = [];
    for await (const item of generator) items.push(item);
    return items;
  };
  return {
    signal1: await new c.Signal("BTC/USDT", "trend_follow", "binance").readSignalData(),
    signal2: await new c.Signal("ETH/USDT", "momentum", "bybit").readSignalData(),
    cleared: await new c.Signal("SOL/USDT", "momentum", "bybit").readSignalData(),
    schedule: await new c.Schedule("ETH/USDT", "momentum", "bybit").readScheduleData(),
    strategy1: await new c.Strategy("BTC/USDT", "trend_follow", "binance").readStrategyData(),
    strategy2: await new c.Strategy("ETH/USDT", "momentum", "bybit").readStrategyData(),
    risk: await new c.Risk("main_risk", "binance").readPositionData(WHEN),
    partial: await new c.Partial("BTC/USDT", "trend_follow", "binance").readPartialData("s1", WHEN),
    breakeven: await new c.Breakeven("ETH/USDT", "momentum", "bybit").readBreakevenData("s2", WHEN),
    recentLive: await new c.Recent("ETH/USDT", "momentum", "bybit", "", false).readRecentData(),
    recentFramed: await new c.Recent("ETH/USDT", "momentum", "bybit", "1y", true).readRecentData(),
    candles: await new c.Candle("BTC/USDT", "1m", "binance").readCandlesData(1, 1_700_000_000_000, 1_700_000_060_000),
    storage: await new c.Storage(false).readStorageData(),
    notifications: await new c.Notification(true).readNotificationData(),
    log: await new c.Log().readLogData(),
    measure: await list(new c.Measure("latency").listMeasureData()),
    interval: await new c.Interval("hourly").readIntervalData("k2"),
    memory: await list(new c.Memory("s1", "notes").listMemoryData()),
    state: await new c.State("s1", "trailing").readStateData(),
    session: await new c.Session("trend_follow", "binance", "", "ADA", false).readSessionData(),
  };
}

const EXPECTED = {
  signal1: eternal(signal("s1", "BTC/USDT", "trend_follow", "binance", null)),
  signal2: signal("s2", "ETH/USDT", "momentum", "bybit", 120),
  cleared: null,
  schedule: signal("s3", "ETH/USDT", "momentum", "bybit", 30),
  strategy1: {
    pendingSignalId: "s1",
    closedSignal: eternal(signal("s0", "BTC/USDT", "trend_follow", "binance", null)),
    retryOpenCount: 0,
    isPaused: false,
  },
  strategy2: { pendingSignalId: null, isPaused: true },
  risk: [
    [
      "trend_follow:BTC/USDT",
      {
        signal: signal("s1", "BTC/USDT", "trend_follow", "binance", 5),
        strategyName: "trend_follow",
        exchangeName: "binance",
        openTimestamp: 7,
        // The framework's reader marks the position itself as an eternal hold when it has no minuteEstimatedTime.
        minuteEstimatedTime: Number.POSITIVE_INFINITY,
      },
    ],
  ],
  partial: { "10": { profitLevels: [10], lossLevels: [] } },
  breakeven: { reached: false },
  recentLive: eternal({ ...signal("s2", "ETH/USDT", "momentum", "bybit", null), frameName: "" }),
  recentFramed: { ...signal("s9", "ETH/USDT", "momentum", "bybit", 9), frameName: "1y" },
  candles: [{ timestamp: 1_700_000_000_000, open: 1.5, high: 2, low: 1, close: 1.75, volume: 1e-8 }],
  storage: [eternal(signal("s2", "ETH/USDT", "momentum", "bybit", null))],
  notifications: [
    { id: "n1", type: "signal.opened", minuteEstimatedTime: Number.POSITIVE_INFINITY },
    { id: "n2", type: "risk.rejection" },
  ],
  log: [{ id: "l1", level: "info", text: "started" }],
  measure: ["k1"],
  interval: { value: 4, removed: false },
  memory: [{ memoryId: "m1", data: { priority: 1, data: { a: 1 }, removed: false, index: "i", when: 5 } }],
  state: { id: "st", data: { level: 2 }, when: 6 },
  session: { id: "se", data: null, when: 8 },
};

// Copies every record of the bridge's namespaces, as stored, from one store to another.
async function copyRecords(from: RecordStore, to: RecordStore): Promise<number> {
  let copied = 0;
  for (const domain of DOMAINS) {
    const namespace = domainNamespace(domain);
    let cursor: string | undefined;
    do {
      const page = await from.list(namespace, cursor === undefined ? {} : { cursor });
      for (const { parts } of page.records) {
        const read = await from.read({ namespace, parts });
        if (!read.found) continue;
        await to.write({ namespace, parts }, read.json);
        copied++;
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
  return copied;
}

describe("importing a backtest-kit file store", () => {
  const byName = (name: string) => BACKENDS.find((backend) => backend.name === name) as (typeof BACKENDS)[number];
  let dump: string;
  const opened: { destroy(): Promise<void> }[] = [];

  beforeAll(() => {
    dump = mkdtempSync(join(tmpdir(), "persist-kit-dump-"));
    buildFrameworkStore(dump);
  });

  afterAll(async () => {
    for (const store of opened) await store.destroy();
    rmSync(dump, { recursive: true, force: true });
  });

  it("moves it to redis and postgres, and from redis to persist-kit's file layout, without a difference", async () => {
    const results = [];
    for (const name of ["redis", "postgres"]) {
      const store = await byName(name).open();
      opened.push(store);
      const report = await importBacktestKitStore(dump, store.records);
      expect(report.imported).toHaveLength(20);
      expect(report.skipped.map(({ file }) => file).sort()).toEqual([
        "data/signal/SOL/USDT_momentum_bybit/SOL/USDT.json",
        "data/signal/XRP/USDT_momentum_bybit/.tmp-3f2a-XRP.json",
        "data/strategy/a_b_c_d/strategy.json",
        "session/trend_follow/binance/q1/ADA_live.json",
      ]);
      expect(report.skipped.find(({ file }) => file.includes("a_b_c_d"))?.reason).toMatch(/ambiguous/);
      results.push(await readEverything(store.records));
    }
    const file = await byName("file").open();
    opened.push(file);
    const redis = opened[0] as unknown as { records: RecordStore };
    expect(await copyRecords(redis.records, file.records)).toBe(20);
    results.push(await readEverything(file.records));
    for (const result of results) expect(result).toStrictEqual(EXPECTED);
  });

  it("reports what it does not read: links not followed, files that are not .json, unknown folders, refused values", async () => {
    const odd = mkdtempSync(join(tmpdir(), "persist-kit-dump-odd-"));
    const elsewhere = mkdtempSync(join(tmpdir(), "persist-kit-dump-elsewhere-"));
    try {
      frameworkWrite(elsewhere, "data/signal", "BTC/USDT_s_e", "BTC/USDT", signal("x", "BTC/USDT", "s", "e", 1));
      mkdirSync(join(odd, "data"), { recursive: true });
      symlinkSync(join(elsewhere, "data", "signal"), join(odd, "data", "signal"));
      frameworkWrite(odd, "data/risk", "r_e", "positions", []);
      writeFileSync(join(odd, "data", "risk", "r_e", "positions.JSON"), "[]");
      mkdirSync(join(odd, "data", "signalz"));
      frameworkWrite(odd, "data/measure", "bucket", "deep", JSON.parse(`${"[".repeat(80)}1${"]".repeat(80)}`));
      const store = await (BACKENDS[0] as (typeof BACKENDS)[number]).open();
      opened.push(store);
      const report = await importBacktestKitStore(odd, store.records);
      expect(report.imported.map(({ file }) => file)).toEqual(["data/risk/r_e/positions.json"]);
      expect(report.skipped).toEqual([
        { file: "data/signalz", reason: expect.stringMatching(/not a persistence folder/) },
        { file: "data/signal", reason: expect.stringMatching(/symbolic link: not followed/) },
        { file: "data/risk/r_e/positions.JSON", reason: "not a .json file" },
        { file: "data/measure/bucket/deep.json", reason: expect.stringMatching(/^not written: .*deeper than 64/) },
      ]);
      await expect(importBacktestKitStore(join(odd, "missing"), store.records)).rejects.toMatchObject({
        name: "InvalidOptionError",
      });
    } finally {
      rmSync(odd, { recursive: true, force: true });
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
