import { describe, expect, it } from "vitest";
import type { Measurement, Operation } from "../src/model.js";
import {
  DRIVER_GOALS,
  evaluateTargets,
  type FamilyOutline,
  FILE_FLOOR_GOALS,
  inFlightWins,
  meets,
  PEER_GOALS,
  ratioAgainst,
  summarize,
} from "../src/targets.js";

// One measurement per round; only the metric a test looks at matters.
function rounds(
  contender: string,
  mode: string,
  operation: Operation,
  values: { p50Us?: number; opsPerSecond?: number }[],
  family = "redis",
): Measurement[] {
  return values.map((value, round) => ({
    family,
    contender,
    mode,
    operation,
    round,
    count: 100,
    opsPerSecond: value.opsPerSecond ?? 1000,
    p50Us: value.p50Us ?? 100,
    p99Us: (value.p50Us ?? 100) * 2,
  }));
}

const redis: FamilyOutline = {
  name: "redis",
  contenders: [
    { name: "ours", role: "ours" },
    { name: "driver", role: "driver", goals: DRIVER_GOALS },
    { name: "peer", role: "peer", goals: PEER_GOALS, inFlightNote: "it pipelines" },
  ],
};

describe("meets", () => {
  it("keeps each bound at and around its limit", () => {
    expect(meets(1.05, "atMost", 1.05)).toBe(true);
    expect(meets(1.0501, "atMost", 1.05)).toBe(false);
    expect(meets(0.9, "atLeast", 0.9)).toBe(true);
    expect(meets(0.89, "atLeast", 0.9)).toBe(false);
    expect(meets(0.99, "below", 1)).toBe(true);
    expect(meets(1, "below", 1)).toBe(false);
  });
});

describe("ratioAgainst", () => {
  it("pairs rounds: a slow round for both sides does not move the ratio", () => {
    const measurements = [
      ...rounds("ours", "sequential", "write", [{ p50Us: 110 }, { p50Us: 1100 }, { p50Us: 105 }]),
      ...rounds("driver", "sequential", "write", [{ p50Us: 100 }, { p50Us: 1000 }, { p50Us: 100 }]),
    ];
    expect(ratioAgainst(measurements, "redis", "ours", "driver", "sequential", "write", "p50Us")).toBeCloseTo(1.1);
  });
});

describe("evaluateTargets", () => {
  it("marks a latency target met within the limit and missed beyond it", () => {
    const measurements = [
      ...rounds("ours", "sequential", "write", [{ p50Us: 104 }, { p50Us: 104 }, { p50Us: 104 }]),
      ...rounds("driver", "sequential", "write", [{ p50Us: 100 }, { p50Us: 100 }, { p50Us: 100 }]),
      ...rounds("ours", "sequential", "read", [{ p50Us: 120 }, { p50Us: 120 }, { p50Us: 120 }]),
      ...rounds("driver", "sequential", "read", [{ p50Us: 100 }, { p50Us: 100 }, { p50Us: 100 }]),
    ];
    const targets = evaluateTargets([redis], measurements, ["in-flight-16"]);
    const latency = (operation: Operation) =>
      targets.find(
        (target) => target.against === "driver" && target.mode === "sequential" && target.operation === operation,
      );
    expect(latency("write")).toMatchObject({ status: "met", limit: 1.05 });
    expect(latency("write")?.ratio).toBeCloseTo(1.04);
    expect(latency("read")).toMatchObject({ status: "missed" });
    expect(latency("delete")).toMatchObject({ status: "not measured", ratio: undefined });
  });

  it("evaluates throughput targets for every in-flight depth, higher being better", () => {
    const measurements = [
      ...rounds("ours", "in-flight-16", "read", [{ opsPerSecond: 950 }, { opsPerSecond: 950 }, { opsPerSecond: 950 }]),
      ...rounds("driver", "in-flight-16", "read", [
        { opsPerSecond: 1000 },
        { opsPerSecond: 1000 },
        { opsPerSecond: 1000 },
      ]),
      ...rounds("ours", "in-flight-64", "read", [{ opsPerSecond: 800 }, { opsPerSecond: 800 }, { opsPerSecond: 800 }]),
      ...rounds("driver", "in-flight-64", "read", [
        { opsPerSecond: 1000 },
        { opsPerSecond: 1000 },
        { opsPerSecond: 1000 },
      ]),
    ];
    const targets = evaluateTargets([redis], measurements, ["in-flight-16", "in-flight-64"]);
    const throughput = targets.filter((target) => target.operation === "read" && target.mode !== "sequential");
    expect(throughput.map((target) => [target.mode, target.status])).toEqual([
      ["in-flight-16", "met"],
      ["in-flight-64", "missed"],
    ]);
  });

  it("needs ours strictly faster than a peer", () => {
    const measurements = [
      ...rounds("ours", "sequential", "write", [{ p50Us: 100 }]),
      ...rounds("peer", "sequential", "write", [{ p50Us: 100 }]),
      ...rounds("ours", "sequential", "read", [{ p50Us: 90 }]),
      ...rounds("peer", "sequential", "read", [{ p50Us: 100 }]),
    ];
    const targets = evaluateTargets([redis], measurements, []).filter((target) => target.against === "peer");
    expect(targets.map((target) => [target.operation, target.status])).toEqual([
      ["write", "missed"],
      ["read", "met"],
      ["delete", "not measured"],
    ]);
  });

  it("gives one target per goal operation: the file floor goal covers writes only", () => {
    const file: FamilyOutline = {
      name: "file",
      contenders: [
        { name: "ours", role: "ours" },
        { name: "floor", role: "floor", goals: FILE_FLOOR_GOALS },
      ],
    };
    const measurements = [
      ...rounds("ours", "sequential", "write", [{ p50Us: 114 }], "file"),
      ...rounds("floor", "sequential", "write", [{ p50Us: 100 }], "file"),
    ];
    const targets = evaluateTargets([file], measurements, ["in-flight-16"]);
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({ operation: "write", status: "met" });
  });

  it("never reports met when our backend has no results", () => {
    const measurements = rounds("driver", "sequential", "write", [{ p50Us: 100 }]);
    const targets = evaluateTargets([redis], measurements, ["in-flight-16"]);
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.every((target) => target.status === "not measured")).toBe(true);
  });
});

describe("inFlightWins", () => {
  it("lists every driver or peer with more operations per second than ours, with its note", () => {
    const measurements = [
      ...rounds("ours", "in-flight-64", "write", [{ opsPerSecond: 1000 }]),
      ...rounds("driver", "in-flight-64", "write", [{ opsPerSecond: 900 }]),
      ...rounds("peer", "in-flight-64", "write", [{ opsPerSecond: 1500 }]),
    ];
    const wins = inFlightWins([redis], measurements, ["in-flight-64"]);
    expect(wins).toEqual([
      {
        family: "redis",
        contender: "peer",
        role: "peer",
        mode: "in-flight-64",
        operation: "write",
        factor: 1.5,
        note: "it pipelines",
      },
    ]);
  });
});

describe("summarize", () => {
  it("takes the median over rounds of each contender, mode and operation", () => {
    const summaries = summarize([
      ...rounds("ours", "sequential", "write", [{ p50Us: 1 }, { p50Us: 9 }, { p50Us: 5 }]),
      ...rounds("driver", "sequential", "write", [{ p50Us: 2 }, { p50Us: 4 }]),
    ]);
    expect(summaries.map((summary) => [summary.contender, summary.rounds, summary.p50Us])).toEqual([
      ["ours", 3, 5],
      ["driver", 2, 3],
    ]);
  });
});
