import type { ISignalRow } from "@persist-kit/core";
import { describe, expect, it } from "vitest";
import type { SignalStore } from "../src/model.js";
import { runBlock, runInFlight, withDeadline } from "../src/runner.js";
import { benchKeys, benchRows, SIGNAL_BYTES } from "../src/workload.js";

function mapStore(): SignalStore & { calls: string[] } {
  const rows = new Map<string, ISignalRow>();
  const calls: string[] = [];
  return {
    calls,
    write: async (key, row) => {
      calls.push(`write ${key.id}`);
      rows.set(key.id, row);
    },
    read: async (key) => {
      calls.push(`read ${key.id}`);
      return rows.get(key.id) ?? null;
    },
    delete: async (key) => {
      calls.push(`delete ${key.id}`);
      rows.delete(key.id);
    },
    close: async () => {},
  };
}

describe("runInFlight", () => {
  it("runs every index once, never more than depth at a time", async () => {
    let pending = 0;
    let most = 0;
    const seen: number[] = [];
    await runInFlight(50, 8, async (index) => {
      pending++;
      most = Math.max(most, pending);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(index);
      pending--;
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, index) => index));
    expect(most).toBe(8);
  });
});

describe("runBlock", () => {
  it("writes, reads and deletes every key once per pass and times every operation", async () => {
    const keys = benchKeys(5);
    const store = mapStore();
    const times = await runBlock(store, "in-flight-4", 2, { keys, rows: benchRows(keys) });
    expect(times.write.latenciesUs).toHaveLength(10);
    expect(times.read.latenciesUs).toHaveLength(10);
    expect(times.delete.latenciesUs).toHaveLength(10);
    const phases = store.calls.map((call) => call.split(" ")[0]);
    expect(phases).toEqual([
      ...Array(5).fill("write"),
      ...Array(5).fill("read"),
      ...Array(5).fill("delete"),
      ...Array(5).fill("write"),
      ...Array(5).fill("read"),
      ...Array(5).fill("delete"),
    ]);
  });
});

describe("withDeadline", () => {
  it("rejects with what took too long, and passes a settled result through", async () => {
    await expect(withDeadline(new Promise(() => {}), 10, "the block")).rejects.toThrow(/the block took longer/);
    await expect(withDeadline(Promise.resolve(3), 1000, "x")).resolves.toBe(3);
  });
});

describe("benchRows", () => {
  it("makes one valid row of exactly the benchmark size per key", () => {
    const keys = benchKeys(300);
    const rows = benchRows(keys);
    expect(new Set(keys.map((key) => key.id)).size).toBe(300);
    for (const row of rows) expect(Buffer.byteLength(JSON.stringify(row))).toBe(SIGNAL_BYTES);
    expect(rows[42]).toMatchObject({ symbol: "S0042/USDT", strategyName: "momentum-bench" });
  });
});
