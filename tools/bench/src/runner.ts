import { performance } from "node:perf_hooks";
import type { ISignalRow } from "@persist-kit/core";
import {
  type BenchKey,
  type Contender,
  type Family,
  inFlightMode,
  type Measurement,
  type Mode,
  modeDepth,
  OPERATIONS,
  type Operation,
  type SignalStore,
  type Unavailable,
} from "./model.js";
import { roundOrder } from "./schedule.js";
import { percentile } from "./stats.js";

/** What every family runs. */
export interface Workload {
  keys: readonly BenchKey[];
  /** One row per key. */
  rows: readonly ISignalRow[];
  /** The in-flight depths measured besides sequential, e.g. [16, 64]. */
  inFlight: readonly number[];
  /** Timed rounds; each contender runs each mode once per round. */
  rounds: number;
}

/** Everything one family produced. */
export interface FamilyRun {
  measurements: Measurement[];
  /** Contenders that could not be opened, or failed while measured (their results are dropped). */
  failed: Unavailable[];
}

interface OpenContender {
  contender: Contender;
  store: SignalStore;
}

type Log = (line: string) => void;

// A store that hangs (a lost connection, a server that never answers) must not hang the run: it is
// reported as failed once these pass, and the run goes on without it.
const OPEN_DEADLINE_MS = 60_000;
const BLOCK_DEADLINE_MS = 10 * 60_000;

/**
 * Runs a family: opens every contender, checks it reads back what it wrote, warms every
 * contender up with one untimed block of each mode, then runs `workload.rounds` rounds. In each
 * round every mode runs for every contender back to back, in an order rotated per round (A B C,
 * B C A, ...), so drift of the machine lands on all contenders alike and cancels out of ratios.
 */
export async function runFamily(family: Family, workload: Workload, log: Log): Promise<FamilyRun> {
  const state: RunState = { family, workload, active: [], failed: [], measurements: [] };
  for (const contender of family.contenders) {
    const opened = await openChecked(contender, workload);
    if ("reason" in opened) state.failed.push({ name: contender.name, reason: opened.reason });
    else state.active.push(opened);
  }
  const modes: Mode[] = ["sequential", ...(family.sequentialOnly ? [] : workload.inFlight.map(inFlightMode))];
  try {
    log(`[${family.name}] warm-up: ${state.active.map((open) => open.contender.name).join(", ")}`);
    for (const mode of modes) {
      for (const open of [...state.active]) await runSafely(state, open, mode, "warm-up");
    }
    for (let round = 0; round < workload.rounds; round++) {
      log(`[${family.name}] round ${round + 1}/${workload.rounds}`);
      for (const mode of modes) {
        for (const open of roundOrder(state.active, round)) {
          // A contender dropped earlier in this round is skipped.
          if (state.active.includes(open)) await runSafely(state, open, mode, round);
        }
      }
    }
  } finally {
    for (const open of state.active) await closeQuietly(open.store);
  }
  const failedNames = new Set(state.failed.map((entry) => entry.name));
  const measurements = state.measurements.filter((entry) => !failedNames.has(entry.contender));
  return { measurements, failed: state.failed };
}

interface RunState {
  family: Family;
  workload: Workload;
  active: OpenContender[];
  failed: Unavailable[];
  measurements: Measurement[];
}

// A contender that throws is dropped from the rest of the run, and its results with it, so a
// half-measured contender never shows up as if it were complete.
async function runSafely(state: RunState, open: OpenContender, mode: Mode, round: number | "warm-up"): Promise<void> {
  const { family, workload } = state;
  const passes = mode === "sequential" ? family.passes.sequential : family.passes.inFlight;
  try {
    const operations = family.operations ?? OPERATIONS;
    const block = runBlock(open.store, mode, passes, workload, operations);
    const results = await withDeadline(block, BLOCK_DEADLINE_MS, "the block");
    if (round === "warm-up") return;
    for (const operation of operations) {
      const { latenciesUs, elapsedMs } = results[operation];
      state.measurements.push({
        family: family.name,
        contender: open.contender.name,
        mode,
        operation,
        round,
        count: latenciesUs.length,
        opsPerSecond: latenciesUs.length / (elapsedMs / 1000),
        p50Us: percentile(latenciesUs, 50),
        p99Us: percentile(latenciesUs, 99),
      });
    }
  } catch (error) {
    const when = round === "warm-up" ? "the warm-up" : `round ${round + 1}`;
    state.failed.push({ name: open.contender.name, reason: `failed in ${when}, ${mode}: ${reasonOf(error)}` });
    state.active.splice(state.active.indexOf(open), 1);
    await closeQuietly(open.store);
  }
}

interface OperationTimes {
  latenciesUs: number[];
  elapsedMs: number;
}

/**
 * One block: `passes` times, write every key, read every key, delete every key (or only the
 * `operations` given, in their order), with `modeDepth(mode)` operations in flight. Every
 * operation's latency is recorded; throughput is the operations of a type over the wall time of
 * that type's phases.
 */
export async function runBlock(
  store: SignalStore,
  mode: Mode,
  passes: number,
  workload: Pick<Workload, "keys" | "rows">,
  operations: readonly Operation[] = OPERATIONS,
): Promise<Record<Operation, OperationTimes>> {
  const depth = modeDepth(mode);
  const times: Record<Operation, OperationTimes> = {
    write: { latenciesUs: [], elapsedMs: 0 },
    read: { latenciesUs: [], elapsedMs: 0 },
    delete: { latenciesUs: [], elapsedMs: 0 },
  };
  // Collect garbage left by the previous block now, not in the middle of this one.
  globalThis.gc?.();
  for (let pass = 0; pass < passes; pass++) {
    for (const operation of operations) {
      const call = operationCall(store, operation, workload);
      const { latenciesUs } = times[operation];
      const started = performance.now();
      await runInFlight(workload.keys.length, depth, async (index) => {
        const begun = performance.now();
        await call(index);
        latenciesUs.push((performance.now() - begun) * 1000);
      });
      times[operation].elapsedMs += performance.now() - started;
    }
  }
  return times;
}

function operationCall(
  store: SignalStore,
  operation: Operation,
  { keys, rows }: Pick<Workload, "keys" | "rows">,
): (index: number) => Promise<unknown> {
  switch (operation) {
    case "write":
      return (index) => store.write(keys[index] as BenchKey, rows[index] as ISignalRow);
    case "read":
      return (index) => store.read(keys[index] as BenchKey);
    case "delete":
      return (index) => store.delete(keys[index] as BenchKey);
  }
}

/** Runs `run(0)` ... `run(count - 1)` with at most `depth` of them pending at any moment. */
export async function runInFlight(count: number, depth: number, run: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: Math.min(depth, count) }, worker));
}

async function openChecked(contender: Contender, workload: Workload): Promise<OpenContender | { reason: string }> {
  let store: SignalStore | undefined;
  try {
    store = await withDeadline(contender.open(), OPEN_DEADLINE_MS, "opening");
    await withDeadline(checkRoundTrip(store, workload), OPEN_DEADLINE_MS, "the round-trip check");
    return { contender, store };
  } catch (error) {
    await closeQuietly(store);
    return { reason: `failed to start: ${reasonOf(error)}` };
  }
}

// A contender that stores nothing, or something else, would post impossible numbers: check it
// reads back the row it wrote, and nothing once deleted, before timing anything.
async function checkRoundTrip(store: SignalStore, { keys, rows }: Pick<Workload, "keys" | "rows">): Promise<void> {
  const key = keys[0] as BenchKey;
  const row = rows[0] as ISignalRow;
  await store.write(key, row);
  const read = (await store.read(key)) as Partial<ISignalRow> | null | undefined;
  if (read?.id !== row.id || read.note !== row.note) {
    throw new Error(`read back ${JSON.stringify(read)?.slice(0, 80)} instead of the row written`);
  }
  await store.delete(key);
  const deleted = await store.read(key);
  if (deleted !== null && deleted !== undefined) throw new Error("a deleted row still reads back");
}

async function closeQuietly(store: SignalStore | undefined): Promise<void> {
  try {
    await store?.close();
  } catch {
    // Closing is cleanup after a failure already reported; its own error adds nothing.
  }
}

/** `promise`, or a rejection naming `what` once `ms` have passed. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first line of an error's message. */
export function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}
