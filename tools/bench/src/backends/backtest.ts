// The backtest workload: open/close cycles (set, then delete) through PersistSignalAdapter, as a
// backtest drives it, with the memory backend and with persist-redis' batch writer.
import { performance } from "node:perf_hooks";
import { type ISignalRow, type PersistBase, PersistMemory, PersistSignalAdapter } from "@persist-kit/core";
import type { BenchKey } from "../model.js";
import { reasonOf } from "../runner.js";
import { roundOrder } from "../schedule.js";
import { loadPackage, serverUrl } from "../stores.js";
import { benchKeys, benchRows } from "../workload.js";
import type { PersistRedisModule } from "./redis.js";

/** A backend for the backtest, made fresh for every round. */
export interface BacktestVariant {
  name: string;
  description: string;
  /** A share of the workload's cycles, for a variant too slow to run them all. Default: 1. */
  cycleShare?: number;
  open(): Promise<BacktestBackend>;
}

interface BacktestBackend {
  persist: PersistBase;
  /** Resolves once every change is stored (a batch writer's flush); part of the timed work. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** How big the backtest is. */
export interface BacktestWorkload {
  cycles: number;
  symbols: number;
  rounds: number;
}

/** One variant's cycles per second in every round, or why it has none. */
export interface BacktestResult {
  name: string;
  description: string;
  /** Cycles per round. */
  cycles: number;
  cyclesPerSecond: number[];
  failed?: string;
}

/** The variants: memory always; redis ones need REDIS_URL and the built package. */
export function backtestVariants(tag: string): BacktestVariant[] {
  const redis = async () => {
    const url = serverUrl("REDIS_URL");
    const { PersistRedis } = await loadPackage<PersistRedisModule>("@persist-kit/persist-redis");
    return new PersistRedis({ url, prefix: `bench-${tag}-backtest:` });
  };
  return [
    {
      name: "memory",
      description: "PersistSignalAdapter over PersistMemory",
      open: async () => {
        const persist = new PersistMemory();
        return { persist, finish: async () => {}, close: () => persist.close() };
      },
    },
    {
      name: "redis batch writer",
      description: "PersistSignalAdapter over PersistRedis.createBatchWriter(), flushed at the end (timed)",
      open: async () => {
        const backend = await redis();
        const batch = backend.createBatchWriter();
        return {
          persist: batch,
          finish: () => batch.flush(),
          close: async () => {
            await batch.close?.();
            await backend.close();
          },
        };
      },
    },
    {
      name: "redis, one command per call",
      description:
        "PersistSignalAdapter over PersistRedis itself, for contrast: every write and delete script call awaited",
      // Every change waits for an fsync of the append-only file: a tenth of the cycles tells the rate.
      cycleShare: 0.1,
      open: async () => {
        const backend = await redis();
        return { persist: backend, finish: async () => {}, close: () => backend.close() };
      },
    },
  ];
}

/**
 * Runs `workload.cycles` open/close cycles per round, spread over `workload.symbols` symbols that
 * trade at once (one sequence of cycles per symbol, as a multi-symbol backtest runs), after one
 * untimed warm-up of a tenth of the cycles; variants rotate per round like the families.
 */
export async function runBacktest(
  variants: readonly BacktestVariant[],
  workload: BacktestWorkload,
  log: (line: string) => void,
): Promise<BacktestResult[]> {
  const keys = benchKeys(workload.symbols);
  const rows = benchRows(keys);
  const cyclesOf = (variant: BacktestVariant) => Math.round(workload.cycles * (variant.cycleShare ?? 1));
  const results = variants.map((variant) => ({
    name: variant.name,
    description: variant.description,
    cycles: cyclesOf(variant),
    cyclesPerSecond: [] as number[],
    failed: undefined as string | undefined,
  }));
  const resultOf = (variant: BacktestVariant) => results[variants.indexOf(variant)] as BacktestResult;
  for (const variant of variants) {
    try {
      await runCycles(variant, keys, rows, Math.max(workload.symbols, Math.round(cyclesOf(variant) / 10)));
    } catch (error) {
      resultOf(variant).failed = reasonOf(error);
    }
  }
  for (let round = 0; round < workload.rounds; round++) {
    log(`[backtest] round ${round + 1}/${workload.rounds}`);
    for (const variant of roundOrder(variants, round)) {
      const result = resultOf(variant);
      if (result.failed !== undefined) continue;
      try {
        result.cyclesPerSecond.push(await runCycles(variant, keys, rows, cyclesOf(variant)));
      } catch (error) {
        result.failed = reasonOf(error);
      }
    }
  }
  return results.map(({ failed, ...result }) => (failed === undefined ? result : { ...result, failed }));
}

// Returns cycles per second. Each symbol's cycles run in order (the adapter requires it anyway);
// the symbols run side by side.
async function runCycles(
  variant: BacktestVariant,
  keys: readonly BenchKey[],
  rows: readonly ISignalRow[],
  cycles: number,
): Promise<number> {
  const backend = await variant.open();
  try {
    // A backtest may run on a batch writer, whose writes resolve before they are stored.
    const adapter = new PersistSignalAdapter(backend.persist, { acceptQueuedWrites: true });
    for (const key of keys) await adapter.waitForInit(key.symbol, key.strategyName);
    globalThis.gc?.();
    const started = performance.now();
    await Promise.all(
      keys.map(async (key, index) => {
        const row = rows[index] as ISignalRow;
        const own = Math.floor(cycles / keys.length) + (index < cycles % keys.length ? 1 : 0);
        for (let cycle = 0; cycle < own; cycle++) {
          await adapter.setPendingSignal(key.symbol, key.strategyName, row);
          await adapter.deletePendingSignal(key.symbol, key.strategyName);
        }
      }),
    );
    await backend.finish();
    return cycles / ((performance.now() - started) / 1000);
  } finally {
    await backend.close();
  }
}
