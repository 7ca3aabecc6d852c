import assert from "node:assert/strict";
import type { PersistBase, RecordStore } from "@persist-kit/core";
import { recordsOf, type SuiteContext } from "../context.js";

const NAMESPACE = "contract-list";

async function listAll(store: RecordStore, prefix: string[], limit: number): Promise<string[]> {
  const listed: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.list(NAMESPACE, { prefix, limit, ...(cursor === undefined ? {} : { cursor }) });
    assert.ok(page.records.length <= limit, `a page of ${page.records.length} with limit ${limit}`);
    for (const record of page.records) {
      const read = await store.read({ namespace: NAMESPACE, parts: record.parts });
      assert.ok(read.found, `listed ${JSON.stringify(record.parts)} does not read`);
      assert.equal(record.revision, read.revision, `listed revision of ${JSON.stringify(record.parts)}`);
      listed.push(JSON.stringify(record.parts));
    }
    cursor = page.cursor;
    assert.ok(++pages < 1_000, "the listing does not end");
  } while (cursor !== undefined);
  return listed;
}

/** Listing by namespace and key prefix, paged: every live key exactly once. */
export function listing<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout } = suite;
  runner.describe("15. listing, page by page", () => {
    runner.it(
      "every live key of the namespace exactly once, at any page size; a prefix lists only its keys; deleted keys are gone",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const [first, second] = [nextStrategy(), nextStrategy()];
          const keys = [
            [first, "a"],
            [first, "b:c"],
            [first, "d/e"],
            [first, "z", "deeper"],
            [second, "a"],
            [second, "ü"],
            [`${first}x`, "a"],
          ];
          for (const parts of keys) await store.write({ namespace: NAMESPACE, parts }, JSON.stringify(parts));
          await store.write({ namespace: NAMESPACE, parts: [first, "gone"] }, "1");
          await store.delete({ namespace: NAMESPACE, parts: [first, "gone"] });
          await store.write({ namespace: `${NAMESPACE}-other`, parts: [first, "a"] }, "1");
          const mine = keys.map((parts) => JSON.stringify(parts)).sort();
          for (const limit of [1, 2, 3, 1000]) {
            const all = await listAll(store, [], limit);
            assert.deepStrictEqual([...all].sort(), mine, `limit ${limit}: every key once`);
            const firstOnly = await listAll(store, [first], limit);
            assert.deepStrictEqual(
              [...firstOnly].sort(),
              mine.filter((text) => (JSON.parse(text) as string[])[0] === first),
              `limit ${limit}: prefix [first]`,
            );
          }
          const exact = await listAll(store, [first, "z"], 2);
          assert.deepStrictEqual(exact, [JSON.stringify([first, "z", "deeper"])], "a two-part prefix");
        }),
      Math.max(testTimeout, 60_000),
    );
  });
}
