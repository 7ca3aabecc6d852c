import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { recordsOf, rejectsNamed, type SuiteContext, SYMBOL } from "../context.js";
import { exitsAfterClose } from "../processes.js";
import { makeSignalRow } from "../rows.js";

/** 9. close() waits for running operations, releases what the backend opened, and refuses later calls. */
export function closeReleases<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, initializer, nextStrategy, testTimeout, withBackend, targetOf } = suite;
  runner.describe("9. close releases the store", () => {
    runner.it(
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

    runner.it(
      "close() waits for operations already started; later ones reject with BackendClosedError, nothing sent",
      async () => {
        const backend = await initializer.create({});
        const strategy = nextStrategy();
        const writes = Array.from({ length: 5 }, (_, index) =>
          backend.writeSignalData(`S${index}`, strategy, makeSignalRow(index)),
        );
        const closed = backend.close?.();
        // Every write started before close() settles as a write, not as a closed error.
        await Promise.all(writes);
        await closed;
        const error = await rejectsNamed(
          backend.readSignalData(SYMBOL, strategy),
          "BackendClosedError",
          "read after close",
        );
        assert.equal((error as { code?: unknown }).code, "PERSIST_BACKEND_CLOSED");
        assert.equal((error as { outcome?: unknown }).outcome, "not-applied");
        await rejectsNamed(backend.writeSignalData(SYMBOL, strategy, makeSignalRow(1)), "BackendClosedError", "write");
        await rejectsNamed(backend.deleteSignalData(SYMBOL, strategy), "BackendClosedError", "delete");
        // The writes before close() are stored: a new backend over the same store would see them;
        // this one may not be asked any more.
      },
      testTimeout,
    );

    runner.it(
      "a listing cut by close() rejects with BackendClosedError instead of ending early",
      () =>
        withBackend(async (backend) => {
          const records = recordsOf(backend);
          if (records === undefined) return;
          const strategy = nextStrategy();
          for (let index = 0; index < 3; index++) {
            await backend.writeSignalData(`S${index}`, strategy, makeSignalRow(index));
          }
          const first = await records.list("signal", { prefix: [strategy], limit: 1 });
          assert.equal(first.records.length, 1, "a page of one");
          assert.ok(first.cursor !== undefined, "more pages follow");
          await records.close();
          await rejectsNamed(
            records.list("signal", { prefix: [strategy], limit: 1, cursor: first.cursor }),
            "BackendClosedError",
            "the next page after close()",
          );
        }),
      testTimeout,
    );

    if (initializer.worker !== undefined) {
      runner.it(
        "a process exits by itself after close()",
        () =>
          withBackend(async (backend) => {
            await exitsAfterClose(targetOf(backend, nextStrategy()));
          }),
        Math.max(testTimeout, 60_000),
      );
    }
  });
}
