import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { type SuiteContext, SYMBOL } from "../context.js";
import { makeSignalRow } from "../rows.js";

/** 2. Never written or deleted reads null; an overwrite reads the latest; delete is idempotent. */
export function absentAndDeleted<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, assertStored, testTimeout } = suite;
  runner.describe("2. absent, overwritten and deleted keys", () => {
    runner.it(
      "a key never written reads null, not undefined",
      () =>
        withBackend(async (backend) => {
          assert.strictEqual(await backend.readSignalData(SYMBOL, nextStrategy()), null);
        }),
      testTimeout,
    );

    runner.it(
      "an overwrite reads back the latest row",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(1));
          await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(2));
          await assertStored(backend, SYMBOL, strategy, makeSignalRow(2));
        }),
      testTimeout,
    );

    runner.it(
      "a deleted key reads null, and deleting it again succeeds",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(1));
          await backend.deleteSignalData(SYMBOL, strategy);
          await assertStored(backend, SYMBOL, strategy, null);
          await backend.deleteSignalData(SYMBOL, strategy);
          await assertStored(backend, SYMBOL, strategy, null);
        }),
      testTimeout,
    );

    runner.it(
      "deleting a key never written succeeds",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          await backend.deleteSignalData(SYMBOL, strategy);
          await assertStored(backend, SYMBOL, strategy, null);
        }),
      testTimeout,
    );

    runner.it(
      "writing one key leaves its neighbours alone",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          await backend.writeSignalData("ETH/USDT", strategy, makeSignalRow(1));
          await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(2));
          await backend.deleteSignalData(SYMBOL, strategy);
          await assertStored(backend, "ETH/USDT", strategy, makeSignalRow(1));
        }),
      testTimeout,
    );
  });
}
