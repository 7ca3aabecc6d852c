import assert from "node:assert/strict";
import type { PersistBase, SignalKey } from "@persist-kit/core";
import { collectKeys, keyText, rejectsNamed, type SuiteContext } from "../context.js";
import { INVALID_NAMES, makeSignalRow, TRICKY_NAMES } from "../rows.js";

/** 3. Keys never collide, never escape the namespace; invalid names are refused before any I/O. */
export function keyIsolation<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, assertStored, testTimeout } = suite;
  const trickyKeys: SignalKey[] = [
    ...TRICKY_NAMES.map((name) => ({ strategyName: "tricky", symbol: name })),
    ...TRICKY_NAMES.map((name) => ({ strategyName: name, symbol: "tricky" })),
    { strategyName: "a:b", symbol: "c" },
    { strategyName: "a", symbol: "b:c" },
  ];

  runner.describe("3. keys are isolated", () => {
    runner.it(
      "names with : / { } $ . .. spaces and unicode are distinct keys that read back",
      () =>
        withBackend(async (backend) => {
          for (const [index, key] of trickyKeys.entries()) {
            await backend.writeSignalData(key.symbol, key.strategyName, makeSignalRow(index, { note: keyText(key) }));
          }
          for (const [index, key] of trickyKeys.entries()) {
            await assertStored(backend, key.symbol, key.strategyName, makeSignalRow(index, { note: keyText(key) }));
          }
          if (backend.keys !== undefined) {
            const listed = (await collectKeys(backend)).map(keyText).sort();
            const unique = [...new Set(trickyKeys.map(keyText))].sort();
            assert.deepStrictEqual(listed, unique, "keys() lists exactly the written keys, decoded");
          }
        }),
      Math.max(testTimeout, 60_000),
    );

    runner.it(
      "another namespace sees none of them",
      () =>
        withBackend(async (backend) => {
          for (const key of trickyKeys) {
            await backend.writeSignalData(key.symbol, key.strategyName, makeSignalRow(1));
          }
          await withBackend(async (other) => {
            for (const key of trickyKeys) {
              assert.strictEqual(await other.readSignalData(key.symbol, key.strategyName), null, keyText(key));
            }
            assert.deepStrictEqual(await collectKeys(other), []);
          });
        }),
      Math.max(testTimeout, 60_000),
    );

    runner.it(
      "empty names, control characters, lone surrogates and names over 255 UTF-8 bytes get InvalidKeyError before any I/O",
      () =>
        withBackend(async (backend) => {
          const row = makeSignalRow(1);
          for (const name of INVALID_NAMES) {
            for (const [symbol, strategy] of [
              [name, "valid"],
              ["valid", name],
            ] as const) {
              const what = `name ${JSON.stringify(name).slice(0, 40)}`;
              await rejectsNamed(backend.writeSignalData(symbol, strategy, row), "InvalidKeyError", `write, ${what}`);
              await rejectsNamed(backend.readSignalData(symbol, strategy), "InvalidKeyError", `read, ${what}`);
              await rejectsNamed(backend.deleteSignalData(symbol, strategy), "InvalidKeyError", `delete, ${what}`);
            }
          }
          assert.deepStrictEqual(await collectKeys(backend), [], "nothing was written");
        }),
      testTimeout,
    );
  });
}
