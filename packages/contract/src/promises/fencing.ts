import assert from "node:assert/strict";
import {
  HoldingRecordStore,
  type PersistBase,
  PersistSignalAdapter,
  RecordSignalStore,
  type SignalAdapterOptions,
} from "@persist-kit/core";
import { recordsOf, type SuiteContext, SYMBOL, sleep } from "../context.js";
import { makeTrialRow } from "../rows.js";
import { ownershipTimes } from "./ownership.js";

async function settle(promise: Promise<unknown>): Promise<{ outcome?: string; name?: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error as { outcome?: string; name?: string };
  }
}

/**
 * 11. A failed call never takes effect after a later acknowledged one on the same key, on this
 * backend's own conditions: a store view holds a change back past the adapter's deadline and lets
 * it through after later calls were acknowledged (what a driver's retry queue or a paused server
 * does); the store must refuse it.
 */
export function fencing<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout, options } = suite;
  const { leaseMs, timeoutMs } = ownershipTimes(options);
  const timeout = Math.max(testTimeout, 8 * leaseMs + 20_000);

  const withHeldAdapter = (
    body: (context: {
      backend: B;
      held: HoldingRecordStore;
      adapter: PersistSignalAdapter;
      strategyName: string;
    }) => Promise<void>,
    adapterOptions: SignalAdapterOptions = { timeoutMs },
  ) =>
    withBackend(async (backend) => {
      const records = recordsOf(backend);
      if (records === undefined) return;
      const held = new HoldingRecordStore(records);
      const adapter = new PersistSignalAdapter(new RecordSignalStore(held), adapterOptions);
      try {
        await body({ backend, held, adapter, strategyName: nextStrategy() });
      } finally {
        held.resume();
        await adapter.close();
      }
    });

  runner.describe("11. a failed call never lands after a later acknowledged one", () => {
    for (const later of ["delete", "write"] as const) {
      runner.it(
        `a write that timed out, applied after an acknowledged ${later}, is refused`,
        () =>
          withHeldAdapter(async ({ backend, held, adapter, strategyName }) => {
            await adapter.setPendingSignal(SYMBOL, strategyName, makeTrialRow("fence", 1));
            // The driver gives up on the write after the adapter did; the server applies it later.
            held.holdNext("signal", { failAfterMs: timeoutMs + 100 });
            const error = await settle(adapter.setPendingSignal(SYMBOL, strategyName, makeTrialRow("fence", 2)));
            assert.equal(error?.name, "BackendUnavailableError", "the held write times out");
            assert.equal(error?.outcome, "unknown", "a sent write that timed out may have landed");
            if (later === "delete") await adapter.deletePendingSignal(SYMBOL, strategyName);
            else await adapter.setPendingSignal(SYMBOL, strategyName, makeTrialRow("fence", 3));
            const expected = later === "delete" ? null : makeTrialRow("fence", 3);
            held.resume();
            for (let wait = 0; wait < 100 && held.heldCount > 0; wait++) await sleep(10);
            await sleep(timeoutMs);
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategyName), expected, "the store");
            assert.deepStrictEqual(await adapter.waitForInit(SYMBOL, strategyName), expected, "the adapter");
          }),
        timeout,
      );
    }

    runner.it(
      "calls queued behind a stalled one reject within the deadline of their own call, and are never sent",
      () =>
        withHeldAdapter(async ({ backend, held, adapter, strategyName }) => {
          await adapter.waitForInit(SYMBOL, strategyName);
          held.hold();
          const started = performance.now();
          const errors = await Promise.all(
            [1, 2, 3, 4, 5].map((sequence) =>
              settle(adapter.setPendingSignal(SYMBOL, strategyName, makeTrialRow("queued", sequence))),
            ),
          );
          const elapsed = performance.now() - started;
          assert.ok(
            elapsed < timeoutMs * 2,
            `the five calls took ${Math.round(elapsed)} ms; the bound is ${timeoutMs}`,
          );
          assert.deepStrictEqual(
            errors.map((error) => error?.outcome),
            ["unknown", "not-applied", "not-applied", "not-applied", "not-applied"],
            `outcomes of ${errors.map((error) => `${error?.name}: ${(error as Error | undefined)?.message}`).join("; ")}`,
          );
          held.resume();
          await sleep(timeoutMs);
          const stored = await backend.readSignalData(SYMBOL, strategyName);
          assert.ok(
            stored === null || stored.sequence === 1,
            `only the sent call may have landed: ${JSON.stringify(stored)}`,
          );
        }),
      timeout,
    );

    runner.it(
      "a change the old owner sent before a takeover, applied after it, is refused (exclusive)",
      () =>
        withBackend(async (backend) => {
          const records = recordsOf(backend);
          if (records === undefined) return;
          const strategyName = nextStrategy();
          const held = new HoldingRecordStore(records);
          const exclusive = { exclusive: { leaseMs }, timeoutMs };
          const old = new PersistSignalAdapter(new RecordSignalStore(held), exclusive);
          const next = new PersistSignalAdapter(new RecordSignalStore(records), exclusive);
          try {
            await old.setPendingSignal(SYMBOL, strategyName, makeTrialRow("old", 1));
            held.holdNext("signal");
            const late = settle(old.deletePendingSignal(SYMBOL, strategyName));
            held.hold();
            let taken = false;
            for (let attempt = 0; attempt < 100 && !taken; attempt++) {
              taken = await next.waitForInit(SYMBOL, strategyName).then(
                () => true,
                async () => {
                  await sleep(50);
                  return false;
                },
              );
            }
            assert.ok(taken, "the key was taken after the old lease ran out");
            held.resume();
            await late;
            for (let wait = 0; wait < 100 && held.heldCount > 0; wait++) await sleep(10);
            await sleep(timeoutMs);
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategyName), makeTrialRow("old", 1));
            await next.setPendingSignal(SYMBOL, strategyName, makeTrialRow("next", 2));
            const lost = await settle(old.setPendingSignal(SYMBOL, strategyName, makeTrialRow("old", 3)));
            assert.equal(lost?.name, "OwnershipLostError");
            assert.equal(lost?.outcome, "not-applied");
            assert.deepStrictEqual(await backend.readSignalData(SYMBOL, strategyName), makeTrialRow("next", 2));
          } finally {
            held.resume();
            await old.close();
            await next.close();
          }
        }),
      timeout,
    );
  });
}
