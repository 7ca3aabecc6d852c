export type { PostgresDurabilityReport, PostgresServerDurability } from "./durability.js";
export { POSTGRES_ERROR_RULES } from "./errors.js";
export { fromUrl, PersistPostgres, type PersistPostgresOptions } from "./persist-postgres.js";
export { PostgresRecordStore, type PostgresRecordStoreOptions } from "./postgres-record-store.js";
export {
  deleteValues,
  listBounds,
  type NamedStatement,
  RECORD_FORMAT,
  type RecordLocation,
  type RecordTableSql,
  readValues,
  recordLocation,
  recordTableSql,
  SCHEMA_VERSION,
  signalLocation,
  writeManyValues,
  writeValues,
} from "./record-table.js";

/** This package's name: `createPersist(url, { backends: [thisModule] })` finds it by it (a bundled application). */
export const packageName = "@persist-kit/persist-postgres";
