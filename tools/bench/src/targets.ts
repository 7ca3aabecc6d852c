import {
  type Contender,
  type Goal,
  type Measurement,
  type Mode,
  OPERATIONS,
  type Operation,
  type Role,
} from "./model.js";
import { median, pairedRatio } from "./stats.js";

/** Our server backends against their raw driver: the same command, as fast. */
export const DRIVER_GOALS: readonly Goal[] = [
  {
    label: "median latency within 1.05× of the raw driver",
    metric: "p50Us",
    modes: "sequential",
    operations: OPERATIONS,
    bound: "atMost",
    limit: 1.05,
  },
  {
    label: "throughput at least 0.9× the raw driver's, operations in flight",
    metric: "opsPerSecond",
    modes: "in-flight",
    operations: OPERATIONS,
    bound: "atLeast",
    limit: 0.9,
  },
];

/** Why a raw driver can be faster: it is the same command without our backend around it. */
export const RAW_DRIVER_NOTE =
  "the same commands with nothing on top: the difference is what persist-kit adds per call " +
  "(key and row checks, key encoding, deadlines, error wrapping)";

/** Against keyv and unstorage: faster on every operation, one at a time. */
export const PEER_GOALS: readonly Goal[] = [
  {
    label: "faster than the peer, one operation at a time",
    metric: "p50Us",
    modes: "sequential",
    operations: OPERATIONS,
    bound: "below",
    limit: 1,
  },
];

/** The file backend's write against the synchronous system calls it cannot avoid. */
export const FILE_FLOOR_GOALS: readonly Goal[] = [
  {
    label: "write within 1.15× of the synchronous system-call floor",
    metric: "p50Us",
    modes: "sequential",
    operations: ["write"],
    bound: "atMost",
    limit: 1.15,
  },
];

/** The file backend's write against other atomic file writers. */
export const FILE_PEER_GOALS: readonly Goal[] = [
  {
    label: "write faster than the peer",
    metric: "p50Us",
    modes: "sequential",
    operations: ["write"],
    bound: "below",
    limit: 1,
  },
];

/** The adapter's fenced write against the backend's plain one: fencing costs at most 5% of the median. */
export const FENCED_GOALS: readonly Goal[] = [
  {
    label: "fenced setPendingSignal p50 cost at most 5% over the plain writeSignalData",
    metric: "p50Us",
    modes: "sequential",
    operations: ["write"],
    bound: "atMost",
    limit: 1.05,
  },
];

/** The medians over rounds of one contender, mode and operation. */
export interface Summary {
  family: string;
  contender: string;
  mode: Mode;
  operation: Operation;
  rounds: number;
  p50Us: number;
  p99Us: number;
  opsPerSecond: number;
}

/** One contender-mode-operation cell of every family, as medians over its rounds. */
export function summarize(measurements: readonly Measurement[]): Summary[] {
  const groups = new Map<string, Measurement[]>();
  for (const entry of measurements) {
    const id = [entry.family, entry.contender, entry.mode, entry.operation].join("\u0000");
    groups.set(id, [...(groups.get(id) ?? []), entry]);
  }
  return [...groups.values()].map((entries) => {
    const [first] = entries as [Measurement];
    return {
      family: first.family,
      contender: first.contender,
      mode: first.mode,
      operation: first.operation,
      rounds: entries.length,
      p50Us: median(entries.map((entry) => entry.p50Us)),
      p99Us: median(entries.map((entry) => entry.p99Us)),
      opsPerSecond: median(entries.map((entry) => entry.opsPerSecond)),
    };
  });
}

/** A per-round number of a measurement that ratios are taken of. */
export type RoundMetric = "p50Us" | "p99Us" | "opsPerSecond";

/** Which cell of the results a value comes from. */
export interface Cell {
  family: string;
  contender: string;
  mode: Mode;
  operation: Operation;
}

/** The values of `metric` for one cell, indexed by round (`undefined` where a round lacks it). */
export function roundSeries(
  measurements: readonly Measurement[],
  cell: Cell,
  metric: RoundMetric,
): (number | undefined)[] {
  const series: (number | undefined)[] = [];
  for (const entry of measurements) {
    const matches =
      entry.family === cell.family &&
      entry.contender === cell.contender &&
      entry.mode === cell.mode &&
      entry.operation === cell.operation;
    if (matches) series[entry.round] = entry[metric];
  }
  return Array.from(series, (value) => value);
}

/** `ours ÷ other` for one metric, mode and operation: the median of the per-round ratios. */
export function ratioAgainst(
  measurements: readonly Measurement[],
  family: string,
  ours: string,
  other: string,
  mode: Mode,
  operation: Operation,
  metric: RoundMetric,
): number | undefined {
  const cell = { family, mode, operation };
  return pairedRatio(
    roundSeries(measurements, { ...cell, contender: ours }, metric),
    roundSeries(measurements, { ...cell, contender: other }, metric),
  );
}

/** What a family's targets need to know about it. */
export interface FamilyOutline {
  name: string;
  contenders: readonly Pick<Contender, "name" | "role" | "goals" | "inFlightNote">[];
}

/** One target for one operation and mode, evaluated. */
export interface TargetResult {
  family: string;
  /** The contender the ratio is taken against. */
  against: string;
  goal: string;
  mode: Mode;
  operation: Operation;
  bound: Goal["bound"];
  limit: number;
  /** `ours ÷ against`, median of the per-round ratios; undefined when either side has no result. */
  ratio: number | undefined;
  status: "met" | "missed" | "not measured";
}

/** Whether `ratio` keeps `bound` `limit`. */
export function meets(ratio: number, bound: Goal["bound"], limit: number): boolean {
  if (bound === "atMost") return ratio <= limit;
  if (bound === "atLeast") return ratio >= limit;
  return ratio < limit;
}

/**
 * Every goal of every contender, evaluated from the measurements: a goal on contender X with
 * limit L is met when the median per-round ratio `ours ÷ X` keeps the bound. A family whose own
 * backend was not measured gets "not measured" for all its goals, never "met".
 */
export function evaluateTargets(
  families: readonly FamilyOutline[],
  measurements: readonly Measurement[],
  inFlightModes: readonly Mode[],
): TargetResult[] {
  const results: TargetResult[] = [];
  for (const family of families) {
    const ours = family.contenders.find((contender) => contender.role === "ours")?.name ?? "";
    for (const contender of family.contenders) {
      for (const goal of contender.goals ?? []) {
        const modes = goal.modes === "sequential" ? ["sequential"] : inFlightModes;
        for (const mode of modes) {
          for (const operation of goal.operations) {
            const ratio = ratioAgainst(measurements, family.name, ours, contender.name, mode, operation, goal.metric);
            let status: TargetResult["status"] = "not measured";
            if (ratio !== undefined) status = meets(ratio, goal.bound, goal.limit) ? "met" : "missed";
            const { bound, limit } = goal;
            results.push({
              family: family.name,
              against: contender.name,
              goal: goal.label,
              mode,
              operation,
              bound,
              limit,
              ratio,
              status,
            });
          }
        }
      }
    }
  }
  return results;
}

/** A contender that moved more operations per second than ours with operations in flight. */
export interface InFlightWin {
  family: string;
  contender: string;
  role: Role;
  mode: Mode;
  operation: Operation;
  /** Its throughput ÷ ours (> 1). */
  factor: number;
  /** Why it can, from the contender's `inFlightNote`. */
  note: string | undefined;
}

/** Every case where a driver or peer beats ours with operations in flight, so the report can say so. */
export function inFlightWins(
  families: readonly FamilyOutline[],
  measurements: readonly Measurement[],
  inFlightModes: readonly Mode[],
): InFlightWin[] {
  const wins: InFlightWin[] = [];
  for (const family of families) {
    const ours = family.contenders.find((contender) => contender.role === "ours")?.name;
    if (ours === undefined) continue;
    for (const contender of family.contenders) {
      if (contender.name === ours || contender.role === "floor") continue;
      for (const mode of inFlightModes) {
        for (const operation of OPERATIONS) {
          const ratio = ratioAgainst(measurements, family.name, ours, contender.name, mode, operation, "opsPerSecond");
          if (ratio === undefined || ratio >= 1) continue;
          const { name, role, inFlightNote: note } = contender;
          wins.push({ family: family.name, contender: name, role, mode, operation, factor: 1 / ratio, note });
        }
      }
    }
  }
  return wins;
}
