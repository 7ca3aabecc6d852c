// The record store's own promises on PostgreSQL: revisions and floors, what the rows hold, rows
// that are not records, the floor race under READ COMMITTED, list paging, writeMany atomic and
// deadlock-free, close.
import { makeSignalRow } from "@persist-kit/contract";
import { CorruptDataError, type RecordKey } from "@persist-kit/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deleteValues,
  PersistPostgres,
  PostgresRecordStore,
  readValues,
  recordLocation,
  writeValues,
} from "../src/index.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName } from "./postgres-test-env.js";

const schema = uniqueName("pk_records");
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

async function withStore(body: (store: PostgresRecordStore) => Promise<void>): Promise<void> {
  const store = new PostgresRecordStore({ connectionString: url, schema, table: `records_${++tables}` });
  try {
    await store.ping();
    await body(store);
  } finally {
    await store.close();
  }
}

const key = (...parts: string[]): RecordKey => ({ namespace: "risk", parts });

async function floorOf(store: PostgresRecordStore, group: string): Promise<number | undefined> {
  const result = await admin.query(
    `SELECT floor FROM ${store.sql.floorTableName} WHERE namespace = 'risk' AND group_key = $1`,
    [group],
  );
  return result.rows[0] === undefined ? undefined : Number(result.rows[0].floor);
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

/** Runs one of the store's statements inside an open transaction of another connection. */
async function inOpenTransaction(body: (client: pg.PoolClient) => Promise<void>): Promise<pg.PoolClient> {
  const client = await admin.connect();
  await client.query("BEGIN");
  await body(client);
  return client;
}

/** Waits until a statement of the store's own connections waits for a lock. */
async function waitForLockWait(store: PostgresRecordStore): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'persist-kit' AND wait_event_type = 'Lock' AND query LIKE $1",
      [`%${store.table}%`],
    );
    if (rows[0].n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("no statement of the store waited for a lock");
}

describe("revisions and floors", () => {
  it("a delete removes the row and raises the group's floor; other absent keys of the group read the floor, other groups do not", () =>
    withStore(async (store) => {
      for (let index = 0; index < 4; index++) await store.write(key("a", "x"), `${index}`);
      expect(await floorOf(store, "a")).toBe(0); // the group's first write created its floor
      expect(await store.delete(key("a", "x"))).toEqual({ applied: true, revision: 5 });
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${store.tableName}`)).rows[0].n).toBe(0);
      expect(await floorOf(store, "a")).toBe(5);
      expect(await store.read(key("a", "x"))).toEqual({ found: false, revision: 5 });
      expect(await store.read(key("a", "never"))).toEqual({ found: false, revision: 5 });
      expect(await store.read(key("b", "x"))).toEqual({ found: false, revision: 0 });
      expect(await store.write(key("a", "never"), "1")).toEqual({ applied: true, revision: 6 });
    }));

  it("deleting a key below the floor reports the floor, which is what it then reads", () =>
    withStore(async (store) => {
      await store.write(key("a", "low"), "1"); // revision 1
      for (let index = 0; index < 5; index++) await store.write(key("a", "high"), "1");
      await store.delete(key("a", "high")); // floor 6
      const deleted = await store.delete(key("a", "low"));
      expect(deleted).toEqual({ applied: true, revision: 6 });
      expect(await store.read(key("a", "low"))).toEqual({ found: false, revision: 6 });
    }));

  it("an expired record reads absent with its own revision, conditions see that revision, and deleteExpired keeps it in the floor", () =>
    withStore(async (store) => {
      await store.write(key("t", "x"), "1", { ttlMs: 60_000 });
      await store.write(key("t", "x"), "2", { ttlMs: 60_000 });
      await admin.query(`UPDATE ${store.tableName} SET expires_at = now() - interval '1 millisecond'`);
      expect(await store.read(key("t", "x"))).toEqual({ found: false, revision: 2 });
      expect(await store.list("risk")).toEqual({ records: [], cursor: undefined });
      expect(await store.delete(key("t", "x"))).toEqual({ applied: true, revision: 2 }); // changes nothing
      expect(await store.write(key("t", "x"), "3", { condition: { revision: 0 } })).toEqual({
        applied: false,
        revision: 2,
      });
      expect(await store.deleteExpired()).toBe(1);
      expect(await store.read(key("t", "x"))).toEqual({ found: false, revision: 2 });
      expect(await store.write(key("t", "x"), "3", { condition: { revision: 2 } })).toEqual({
        applied: true,
        revision: 3,
      });
    }));

  it("every stored row carries format 1 and the revision; the value is the JSON text exactly as given", () =>
    withStore(async (store) => {
      const spelled = '{"price": 0.1, "list": [1, 2],"a":"\\u0000 \\ud800", "z":5e-324}';
      await store.write(key("f", "y"), spelled);
      expect(await store.read(key("f", "y"))).toEqual({ found: true, json: spelled, revision: 1 });
      await store.delete(key("f", "y"));
      await store.write(key("f", "x"), '{"price": 0.1, "list": [1, 2]}');
      const { rows } = await admin.query(`SELECT key, value, revision, format FROM ${store.tableName}`);
      expect(rows).toEqual([{ key: ["f", "x"], value: { price: 0.1, list: [1, 2] }, revision: "3", format: 1 }]); // above the floor f/y left
      await admin.query(`UPDATE ${store.tableName} SET format = 2`);
      await expect(store.read(key("f", "x"))).rejects.toThrow(/format 2/);
    }));
});

describe("a stored row that is not a record is corrupt data, never an absent key", () => {
  // The table's NOT NULL constraints keep these rows out; a table made by hand without them, or
  // with them dropped, lets them in.
  async function withoutConstraints(store: PostgresRecordStore): Promise<void> {
    await admin.query(
      `ALTER TABLE ${store.tableName} ALTER COLUMN value DROP NOT NULL, ALTER COLUMN revision DROP NOT NULL, ALTER COLUMN format DROP NOT NULL`,
    );
  }

  async function rowsOf(store: PostgresRecordStore): Promise<unknown[]> {
    const { rows } = await admin.query(
      `SELECT key, value::text AS value, revision FROM ${store.tableName} ORDER BY key`,
    );
    return rows;
  }

  it("a signal whose value is SQL NULL: reads reject with CorruptDataError naming the key, keys() lists it, the row stays", async () => {
    const persist = new PersistPostgres({ connectionString: url, schema, table: `records_${++tables}` });
    try {
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      await withoutConstraints(persist.records);
      await admin.query(`UPDATE ${persist.tableName} SET value = NULL`);
      const read = persist.readSignalData("BTC/USDT", "momentum");
      await expect(read).rejects.toBeInstanceOf(CorruptDataError);
      await expect(read).rejects.toMatchObject({
        strategyName: "momentum",
        symbol: "BTC/USDT",
        outcome: "not-applied",
        message: expect.stringMatching(/"momentum"\/"BTC\/USDT".*SQL NULL/),
      });
      await expect(persist.readSignalRecord("BTC/USDT", "momentum")).rejects.toBeInstanceOf(CorruptDataError);
      const keys = [];
      for await (const signalKey of persist.keys()) keys.push(signalKey);
      expect(keys).toEqual([{ strategyName: "momentum", symbol: "BTC/USDT" }]);
      expect(await rowsOf(persist.records)).toEqual([{ key: ["momentum", "BTC/USDT"], value: null, revision: "1" }]);
      // Writing the key again replaces the corrupt value under its revision.
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(2));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(2));
    } finally {
      await persist.close();
    }
  });

  it("a record whose value is SQL NULL is corrupt, one whose value is the JSON text null is the value null", () =>
    withStore(async (store) => {
      await store.write(key("n", "json-null"), "null");
      await store.write(key("n", "sql-null"), "1");
      await withoutConstraints(store);
      await admin.query(`UPDATE ${store.tableName} SET value = NULL WHERE key = $1`, [["n", "sql-null"]]);
      expect(await store.read(key("n", "json-null"))).toEqual({ found: true, json: "null", revision: 1 });
      await expect(store.read(key("n", "sql-null"))).rejects.toMatchObject({
        code: "PERSIST_CORRUPT_DATA",
        record: { namespace: "risk", parts: ["n", "sql-null"] },
      });
      expect((await store.list("risk")).records).toEqual([
        { parts: ["n", "json-null"], revision: 1 },
        { parts: ["n", "sql-null"], revision: 1 },
      ]);
    }));

  it("a record whose revision or format is SQL NULL: read, write and delete reject with CorruptDataError and leave it", () =>
    withStore(async (store) => {
      await store.write(key("v", "no-revision"), "1");
      await store.write(key("v", "no-format"), "1");
      await withoutConstraints(store);
      await admin.query(`UPDATE ${store.tableName} SET revision = NULL WHERE key = $1`, [["v", "no-revision"]]);
      await admin.query(`UPDATE ${store.tableName} SET format = NULL WHERE key = $1`, [["v", "no-format"]]);
      const corrupt = { code: "PERSIST_CORRUPT_DATA", outcome: "not-applied" };
      await expect(store.read(key("v", "no-revision"))).rejects.toMatchObject(corrupt);
      await expect(store.read(key("v", "no-format"))).rejects.toMatchObject(corrupt);
      await expect(store.write(key("v", "no-revision"), "2")).rejects.toMatchObject(corrupt);
      await expect(store.writeMany([{ key: key("v", "no-revision"), json: "2" }])).rejects.toMatchObject(corrupt);
      await expect(store.delete(key("v", "no-revision"))).rejects.toMatchObject(corrupt);
      await expect(store.list("risk")).rejects.toMatchObject(corrupt);
      expect(await rowsOf(store)).toEqual([
        { key: ["v", "no-format"], value: "1", revision: "1" },
        { key: ["v", "no-revision"], value: "1", revision: null },
      ]);
    }));

  it("a group whose revision floor is SQL NULL: reads, writes and deletes of its absent keys reject with CorruptDataError", () =>
    withStore(async (store) => {
      await store.write(key("g", "gone"), "1");
      await store.delete(key("g", "gone"));
      const floors = store.sql.floorTableName;
      await admin.query(`ALTER TABLE ${floors} ALTER COLUMN floor DROP NOT NULL`);
      await admin.query(`UPDATE ${floors} SET floor = NULL`);
      const corrupt = {
        code: "PERSIST_CORRUPT_DATA",
        outcome: "not-applied",
        message: expect.stringMatching(/floor.*SQL NULL/),
      };
      await expect(store.read(key("g", "gone"))).rejects.toMatchObject(corrupt);
      await expect(store.read(key("g", "never"))).rejects.toMatchObject(corrupt);
      await expect(store.write(key("g", "never"), "2")).rejects.toMatchObject(corrupt);
      await expect(store.write(key("g", "never"), "2", { condition: { below: 10 } })).rejects.toMatchObject(corrupt);
      await expect(store.delete(key("g", "gone"), { condition: { below: 10 } })).rejects.toMatchObject(corrupt);
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${store.tableName}`)).rows[0]).toEqual({ n: 0 });
      expect((await admin.query(`SELECT floor FROM ${floors}`)).rows).toEqual([{ floor: null }]);
    }));

  it("a stored key with a NULL part, no parts or two dimensions: list and keys() reject with CorruptDataError naming it", async () => {
    const persist = new PersistPostgres({ connectionString: url, schema, table: `records_${++tables}` });
    try {
      await persist.ping();
      for (const stored of ["{momentum,NULL}", "{}", "{{momentum,BTC}}"]) {
        await admin.query(
          `INSERT INTO ${persist.tableName} (namespace, key, value, revision) VALUES ('signal', $1::text[], '{}', 1)`,
          [stored],
        );
        const keys = async () => {
          for await (const _ of persist.keys());
        };
        await expect(keys()).rejects.toMatchObject({
          code: "PERSIST_CORRUPT_DATA",
          message: expect.stringContaining(persist.tableName),
        });
        await expect(persist.records.list("signal")).rejects.toBeInstanceOf(CorruptDataError);
        await admin.query(`DELETE FROM ${persist.tableName}`);
      }
    } finally {
      await persist.close();
    }
  });
});

describe("the floor race under READ COMMITTED", () => {
  it("a write to an absent key waits for an uncommitted floor raise of its group, then writes above it", () =>
    withStore(async (store) => {
      for (let index = 0; index < 9; index++) await store.write(key("g", "other"), "1");
      const deleter = await inOpenTransaction(async (client) => {
        await client.query(store.sql.delete.text, deleteValues(recordLocation(key("g", "other"))));
      });
      const write = store.write(key("g", "new"), "1");
      try {
        expect(await stillPending(write, 300)).toBe(true);
        await deleter.query("COMMIT");
      } finally {
        deleter.release();
      }
      expect(await write).toEqual({ applied: true, revision: 11 });
    }));

  it("a floor raise waits for an uncommitted write to an absent key of its group", () =>
    withStore(async (store) => {
      for (let index = 0; index < 9; index++) await store.write(key("g", "other"), "1");
      const writer = await inOpenTransaction(async (client) => {
        await client.query(store.sql.write.text, writeValues(recordLocation(key("g", "new")), "1"));
      });
      const deleted = store.delete(key("g", "other"));
      try {
        expect(await stillPending(deleted, 300)).toBe(true);
        await writer.query("COMMIT");
      } finally {
        writer.release();
      }
      expect(await deleted).toEqual({ applied: true, revision: 10 });
      expect(await store.read(key("g", "new"))).toMatchObject({ found: true, revision: 1 });
    }));

  it("a write to an absent key of a group whose floor row is being created waits for it and writes above it", () =>
    withStore(async (store) => {
      const fencer = await inOpenTransaction(async (client) => {
        const fence = deleteValues(recordLocation(key("fresh", "a")), { below: 7 });
        expect((await client.query(store.sql.delete.text, fence)).rows[0].raised).toBe("7");
      });
      const write = store.write(key("fresh", "b"), "1");
      try {
        expect(await stillPending(write, 300)).toBe(true);
        await fencer.query("COMMIT");
      } finally {
        fencer.release();
      }
      expect(await write).toEqual({ applied: true, revision: 8 });
    }));

  it("a conditional write to a key deleted while it waited decides on the floor, not on the deleted row", () =>
    withStore(async (store) => {
      await store.write(key("d", "x"), "1"); // revision 1
      const deleter = await inOpenTransaction(async (client) => {
        await client.query(store.sql.delete.text, deleteValues(recordLocation(key("d", "x"))));
      });
      const write = store.write(key("d", "x"), "2", { condition: { revision: 1 } });
      try {
        expect(await stillPending(write, 300)).toBe(true);
        await deleter.query("COMMIT");
      } finally {
        deleter.release();
      }
      expect(await write).toEqual({ applied: false, revision: 2 });
      expect(await store.read(key("d", "x"))).toEqual({ found: false, revision: 2 });
    }));

  it("the raw read statement answers like the store", () =>
    withStore(async (store) => {
      await store.write(key("r", "x"), "[1]");
      const { rows } = await admin.query(store.sql.read.text, readValues(recordLocation(key("r", "x"))));
      expect(rows[0]).toMatchObject({ json: "[1]", revision: "1", format: 1 });
    }));
});

describe("list: keyset paging in key order", () => {
  const parts = [["a", "1"], ["a", "2"], ["a", "b", "c"], ["a "], ["ab", "1"], ["b", "ü"], ["b", "z"], ["a"]];

  async function listAll(store: PostgresRecordStore, limit: number, prefix: string[] = []): Promise<string[][]> {
    const listed: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list("risk", { prefix, limit, ...(cursor === undefined ? {} : { cursor }) });
      expect(page.records.length).toBeLessThanOrEqual(limit);
      if (page.cursor !== undefined) expect(typeof page.cursor).toBe("string");
      listed.push(...page.records.map((record) => [...record.parts]));
      cursor = page.cursor;
    } while (cursor !== undefined);
    return listed;
  }

  it("every live key exactly once with limit 1, 2 and 1000; a prefix lists only its keys", () =>
    withStore(async (store) => {
      for (const key of parts) await store.write({ namespace: "risk", parts: key }, "1");
      await store.write({ namespace: "risk", parts: ["a", "gone"] }, "1");
      await store.delete({ namespace: "risk", parts: ["a", "gone"] });
      await store.write({ namespace: "other", parts: ["a", "1"] }, "1");
      const sorted = [...parts].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
      for (const limit of [1, 2, 1000]) {
        expect(new Set((await listAll(store, limit)).map((p) => JSON.stringify(p)))).toEqual(
          new Set(sorted.map((p) => JSON.stringify(p))),
        );
        expect(await listAll(store, limit)).toHaveLength(parts.length);
        expect(await listAll(store, limit, ["a"])).toEqual([["a"], ["a", "1"], ["a", "2"], ["a", "b", "c"]]);
        expect(await listAll(store, limit, ["a", "b"])).toEqual([["a", "b", "c"]]);
        expect(await listAll(store, limit, ["b"])).toEqual([
          ["b", "z"],
          ["b", "ü"],
        ]);
      }
      const page = await store.list("risk", { limit: 2 });
      expect(page.records.map((record) => record.revision)).toEqual([1, 1]);
      await expect(store.list("risk", { cursor: "not a cursor" })).rejects.toThrow(/cursor/);
    }));
});

describe("writeMany is one transaction, declared atomic", () => {
  it("declares atomic; a server refusal of the last entry leaves nothing written", () =>
    withStore(async (store) => {
      expect(store.capabilities.writeMany).toBe("atomic");
      await store.write(key("m", "a"), "1");
      const entries = [
        { key: key("m", "a"), json: "2" },
        { key: key("m", "b"), json: "3" },
        { key: key("m", "c"), json: '{"not json"' }, // core passes any text; the server refuses it
      ];
      await expect(store.writeMany(entries)).rejects.toMatchObject({
        code: "PERSIST_INVALID_OPTION",
        outcome: "not-applied",
      });
      expect(await store.read(key("m", "a"))).toEqual({ found: true, json: "1", revision: 1 });
      expect(await store.read(key("m", "b"))).toEqual({ found: false, revision: 0 });
    }));

  it("two batches writing the same keys in opposite order, many times at once, never deadlock", () =>
    withStore(async (store) => {
      const other = new PostgresRecordStore({ connectionString: url, schema, table: store.table });
      try {
        const keys = Array.from({ length: 20 }, (_, index) => key(`g${index % 3}`, `k${index}`));
        const batch = (json: string) => keys.map((entryKey) => ({ key: entryKey, json }));
        const rounds = Array.from({ length: 10 }, (_, round) => [
          store.writeMany(batch(`${round}`)),
          other.writeMany(batch(`${round}`).reverse()),
          other.delete(keys[round] as RecordKey),
        ]);
        await Promise.all(rounds.flat());
        const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${store.tableName}`);
        expect(rows[0].n).toBeGreaterThan(0);
      } finally {
        await other.close();
      }
    }));

  it("a deadlock with another transaction rolls the batch back and runs it again, within queryTimeoutMillis", () =>
    withStore(async (store) => {
      await store.writeMany([
        { key: key("dl", "a"), json: "0" },
        { key: key("dl", "b"), json: "0" },
      ]);
      // The other session waits for its own deadlock check much longer than the store's (1 s by
      // default), so the store's transaction is the one PostgreSQL cancels.
      const other = await admin.connect();
      try {
        await other.query("SET deadlock_timeout = '30s'");
        await other.query("BEGIN");
        await other.query(`SELECT 1 FROM ${store.tableName} WHERE key = $1 FOR UPDATE`, [["dl", "b"]]);
        const batch = store
          .writeMany([
            { key: key("dl", "b"), json: "1" },
            { key: key("dl", "a"), json: "1" },
          ])
          .then(
            () => "written",
            (error: unknown) => error,
          );
        await waitForLockWait(store);
        // The batch holds a and waits for b; taking a closes the cycle.
        await other.query(`SELECT 1 FROM ${store.tableName} WHERE key = $1 FOR UPDATE`, [["dl", "a"]]);
        await other.query("COMMIT");
        expect(await batch).toBe("written");
      } finally {
        other.release();
      }
      expect(await store.read(key("dl", "a"))).toMatchObject({ found: true, json: "1" });
      expect(await store.read(key("dl", "b"))).toMatchObject({ found: true, json: "1" });
    }));
});

describe("close", () => {
  it("waits for running operations, then rejects new ones with BackendClosedError, and ends only its own pool", async () => {
    const pool = new pg.Pool({ connectionString: url });
    const store = new PostgresRecordStore({ pool, schema, table: `records_${++tables}` });
    const write = store.write(key("c", "x"), "1");
    await store.close();
    await expect(write).resolves.toEqual({ applied: true, revision: 1 });
    await expect(store.read(key("c", "x"))).rejects.toMatchObject({
      code: "PERSIST_BACKEND_CLOSED",
      outcome: "not-applied",
    });
    await expect(store.close()).resolves.toBeUndefined();
    expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    await pool.end();
  });
});
