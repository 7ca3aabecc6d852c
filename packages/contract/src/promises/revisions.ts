import assert from "node:assert/strict";
import type { PersistBase, RecordChange, RecordCondition, RecordKey, RecordRead, RecordStore } from "@persist-kit/core";
import fc from "fast-check";
import { recordsOf, type SuiteContext } from "../context.js";
import { startRecordWorker } from "../processes.js";

const NAMESPACE = "contract-revision";

type Step =
  | { op: "write"; key: number; conditional: "none" | "at" | "stale" | "below" }
  | { op: "delete"; key: number; conditional: "none" | "at" | "stale" | "below" };

const step: fc.Arbitrary<Step> = fc.record({
  op: fc.constantFrom("write" as const, "delete" as const),
  key: fc.integer({ min: 0, max: 2 }),
  conditional: fc.constantFrom("none" as const, "at" as const, "stale" as const, "below" as const),
});

/** Revisions only grow: across writes, deletes, conditions, keys of one group, and a new process. */
export function revisions<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout, initializer } = suite;
  const propertyRuns = suite.options.propertyRuns ?? 40;
  runner.describe("13. revisions only grow", () => {
    runner.it(
      "any sequence of writes and deletes on keys of one group: every key's revision only grows, and its own revision is a condition that holds",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          await fc.assert(
            fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
              const group = nextStrategy();
              const keys = [0, 1, 2].map((index) => ({ namespace: NAMESPACE, parts: [group, `k${index}`] }));
              const seen = keys.map(() => 0);
              for (const [index, { op, key, conditional }] of steps.entries()) {
                const target = keys[key] as RecordKey;
                const current: number = (await store.read(target)).revision;
                assert.ok(
                  current >= (seen[key] as number),
                  `step ${index}: ${key} went from ${seen[key]} to ${current}`,
                );
                const condition: RecordCondition | undefined =
                  conditional === "none"
                    ? undefined
                    : conditional === "at"
                      ? { revision: current }
                      : conditional === "stale"
                        ? { revision: current === 0 ? 1 : current - 1 }
                        : { below: current + 2 };
                const options = condition === undefined ? {} : { condition };
                const change: RecordChange =
                  op === "write"
                    ? await store.write(target, JSON.stringify({ index }), options)
                    : await store.delete(target, options);
                if (conditional === "stale")
                  assert.equal(change.applied, false, `step ${index}: a stale condition applied`);
                if (conditional === "at" || conditional === "below") {
                  assert.equal(
                    change.applied,
                    true,
                    `step ${index}: ${JSON.stringify(condition)} on revision ${current} did not apply`,
                  );
                }
                const after = await store.read(target);
                assert.equal(after.revision, change.revision, `step ${index}: the read revision is the change's`);
                assert.ok(
                  after.revision >= current,
                  `step ${index}: the revision fell from ${current} to ${after.revision}`,
                );
                seen[key] = after.revision;
              }
            }),
            { numRuns: propertyRuns },
          );
        }),
      Math.max(testTimeout, propertyRuns * 1_000),
    );

    runner.it(
      "an applied change raises the revision, a delete included",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const key = { namespace: NAMESPACE, parts: [nextStrategy(), "k"] };
          let last = (await store.read(key)).revision;
          for (let index = 0; index < 10; index++) {
            const write = await store.write(key, JSON.stringify({ index }));
            assert.ok(write.applied && write.revision > last, `write ${index}: ${write.revision} after ${last}`);
            const deleted = await store.delete(key);
            assert.ok(
              deleted.applied && deleted.revision > write.revision,
              `delete ${index}: ${deleted.revision} after ${write.revision}`,
            );
            last = deleted.revision;
          }
        }),
      testTimeout,
    );

    if (initializer.worker === undefined) return;
    const worker = initializer.worker;
    runner.it(
      "a new process sees every key's revision, deleted keys included, and its conditions hold there",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const group = nextStrategy();
          const live = { namespace: NAMESPACE, parts: [group, "live"] };
          const deleted = { namespace: NAMESPACE, parts: [group, "deleted"] };
          for (let index = 0; index < 3; index++) await store.write(live, JSON.stringify({ index }));
          for (let index = 0; index < 4; index++) await store.write(deleted, JSON.stringify({ index }));
          const gone = await store.delete(deleted);
          const other = await startRecordWorker({ worker, options: worker.options(backend) });
          try {
            const liveThere = (await other.send({
              op: "read",
              key: { ...live, parts: [...live.parts] },
            })) as RecordRead;
            assert.deepStrictEqual(liveThere, await store.read(live), "the live key reads the same there");
            const deletedThere = (await other.send({
              op: "read",
              key: { ...deleted, parts: [...deleted.parts] },
            })) as RecordRead;
            assert.equal(deletedThere.found, false);
            assert.ok(deletedThere.revision >= gone.revision, `the deleted key fell to ${deletedThere.revision} there`);
            const stale = await other.send({
              op: "write",
              key: { ...deleted, parts: [...deleted.parts] },
              json: "1",
              condition: { revision: gone.revision - 1 },
            });
            assert.deepStrictEqual(
              stale,
              { applied: false, revision: deletedThere.revision },
              "a write from before the delete",
            );
          } finally {
            await other.stop();
          }
        }),
      Math.max(testTimeout, 60_000),
    );
  });
}

/** Used by backend tests after a server restart: every key still reads at least its revision. */
export async function assertRevisionsKept(
  store: RecordStore,
  expected: ReadonlyArray<{ key: RecordKey; revision: number }>,
): Promise<void> {
  for (const { key, revision } of expected) {
    const read = await store.read(key);
    assert.ok(read.revision >= revision, `${JSON.stringify(key.parts)}: revision ${read.revision}, was ${revision}`);
  }
}
