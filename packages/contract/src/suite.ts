import type { PersistBase } from "@persist-kit/core";
import { type SuiteContext, suiteContext } from "./context.js";
import { absentAndDeleted } from "./promises/absent-and-deleted.js";
import { callOrder } from "./promises/call-order.js";
import { chaos } from "./promises/chaos.js";
import { closeReleases } from "./promises/close.js";
import { concurrentWriters } from "./promises/concurrent-writers.js";
import { conditions } from "./promises/conditions.js";
import { crashAtomicity } from "./promises/crash-atomicity.js";
import { durability } from "./promises/durability.js";
import { fencing } from "./promises/fencing.js";
import { invalidAndCorrupt } from "./promises/invalid-and-corrupt.js";
import { keyIsolation } from "./promises/key-isolation.js";
import { listing } from "./promises/listing.js";
import { ownership } from "./promises/ownership.js";
import { revisions } from "./promises/revisions.js";
import { roundTrip } from "./promises/round-trip.js";
import { ttl } from "./promises/ttl.js";
import { unavailable } from "./promises/unavailable.js";
import { writeMany } from "./promises/write-many.js";
import type { ContractInitializer, ContractOptions, ContractRunner } from "./types.js";

/** Every promise of the contract, by the name `ContractOptions.promises` selects it with. */
export const CONTRACT_PROMISES = {
  "round-trip": roundTrip,
  absent: absentAndDeleted,
  isolation: keyIsolation,
  crash: crashAtomicity,
  durability,
  "concurrent-writers": concurrentWriters,
  invalid: invalidAndCorrupt,
  unavailable,
  close: closeReleases,
  ttl,
  "call-order": callOrder,
  conditions,
  revisions,
  "write-many": writeMany,
  listing,
  fencing,
  ownership,
  chaos,
} as const satisfies Record<string, <B extends PersistBase>(suite: SuiteContext<B>) => void>;

/** The name of one promise of the contract. */
export type ContractPromise = keyof typeof CONTRACT_PROMISES;

/**
 * Registers the persist-kit contract for one backend with the caller's test runner: one `describe`
 * per promise. Promises that need something the initializer does not give (`worker`, `raw`, `ttl`,
 * `unavailable`) or a record store below the backend (every bundled backend has one, as
 * `backend.records`) register nothing. `options.promises` runs a subset.
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
  const suite = suiteContext(runner, initializer, options);
  const selected = options.promises ?? (Object.keys(CONTRACT_PROMISES) as ContractPromise[]);
  for (const name of selected) {
    if (!Object.hasOwn(CONTRACT_PROMISES, name)) {
      throw new Error(
        `unknown contract promise ${JSON.stringify(name)}; known: ${Object.keys(CONTRACT_PROMISES).join(", ")}`,
      );
    }
  }
  runner.describe(`persist contract: ${initializer.name}`, () => {
    runner.beforeAll(() => initializer.setup?.(), initializer.timeouts?.setup ?? 120_000);
    runner.afterAll(() => initializer.teardown?.(), initializer.timeouts?.teardown ?? 60_000);
    for (const name of selected) CONTRACT_PROMISES[name](suite);
  });
}
