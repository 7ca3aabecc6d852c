import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { type SuiteContext, SYMBOL } from "../context.js";
import { readInFreshProcess, writeInFreshProcess } from "../processes.js";
import { makeSignalRow } from "../rows.js";

/** 5. An acknowledged write survives the process that made it. */
export function durability<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, assertStored, testTimeout, targetOf } = suite;
  if (suite.initializer.worker === undefined) return;
  runner.describe("5. an acknowledged write survives the process", () => {
    runner.it(
      "a fresh process reads what an acknowledged write stored, both ways",
      () =>
        withBackend(async (backend) => {
          const target = targetOf(backend, nextStrategy());
          const written = await writeInFreshProcess(target, 7);
          await assertStored(backend, SYMBOL, target.strategyName, written);
          await backend.writeSignalData(SYMBOL, target.strategyName, makeSignalRow(8));
          assert.deepStrictEqual(await readInFreshProcess(target), makeSignalRow(8));
        }),
      Math.max(testTimeout, 60_000),
    );
  });
}
