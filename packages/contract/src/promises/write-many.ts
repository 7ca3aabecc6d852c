import assert from "node:assert/strict";
import type { ISignalRow, PersistBase, SignalEntry } from "@persist-kit/core";
import { recordsOf, rejectsNamed, type SuiteContext } from "../context.js";
import { makeSignalRow } from "../rows.js";

/** 14. writeMany does what the record store declares: atomic, ordered, or absent. */
export function writeMany<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, assertStored, testTimeout } = suite;
  runner.describe("14. writeMany as declared", () => {
    runner.it(
      "declared atomic or ordered: every entry is stored; declared absent: there is no writeMany",
      () =>
        withBackend(async (backend) => {
          const declared = recordsOf(backend)?.capabilities.writeMany;
          if (declared === "none") {
            assert.equal(backend.writeMany, undefined, "a store without writeMany offers none");
            return;
          }
          if (backend.writeMany === undefined) return;
          const strategy = nextStrategy();
          const entries: SignalEntry[] = ["A", "B", "C"].map((symbol, index) => ({
            symbol,
            strategyName: strategy,
            row: makeSignalRow(index),
          }));
          await backend.writeMany(entries);
          for (const entry of entries) await assertStored(backend, entry.symbol, strategy, entry.row);
          await backend.writeMany([]);
        }),
      testTimeout,
    );

    runner.it(
      "an invalid entry anywhere is refused before anything is written",
      () =>
        withBackend(async (backend) => {
          if (backend.writeMany === undefined) return;
          const strategy = nextStrategy();
          await backend.writeSignalData("A", strategy, makeSignalRow(1));
          const invalidRow = [
            { symbol: "A", strategyName: strategy, row: makeSignalRow(2) },
            { symbol: "B", strategyName: strategy, row: makeSignalRow(3, { priceOpen: Number.NaN }) as ISignalRow },
          ];
          await rejectsNamed(backend.writeMany(invalidRow), "InvalidSignalError", "a NaN row second");
          const invalidKey = [
            { symbol: "A", strategyName: strategy, row: makeSignalRow(2) },
            { symbol: "", strategyName: strategy, row: makeSignalRow(3) },
          ];
          await rejectsNamed(backend.writeMany(invalidKey), "InvalidKeyError", "an empty symbol second");
          await assertStored(backend, "A", strategy, makeSignalRow(1));
          await assertStored(backend, "B", strategy, null);
        }),
      testTimeout,
    );
  });
}
