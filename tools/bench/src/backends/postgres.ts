// The postgres family: persist-postgres against pg sending the same statements as named prepared
// statements, and keyv with @keyv/postgres.
import KeyvPostgres from "@keyv/postgres";
import type { PersistBase } from "@persist-kit/core";
import Keyv from "keyv";
import pg from "pg";
import type { Contender, Family, SignalStore } from "../model.js";
import { keyvStore, loadPackage, persistStore, serverUrl } from "../stores.js";
import { DRIVER_GOALS, PEER_GOALS, RAW_DRIVER_NOTE } from "../targets.js";
import type { FamilySetup } from "./setup.js";

/** What the harness uses of @persist-kit/persist-postgres (typed here: see loadPackage). */
interface PersistPostgresModule {
  PersistPostgres: new (options: { connectionString: string; schema: string; table: string }) => PersistBase;
  signalTableSql(
    schema: string,
    table: string,
  ): Record<"createTable", string> & Record<"read" | "write" | "delete", { text: string }>;
}

// Every table of a run lives in one schema, dropped at the end whatever the contenders left.
const schemaOf = (tag: string) => `persist_kit_bench_${tag}`;

/** The postgres family; each contender gets its own table in this run's schema. */
export async function postgresFamily(setup: FamilySetup): Promise<Family> {
  const url = serverUrl("DATABASE_URL");
  const schema = schemaOf(setup.tag);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const version = (await admin.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version;
  const settings = await admin.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit') ORDER BY name",
  );
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const contenders: Contender[] = [
    {
      name: "persist-postgres",
      role: "ours",
      description: "PersistPostgres: INSERT ... ON CONFLICT / SELECT / DELETE as named prepared statements, pg.Pool",
      open: async () => {
        const { PersistPostgres } = await loadPackage<PersistPostgresModule>("@persist-kit/persist-postgres");
        return persistStore(new PersistPostgres({ connectionString: url, schema, table: "ours" }));
      },
    },
    {
      name: "pg prepared",
      role: "driver",
      description: "pg.Pool (default size, as persist-postgres), the same SQL as named prepared statements",
      goals: DRIVER_GOALS,
      inFlightNote: RAW_DRIVER_NOTE,
      // The very statements persist-postgres runs, from the package itself.
      open: async () => {
        const { signalTableSql } = await loadPackage<PersistPostgresModule>("@persist-kit/persist-postgres");
        return preparedStore(url, signalTableSql(schema, "driver"));
      },
    },
    {
      name: "keyv postgres",
      role: "peer",
      description: "keyv with @keyv/postgres (key/value text table, pg.Pool)",
      goals: PEER_GOALS,
      inFlightNote: "a thin layer over pg.Pool that checks nothing per call",
      open: async () => {
        const keyv = new Keyv({ store: new KeyvPostgres({ uri: url, schema, table: "keyv" }) });
        return keyvStore(keyv);
      },
    },
  ];
  const setting = (name: string) => settings.rows.find((row) => row.name === name)?.setting ?? "?";
  return {
    name: "postgres",
    description: `PostgreSQL ${version}, fsync ${setting("fsync")}, synchronous_commit ${setting("synchronous_commit")}`,
    contenders,
    unavailable: [],
    passes: setup.passes,
    close: async () => {
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}

async function preparedStore(
  url: string,
  sql: ReturnType<PersistPostgresModule["signalTableSql"]>,
): Promise<SignalStore> {
  const pool = new pg.Pool({ connectionString: url });
  await pool.query(sql.createTable);
  const statement = (name: string, text: string, values: unknown[]) => ({ name: `bench_${name}`, text, values });
  return {
    write: async (key, row) => {
      await pool.query(statement("write", sql.write.text, [key.strategyName, key.symbol, JSON.stringify(row), null]));
    },
    read: async (key) => {
      const result = await pool.query(statement("read", sql.read.text, [key.strategyName, key.symbol]));
      const text = result.rows[0]?.signal_json;
      return typeof text === "string" ? JSON.parse(text) : null;
    },
    delete: async (key) => {
      await pool.query(statement("delete", sql.delete.text, [key.strategyName, key.symbol]));
    },
    close: () => pool.end(),
  };
}
