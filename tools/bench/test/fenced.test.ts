import { PersistMemory } from "@persist-kit/core";
import { describe, expect, it } from "vitest";
import { memoryFamily } from "../src/backends/memory.js";
import { FENCED_CONTENDERS, type FencedResults, fencedFamily } from "../src/fenced.js";
import type { Measurement } from "../src/model.js";
import { countsFor } from "../src/options.js";
import { renderReport } from "../src/report.js";
import type { BenchResults } from "../src/results.js";
import { runBlock, runFamily } from "../src/runner.js";
import { conditionalStore } from "../src/stores.js";
import { evaluateTargets, summarize } from "../src/targets.js";
import { benchKeys, benchRows } from "../src/workload.js";

const keys = benchKeys(6);
const rows = benchRows(keys);
const quiet = () => {};
const setup = { tag: "test", dataDir: "", passes: { sequential: 1, inFlight: 1 } };

describe("runBlock with a subset of operations", () => {
  it("runs only the operations given", async () => {
    const calls: string[] = [];
    const store = {
      write: async () => void calls.push("write"),
      read: async () => null,
      delete: async () => void calls.push("delete"),
      close: async () => {},
    };
    const times = await runBlock(store, "sequential", 2, { keys, rows }, ["write"]);
    expect(calls).toEqual(Array(2 * keys.length).fill("write"));
    expect(times.write.latenciesUs).toHaveLength(2 * keys.length);
    expect(times.read.latenciesUs).toEqual([]);
  });
});

describe("the fenced measurement", () => {
  it("times writes only, one at a time, of the plain, conditional, fenced and exclusive write", async () => {
    const family = fencedFamily(await memoryFamily(setup));
    const run = await runFamily(family, { keys, rows, inFlight: [16], rounds: 2 }, quiet);
    expect(run.failed).toEqual([]);
    expect(new Set(run.measurements.map((entry) => entry.contender))).toEqual(
      new Set(Object.values(FENCED_CONTENDERS)),
    );
    expect(run.measurements.every((entry) => entry.operation === "write" && entry.mode === "sequential")).toBe(true);
    // Three passes per family pass: a block of writes only lasts about as long as a family's.
    expect(run.measurements.every((entry) => entry.count === 3 * keys.length)).toBe(true);
    expect(run.measurements).toHaveLength(4 * 2);
  });

  it("is met when the fenced p50 is at most 1.05× the plain one in the median round, missed above", () => {
    const outline = fencedFamily({ ...familyStub(), name: "redis" });
    const measured = (fenced: number[]) =>
      evaluateTargets(
        [outline],
        [...series(FENCED_CONTENDERS.plain, [100, 100, 100]), ...series(FENCED_CONTENDERS.fenced, fenced)],
        [],
      );
    const [met] = measured([104, 110, 103]);
    expect(met).toMatchObject({ family: "redis", against: FENCED_CONTENDERS.plain, operation: "write", status: "met" });
    expect(met?.ratio).toBeCloseTo(1.04);
    expect(measured([106, 104, 107])[0]?.status).toBe("missed");
  });

  it("reports every backend's row with its ratios and the target's status", () => {
    const measurements = [
      ...series(FENCED_CONTENDERS.plain, [100, 100, 100]),
      ...series(FENCED_CONTENDERS.conditional, [101, 101, 101]),
      ...series(FENCED_CONTENDERS.fenced, [120, 120, 120]),
      ...series(FENCED_CONTENDERS.exclusive, [130, 130, 130]),
    ];
    const outline = fencedFamily({ ...familyStub(), name: "redis" });
    const backend = { ...outline, available: true, unavailable: [] };
    const fenced: FencedResults = {
      available: true,
      backends: [backend],
      summaries: summarize(measurements),
      measurements,
    };
    const report = renderReport(results(fenced, evaluateTargets([backend], measurements, [])));
    expect(report).toContain("#### Fenced writes against plain ones");
    expect(report).toMatch(
      /\| redis \| 100 \/ 200 \| 101 \/ 202 \| 120 \/ 240 \| 130 \/ 260 \| 1\.01× \| 1\.20× \| 1\.20× \| 1\.30× \| 1\.30× \| \*\*missed\*\* \|/,
    );
    expect(report).toMatch(/\| redis \| fenced setPendingSignal p50 cost at most 5% .* \| 1\.20× \*\*missed\*\* \|/);
  });
});

describe("conditionalStore", () => {
  it("fences above the revision it saw, and again when another writer moved the key", async () => {
    const persist = new PersistMemory();
    const store = conditionalStore(persist);
    const [key] = keys as [(typeof keys)[number]];
    await store.write(key, rows[0] as (typeof rows)[number]);
    await persist.writeSignalData(key.symbol, key.strategyName, rows[1] as (typeof rows)[number]);
    await store.write(key, rows[0] as (typeof rows)[number]);
    expect(await persist.readSignalData(key.symbol, key.strategyName)).toEqual(rows[0]);
    expect((await persist.readSignalRecord(key.symbol, key.strategyName)).revision).toBe(3);
  });
});

function series(contender: string, p50s: number[]): Measurement[] {
  return p50s.map((p50Us, round) => ({
    family: "redis",
    contender,
    mode: "sequential",
    operation: "write",
    round,
    count: 100,
    opsPerSecond: 1000,
    p50Us,
    p99Us: 2 * p50Us,
  }));
}

function familyStub() {
  return {
    name: "stub",
    description: "redis-server, appendfsync always",
    contenders: [],
    unavailable: [],
    passes: { sequential: 1, inFlight: 1 },
    openBackend: async () => new PersistMemory(),
    close: async () => {},
  };
}

function results(fenced: FencedResults, targets: BenchResults["targets"]): BenchResults {
  return {
    schema: 1,
    startedAt: "2026-12-02T00:00:00.000Z",
    durationSeconds: 1,
    quick: false,
    buildFailed: false,
    reps: 3,
    only: ["fenced"],
    counts: countsFor(false),
    signalBytes: 420,
    machine: {
      cpus: 2,
      cpuModel: "cpu",
      memoryGiB: 1,
      node: "v20",
      kernel: "6",
      platform: "linux x64",
      loadAverage: { start: 0 },
    },
    versions: [],
    families: [],
    summaries: [],
    targets,
    inFlightWins: [],
    backtest: { available: false, reason: "not selected", results: [] },
    fenced,
    measurements: [],
  };
}
