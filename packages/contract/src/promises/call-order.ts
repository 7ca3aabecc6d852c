import assert from "node:assert/strict";
import type { PersistBase, RecordChange } from "@persist-kit/core";
import { recordsOf, type SuiteContext, SYMBOL } from "../context.js";
import { makeSignalRow } from "../rows.js";

/** Operations on one key, issued without waiting, take effect in call order. */
export function callOrder<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, assertStored, testTimeout } = suite;
  runner.describe("11. operations on one key take effect in call order", () => {
    runner.it(
      "writes and deletes issued together end with the last one, each rejection or success in order",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          for (let round = 0; round < 20; round++) {
            const last = round % 3 === 2 ? null : makeSignalRow(round * 10 + 9);
            const operations = [
              backend.writeSignalData(SYMBOL, strategy, makeSignalRow(round * 10 + 1)),
              backend.deleteSignalData(SYMBOL, strategy),
              backend.writeSignalData(SYMBOL, strategy, makeSignalRow(round * 10 + 2)),
              last === null
                ? backend.deleteSignalData(SYMBOL, strategy)
                : backend.writeSignalData(SYMBOL, strategy, last),
            ];
            await Promise.all(operations);
            await assertStored(backend, SYMBOL, strategy, last);
          }
        }),
      testTimeout,
    );

    runner.it(
      "the revisions of changes issued together grow in call order",
      () =>
        withBackend(async (backend) => {
          const records = recordsOf(backend);
          if (records === undefined) return;
          const key = { namespace: "contract-order", parts: [nextStrategy(), "k"] };
          const changes: Promise<RecordChange>[] = [];
          for (let index = 0; index < 30; index++) {
            changes.push(index % 5 === 4 ? records.delete(key) : records.write(key, JSON.stringify({ index })));
          }
          const revisions = (await Promise.all(changes)).map((change) => change.revision);
          for (let index = 1; index < revisions.length; index++) {
            assert.ok(
              (revisions[index] as number) > (revisions[index - 1] as number),
              `change ${index} has revision ${revisions[index]}, not above ${revisions[index - 1]}: ${revisions.join(",")}`,
            );
          }
        }),
      testTimeout,
    );
  });
}
