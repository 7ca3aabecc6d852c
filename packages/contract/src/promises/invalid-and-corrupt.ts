import assert from "node:assert/strict";
import type { ISignalRow, PersistBase } from "@persist-kit/core";
import { rejectsNamed, type SuiteContext, SYMBOL } from "../context.js";
import { makeSignalRow } from "../rows.js";

/** Rows that every backend must refuse, each with the reason. */
export const INVALID_ROWS: ReadonlyArray<[string, unknown]> = [
  ["a NaN price", makeSignalRow(1, { priceOpen: Number.NaN })],
  ["an infinite price", makeSignalRow(1, { priceTakeProfit: Number.POSITIVE_INFINITY })],
  ["a zero price", makeSignalRow(1, { priceStopLoss: 0 })],
  ["a negative price", makeSignalRow(1, { priceOpen: -1 })],
  ["a price given as a string", makeSignalRow(1, { priceOpen: "64000" })],
  ["an infinite timestamp", makeSignalRow(1, { openTimestamp: Number.NEGATIVE_INFINITY })],
  ["an empty id", makeSignalRow(1, { id: "" })],
  ["an unknown position", makeSignalRow(1, { position: "sideways" })],
  ["a missing take profit", { ...makeSignalRow(1), priceTakeProfit: undefined }],
  ["NaN inside an extra field", makeSignalRow(1, { extra: { ratio: Number.NaN } })],
  ["a Date inside an extra field", makeSignalRow(1, { closedAt: new Date(0) })],
  ["not an object", "signal"],
  ["null", null],
];

/** 7. Invalid rows are refused with nothing written; corrupt stored data is reported and left in place. */
export function invalidAndCorrupt<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, assertStored, testTimeout, initializer } = suite;
  runner.describe("7. invalid rows are refused, corrupt data is reported", () => {
    runner.it(
      "invalid rows get InvalidSignalError and the stored row is untouched",
      () =>
        withBackend(async (backend) => {
          const strategy = nextStrategy();
          const good = makeSignalRow(1);
          await backend.writeSignalData(SYMBOL, strategy, good);
          for (const [reason, row] of INVALID_ROWS) {
            const error = await rejectsNamed(
              backend.writeSignalData(SYMBOL, strategy, row as ISignalRow),
              "InvalidSignalError",
              `a row with ${reason}`,
            );
            assert.equal((error as { outcome?: unknown }).outcome, "not-applied", `${reason}: outcome`);
          }
          await assertStored(backend, SYMBOL, strategy, good);
          const fresh = nextStrategy();
          await rejectsNamed(
            backend.writeSignalData(SYMBOL, fresh, makeSignalRow(1, { priceOpen: Number.NaN })),
            "InvalidSignalError",
            "a NaN row for a new key",
          );
          await assertStored(backend, SYMBOL, fresh, null);
        }),
      testTimeout,
    );

    const raw = initializer.raw;
    if (raw === undefined) return;
    const corruptCases: Array<[string, string]> = [
      ["stored JSON that is not a valid signal", JSON.stringify({ ...makeSignalRow(1), priceOpen: -5 })],
      ["stored JSON that is not an object", "[1,2,3]"],
    ];
    if (raw.storesText !== false) corruptCases.push(["unparsable stored data", '{"id": "signal-1", "posi']);
    for (const [what, text] of corruptCases) {
      runner.it(
        `${what} gives CorruptDataError naming the key, and stays in place`,
        () =>
          withBackend(async (backend) => {
            const strategy = nextStrategy();
            await raw.write(backend, SYMBOL, strategy, text);
            const error = await rejectsNamed(backend.readSignalData(SYMBOL, strategy), "CorruptDataError", what);
            assert.ok(
              error.message.includes(strategy) && error.message.includes(SYMBOL),
              `the message names the key: ${error.message}`,
            );
            const after = await raw.read(backend, SYMBOL, strategy);
            assert.ok(after !== null, "the corrupt data was deleted");
            // A store that keeps only JSON (jsonb) may reformat it; compare what it means there.
            if (raw.storesText === false) assert.deepStrictEqual(JSON.parse(after), JSON.parse(text));
            else assert.equal(after, text);
          }),
        testTimeout,
      );
    }
  });
}
