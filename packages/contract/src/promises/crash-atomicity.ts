import assert from "node:assert/strict";
import type { PersistBase } from "@persist-kit/core";
import type { SuiteContext } from "../context.js";
import { runKillTrials } from "../processes.js";

/** 4. A process killed with SIGKILL at any moment of a write leaves the old or the new row, intact. */
export function crashAtomicity<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout, targetOf } = suite;
  if (suite.initializer.worker === undefined) return;
  const killTrials = suite.options.killTrials ?? 200;
  runner.describe("4. a write killed at any moment is atomic", () => {
    runner.it(
      `${killTrials} SIGKILLs mid-write each leave the last acknowledged row or the one in flight, intact`,
      () =>
        withBackend(async (backend) => {
          const report = await runKillTrials(backend, targetOf(backend, nextStrategy()), { trials: killTrials });
          assert.equal(report.trials, killTrials);
        }),
      Math.max(testTimeout, killTrials * 2_000),
    );
  });
}
