import assert from "node:assert/strict";
import type { PersistBase, RecordChange, RecordKey, RecordRead, RecordStore } from "@persist-kit/core";
import { recordsOf, rejectsNamed, type SuiteContext } from "../context.js";
import { type RecordWorker, startRecordWorker } from "../processes.js";

const NAMESPACE = "contract-condition";

async function expectChange(promise: Promise<RecordChange>, expected: RecordChange, what: string): Promise<void> {
  assert.deepStrictEqual(await promise, expected, what);
}

async function expectRead(store: RecordStore, key: RecordKey, expected: RecordRead, what: string): Promise<void> {
  assert.deepStrictEqual(await store.read(key), expected, what);
}

/** The race rounds: from the options, else `PERSIST_KIT_RACE_ROUNDS`, else 200. */
export function raceRounds(configured: number | undefined): number {
  if (configured !== undefined) return configured;
  const fromEnvironment = Number(process.env.PERSIST_KIT_RACE_ROUNDS);
  return Number.isSafeInteger(fromEnvironment) && fromEnvironment > 0 ? fromEnvironment : 200;
}

/** 12. Conditional writes and deletes: exactly the stated rule, and exactly one winner of a race. */
export function conditions<B extends PersistBase>(suite: SuiteContext<B>): void {
  const { runner, withBackend, nextStrategy, testTimeout, initializer, options } = suite;
  runner.describe("12. conditional writes", () => {
    runner.it(
      "{ revision } and { below } apply exactly when the stored revision allows, on present and absent keys",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const key = { namespace: NAMESPACE, parts: [nextStrategy(), "k"] };
          const a = JSON.stringify({ value: "a" });
          const b = JSON.stringify({ value: "b", price: 0.1 + 0.2 });
          await expectRead(store, key, { found: false, revision: 0 }, "a key never written has revision 0");
          await expectChange(
            store.write(key, a, { condition: { revision: 1 } }),
            { applied: false, revision: 0 },
            "wrong revision on an absent key",
          );
          await expectRead(store, key, { found: false, revision: 0 }, "a lost condition writes nothing");
          await expectChange(
            store.write(key, a, { condition: { revision: 0 } }),
            { applied: true, revision: 1 },
            "revision 0 on an absent key",
          );
          await expectChange(
            store.write(key, b, { condition: { revision: 0 } }),
            { applied: false, revision: 1 },
            "a stale revision",
          );
          await expectRead(store, key, { found: true, json: a, revision: 1 }, "the stale write left the value");
          await expectChange(
            store.write(key, b, { condition: { below: 1 } }),
            { applied: false, revision: 1 },
            "below the stored revision",
          );
          await expectChange(
            store.write(key, b, { condition: { below: 10 } }),
            { applied: true, revision: 10 },
            "a fence above it",
          );
          await expectRead(store, key, { found: true, json: b, revision: 10 }, "the fence stored R");
          await expectChange(store.write(key, a), { applied: true, revision: 11 }, "unconditional takes the next");
          await expectChange(
            store.delete(key, { condition: { revision: 5 } }),
            { applied: false, revision: 11 },
            "a stale delete",
          );
          await expectRead(store, key, { found: true, json: a, revision: 11 }, "the stale delete removed nothing");
          await expectChange(
            store.delete(key, { condition: { revision: 11 } }),
            { applied: true, revision: 12 },
            "delete at the revision",
          );
          await expectRead(store, key, { found: false, revision: 12 }, "a deleted key keeps its revision");
          await expectChange(
            store.write(key, a, { condition: { revision: 11 } }),
            { applied: false, revision: 12 },
            "a write from before the delete",
          );
          await expectChange(
            store.write(key, b, { condition: { revision: 12 } }),
            { applied: true, revision: 13 },
            "a write after the delete",
          );
          await expectChange(store.delete(key), { applied: true, revision: 14 }, "unconditional delete");
          await expectChange(
            store.delete(key),
            { applied: true, revision: 14 },
            "deleting an absent key changes nothing",
          );
          await expectChange(
            store.delete(key, { condition: { below: 14 } }),
            { applied: false, revision: 14 },
            "a fenced delete below",
          );
          await expectChange(
            store.delete(key, { condition: { below: 20 } }),
            { applied: true, revision: 20 },
            "a fenced delete of an absent key",
          );
          await expectRead(store, key, { found: false, revision: 20 }, "the fence raised the absent key");
          await expectChange(
            store.write(key, b, { condition: { below: 20 } }),
            { applied: false, revision: 20 },
            "a late write below the fence",
          );
          await expectChange(store.write(key, b), { applied: true, revision: 21 }, "unconditional after the fence");
        }),
      testTimeout,
    );

    runner.it(
      "malformed conditions get InvalidOptionError before any I/O",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const key = { namespace: NAMESPACE, parts: [nextStrategy(), "k"] };
          const bad = [
            { revision: -1 },
            { below: 0 },
            { revision: 1.5 },
            { revision: 1, below: 2 },
            { after: 1 },
            { revision: 2 ** 52 + 1 },
            { below: Number.MAX_SAFE_INTEGER },
          ];
          for (const condition of bad) {
            await rejectsNamed(
              store.write(key, "1", { condition: condition as { revision: number } }),
              "InvalidOptionError",
              JSON.stringify(condition),
            );
          }
          await expectRead(store, key, { found: false, revision: 0 }, "nothing was written");
        }),
      testTimeout,
    );

    runner.it(
      "values that are not one JSON text, or hold a lone surrogate, get InvalidOptionError and the stored value stays",
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const key = { namespace: NAMESPACE, parts: [nextStrategy(), "k"] };
          const good = JSON.stringify({ value: "good" });
          await store.write(key, good);
          // The second one would smuggle a field into a store that embeds the value in an envelope.
          const bad = ["not json", '1,"revision":0', '{"a":1', "{} {}", " ", ""];
          for (const json of [...bad, `"${String.fromCharCode(0xd800)}"`]) {
            await rejectsNamed(store.write(key, json), "InvalidOptionError", `value ${JSON.stringify(json)}`);
          }
          await expectRead(store, key, { found: true, json: good, revision: 1 }, "nothing was written");
        }),
      testTimeout,
    );

    const worker = initializer.worker;
    if (worker === undefined) return;
    const processes = options.raceProcesses ?? 8;
    const rounds = raceRounds(options.raceRounds);
    runner.it(
      `${processes} processes racing conditional writes and deletes on one key: exactly one winner in each of ${rounds} rounds`,
      () =>
        withBackend(async (backend) => {
          const store = recordsOf(backend);
          if (store === undefined) return;
          const workerOptions = worker.options(backend);
          const racers = await Promise.all(
            Array.from({ length: processes }, () => startRecordWorker({ worker, options: workerOptions })),
          );
          try {
            await race(store, racers, { namespace: NAMESPACE, parts: [nextStrategy(), "raced"] }, rounds);
          } finally {
            await Promise.all(racers.map((racer) => racer.stop()));
          }
        }),
      Math.max(testTimeout, rounds * processes * 100 + 60_000),
    );
  });
}

type RoundKind = "write-at" | "write-below" | "delete-at";
const ROUND_KINDS: readonly RoundKind[] = ["write-at", "write-at", "write-below", "write-at", "delete-at"];

async function race(store: RecordStore, racers: RecordWorker[], key: RecordKey, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const before = await store.read(key);
    const kind = ROUND_KINDS[round % ROUND_KINDS.length] as RoundKind;
    // A delete of an absent key races too (a conditional delete of an absent key raises it).
    const condition = kind === "write-below" ? { below: before.revision + 3 } : { revision: before.revision };
    // Sent to every process before any answer is read, so the changes really overlap.
    const answers = await Promise.all(
      racers.map((racer, index) =>
        racer.ask({
          op: kind === "delete-at" ? "delete" : "write",
          key: { namespace: key.namespace, parts: [...key.parts] },
          json: JSON.stringify({ round, racer: index }),
          condition,
        }),
      ),
    );
    const failed = answers.find((answer) => answer.error !== undefined);
    assert.equal(failed, undefined, `round ${round}: a racer failed: ${JSON.stringify(failed?.error)}`);
    const changes = answers.map((answer) => answer.result as RecordChange);
    const winners = changes.flatMap((change, index) => (change.applied ? [index] : []));
    assert.equal(
      winners.length,
      1,
      `round ${round} (${kind} ${JSON.stringify(condition)}): winners ${JSON.stringify(winners)}`,
    );
    const winner = winners[0] as number;
    const won = changes[winner] as RecordChange;
    const after = await store.read(key);
    assert.equal(after.revision, won.revision, `round ${round}: the stored revision is the winner's`);
    if (kind === "delete-at") {
      assert.equal(after.found, false, `round ${round}: the winning delete removed the record`);
    } else {
      assert.ok(after.found, `round ${round}: the winning write is stored`);
      assert.equal(
        after.json,
        JSON.stringify({ round, racer: winner }),
        `round ${round}: the stored value is the winner's`,
      );
    }
    for (const [index, change] of changes.entries()) {
      if (index !== winner)
        assert.ok(change.revision >= before.revision, `round ${round}: a loser saw an older revision`);
    }
  }
}
