import type { ISignalRow, PersistBase } from "@persist-kit/core";

/** The three calls a bot makes on a signal. */
export type Operation = "write" | "read" | "delete";

/** Every operation, in the order each pass runs them: the rows are written, read back, deleted. */
export const OPERATIONS: readonly Operation[] = ["write", "read", "delete"];

/**
 * What a contender is to us: `ours` is the persist-kit backend; `driver` the same command sent with
 * the raw driver (what our backend adds on top of it is the cost we measure); `floor` the least
 * work the job can possibly take; `peer` a library a user would pick instead.
 */
export type Role = "ours" | "driver" | "floor" | "peer";

/** `"sequential"` (one operation at a time) or `"in-flight-N"` (N operations awaited together). */
export type Mode = string;

/** The mode name for `depth` operations in flight. */
export function inFlightMode(depth: number): Mode {
  return `in-flight-${depth}`;
}

/** The number of operations in flight of a mode, 1 for sequential. */
export function modeDepth(mode: Mode): number {
  return mode === "sequential" ? 1 : Number(mode.slice("in-flight-".length));
}

/** A signal's address, in the forms the contenders need. */
export interface BenchKey {
  symbol: string;
  strategyName: string;
  /** `strategy:symbol`, for key-value stores. */
  id: string;
  /** A file-name-safe form of the symbol, for the hand-written file sequences. */
  fileName: string;
}

/** One contender's store, opened and ready. */
export interface SignalStore {
  write(key: BenchKey, row: ISignalRow): Promise<void>;
  /** The stored row; `null` or `undefined` when none is stored. */
  read(key: BenchKey): Promise<unknown>;
  delete(key: BenchKey): Promise<void>;
  close(): Promise<void>;
}

/**
 * A target expressed as a bound on `ours ÷ this contender` for one metric: median latency
 * (`p50Us`, lower is better) or throughput (`opsPerSecond`, higher is better).
 */
export interface Goal {
  /** How the report words it, e.g. "median latency within 1.05× of the raw driver". */
  label: string;
  metric: "p50Us" | "opsPerSecond";
  /** Sequential runs, or every in-flight depth. */
  modes: "sequential" | "in-flight";
  operations: readonly Operation[];
  /** `atMost`: ratio <= limit; `atLeast`: ratio >= limit; `below`: ratio < limit. */
  bound: "atMost" | "atLeast" | "below";
  limit: number;
}

/** One thing measured: our backend, a raw driver, a floor or a peer library. */
export interface Contender {
  /** The name in tables and charts, unique within its family. */
  name: string;
  role: Role;
  /** One line: what exactly it does per operation. */
  description: string;
  /** Targets our backend must reach against this contender. */
  goals?: readonly Goal[];
  /** Why this contender can beat ours with operations in flight; printed when it does. */
  inFlightNote?: string;
  /** Opens its store (connects, creates its table, ...). A failure makes it "not available". */
  open(): Promise<SignalStore>;
}

/** A contender that could not be measured, and why. */
export interface Unavailable {
  name: string;
  reason: string;
}

/** A backend family: our backend, its raw driver, its floor and its peers, on one server. */
export interface Family {
  name: string;
  /** One line on the setup (server, durability settings). */
  description: string;
  contenders: Contender[];
  /** Contenders that could not even be built (package missing, server not configured). */
  unavailable: Unavailable[];
  /** How many passes over all keys one block runs: more for fast stores, so a block lasts long enough. */
  passes: { sequential: number; inFlight: number };
  /** The operations each pass runs, in order. Default: {@link OPERATIONS}. */
  operations?: readonly Operation[];
  /** Only one operation at a time, no in-flight modes. Default: false. */
  sequentialOnly?: boolean;
  /**
   * Opens the family's own persist-kit backend under `name`, a key prefix, table, collection or
   * directory of this run no other contender uses; the fenced measurement runs the adapter on it.
   */
  openBackend?(name: string): Promise<PersistBase>;
  /** Releases what the family set up for every contender (temp dirs, schemas). */
  close(): Promise<void>;
}

/** The result of one operation type in one block: one contender, one mode, one round. */
export interface Measurement {
  family: string;
  contender: string;
  mode: Mode;
  operation: Operation;
  round: number;
  /** Operations timed. */
  count: number;
  opsPerSecond: number;
  /** Median and 99th percentile latency of one operation, in microseconds. */
  p50Us: number;
  p99Us: number;
}
