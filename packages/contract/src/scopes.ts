// `createPersist(url, { scope })` on one URL: each scope sees its own signals alone.
import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { makeSignalRow } from "./rows.js";

/**
 * Opens the same store three times, with scope `a`, scope `b` (or `names`) and none, through `open` (which
 * calls `createPersist(url, { scope })` or puts `?scope=` in the URL), writes one key in each with
 * a different row, and asserts that each reads and lists its own row alone, and that a delete in
 * one leaves the others. Names are made from `strategyPrefix` so runs do not meet.
 */
export async function assertScopesIsolated(
  open: (scope: string | undefined) => Promise<PersistBase>,
  strategyPrefix = `scopes-${process.pid}-${Date.now()}`,
  names: readonly [string, string] = ["a", "b"],
): Promise<void> {
  const scopes = [...names, undefined];
  const stores = await Promise.all(scopes.map((scope) => open(scope)));
  const strategy = `${strategyPrefix}-s`;
  try {
    for (const [index, store] of stores.entries()) {
      await store.writeSignalData("BTC/USDT", strategy, makeSignalRow(index + 1));
    }
    for (const [index, store] of stores.entries()) {
      assert.deepEqual(
        await store.readSignalData("BTC/USDT", strategy),
        makeSignalRow(index + 1),
        `scope ${scopes[index]}`,
      );
      assert.ok(store.keys !== undefined, "the backend lists its keys");
      const listed = [];
      for await (const key of store.keys()) if (key.strategyName === strategy) listed.push(key);
      assert.deepEqual(listed, [{ strategyName: strategy, symbol: "BTC/USDT" }], `keys of scope ${scopes[index]}`);
    }
    await stores[0]?.deleteSignalData("BTC/USDT", strategy);
    assert.equal(await stores[0]?.readSignalData("BTC/USDT", strategy), null);
    assert.deepEqual(await stores[1]?.readSignalData("BTC/USDT", strategy), makeSignalRow(2));
    assert.deepEqual(await stores[2]?.readSignalData("BTC/USDT", strategy), makeSignalRow(3));
  } finally {
    for (const store of stores) {
      await store.deleteSignalData("BTC/USDT", strategy).catch(() => undefined);
      await store.close?.();
    }
  }
}
