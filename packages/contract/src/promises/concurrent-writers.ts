import type { PersistBase } from "@persist-kit/core";
import type { SuiteContext } from "../context.js";
import { runConcurrentWriters } from "../processes.js";

/** 6. Several processes writing one key end with one written row, intact. */
export function concurrentWriters<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout, targetOf, options } = suite;
  if (suite.initializer.worker === undefined) return;
  const writers = options.concurrentWriters ?? 4;
  runner.describe("6. concurrent writers to one key", () => {
    runner.it(
      `${writers} processes writing one key end with one writer's last row, intact`,
      () =>
        withBackend(async (backend) => {
          await runConcurrentWriters(backend, targetOf(backend, nextStrategy()), {
            writers,
            writesPerWriter: options.writesPerWriter ?? 50,
          });
        }),
      Math.max(testTimeout, 120_000),
    );
  });
}
