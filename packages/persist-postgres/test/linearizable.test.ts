// Every write and delete of one key is linearizable, also while the key is absent and its first
// write races a delete; a loser reports the revision stored now; batches and deleteExpired take
// their locks in the same order as deletes, so none of them deadlocks; revisions near 2^52 exact.
import type { RecordChange, RecordCondition, RecordKey, RecordRead } from "@persist-kit/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteValues, PostgresRecordStore, recordLocation, writeValues } from "../src/index.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName } from "./postgres-test-env.js";

const schema = uniqueName("pk_linear");
const ROUNDS = Number(process.env.PERSIST_KIT_RACE_ROUNDS) || 200;
let url = "";
let admin: pg.Pool;
let tables = 0;

beforeAll(async () => {
  url = await testDatabaseUrl();
  admin = adminPool(url);
});

afterAll(async () => {
  if (admin === undefined) return;
  await dropSchemas(admin, [schema]);
  await admin.end();
});

const key = (...parts: string[]): RecordKey => ({ namespace: "lin", parts });

async function withStore(body: (store: PostgresRecordStore) => Promise<void>): Promise<void> {
  const store = new PostgresRecordStore({ connectionString: url, schema, table: `records_${++tables}` });
  try {
    await store.ping();
    await body(store);
  } finally {
    await store.close();
  }
}

/** Resolves after `ms` with whether `promise` is still pending. */
async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return !settled;
}

/** Runs one of the store's statements in an open transaction of another connection; commit it to go on. */
async function uncommitted(text: string, values: unknown[]): Promise<pg.PoolClient> {
  const client = await admin.connect();
  await client.query("BEGIN");
  await client.query(text, values);
  return client;
}

async function committedAfter<T>(client: pg.PoolClient, waiting: Promise<T>): Promise<T> {
  try {
    expect(await stillPending(waiting, 300)).toBe(true);
    await client.query("COMMIT");
  } finally {
    client.release();
  }
  return waiting;
}

describe("a delete of an absent key waiting for the key's first write decides on that write", () => {
  for (const group of ["with a floor row", "without a floor row"]) {
    it(`a conditional delete {revision: 0} then finds the record at 1 and does not apply (${group})`, () =>
      withStore(async (store) => {
        if (group === "with a floor row") await store.write(key("g", "other"), "1");
        const writer = await uncommitted(store.sql.write.text, writeValues(recordLocation(key("g", "k")), "1"));
        const deleted = store.delete(key("g", "k"), { condition: { revision: 0 } });
        expect(await committedAfter(writer, deleted)).toEqual({ applied: false, revision: 1 });
        expect(await store.read(key("g", "k"))).toEqual({ found: true, json: "1", revision: 1 });
      }));
  }

  it("an unconditional delete then removes the record and raises the floor above it", () =>
    withStore(async (store) => {
      await store.write(key("g", "other"), "1");
      const writer = await uncommitted(store.sql.write.text, writeValues(recordLocation(key("g", "k")), "1"));
      const deleted = store.delete(key("g", "k"));
      expect(await committedAfter(writer, deleted)).toEqual({ applied: true, revision: 2 });
      expect(await store.read(key("g", "k"))).toEqual({ found: false, revision: 2 });
    }));

  it("an unconditional delete in a group whose first write is uncommitted answers at once, before that write", () =>
    withStore(async (store) => {
      const writer = await uncommitted(store.sql.write.text, writeValues(recordLocation(key("g", "k")), "1"));
      try {
        expect(await store.delete(key("g", "k"))).toEqual({ applied: true, revision: 0 });
        await writer.query("COMMIT");
      } finally {
        writer.release();
      }
      expect(await store.read(key("g", "k"))).toEqual({ found: true, json: "1", revision: 1 });
    }));
});

describe("a change that loses to one it waited for reports the revision stored now", () => {
  it("a conditional write {revision: 0} losing to the key's first write reports 1", () =>
    withStore(async (store) => {
      const writer = await uncommitted(store.sql.write.text, writeValues(recordLocation(key("w", "k")), "1"));
      const written = store.write(key("w", "k"), "2", { condition: { revision: 0 } });
      expect(await committedAfter(writer, written)).toEqual({ applied: false, revision: 1 });
      expect(await store.read(key("w", "k"))).toEqual({ found: true, json: "1", revision: 1 });
    }));

  it("a conditional delete {revision: 0} losing to another one on a new group reports 1", () =>
    withStore(async (store) => {
      const fence = deleteValues(recordLocation(key("d", "k")), { revision: 0 });
      const deleter = await uncommitted(store.sql.delete.text, fence);
      const deleted = store.delete(key("d", "k"), { condition: { revision: 0 } });
      expect(await committedAfter(deleter, deleted)).toEqual({ applied: false, revision: 1 });
      expect(await store.read(key("d", "k"))).toEqual({ found: false, revision: 1 });
    }));
});

type Op =
  | { kind: "write"; json: string; condition?: RecordCondition }
  | { kind: "delete"; condition?: RecordCondition };

interface State {
  found: boolean;
  revision: number;
  json?: string;
}

function meets(current: number, condition: RecordCondition | undefined): boolean {
  if (condition === undefined) return true;
  return "below" in condition ? current < condition.below : current === condition.revision;
}

/** The record store's rules for one key alone in its group (so its floor is its revision when absent). */
function apply(state: State, op: Op): { state: State; change: RecordChange } {
  const current = state.revision;
  const next = op.condition !== undefined && "below" in op.condition ? op.condition.below : current + 1;
  if (op.kind === "delete" && !state.found && op.condition === undefined) {
    return { state, change: { applied: true, revision: current } };
  }
  if (!meets(current, op.condition)) return { state, change: { applied: false, revision: current } };
  const after = op.kind === "write" ? { found: true, revision: next, json: op.json } : { found: false, revision: next };
  return { state: after, change: { applied: true, revision: next } };
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

/** Whether some order of `ops`, run one at a time from `start`, gives every change and the read after. */
function explained(start: State, ops: readonly Op[], changes: readonly RecordChange[], after: RecordRead): boolean {
  return permutations(ops.map((op, index) => ({ op, index }))).some((order) => {
    let state = start;
    for (const { op, index } of order) {
      const step = apply(state, op);
      const reported = changes[index] as RecordChange;
      if (step.change.applied !== reported.applied || step.change.revision !== reported.revision) return false;
      state = step.state;
    }
    const expected = state.found
      ? { found: true, json: state.json, revision: state.revision }
      : { found: false, revision: state.revision };
    return JSON.stringify(expected) === JSON.stringify(after);
  });
}

describe("writes and conditional deletes of absent keys racing from several connections", () => {
  it(
    `in each of ${ROUNDS} rounds one order of the changes explains every result and what is stored`,
    () =>
      withStore(async (store) => {
        const options = { connectionString: url, schema, table: store.table };
        const racers = Array.from({ length: 4 }, () => new PostgresRecordStore(options));
        const unexplained: string[] = [];
        try {
          for (let round = 0; round < ROUNDS; round++) {
            const group = `r${round}`;
            // Half the rounds start without the group's floor row, half at a raised floor.
            const floor = round % 2 === 0 ? 0 : 3;
            if (floor > 0) await store.delete(key(group, "other"), { condition: { below: floor } });
            const ops: Op[] = [
              { kind: "write", json: `{"a":${round}}` },
              { kind: "delete", condition: { revision: floor } },
              { kind: "write", json: `{"b":${round}}`, condition: { revision: floor } },
              round % 4 < 2 ? { kind: "delete", condition: { revision: floor } } : { kind: "delete" },
            ];
            const target = key(group, "k");
            const changes = await Promise.all(
              ops.map((op, index) => {
                const racer = racers[index] as PostgresRecordStore;
                const condition = op.condition === undefined ? {} : { condition: op.condition };
                return op.kind === "write" ? racer.write(target, op.json, condition) : racer.delete(target, condition);
              }),
            );
            const after = await store.read(target);
            if (!explained({ found: false, revision: floor }, ops, changes, after)) {
              unexplained.push(`round ${round}: ${JSON.stringify({ changes, after })}`);
            }
          }
        } finally {
          await Promise.all(racers.map((racer) => racer.close()));
        }
        expect(unexplained).toEqual([]);
      }),
    60_000 + ROUNDS * 200,
  );
});

/**
 * Holds a row lock in an open transaction of another connection, so that a batch (one statement
 * on the server) stops on that row in the middle: `SELECT ... FOR UPDATE` on a stored record, or
 * an uncommitted `INSERT` of an absent one. Roll it back to let the batch go on.
 */
async function blocker(text: string, values: unknown[]): Promise<pg.Client> {
  // A connection of its own: the admin pool stays free for watching the batch.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("BEGIN");
  await client.query(text, values);
  return client;
}

/** Resolves once the table's batch function waits for the lock `holder` holds. */
async function batchWaitsFor(store: PostgresRecordStore, holder: pg.Client): Promise<void> {
  const { processID } = holder as unknown as { processID: number };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND $2::int = ANY (pg_blocking_pids(pid))",
      [`%${store.table}_batch"(%`, processID],
    );
    if (rows[0].n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("the batch never waited for the lock");
}

describe("batches take floors before records, like deletes and deleteExpired: no deadlock", () => {
  it("a batch writing a key another session created after it began, then an absent key of the group, while a delete of the first waits", () =>
    withStore(async (store) => {
      const [a, x, y] = [key("G", "a"), key("G", "x"), key("G", "y")];
      await store.write(a, "0");
      const lockA = await blocker(`SELECT 1 FROM ${store.tableName} WHERE key = $1 FOR UPDATE`, [a.parts]);
      const holdY = await blocker(
        `INSERT INTO ${store.tableName} (namespace, key, value, revision) VALUES ('lin', $1, '0', 99)`,
        [y.parts],
      );
      const other = new PostgresRecordStore({ connectionString: url, schema, table: store.table });
      try {
        const batch = store.writeMany([
          { key: y, json: '{"b":1}' },
          { key: x, json: '{"b":1}' },
          { key: a, json: '{"b":1}' },
        ]);
        await batchWaitsFor(store, lockA); // it holds the group's floor FOR SHARE and waits for G:a
        expect(await other.write(x, '{"o":1}')).toEqual({ applied: true, revision: 1 });
        await lockA.query("COMMIT");
        await batchWaitsFor(store, holdY); // G:a and G:x written, G:y waits
        const deleted = other.delete(x);
        expect(await stillPending(deleted, 300)).toBe(true);
        await holdY.query("ROLLBACK");
        await expect(batch).resolves.toBeUndefined();
        expect(await deleted).toEqual({ applied: true, revision: 3 });
        expect(await other.read(x)).toEqual({ found: false, revision: 3 });
        expect(await other.read(y)).toEqual({ found: true, json: '{"b":1}', revision: 1 });
      } finally {
        await lockA.end();
        await holdY.end();
        await other.close();
      }
    }));

  it("deleteExpired while a batch that rewrites an expired record holds its group's floor", () =>
    withStore(async (store) => {
      const x = key("E", "x");
      await store.write(x, "1", { ttlMs: 60_000 });
      await admin.query(`UPDATE ${store.tableName} SET expires_at = now() - interval '1 millisecond'`);
      const lockX = await blocker(`SELECT 1 FROM ${store.tableName} WHERE key = $1 FOR UPDATE`, [x.parts]);
      const other = new PostgresRecordStore({ connectionString: url, schema, table: store.table });
      try {
        const batch = store.writeMany([
          { key: key("E", "y"), json: "2" },
          { key: x, json: "2" },
        ]);
        await batchWaitsFor(store, lockX); // floor E held FOR SHARE, waiting for E:x
        const expired = other.deleteExpired();
        expect(await stillPending(expired, 300)).toBe(true);
        await lockX.query("COMMIT");
        await expect(batch).resolves.toBeUndefined();
        expect(await expired).toBe(0); // rewritten meanwhile without a TTL: kept
        expect(await other.read(x)).toEqual({ found: true, json: "2", revision: 2 });
      } finally {
        await lockX.end();
        await other.close();
      }
    }));
});

describe("revisions near 2^52 come back exact from bigint columns", () => {
  it("a fence at 2^52, the writes and the delete above it, and the floor they leave", () =>
    withStore(async (store) => {
      const top = 2 ** 52;
      expect(await store.write(key("n", "x"), "1", { condition: { below: top } })).toEqual({
        applied: true,
        revision: top,
      });
      expect(await store.write(key("n", "x"), "2")).toEqual({ applied: true, revision: top + 1 });
      expect(await store.read(key("n", "x"))).toEqual({ found: true, json: "2", revision: top + 1 });
      expect(await store.list("lin")).toEqual({
        records: [{ parts: ["n", "x"], revision: top + 1 }],
        cursor: undefined,
      });
      expect(await store.write(key("n", "x"), "3", { condition: { revision: top } })).toEqual({
        applied: false,
        revision: top + 1,
      });
      expect(await store.delete(key("n", "x"))).toEqual({ applied: true, revision: top + 2 });
      expect(await store.read(key("n", "other"))).toEqual({ found: false, revision: top + 2 });
      expect(await store.delete(key("n", "other"), { condition: { below: top } })).toEqual({
        applied: false,
        revision: top + 2,
      });
    }));
});
