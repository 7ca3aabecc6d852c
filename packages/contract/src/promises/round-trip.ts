import type { PersistBase } from "@persist-kit/core";
import fc from "fast-check";
import { type SuiteContext, SYMBOL } from "../context.js";
import { makeSignalRow, signalRow } from "../rows.js";

/** 1. A written row reads back deep-equal, every number bit-identical. */
export function roundTrip<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, assertStored, testTimeout } = suite;
  const propertyRuns = suite.options.propertyRuns ?? 40;
  runner.describe("1. a written row reads back exactly", () => {
    runner.it(
      "a realistic row reads back deep-equal, and is what the store holds",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          const row = makeSignalRow(1);
          await backend.writeSignalData(SYMBOL, strategy, row);
          await assertStored(backend, SYMBOL, strategy, row);
        }),
      testTimeout,
    );

    runner.it(
      "arbitrary rows read back with every number bit-identical",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          await fc.assert(
            fc.asyncProperty(signalRow, async (row) => {
              await backend.writeSignalData(SYMBOL, strategy, row);
              await assertStored(backend, SYMBOL, strategy, row);
            }),
            { numRuns: propertyRuns },
          );
        }),
      Math.max(testTimeout, propertyRuns * 500),
    );
  });
}
