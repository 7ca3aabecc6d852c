import { InvalidKeyError, InvalidOptionError, InvalidSignalError, keyProblem, type RecordKey } from "@persist-kit/core";
import { encodeValue } from "./codec.js";
import type { ContextLease } from "./ownership.js";
import { type Bridge, RecordSlot } from "./record-slot.js";

/**
 * A value as the framework wrote it (its own types: ISignalRow, RiskData, ...). The bridge stores
 * it as JSON and gives back exactly what was written; its shape is the framework's.
 */
// biome-ignore lint/suspicious/noExplicitAny: the framework's own row types, returned as written
export type FrameworkValue = any;

/** The sixteen persistence domains of backtest-kit 19.5, in the order of its hooks. */
export const DOMAINS = [
  "Signal",
  "Risk",
  "Schedule",
  "Strategy",
  "Partial",
  "Breakeven",
  "Candle",
  "Storage",
  "Notification",
  "Log",
  "Measure",
  "Interval",
  "Memory",
  "Recent",
  "State",
  "Session",
] as const;

/** One of {@link DOMAINS}. */
export type Domain = (typeof DOMAINS)[number];

/**
 * Domains whose loss or a stale write loses money or positions: their writes are fenced (see
 * RecordSlot). The rest are caches and histories the framework can rebuild, written plainly.
 */
export const CRASH_CRITICAL: ReadonlySet<Domain> = new Set<Domain>([
  "Signal",
  "Schedule",
  "Strategy",
  "Risk",
  "Partial",
  "Breakeven",
  "Recent",
  "State",
  "Session",
]);

/** The record namespace of a domain: `bt-signal`, `bt-risk`, ... */
export function domainNamespace(domain: Domain): string {
  return `bt-${domain.toLowerCase()}`;
}

// A frame name is empty in live mode, and an empty key part cannot be stored: every frame name
// gets a "~" in front, so "" and every other name stay apart.
function frame(frameName: string): string {
  return `~${frameName}`;
}

function mode(backtest: boolean): string {
  return backtest ? "backtest" : "live";
}

/** Minutes per candle interval, as the framework counts them. */
export const CANDLE_INTERVAL_MINUTES: Readonly<Record<string, number>> = {
  "1m": 1,
  "3m": 3,
  "5m": 5,
  "15m": 15,
  "30m": 30,
  "1h": 60,
  "2h": 120,
  "4h": 240,
  "6h": 360,
  "8h": 480,
  "1d": 1440,
};

/** What the classes of one domain share: the bridge, the namespace, fenced or not. */
abstract class DomainInstance {
  readonly #bridge: Bridge;
  readonly #namespace: string;
  readonly #fenced: boolean;
  readonly #context: readonly string[];
  #slots = new Map<string, RecordSlot>();
  #claim: { claim: ContextLease; drop(): void } | undefined;

  protected constructor(bridge: Bridge, domain: Domain, context: readonly string[]) {
    this.#bridge = bridge;
    this.#namespace = domainNamespace(domain);
    this.#fenced = CRASH_CRITICAL.has(domain);
    this.#context = context;
  }

  /** Called by the framework before every read and write; refuses once the classes are closed. */
  async waitForInit(_initial: boolean): Promise<void> {
    this.#bridge.assertOpen({ backend: this.#bridge.records.name, operation: "init" });
  }

  /**
   * Forgets what this instance knows of its records (the framework drops the instance) and, with
   * `exclusive`, gives its lease back; a failure to give it back is reported, the lease then expires.
   */
  dispose(): void {
    this.#slots = new Map();
    this.#claim?.drop();
    this.#claim = undefined;
  }

  /** The record of this context plus `entity` (a signal id, a key, a timestamp), kept per instance. */
  protected slot(...entity: string[]): RecordSlot {
    const parts = [...this.#context, ...entity];
    const id = JSON.stringify(parts);
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      const key: RecordKey = { namespace: this.#namespace, parts };
      slot = new RecordSlot(this.#bridge, key, this.#fenced, this.#fenced ? this.#contextLease() : undefined);
      this.#slots.set(id, slot);
    }
    return slot;
  }

  // With `exclusive`, one lease for the instance's context, shared by its records.
  #contextLease(): ContextLease | undefined {
    this.#claim ??= this.#bridge.claim({ namespace: this.#namespace, parts: this.#context });
    return this.#claim?.claim;
  }

  /**
   * Every entity stored under this context with its value, in the framework's order (its file
   * store sorts entity ids with `localeCompare`, numeric, base sensitivity), the same on every backend.
   */
  protected async *entities(): AsyncGenerator<{ id: string; value: unknown }> {
    const ids: string[] = [];
    for await (const parts of this.#bridge.list(this.#namespace, this.#context)) {
      if (parts.length === this.#context.length + 1) ids.push(parts[parts.length - 1] as string);
    }
    ids.sort(frameworkOrder);
    for (const id of ids) {
      const value = await this.slot(id).read();
      if (value !== undefined) yield { id, value };
    }
  }
}

// Ids that compare equal so (a, A, á) keep their code-unit order: the same on every backend.
function frameworkOrder(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" }) || (a < b ? -1 : a > b ? 1 : 0);
}

// Measure, Interval and Memory values the framework removed by marking them read as absent.
function isRemoved(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as { removed?: unknown }).removed === true;
}

// The items of a list the framework writes, with their ids, all checked before any is written.
function itemsWithIds(items: unknown, domain: Domain): { id: string; item: unknown; json: string }[] {
  const context = { backend: "backtest-kit", operation: "write" } as const;
  if (!Array.isArray(items))
    throw new InvalidSignalError(`${domain} data must be an array, got ${typeof items}`, context);
  return items.map((item: unknown) => {
    const id = (item as { id?: unknown } | null)?.id;
    const problem = typeof id === "string" ? keyProblem(id) : "must be a string";
    if (problem === undefined) {
      // Refuses what cannot be stored before any item is written; the text is what is written.
      return { id: id as string, item, json: encodeValue(item, context) };
    }
    throw new InvalidKeyError(`every ${domain} item's id ${problem}; nothing was written`, context);
  });
}

// A whole number in [min, max], or an InvalidOptionError naming it.
function wholeNumber(name: string, value: unknown, min: number, max: number): number {
  if (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max) return value as number;
  throw new InvalidOptionError(`${name} must be a whole number from ${min} to ${max}, got ${String(value)}`, {
    backend: "backtest-kit",
    operation: "read",
  });
}

// The most candles one read asks for: each is one key read.
const MAX_CANDLES_PER_READ = 100_000;

/** Every instance has these; the framework calls `waitForInit` before every read and write. */
export interface DomainInstanceBase {
  waitForInit(initial: boolean): Promise<void>;
  dispose(): void;
}

/** The class of each domain, constructed as the framework's hook constructs it. */
export interface DomainClasses {
  Signal: new (
    symbol: string,
    strategyName: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readSignalData(): Promise<FrameworkValue>;
    writeSignalData(row: unknown): Promise<void>;
  };
  Risk: new (
    riskName: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readPositionData(when: Date): Promise<FrameworkValue>;
    writePositionData(rows: unknown, when: Date): Promise<void>;
  };
  Schedule: new (
    symbol: string,
    strategyName: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readScheduleData(): Promise<FrameworkValue>;
    writeScheduleData(row: unknown): Promise<void>;
  };
  Strategy: new (
    symbol: string,
    strategyName: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readStrategyData(): Promise<FrameworkValue>;
    writeStrategyData(row: unknown): Promise<void>;
  };
  Partial: new (
    symbol: string,
    strategyName: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readPartialData(signalId: string, when: Date): Promise<FrameworkValue>;
    writePartialData(data: unknown, signalId: string, when: Date): Promise<void>;
  };
  Breakeven: new (
    symbol: string,
    strategyName: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readBreakevenData(signalId: string, when: Date): Promise<FrameworkValue>;
    writeBreakevenData(data: unknown, signalId: string, when: Date): Promise<void>;
  };
  Candle: new (
    symbol: string,
    interval: string,
    exchangeName: string,
  ) => DomainInstanceBase & {
    readCandlesData(limit: number, sinceTimestamp: number, untilTimestamp: number): Promise<FrameworkValue>;
    writeCandlesData(candles: readonly { timestamp: number }[]): Promise<void>;
  };
  Storage: new (
    backtest: boolean,
  ) => DomainInstanceBase & {
    readStorageData(): Promise<FrameworkValue>;
    writeStorageData(signals: readonly unknown[]): Promise<void>;
  };
  Notification: new (
    backtest: boolean,
  ) => DomainInstanceBase & {
    readNotificationData(): Promise<FrameworkValue>;
    writeNotificationData(notifications: readonly unknown[]): Promise<void>;
  };
  Log: new () => DomainInstanceBase & {
    readLogData(): Promise<FrameworkValue>;
    writeLogData(entries: readonly unknown[]): Promise<void>;
  };
  Measure: new (
    bucket: string,
  ) => DomainInstanceBase & {
    readMeasureData(key: string): Promise<FrameworkValue>;
    writeMeasureData(data: unknown, key: string, when?: Date): Promise<void>;
    removeMeasureData(key: string): Promise<void>;
    listMeasureData(): AsyncGenerator<string>;
  };
  Interval: new (
    bucket: string,
  ) => DomainInstanceBase & {
    readIntervalData(key: string): Promise<FrameworkValue>;
    writeIntervalData(data: unknown, key: string, when?: Date): Promise<void>;
    removeIntervalData(key: string): Promise<void>;
    listIntervalData(): AsyncGenerator<string>;
  };
  Memory: new (
    signalId: string,
    bucketName: string,
  ) => DomainInstanceBase & {
    readMemoryData(memoryId: string): Promise<FrameworkValue>;
    hasMemoryData(memoryId: string): Promise<boolean>;
    writeMemoryData(data: unknown, memoryId: string, when: Date): Promise<void>;
    removeMemoryData(memoryId: string): Promise<void>;
    listMemoryData(): AsyncGenerator<{ memoryId: string; data: FrameworkValue }>;
  };
  Recent: new (
    symbol: string,
    strategyName: string,
    exchangeName: string,
    frameName: string,
    backtest: boolean,
  ) => DomainInstanceBase & {
    readRecentData(): Promise<FrameworkValue>;
    writeRecentData(row: unknown, when: Date): Promise<void>;
  };
  State: new (
    signalId: string,
    bucketName: string,
  ) => DomainInstanceBase & {
    readStateData(): Promise<FrameworkValue>;
    writeStateData(data: unknown, when: Date): Promise<void>;
  };
  Session: new (
    strategyName: string,
    exchangeName: string,
    frameName: string,
    symbol: string,
    backtest: boolean,
  ) => DomainInstanceBase & {
    readSessionData(): Promise<FrameworkValue>;
    writeSessionData(data: unknown, when: Date): Promise<void>;
  };
}

/** The classes of every domain, bound to one bridge: what `installPersistKit` registers. */
export function domainClasses(bridge: Bridge): DomainClasses {
  class Signal extends DomainInstance {
    constructor(
      readonly symbol: string,
      readonly strategyName: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Signal", [strategyName, exchangeName, symbol]);
    }
    async readSignalData(): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? null;
    }
    async writeSignalData(row: unknown): Promise<void> {
      await (row === null ? this.slot().remove() : this.slot().write(row));
    }
  }

  class Risk extends DomainInstance {
    constructor(
      readonly riskName: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Risk", [riskName, exchangeName]);
    }
    async readPositionData(_when: Date): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? [];
    }
    async writePositionData(rows: unknown, _when: Date): Promise<void> {
      await (rows === null ? this.slot().remove() : this.slot().write(rows));
    }
  }

  class Schedule extends DomainInstance {
    constructor(
      readonly symbol: string,
      readonly strategyName: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Schedule", [strategyName, exchangeName, symbol]);
    }
    async readScheduleData(): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? null;
    }
    async writeScheduleData(row: unknown): Promise<void> {
      await (row === null ? this.slot().remove() : this.slot().write(row));
    }
  }

  class Strategy extends DomainInstance {
    constructor(
      readonly symbol: string,
      readonly strategyName: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Strategy", [strategyName, exchangeName, symbol]);
    }
    async readStrategyData(): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? null;
    }
    async writeStrategyData(row: unknown): Promise<void> {
      await (row === null ? this.slot().remove() : this.slot().write(row));
    }
  }

  class Partial extends DomainInstance {
    constructor(
      readonly symbol: string,
      readonly strategyName: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Partial", [strategyName, exchangeName, symbol]);
    }
    async readPartialData(signalId: string, _when: Date): Promise<FrameworkValue> {
      return (await this.slot(signalId).read()) ?? {};
    }
    async writePartialData(data: unknown, signalId: string, _when: Date): Promise<void> {
      await (data === null ? this.slot(signalId).remove() : this.slot(signalId).write(data));
    }
  }

  class Breakeven extends DomainInstance {
    constructor(
      readonly symbol: string,
      readonly strategyName: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Breakeven", [strategyName, exchangeName, symbol]);
    }
    async readBreakevenData(signalId: string, _when: Date): Promise<FrameworkValue> {
      return (await this.slot(signalId).read()) ?? {};
    }
    async writeBreakevenData(data: unknown, signalId: string, _when: Date): Promise<void> {
      await (data === null ? this.slot(signalId).remove() : this.slot(signalId).write(data));
    }
  }

  class Candle extends DomainInstance {
    readonly #stepMs: number;
    constructor(
      readonly symbol: string,
      readonly interval: string,
      readonly exchangeName: string,
    ) {
      super(bridge, "Candle", [exchangeName, symbol, interval]);
      const minutes = CANDLE_INTERVAL_MINUTES[interval];
      if (minutes === undefined) {
        throw new InvalidOptionError(
          `unknown candle interval ${JSON.stringify(interval)}; expected one of ${Object.keys(CANDLE_INTERVAL_MINUTES).join(", ")}`,
          { backend: bridge.records.name, operation: "create" },
        );
      }
      this.#stepMs = minutes * 60_000;
    }
    /** The `limit` candles from `sinceTimestamp` on, one read each (no scan), or null when one is missing. */
    async readCandlesData(limit: number, sinceTimestamp: number, _untilTimestamp: number): Promise<FrameworkValue> {
      const count = wholeNumber("limit", limit, 0, MAX_CANDLES_PER_READ);
      const since = wholeNumber("sinceTimestamp", sinceTimestamp, 0, Number.MAX_SAFE_INTEGER - count * this.#stepMs);
      const reads = Array.from({ length: count }, (_, index) => this.slot(String(since + index * this.#stepMs)).read());
      const candles = await Promise.all(reads);
      return candles.includes(undefined) ? null : candles;
    }
    /** Stores closed candles not stored yet; a candle still open (its close after now) is skipped. */
    async writeCandlesData(candles: readonly { timestamp: number }[]): Promise<void> {
      if (!Array.isArray(candles)) {
        throw new InvalidSignalError(`candles must be an array, got ${typeof candles}`, {
          backend: "backtest-kit",
          operation: "write",
        });
      }
      for (const candle of candles) {
        const timestamp = (candle as { timestamp?: unknown } | null)?.timestamp;
        if (!Number.isSafeInteger(timestamp) || (timestamp as number) < 0) {
          throw new InvalidSignalError(
            `a candle's timestamp must be a whole number of ms, got ${String(timestamp)}; nothing was written`,
            {
              backend: "backtest-kit",
              operation: "write",
            },
          );
        }
      }
      const now = Date.now();
      const closed = candles.filter((candle) => candle.timestamp + this.#stepMs <= now);
      await Promise.all(closed.map((candle) => this.slot(String(candle.timestamp)).writeIfAbsent(candle)));
    }
  }

  class Storage extends DomainInstance {
    constructor(readonly backtest: boolean) {
      super(bridge, "Storage", [mode(backtest)]);
    }
    async readStorageData(): Promise<FrameworkValue> {
      const signals: unknown[] = [];
      for await (const { value } of this.entities()) signals.push(value);
      return signals;
    }
    async writeStorageData(signals: readonly unknown[]): Promise<void> {
      for (const { id, item, json } of itemsWithIds(signals, "Storage")) await this.slot(id).write(item, json);
    }
  }

  class Notification extends DomainInstance {
    constructor(readonly backtest: boolean) {
      super(bridge, "Notification", [mode(backtest)]);
    }
    async readNotificationData(): Promise<FrameworkValue> {
      const notifications: unknown[] = [];
      for await (const { value } of this.entities()) notifications.push(value);
      return notifications;
    }
    async writeNotificationData(notifications: readonly unknown[]): Promise<void> {
      for (const { id, item, json } of itemsWithIds(notifications, "Notification"))
        await this.slot(id).write(item, json);
    }
  }

  class Log extends DomainInstance {
    constructor() {
      super(bridge, "Log", ["log"]);
    }
    async readLogData(): Promise<FrameworkValue> {
      const entries: unknown[] = [];
      for await (const { value } of this.entities()) entries.push(value);
      return entries;
    }
    /** Stores the entries not stored yet (an entry's id is written once). */
    async writeLogData(entries: readonly unknown[]): Promise<void> {
      for (const { id, item, json } of itemsWithIds(entries, "Log")) await this.slot(id).writeIfAbsent(item, json);
    }
  }

  class Measure extends DomainInstance {
    constructor(readonly bucket: string) {
      super(bridge, "Measure", [bucket]);
    }
    async readMeasureData(key: string): Promise<FrameworkValue> {
      const value = await this.slot(key).read();
      return value === undefined || isRemoved(value) ? null : value;
    }
    async writeMeasureData(data: unknown, key: string, _when?: Date): Promise<void> {
      await this.slot(key).write(data);
    }
    async removeMeasureData(key: string): Promise<void> {
      await this.slot(key).remove();
    }
    async *listMeasureData(): AsyncGenerator<string> {
      for await (const { id, value } of this.entities()) if (!isRemoved(value)) yield id;
    }
  }

  class Interval extends DomainInstance {
    constructor(readonly bucket: string) {
      super(bridge, "Interval", [bucket]);
    }
    async readIntervalData(key: string): Promise<FrameworkValue> {
      const value = await this.slot(key).read();
      return value === undefined || isRemoved(value) ? null : value;
    }
    async writeIntervalData(data: unknown, key: string, _when?: Date): Promise<void> {
      await this.slot(key).write(data);
    }
    async removeIntervalData(key: string): Promise<void> {
      await this.slot(key).remove();
    }
    async *listIntervalData(): AsyncGenerator<string> {
      for await (const { id, value } of this.entities()) if (!isRemoved(value)) yield id;
    }
  }

  class Memory extends DomainInstance {
    constructor(
      readonly signalId: string,
      readonly bucketName: string,
    ) {
      super(bridge, "Memory", [signalId, bucketName]);
    }
    async readMemoryData(memoryId: string): Promise<FrameworkValue> {
      const value = await this.slot(memoryId).read();
      return value === undefined || isRemoved(value) ? null : value;
    }
    async hasMemoryData(memoryId: string): Promise<boolean> {
      const value = await this.slot(memoryId).read();
      return value !== undefined && !isRemoved(value);
    }
    async writeMemoryData(data: unknown, memoryId: string, _when: Date): Promise<void> {
      await this.slot(memoryId).write(data);
    }
    async removeMemoryData(memoryId: string): Promise<void> {
      await this.slot(memoryId).remove();
    }
    async *listMemoryData(): AsyncGenerator<{ memoryId: string; data: FrameworkValue }> {
      for await (const { id, value } of this.entities()) if (!isRemoved(value)) yield { memoryId: id, data: value };
    }
  }

  class Recent extends DomainInstance {
    constructor(
      readonly symbol: string,
      readonly strategyName: string,
      readonly exchangeName: string,
      readonly frameName: string,
      readonly backtest: boolean,
    ) {
      super(bridge, "Recent", [strategyName, exchangeName, symbol, frame(frameName), mode(backtest)]);
    }
    async readRecentData(): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? null;
    }
    async writeRecentData(row: unknown, _when: Date): Promise<void> {
      await (row === null ? this.slot().remove() : this.slot().write(row));
    }
  }

  class State extends DomainInstance {
    constructor(
      readonly signalId: string,
      readonly bucketName: string,
    ) {
      super(bridge, "State", [signalId, bucketName]);
    }
    async readStateData(): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? null;
    }
    async writeStateData(data: unknown, _when: Date): Promise<void> {
      await (data === null ? this.slot().remove() : this.slot().write(data));
    }
  }

  class Session extends DomainInstance {
    constructor(
      readonly strategyName: string,
      readonly exchangeName: string,
      readonly frameName: string,
      readonly symbol: string,
      readonly backtest: boolean,
    ) {
      super(bridge, "Session", [strategyName, exchangeName, frame(frameName), symbol, mode(backtest)]);
    }
    async readSessionData(): Promise<FrameworkValue> {
      return (await this.slot().read()) ?? null;
    }
    async writeSessionData(data: unknown, _when: Date): Promise<void> {
      await (data === null ? this.slot().remove() : this.slot().write(data));
    }
  }

  return {
    Signal,
    Risk,
    Schedule,
    Strategy,
    Partial,
    Breakeven,
    Candle,
    Storage,
    Notification,
    Log,
    Measure,
    Interval,
    Memory,
    Recent,
    State,
    Session,
  };
}
