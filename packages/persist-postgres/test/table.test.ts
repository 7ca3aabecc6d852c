import { makeSignalRow, runConcurrentWriters } from "@persist-kit/contract";
import { InvalidKeyError, InvalidOptionError, PersistError } from "@persist-kit/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PersistPostgres, recordTableSql } from "../src/index.js";
import { quoteIdentifier } from "../src/record-table.js";
import { adminPool, dropSchemas, testDatabaseUrl, uniqueName, WORKER_MODULE } from "./postgres-test-env.js";

let url = "";
let admin: pg.Pool;
const schemas = new Set<string>();

/** A schema name for this file, dropped at the end. */
function freshSchema(): string {
  const schema = uniqueName("pk_table");
  schemas.add(schema);
  return schema;
}

beforeAll(async () => {
  url = await testDatabaseUrl();
  admin = adminPool(url);
});

afterAll(async () => {
  if (admin === undefined) return;
  await dropSchemas(admin, schemas);
  await admin.end();
});

async function indexesOf(schema: string, table: string): Promise<string[]> {
  const result = await admin.query("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", [
    schema,
    table,
  ]);
  return result.rows.map((row) => row.indexdef);
}

describe("the table is created on first use, once, safely", () => {
  it("two processes creating the same new schema and table at the same moment both succeed", async () => {
    // Several rounds, each on a new schema and table, so the race really happens more than once.
    for (let round = 0; round < 5; round++) {
      const schema = freshSchema();
      const reader = new PersistPostgres({ connectionString: url, schema, table: "raced" });
      try {
        const target = {
          worker: { module: WORKER_MODULE },
          options: { connectionString: url, schema, table: "raced" },
          symbol: "BTC/USDT",
          strategyName: "race",
        };
        // Each child exits 0 only if its first operation (which creates the table) succeeded.
        await runConcurrentWriters(reader, target, { writers: 2, writesPerWriter: 1, timeoutMs: 20_000 });
        expect(await indexesOf(schema, "raced")).toHaveLength(1);
        expect(await indexesOf(schema, "raced_floors")).toHaveLength(1);
      } finally {
        await reader.close();
      }
    }
  });

  it("has the documented columns, only the primary keys as indexes, a signal view, and records its schema version", async () => {
    const schema = freshSchema();
    const persist = new PersistPostgres({ connectionString: url, schema });
    try {
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      const columnsOf = async (table: string) =>
        (
          await admin.query(
            `SELECT column_name, data_type, is_nullable, collation_name FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
            [schema, table],
          )
        ).rows;
      expect(await columnsOf("persist_records")).toEqual([
        { column_name: "namespace", data_type: "text", is_nullable: "NO", collation_name: "C" },
        { column_name: "key", data_type: "ARRAY", is_nullable: "NO", collation_name: "C" },
        { column_name: "value", data_type: "json", is_nullable: "NO", collation_name: null },
        { column_name: "revision", data_type: "bigint", is_nullable: "NO", collation_name: null },
        { column_name: "format", data_type: "smallint", is_nullable: "NO", collation_name: null },
        { column_name: "created_at", data_type: "timestamp with time zone", is_nullable: "NO", collation_name: null },
        { column_name: "updated_at", data_type: "timestamp with time zone", is_nullable: "NO", collation_name: null },
        { column_name: "expires_at", data_type: "timestamp with time zone", is_nullable: "YES", collation_name: null },
      ]);
      expect(await columnsOf("persist_records_floors")).toEqual([
        { column_name: "namespace", data_type: "text", is_nullable: "NO", collation_name: "C" },
        { column_name: "group_key", data_type: "text", is_nullable: "NO", collation_name: "C" },
        { column_name: "floor", data_type: "bigint", is_nullable: "NO", collation_name: null },
      ]);
      expect(await indexesOf(schema, "persist_records")).toEqual([
        `CREATE UNIQUE INDEX persist_records_pkey ON ${schema}.persist_records USING btree (namespace, key)`,
      ]);
      expect(await indexesOf(schema, "persist_records_floors")).toEqual([
        `CREATE UNIQUE INDEX persist_records_floors_pkey ON ${schema}.persist_records_floors USING btree (namespace, group_key)`,
      ]);
      // The documented query and the view both show the open signal, and only it.
      await persist.records.write({ namespace: "other", parts: ["momentum", "BTC/USDT"] }, "{}");
      const documented = await admin.query(
        `SELECT key[1] AS strategy_name, key[2] AS symbol, value FROM "${schema}".persist_records
         WHERE namespace = 'signal' AND (expires_at IS NULL OR expires_at > now())`,
      );
      expect(documented.rows).toEqual([{ strategy_name: "momentum", symbol: "BTC/USDT", value: makeSignalRow(1) }]);
      const view = await admin.query(`SELECT strategy_name, symbol, signal FROM "${schema}".persist_records_signals`);
      expect(view.rows).toEqual([{ strategy_name: "momentum", symbol: "BTC/USDT", signal: makeSignalRow(1) }]);
      const stored = await admin.query(
        `SELECT format, revision FROM "${schema}".persist_records WHERE namespace = 'signal'`,
      );
      expect(stored.rows).toEqual([{ format: 1, revision: "1" }]);
      const comment = await admin.query("SELECT obj_description(to_regclass($1), 'pg_class') AS comment", [
        persist.tableName,
      ]);
      expect(comment.rows[0].comment).toBe("persist-kit record table, schema version 1");
    } finally {
      await persist.close();
    }
  });

  it("a table created beforehand by hand is used as it is", async () => {
    const schema = freshSchema();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    // Created with the package's own DDL, as its README says, but by hand and ahead of time.
    for (const statement of recordTableSql(schema, "signals").setup) await admin.query(statement);
    const persist = new PersistPostgres({ connectionString: url, schema, table: "signals" });
    try {
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1));
    } finally {
      await persist.close();
    }
  });

  it("tables made without the write, delete and batch functions (an earlier build) get them on first use", async () => {
    const schema = freshSchema();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    const sql = recordTableSql(schema, "signals");
    for (const statement of sql.setup.filter((text) => !text.startsWith("CREATE OR REPLACE FUNCTION"))) {
      await admin.query(statement);
    }
    const persist = new PersistPostgres({ connectionString: url, schema, table: "signals" });
    try {
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(1));
      const functions = await admin.query(
        `SELECT to_regprocedure($1) IS NOT NULL AS write, to_regprocedure($2) IS NOT NULL AS delete,
           to_regprocedure($3) IS NOT NULL AS batch`,
        [sql.writeFunction, sql.deleteFunction, sql.batchFunction],
      );
      expect(functions.rows).toEqual([{ write: true, delete: true, batch: true }]);
    } finally {
      await persist.close();
    }
  });

  it("a table of a newer schema version is refused, and the next operation tries again", async () => {
    const schema = freshSchema();
    const first = new PersistPostgres({ connectionString: url, schema });
    await first.ping();
    await first.close();
    const qualified = `"${schema}".persist_records`;
    await admin.query(`COMMENT ON TABLE ${qualified} IS 'persist-kit record table, schema version 99'`);
    const persist = new PersistPostgres({ connectionString: url, schema });
    try {
      const refused = persist.readSignalData("BTC/USDT", "momentum");
      await expect(refused).rejects.toThrow(PersistError);
      await expect(refused).rejects.toThrow(/schema version 99, newer than the 1/);
      // The failed preparation is not remembered: once the table is usable, the same instance works.
      await admin.query(`COMMENT ON TABLE ${qualified} IS 'persist-kit record table, schema version 1'`);
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(2));
      expect(await persist.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(2));
    } finally {
      await persist.close();
    }
  });

  it("backends on different tables can share one connection: prepared statement names never clash", async () => {
    const schema = freshSchema();
    // One connection, so both backends' prepared statements live in the same session.
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const first = new PersistPostgres({ pool, schema, table: "first" });
    const second = new PersistPostgres({ pool, schema, table: "second" });
    try {
      for (let round = 1; round <= 3; round++) {
        await first.writeSignalData("BTC/USDT", "momentum", makeSignalRow(round));
        await second.writeSignalData("BTC/USDT", "momentum", makeSignalRow(round + 10));
        expect(await first.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(round));
        expect(await second.readSignalData("BTC/USDT", "momentum")).toEqual(makeSignalRow(round + 10));
      }
      const prepared = await pool.query("SELECT name, statement FROM pg_prepared_statements");
      const names = prepared.rows.map((row) => row.name as string);
      expect(new Set(names).size).toBe(names.length);
      expect(names.filter((name) => name.startsWith("persist_kit_read_"))).toHaveLength(2);
    } finally {
      await first.close();
      await second.close();
      await pool.end();
    }
  });
});

describe("names that look like SQL are plain data", () => {
  const injections = [
    "'; DROP TABLE x; --",
    '"; DROP TABLE x; --',
    "x'); DELETE FROM persist_records; --",
    "$1",
    "\\",
    '{"a",b}',
    "NULL",
  ];

  it("strategy names and symbols like '; DROP TABLE x; -- are stored and read back verbatim", async () => {
    const schema = freshSchema();
    await admin.query(`CREATE SCHEMA "${schema}"`);
    await admin.query(`CREATE TABLE "${schema}".x (id int)`);
    const persist = new PersistPostgres({ connectionString: url, schema });
    try {
      for (const [index, name] of injections.entries()) {
        await persist.writeSignalData(name, name, makeSignalRow(index));
        await persist.writeSignalData("BTC/USDT", name, makeSignalRow(index + 100));
      }
      for (const [index, name] of injections.entries()) {
        expect(await persist.readSignalData(name, name)).toEqual(makeSignalRow(index));
        expect(await persist.readSignalData("BTC/USDT", name)).toEqual(makeSignalRow(index + 100));
      }
      const stored = await admin.query(
        `SELECT key[1] AS strategy_name, key[2] AS symbol FROM ${persist.tableName} WHERE key[1] = key[2] ORDER BY key`,
      );
      expect(stored.rows.map((row) => row.symbol)).toEqual([...injections].sort());
      const listed = [];
      for await (const key of persist.keys()) listed.push(key);
      expect(listed).toHaveLength(injections.length * 2);
      await persist.deleteSignalData(injections[0] as string, injections[0] as string);
      expect(await persist.readSignalData(injections[0] as string, injections[0] as string)).toBeNull();
      // The table the names talk about is untouched.
      expect((await admin.query("SELECT to_regclass($1) IS NOT NULL AS present", [`"${schema}".x`])).rows[0]).toEqual({
        present: true,
      });
    } finally {
      await persist.close();
    }
  });

  it("malicious or invalid schema and table options are refused before any connection", () => {
    const refused: unknown[] = [
      "'; DROP TABLE x; --",
      'x"; DROP TABLE x; --',
      'signals" (id int); --',
      "public.persist_records",
      "a".repeat(56),
      "with space",
      "",
      "1signals",
      "signäls",
      "a".repeat(64),
      "x\u0000",
      42,
    ];
    for (const name of refused) {
      expect(() => new PersistPostgres({ connectionString: url, table: name as string }), String(name)).toThrow(
        InvalidOptionError,
      );
      if (name === "a".repeat(56)) continue; // a schema may be longer: nothing is added to its name
      expect(() => new PersistPostgres({ connectionString: url, schema: name as string }), String(name)).toThrow(
        /schema must match/,
      );
    }
    // 55 + "_signals" is 63: every companion name fits PostgreSQL's identifier length.
    expect(new PersistPostgres({ connectionString: url, table: "a".repeat(55) }).table).toHaveLength(55);
    expect(new PersistPostgres({ connectionString: url, schema: "a".repeat(63) }).schema).toHaveLength(63);
  });

  it("identifiers are always quoted, so a mixed-case table name is kept as written", async () => {
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
    const schema = freshSchema();
    const persist = new PersistPostgres({ connectionString: url, schema, table: "MixedCase_Signals" });
    try {
      expect(persist.tableName).toBe(`"${schema}"."MixedCase_Signals"`);
      await persist.writeSignalData("BTC/USDT", "momentum", makeSignalRow(1));
      const found = await admin.query("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [
        schema,
      ]);
      expect(found.rows).toEqual([{ tablename: "MixedCase_Signals" }, { tablename: "MixedCase_Signals_floors" }]);
    } finally {
      await persist.close();
    }
  });

  it("invalid keys are refused before any connection is opened", async () => {
    const pool = new pg.Pool({ connectionString: url });
    const persist = new PersistPostgres({ pool, schema: freshSchema() });
    try {
      await expect(persist.readSignalData("", "momentum")).rejects.toThrow(InvalidKeyError);
      await expect(persist.writeSignalData("BTC/USDT", "a\u0000b", makeSignalRow(1))).rejects.toThrow(InvalidKeyError);
      expect(pool.totalCount).toBe(0);
    } finally {
      await persist.close();
      await pool.end();
    }
  });
});
