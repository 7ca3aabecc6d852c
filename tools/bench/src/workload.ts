import { makeSignalRow } from "@persist-kit/contract";
import { type ISignalRow, serializeSignalRow } from "@persist-kit/core";
import type { BenchKey } from "./model.js";

/** The size of one stored signal: a realistic live row, with its note padded to reach it. */
export const SIGNAL_BYTES = 420;

/** The strategy every benchmark key belongs to. */
export const STRATEGY_NAME = "momentum-bench";

const NOTE_TEXT = "breakout above the 4h range with rising volume; stop below the last swing low. ";

/** `count` keys of one strategy, with ccxt-style symbols such as `S0042/USDT`. */
export function benchKeys(count: number): BenchKey[] {
  return Array.from({ length: count }, (_, index) => {
    const base = `S${String(index).padStart(4, "0")}`;
    const symbol = `${base}/USDT`;
    return { symbol, strategyName: STRATEGY_NAME, id: `${STRATEGY_NAME}:${symbol}`, fileName: `${base}-USDT` };
  });
}

/**
 * The row stored under `key`: the contract suite's realistic row for that key, its `note` padded
 * so the JSON is exactly {@link SIGNAL_BYTES} bytes (or as close as a non-empty note allows).
 */
export function benchRow(sequence: number, key: BenchKey): ISignalRow {
  const fields = { symbol: key.symbol, strategyName: key.strategyName };
  const bare = makeSignalRow(sequence, { ...fields, note: "" });
  const missing = SIGNAL_BYTES - Buffer.byteLength(serializeSignalRow(bare));
  return makeSignalRow(sequence, { ...fields, note: NOTE_TEXT.repeat(8).slice(0, Math.max(1, missing)) });
}

/** One row per key, built once, so building rows is never part of a timed operation. */
export function benchRows(keys: readonly BenchKey[]): ISignalRow[] {
  return keys.map((key, index) => benchRow(index, key));
}
