import { runPersistContract } from "@persist-kit/contract";
import type pg from "pg";
import { afterAll, beforeAll, describe, it } from "vitest";
import { PersistPostgres, signalLocation } from "../src/index.js";
import { adminPool, closedPort, dropSchemas, testDatabaseUrl, uniqueName, WORKER_MODULE } from "./postgres-test-env.js";

// Every backend gets its own table in one schema of this run, dropped at the end.
const schema = uniqueName("pk_contract");
let url = "";
let admin: pg.Pool | undefined;
let tables = 0;

function rawPool(): pg.Pool {
  if (admin === undefined) throw new Error("setup did not run");
  return admin;
}

runPersistContract(
  { describe, it, beforeAll, afterAll },
  {
    name: "postgres",
    async setup() {
      url = await testDatabaseUrl();
      admin = adminPool(url);
    },
    create: ({ ttlMs }) => new PersistPostgres({ connectionString: url, schema, table: `signals_${++tables}`, ttlMs }),
    async teardown() {
      if (admin === undefined) return;
      await dropSchemas(admin, [schema]);
      await admin.end();
    },
    raw: {
      // The json column keeps only valid JSON, so unparsable text cannot even be stored.
      storesText: false,
      async read(backend, symbol, strategyName) {
        const { namespace, key } = signalLocation(symbol, strategyName);
        const result = await rawPool().query(
          `SELECT value::text AS text FROM ${backend.tableName} WHERE namespace = $1 AND key = $2::text[]`,
          [namespace, key],
        );
        return result.rows[0]?.text ?? null;
      },
      async write(backend, symbol, strategyName, text) {
        await backend.ping(); // creates the table
        const { namespace, key } = signalLocation(symbol, strategyName);
        await rawPool().query(
          `INSERT INTO ${backend.tableName} (namespace, key, value, revision) VALUES ($1, $2::text[], $3::json, 1)
           ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, revision = ${backend.tableName}.revision + 1`,
          [namespace, key, text],
        );
      },
    },
    worker: {
      module: WORKER_MODULE,
      options: (backend) => ({ connectionString: url, schema: backend.schema, table: backend.table }),
    },
    ttl: true,
    unavailable: {
      async create() {
        const port = await closedPort();
        return new PersistPostgres({
          connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
          connectionTimeoutMillis: 1_000,
          queryTimeoutMillis: 1_000,
        });
      },
      timeoutMs: 3_000,
    },
  },
  { killTrials: 100 },
);
