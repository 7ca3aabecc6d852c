// One signal written, read back, deleted and read as absent: the smallest proof that a backend
// made with some connection setting (TLS, a scope, a bundle) works, then closed.
import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { makeSignalRow } from "./rows.js";

/** Writes, reads, deletes and reads again one signal of `strategyName` on `persist`, then closes it (also on failure). */
export async function assertRoundTripThenClose(
  persist: PersistBase,
  strategyName = `round-trip-${process.pid}`,
): Promise<void> {
  try {
    await persist.writeSignalData("BTC/USDT", strategyName, makeSignalRow(1));
    assert.deepEqual(await persist.readSignalData("BTC/USDT", strategyName), makeSignalRow(1));
    await persist.deleteSignalData("BTC/USDT", strategyName);
    assert.equal(await persist.readSignalData("BTC/USDT", strategyName), null);
  } finally {
    await persist.close?.();
  }
}
