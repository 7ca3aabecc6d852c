import { afterEach, describe, expect, it } from "vitest";
import {
  BackendUnavailableError,
  HoldingRecordStore,
  InvalidOptionError,
  type ISignalRow,
  MemoryRecordStore,
  OwnershipError,
  OwnershipLostError,
  PersistMemory,
  PersistSignalAdapter,
  RecordSignalStore,
  type RecordStore,
} from "../src/index.js";

const row = (id: string): ISignalRow => ({
  id,
  position: "long",
  priceOpen: 64_000.5,
  priceTakeProfit: 66_000,
  priceStopLoss: 63_000,
  openTimestamp: 1_732_000_000_000,
  minuteEstimatedTime: 60,
});

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function adapterOn(records: RecordStore, options: ConstructorParameters<typeof PersistSignalAdapter>[1] = {}) {
  const adapter = new PersistSignalAdapter(new RecordSignalStore(records), options);
  closers.push(() => adapter.close());
  return adapter;
}

async function stored(records: RecordStore): Promise<unknown> {
  const read = await records.read({ namespace: "signal", parts: ["s", "BTC/USDT"] });
  return read.found ? JSON.parse(read.json) : null;
}

describe("fenced writes", () => {
  it("a write that timed out and lands after an acknowledged delete is refused by the store", async () => {
    const memory = new MemoryRecordStore();
    const records = new HoldingRecordStore(memory);
    const adapter = adapterOn(records, { timeoutMs: 200 });
    await adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    // The driver gives up on the write at 250 ms; the server applies it at resume().
    records.holdNext("signal", { failAfterMs: 250 });
    const late = adapter.setPendingSignal("BTC/USDT", "s", row("late"));
    await expect(late).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(late).rejects.toMatchObject({ outcome: "unknown" });
    await adapter.deletePendingSignal("BTC/USDT", "s");
    records.resume();
    await sleep(10);
    expect(records.heldCount).toBe(0);
    expect(await stored(memory)).toBeNull();
    expect(await adapter.waitForInit("BTC/USDT", "s")).toBeNull();
  });

  it("without the fence the same late write lands: the hazard the fence removes", async () => {
    const memory = new MemoryRecordStore();
    const records = new HoldingRecordStore(memory);
    const persist = new RecordSignalStore(records);
    records.holdNext("signal");
    const late = persist.writeSignalData("BTC/USDT", "s", row("late"));
    await persist.deleteSignalData("BTC/USDT", "s");
    records.resume();
    await late;
    expect(await stored(memory)).toMatchObject({ id: "late" });
  });

  it("after a write that failed but was applied, waitForInit reads the store, not the old view", async () => {
    const memory = new MemoryRecordStore();
    const records = new HoldingRecordStore(memory);
    const adapter = adapterOn(records, { timeoutMs: 50 });
    await adapter.setPendingSignal("BTC/USDT", "s", row("old"));
    records.holdNext("signal");
    await expect(adapter.setPendingSignal("BTC/USDT", "s", row("new"))).rejects.toMatchObject({ outcome: "unknown" });
    records.resume();
    await sleep(10);
    expect(await adapter.waitForInit("BTC/USDT", "s")).toEqual(row("new"));
  });

  it("a fence lost to another writer is raised above it, so the call still lands", async () => {
    const memory = new MemoryRecordStore();
    const adapter = adapterOn(memory);
    await adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    const other = new RecordSignalStore(memory);
    for (let i = 0; i < 3; i++) await other.writeSignalData("BTC/USDT", "s", row(`other-${i}`));
    await adapter.setPendingSignal("BTC/USDT", "s", row("b"));
    expect(await stored(memory)).toMatchObject({ id: "b" });
  });

  it("the view of a row written with a TTL ends with the TTL", async () => {
    const memory = new MemoryRecordStore();
    const adapter = new PersistSignalAdapter(new RecordSignalStore(memory, { ttlMs: 60 }));
    closers.push(() => adapter.close());
    await adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    expect(await adapter.waitForInit("BTC/USDT", "s")).toEqual(row("a"));
    await sleep(100);
    expect(await adapter.waitForInit("BTC/USDT", "s")).toBeNull();
  });

  it("waitForInit right after an unawaited write answers the written row", async () => {
    const adapter = new PersistSignalAdapter(new PersistMemory());
    closers.push(() => adapter.close());
    expect(await adapter.waitForInit("BTC/USDT", "s")).toBeNull();
    const write = adapter.setPendingSignal("BTC/USDT", "s", row("a"));
    expect(await adapter.waitForInit("BTC/USDT", "s")).toEqual(row("a"));
    await write;
  });
});

describe("deadline from the call", () => {
  it("five calls queued behind a stalled one all reject within the bound of their call", async () => {
    const records = new HoldingRecordStore(new MemoryRecordStore());
    const adapter = adapterOn(records, { timeoutMs: 200 });
    await adapter.waitForInit("BTC/USDT", "s");
    records.hold();
    const started = performance.now();
    const calls = [1, 2, 3, 4, 5].map((i) =>
      adapter.setPendingSignal("BTC/USDT", "s", row(`r${i}`)).then(
        () => ({ elapsed: performance.now() - started, error: undefined }),
        (error: unknown) => ({ elapsed: performance.now() - started, error }),
      ),
    );
    const results = await Promise.all(calls);
    records.resume();
    for (const { elapsed, error } of results) {
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(elapsed).toBeLessThan(600);
    }
    // The first was sent (may land); the ones behind it never were.
    expect(results.map(({ error }) => (error as BackendUnavailableError).outcome)).toEqual([
      "unknown",
      "not-applied",
      "not-applied",
      "not-applied",
      "not-applied",
    ]);
  });

  it("a call queued past its deadline is never sent", async () => {
    const memory = new MemoryRecordStore();
    const records = new HoldingRecordStore(memory);
    const adapter = adapterOn(records, { timeoutMs: 100 });
    await adapter.waitForInit("BTC/USDT", "s");
    records.hold();
    const first = adapter.deletePendingSignal("BTC/USDT", "s").catch(() => {});
    const second = adapter.setPendingSignal("BTC/USDT", "s", row("never"));
    await expect(second).rejects.toMatchObject({ outcome: "not-applied" });
    records.resume();
    await first;
    await sleep(20);
    expect(await stored(memory)).toBeNull();
  });

  it("refuses a timeoutMs or leaseMs out of range, and a lease too short for the deadline", () => {
    for (const options of [{ timeoutMs: 0 }, { timeoutMs: 1.5 }, { exclusive: { leaseMs: -1 } }]) {
      expect(() => new PersistSignalAdapter(new PersistMemory(), options)).toThrow(InvalidOptionError);
    }
    expect(
      () => new PersistSignalAdapter(new PersistMemory(), { timeoutMs: 1_000, exclusive: { leaseMs: 2_000 } }),
    ).toThrow(/at least 3 × timeoutMs/);
  });
});

describe("exclusive ownership", () => {
  it("a second owner is refused with the holder named; reading stays allowed; close hands the key over at once", async () => {
    const persist = new PersistMemory();
    const first = new PersistSignalAdapter(persist, { exclusive: { leaseMs: 5_000 }, timeoutMs: 500 });
    const second = new PersistSignalAdapter(persist, { exclusive: { leaseMs: 5_000 }, timeoutMs: 500 });
    closers.push(() => second.close());
    await first.waitForInit("BTC/USDT", "s");
    await first.setPendingSignal("BTC/USDT", "s", row("mine"));
    const refused = second.waitForInit("BTC/USDT", "s");
    await expect(refused).rejects.toBeInstanceOf(OwnershipError);
    await expect(refused).rejects.toMatchObject({ outcome: "not-applied", holder: { pid: process.pid } });
    await expect(second.setPendingSignal("BTC/USDT", "s", row("theirs"))).rejects.toBeInstanceOf(OwnershipError);
    expect(await persist.readSignalData("BTC/USDT", "s")).toEqual(row("mine"));
    // Another symbol of the same strategy is free.
    await second.setPendingSignal("ETH/USDT", "s", row("eth"));
    await first.close();
    expect(await second.waitForInit("BTC/USDT", "s")).toEqual(row("mine"));
    await second.setPendingSignal("BTC/USDT", "s", row("theirs"));
    expect(await persist.readSignalData("BTC/USDT", "s")).toEqual(row("theirs"));
  });

  it("a paused owner that resumes past its lease writes nothing and gets OwnershipLostError until it takes the key again", async () => {
    const memory = new MemoryRecordStore();
    const pausedView = new HoldingRecordStore(memory);
    const paused = adapterOn(pausedView, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    const next = adapterOn(memory, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    await paused.waitForInit("BTC/USDT", "s");
    await paused.setPendingSignal("BTC/USDT", "s", row("before-pause"));
    // A write sent just before the pause: the store holds it and applies it late.
    pausedView.holdNext("signal");
    const inFlight = paused.setPendingSignal("BTC/USDT", "s", row("in-flight")).catch((error: unknown) => error);
    await sleep(1);
    pausedView.hold();
    await sleep(400);
    expect(await next.waitForInit("BTC/USDT", "s")).toEqual(row("before-pause"));
    await next.setPendingSignal("BTC/USDT", "s", row("next"));
    pausedView.resume();
    expect(await inFlight).toBeInstanceOf(BackendUnavailableError);
    await sleep(20);
    for (const write of [
      () => paused.setPendingSignal("BTC/USDT", "s", row("after-resume")),
      () => paused.deletePendingSignal("BTC/USDT", "s"),
      () => paused.setPendingSignal("BTC/USDT", "s", row("again")),
    ]) {
      const attempt = write();
      await expect(attempt).rejects.toBeInstanceOf(OwnershipLostError);
      await expect(attempt).rejects.toMatchObject({ outcome: "not-applied" });
    }
    expect(await stored(memory)).toMatchObject({ id: "next" });
    // Taking it again explicitly is refused while the other owner lives.
    await expect(paused.waitForInit("BTC/USDT", "s")).rejects.toBeInstanceOf(OwnershipError);
  });

  it("a write sent before a takeover that lands after it is refused by the new owner's fence", async () => {
    const memory = new MemoryRecordStore();
    const oldView = new HoldingRecordStore(memory);
    const old = adapterOn(oldView, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    const next = adapterOn(memory, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    await old.setPendingSignal("BTC/USDT", "s", row("a"));
    oldView.holdNext("signal");
    const late = old.deletePendingSignal("BTC/USDT", "s").catch((error: unknown) => error);
    oldView.hold();
    await sleep(400);
    expect(await next.waitForInit("BTC/USDT", "s")).toEqual(row("a"));
    oldView.resume();
    await late;
    await sleep(20);
    expect(await stored(memory)).toMatchObject({ id: "a" });
  });

  it("an owner's fences come from the key's own revision: a higher revision of another symbol cannot lift a late write above the next owner's gap", async () => {
    const memory = new MemoryRecordStore();
    const oldView = new HoldingRecordStore(memory);
    const old = adapterOn(oldView, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    const next = adapterOn(memory, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    await old.setPendingSignal("BTC/USDT", "s", row("a"));
    // Another symbol of the strategy far above: another process raised it.
    await memory.write({ namespace: "signal", parts: ["s", "ETH/USDT"] }, JSON.stringify(row("eth")), {
      condition: { below: 4 * 2 ** 30 },
    });
    await old.setPendingSignal("ETH/USDT", "s", row("eth-2"));
    oldView.holdNext("signal");
    const late = old.setPendingSignal("BTC/USDT", "s", row("late")).catch((error: unknown) => error);
    oldView.hold();
    await sleep(400);
    expect(await next.waitForInit("BTC/USDT", "s")).toEqual(row("a"));
    await next.setPendingSignal("BTC/USDT", "s", row("next"));
    oldView.resume();
    await late;
    await sleep(20);
    expect(await stored(memory)).toMatchObject({ id: "next" });
  });

  it("after a lost lease and a refused retake, a write still refuses, also once the other owner is gone", async () => {
    const memory = new MemoryRecordStore();
    const pausedView = new HoldingRecordStore(memory);
    const paused = adapterOn(pausedView, { exclusive: { leaseMs: 300 }, timeoutMs: 100 });
    const next = new PersistSignalAdapter(new RecordSignalStore(memory), {
      exclusive: { leaseMs: 300 },
      timeoutMs: 100,
    });
    await paused.setPendingSignal("BTC/USDT", "s", row("a"));
    pausedView.hold();
    await sleep(400);
    await next.setPendingSignal("BTC/USDT", "s", row("next"));
    pausedView.resume();
    await expect(paused.setPendingSignal("BTC/USDT", "s", row("b"))).rejects.toBeInstanceOf(OwnershipLostError);
    await expect(paused.waitForInit("BTC/USDT", "s")).rejects.toBeInstanceOf(OwnershipError);
    await next.close();
    await expect(paused.setPendingSignal("BTC/USDT", "s", row("stale"))).rejects.toBeInstanceOf(OwnershipLostError);
    expect(await stored(memory)).toMatchObject({ id: "next" });
    expect(await paused.waitForInit("BTC/USDT", "s")).toEqual(row("next"));
  });

  it("a lease of another symbol of the strategy given back meanwhile does not refuse a take", async () => {
    const memory = new MemoryRecordStore();
    const first = adapterOn(memory, { exclusive: { leaseMs: 5_000 }, timeoutMs: 1_000 });
    await first.waitForInit("BTC/USDT", "s");
    const view = new HoldingRecordStore(memory);
    const second = adapterOn(view, { exclusive: { leaseMs: 5_000 }, timeoutMs: 1_000 });
    // The take has read the lease record; its write waits while the other lease of "s" goes back.
    view.holdNext("lease");
    const take = second.waitForInit("ETH/USDT", "s");
    await sleep(20);
    await first.close();
    view.resume();
    expect(await take).toBeNull();
  });

  it("a held key is renewed in the background and stays owned well past one lease", async () => {
    const persist = new PersistMemory();
    const owner = new PersistSignalAdapter(persist, { exclusive: { leaseMs: 150 }, timeoutMs: 50 });
    const other = new PersistSignalAdapter(persist, { exclusive: { leaseMs: 150 }, timeoutMs: 50 });
    closers.push(
      () => owner.close(),
      () => other.close(),
    );
    await owner.waitForInit("BTC/USDT", "s");
    await sleep(500);
    await owner.setPendingSignal("BTC/USDT", "s", row("still-mine"));
    await expect(other.waitForInit("BTC/USDT", "s")).rejects.toBeInstanceOf(OwnershipError);
  });

  it("refuses exclusive on a backend that implements only PersistBase", async () => {
    const memory = new PersistMemory();
    const plain = {
      name: "plain",
      writeSignalData: memory.writeSignalData.bind(memory),
      readSignalData: memory.readSignalData.bind(memory),
      deleteSignalData: memory.deleteSignalData.bind(memory),
    };
    const adapter = new PersistSignalAdapter(plain, { exclusive: true });
    await expect(adapter.waitForInit("BTC/USDT", "s")).rejects.toThrow(/exclusive needs a record store/);
  });
});
