import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import { rejectsNamed, type SuiteContext, SYMBOL } from "../context.js";
import { makeSignalRow } from "../rows.js";

/** 8. An unreachable store fails with a backend error within a bounded time; nothing hangs. */
export function unavailable<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, testTimeout } = suite;
  const target = suite.initializer.unavailable;
  if (target === undefined) return;
  runner.describe("8. an unreachable store fails fast", () => {
    runner.it(
      `read, write and delete reject with BackendUnavailableError within ${target.timeoutMs} ms`,
      async () => {
        const backend = await target.create();
        try {
          const operations: Array<[string, () => Promise<unknown>]> = [
            ["write", () => backend.writeSignalData(SYMBOL, "unreachable", makeSignalRow(1))],
            ["read", () => backend.readSignalData(SYMBOL, "unreachable")],
            ["delete", () => backend.deleteSignalData(SYMBOL, "unreachable")],
          ];
          for (const [what, operation] of operations) {
            const started = performance.now();
            const error = await rejectsNamed(operation(), "BackendUnavailableError", what);
            const elapsed = performance.now() - started;
            // Slack for the event loop and a slow machine, but far below "hangs".
            assert.ok(elapsed < target.timeoutMs * 1.5 + 1_000, `${what} took ${Math.round(elapsed)} ms`);
            const outcome = (error as { outcome?: unknown }).outcome;
            assert.ok(outcome === "not-applied" || outcome === "unknown", `${what}: outcome is ${String(outcome)}`);
          }
        } finally {
          await backend.close?.();
        }
      },
      Math.max(testTimeout, target.timeoutMs * 6 + 10_000),
    );
  });
}
