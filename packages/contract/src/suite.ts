import assert from "node:assert/strict";
import type { ISignalRow, PersistBase, SignalKey } from "@persist-kit/core";
import fc from "fast-check";
import {
  exitsAfterClose,
  type ProcessTarget,
  readInFreshProcess,
  runConcurrentWriters,
  runKillTrials,
  writeInFreshProcess,
} from "./processes.js";
import { INVALID_NAMES, makeSignalRow, signalRow, TRICKY_NAMES } from "./rows.js";
import type { ContractInitializer, ContractOptions, ContractRunner } from "./types.js";

const SYMBOL = "BTC/USDT";

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function rejectsNamed(promise: Promise<unknown>, name: string, what: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error, `${what}: rejected with a non-Error ${String(error)}`);
    assert.equal(error.name, name, `${what}: expected ${name}, got ${error.name}: ${error.message}`);
    return error;
  }
  assert.fail(`${what}: expected ${name}, but it resolved`);
}

async function collectKeys(backend: PersistBase): Promise<SignalKey[]> {
  const keys: SignalKey[] = [];
  if (backend.keys === undefined) return keys;
  for await (const key of backend.keys()) keys.push(key);
  return keys;
}

const keyText = (key: SignalKey) => JSON.stringify([key.strategyName, key.symbol]);

/**
 * Registers the persist-kit contract for one backend with the caller's test runner.
 *
 * @example
 * import { describe, it, beforeAll, afterAll } from "vitest";
 * runPersistContract({ describe, it, beforeAll, afterAll }, {
 *   name: "memory",
 *   create: ({ ttlMs }) => new PersistMemory({ ttlMs }),
 *   ttl: true,
 * });
 */
export function runPersistContract<B extends PersistBase>(
  runner: ContractRunner,
  initializer: ContractInitializer<B>,
  options: ContractOptions = {},
): void {
  const { describe, it, beforeAll, afterAll } = runner;
  const testTimeout = initializer.timeouts?.test ?? 30_000;
  const propertyRuns = options.propertyRuns ?? 40;
  let strategyCounter = 0;
  const nextStrategy = () => `contract-${++strategyCounter}`;

  async function withBackend(body: (backend: B) => Promise<void>, createOptions: { ttlMs?: number } = {}) {
    const backend = await initializer.create(createOptions);
    try {
      await body(backend);
    } finally {
      await (initializer.destroy ? initializer.destroy(backend) : backend.close?.());
    }
  }

  async function assertStored(backend: B, symbol: string, strategyName: string, expected: ISignalRow | null) {
    assert.deepStrictEqual(await backend.readSignalData(symbol, strategyName), expected, "read back");
    if (initializer.raw === undefined) return;
    const text = await initializer.raw.read(backend, symbol, strategyName);
    assert.deepStrictEqual(text === null ? null : JSON.parse(text), expected, "what the store really holds");
  }

  describe(`persist contract: ${initializer.name}`, () => {
    beforeAll(() => initializer.setup?.(), initializer.timeouts?.setup ?? 120_000);
    afterAll(() => initializer.teardown?.(), initializer.timeouts?.teardown ?? 60_000);

    describe("1. a written row reads back exactly", () => {
      it(
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

      it(
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

    describe("2. absent, overwritten and deleted keys", () => {
      it(
        "a key never written reads null, not undefined",
        () =>
          withBackend(async (backend) => {
            assert.strictEqual(await backend.readSignalData(SYMBOL, nextStrategy()), null);
          }),
        testTimeout,
      );

      it(
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

      it(
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

      it(
        "deleting a key never written succeeds",
        () =>
          withBackend(async (backend) => {
            const strategy = nextStrategy();
            await backend.deleteSignalData(SYMBOL, strategy);
            await assertStored(backend, SYMBOL, strategy, null);
          }),
        testTimeout,
      );

      it(
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

    describe("3. keys are isolated", () => {
      const trickyKeys: SignalKey[] = [
        ...TRICKY_NAMES.map((name) => ({ strategyName: "tricky", symbol: name })),
        ...TRICKY_NAMES.map((name) => ({ strategyName: name, symbol: "tricky" })),
        { strategyName: "a:b", symbol: "c" },
        { strategyName: "a", symbol: "b:c" },
      ];

      it(
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

      it(
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

      it(
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

    describe("7. invalid rows are refused, corrupt data is reported", () => {
      it(
        "invalid rows get InvalidSignalError and the stored row is untouched",
        () =>
          withBackend(async (backend) => {
            const strategy = nextStrategy();
            const good = makeSignalRow(1);
            await backend.writeSignalData(SYMBOL, strategy, good);
            for (const [reason, row] of INVALID_ROWS) {
              await rejectsNamed(
                backend.writeSignalData(SYMBOL, strategy, row as ISignalRow),
                "InvalidSignalError",
                `a row with ${reason}`,
              );
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
      if (raw !== undefined) {
        const corruptCases: Array<[string, string]> = [
          ["stored JSON that is not a valid signal", JSON.stringify({ ...makeSignalRow(1), priceOpen: -5 })],
          ["stored JSON that is not an object", "[1,2,3]"],
        ];
        if (raw.storesText !== false) corruptCases.push(["unparsable stored data", '{"id": "signal-1", "posi']);
        for (const [what, text] of corruptCases) {
          it(
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
      }
    });

    describe("9. close releases the store", () => {
      it(
        "close() resolves, and closing twice is harmless",
        async () => {
          const backend = await initializer.create({});
          await backend.writeSignalData(SYMBOL, nextStrategy(), makeSignalRow(1));
          assert.equal(typeof backend.close, "function", "the backend has close()");
          await backend.close?.();
          await backend.close?.();
        },
        testTimeout,
      );
    });

    const worker = initializer.worker;
    if (worker !== undefined) {
      const targetOf = (backend: B, strategyName: string): ProcessTarget => ({
        worker,
        options: worker.options(backend),
        symbol: SYMBOL,
        strategyName,
      });
      const killTrials = options.killTrials ?? 200;

      describe("4-6 and 9. several processes", () => {
        it(
          `${killTrials} SIGKILLs mid-write each leave the last acknowledged row or the one in flight, intact`,
          () =>
            withBackend(async (backend) => {
              const report = await runKillTrials(backend, targetOf(backend, nextStrategy()), { trials: killTrials });
              assert.equal(report.trials, killTrials);
            }),
          Math.max(testTimeout, killTrials * 2_000),
        );

        it(
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

        it(
          `${options.concurrentWriters ?? 4} processes writing one key end with one writer's last row, intact`,
          () =>
            withBackend(async (backend) => {
              await runConcurrentWriters(backend, targetOf(backend, nextStrategy()), {
                writers: options.concurrentWriters ?? 4,
                writesPerWriter: options.writesPerWriter ?? 50,
              });
            }),
          Math.max(testTimeout, 120_000),
        );

        it(
          "a process exits by itself after close()",
          () =>
            withBackend(async (backend) => {
              await exitsAfterClose(targetOf(backend, nextStrategy()));
            }),
          Math.max(testTimeout, 60_000),
        );
      });
    }

    const unavailable = initializer.unavailable;
    if (unavailable !== undefined) {
      describe("8. an unreachable store fails fast", () => {
        it(
          `read, write and delete reject with BackendUnavailableError within ${unavailable.timeoutMs} ms`,
          async () => {
            const backend = await unavailable.create();
            try {
              const operations: Array<[string, () => Promise<unknown>]> = [
                ["write", () => backend.writeSignalData(SYMBOL, "unreachable", makeSignalRow(1))],
                ["read", () => backend.readSignalData(SYMBOL, "unreachable")],
                ["delete", () => backend.deleteSignalData(SYMBOL, "unreachable")],
              ];
              for (const [what, operation] of operations) {
                const started = performance.now();
                await rejectsNamed(operation(), "BackendUnavailableError", what);
                const elapsed = performance.now() - started;
                // Slack for the event loop and a slow machine, but far below "hangs".
                assert.ok(elapsed < unavailable.timeoutMs * 1.5 + 1_000, `${what} took ${Math.round(elapsed)} ms`);
              }
            } finally {
              await backend.close?.();
            }
          },
          Math.max(testTimeout, unavailable.timeoutMs * 6 + 10_000),
        );
      });
    }

    if (initializer.ttl === true) {
      describe("10. TTL, off by default", () => {
        it(
          "an expired row reads null at once, with no sweeper to wait for",
          () =>
            withBackend(
              async (backend) => {
                const strategy = nextStrategy();
                await backend.writeSignalData(SYMBOL, strategy, makeSignalRow(1));
                assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategy), makeSignalRow(1));
                // 1 s past expiry: far shorter than any periodic sweeper (MongoDB's runs every 60 s).
                await sleep(1_500);
                assert.strictEqual(await backend.readSignalData(SYMBOL, strategy), null);
              },
              { ttlMs: 500 },
            ),
          testTimeout,
        );

        it(
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
  });
}
