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
  /** Every statement the backend runs against one record table (and its floor table). */
  recordTableSql(schema: string, table: string): RecordTableSql;
  signalLocation(symbol: string, strategyName: string): RecordLocation;
  readValues(location: RecordLocation): unknown[];
  writeValues(location: RecordLocation, json: string): unknown[];
  deleteValues(location: RecordLocation): unknown[];
}

interface NamedStatement {
  name: string;
  text: string;
}

interface RecordTableSql {
  /** What creates the record table, its floor table and the signal view, in order (after the schema). */
  setup: readonly string[];
  /** Columns: `json` (the value as text, null when absent), `revision`, `format`. */
  read: NamedStatement;
  write: NamedStatement;
  delete: NamedStatement;
}

/** Where a record lives: opaque here, handed from signalLocation to the value builders. */
type RecordLocation = object;

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
  const openBackend = async (name: string) => {
    const { PersistPostgres } = await loadPackage<PersistPostgresModule>("@persist-kit/persist-postgres");
    return new PersistPostgres({ connectionString: url, schema, table: name });
  };
  const contenders: Contender[] = [
    {
      name: "persist-postgres",
      role: "ours",
      description:
        "PersistPostgres: one statement per call (write and delete decide their revision under row and floor locks), named prepared statements, pg.Pool",
      open: async () => persistStore(await openBackend("ours")),
    },
    {
      name: "pg prepared",
      role: "driver",
      description:
        "pg.Pool (default size, as persist-postgres), persist-postgres' own statements and parameters as named prepared statements",
      goals: DRIVER_GOALS,
      inFlightNote: RAW_DRIVER_NOTE,
      // The very statements and parameters persist-postgres runs, from the package itself.
      open: async () => {
        const backend = await loadPackage<PersistPostgresModule>("@persist-kit/persist-postgres");
        return preparedStore(url, backend, backend.recordTableSql(schema, "driver"));
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
    openBackend,
    close: async () => {
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}

// Creates the tables with the backend's own setup statements, then sends its read, write and
// delete statements under their own names with the values its helpers build: the same SQL and
// parameters, so the ratio is what persist-postgres adds in JavaScript.
async function preparedStore(url: string, backend: PersistPostgresModule, sql: RecordTableSql): Promise<SignalStore> {
  const pool = new pg.Pool({ connectionString: url });
  try {
    for (const statement of sql.setup) await pool.query(statement);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const { signalLocation, readValues, writeValues, deleteValues } = backend;
  return {
    write: async (key, row) => {
      const values = writeValues(signalLocation(key.symbol, key.strategyName), JSON.stringify(row));
      await pool.query({ name: sql.write.name, text: sql.write.text, values });
    },
    read: async (key) => {
      const values = readValues(signalLocation(key.symbol, key.strategyName));
      const result = await pool.query({ name: sql.read.name, text: sql.read.text, values });
      const text = result.rows[0]?.json;
      return typeof text === "string" ? JSON.parse(text) : null;
    },
    delete: async (key) => {
      const values = deleteValues(signalLocation(key.symbol, key.strategyName));
      await pool.query({ name: sql.delete.name, text: sql.delete.text, values });
    },
    close: () => pool.end(),
  };
}
