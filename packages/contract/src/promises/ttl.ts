import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { type SuiteContext, SYMBOL, sleep } from "../context.js";
import { makeSignalRow } from "../rows.js";

/** 10. Optional TTL, off by default: an expired key reads null at once. */
export function ttl<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout } = suite;
  if (suite.initializer.ttl !== true) return;
  runner.describe("10. TTL, off by default", () => {
    runner.it(
      "an expired row reads null at once, with no sweeper to wait for, and is not listed",
      () =>
        withBackend(
          async (backend) => {
            const strategy = nextStrategy();
            await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(1));
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategy), makeSignalRow(1));
            // 1 s past expiry: far shorter than any periodic sweeper (MongoDB's runs every 60 s).
            await sleep(1_500);
            assert.strictEqual(await backend.readSignalData(SYMBOL, strategy), null);
            if (backend.keys !== undefined) {
              for await (const key of backend.keys()) {
                assert.notEqual(key.strategyName, strategy, "an expired key is listed");
              }
            }
          },
          { ttlMs: 500 },
        ),
      testTimeout,
    );

    runner.it(
      "without ttlMs a row does not expire",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(1));
          await sleep(1_500);
          assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategy), makeSignalRow(1));
        }),
      testTimeout,
    );
  });
}
